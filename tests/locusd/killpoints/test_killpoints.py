"""The kill-point suite: a real daemon (started by the real ``locus`` CLI) SIGKILLs itself at each
named point between two side effects of a run, a review, a commit and a report
(``LOCUS_CRASH_AT``, locusd/crashpoints.py), against a real cloud (SQLite). After a restart
(and, for some points, a cloud outage longer than the lease) it checks the invariant:

* every run is in an explicit state (none left starting, running or committing);
* every worktree on disk is named by a run, and every named worktree exists;
* once the outbox drains, the cloud's status is what the run's state says it heard — or, when
  the cloud refused a report (an outage outlived the lease), the run says so and is not
  ``reported``;
* nothing was lost or sent twice: each status the cloud applied from this worker is listed
  once in the audit log, and no status repeats;
* no branch litter and nothing lost: the user's checkout has a ``locus/*`` branch only for a
  committed run; a run awaiting review keeps its work under ``refs/locus/runs/<run-id>``; a
  committed or discarded run has no such ref;
* the user can still act: commit what the run did (reported, or refused and offered again),
  or there was nothing to act on.

The table of points and outcomes is printed at the end of the test session.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import itertools
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp import web

import locusd
from locusd import crashpoints
from locusd.crashpoints import POINTS
from tests.conftest import Cloud, start_cloud
from tests.locusd.agentkit import DEMO_TRANSCRIPT, call, git
from tests.locusd.cliuser import User, cloud_status, drained, login_and_queue
from tests.locusd.killpoints.table import OUTCOMES
from tests.support.anthropic_server import AnthropicServer
from tests.support.client import timeline
from tests.support.processes import processes_named, until

Scenario = Literal["run", "commit", "send_back", "discard", "cancel", "requeue"]
LONG_LEASE = 60.0  # nothing expires while the daemon restarts
SHORT_LEASE = 2.0  # an outage (or a lost claim) outlives it


@dataclass(frozen=True)
class Case:
    point: str  # LOCUS_CRASH_AT
    scenario: Scenario  # what the user was doing when the daemon died
    expect: str | None  # the run's state after recovery: what was intended, finished or undone
    outage: bool = False  # the cloud is away for longer than the lease before the restart

    @property
    def id(self) -> str:
        return f"{self.point}-{self.scenario}" + ("-outage" if self.outage else "")


CASES = [
    Case("run.claimed", "run", None),
    Case("run.recorded", "run", "failed"),
    Case("run.worktree", "run", "failed"),
    Case("run.working", "run", "failed"),
    Case("run.finished", "run", "awaiting_review"),  # the agent had finished: kept, not failed
    Case("run.ended", "run", "awaiting_review"),
    Case("outbox.acknowledged", "run", "failed"),  # the first ack: `running`, mid-run
    Case("commit.intent", "commit", "awaiting_review"),  # undone: reviewable again
    Case("commit.made", "commit", "reported"),  # git made it: recognised, reported
    Case("commit.branched", "commit", "reported"),  # on its branch: recognised, reported
    Case("commit.recorded", "commit", "reported"),
    # The review's decisions are the scenario's first write, and its ack may come before or
    # during the commit (both recover: see commit.*); the second ack, the patch's, comes only
    # after the commit was recorded.
    Case("outbox.acknowledged#2", "commit", "reported"),
    Case("discard.reset", "discard", "awaiting_review"),  # its ref still holds the work
    Case("discard.recorded", "discard", "discarded"),  # recovery deletes its ref
    Case("send_back.recorded", "send_back", "failed"),  # the next round, interrupted
    Case("cancel.requested", "cancel", "cancelled"),  # the user's cancel, carried out
    Case("cancel.requested", "requeue", "cancelled"),  # … and their choice to give it back
    Case("run.working", "run", "failed", outage=True),
    Case("run.ended", "run", "awaiting_review", outage=True),
    Case("commit.recorded", "commit", "reported", outage=True),
]


#: Points reached in a run's agent process, not the daemon: the daemon survives the kill, so
#: they are killed at by the test named.
AGENT_PROCESS_POINTS = {
    "pool.claimed": "tests/locusd/runner/test_branches.py",
    "pool.moved": "tests/locusd/runner/test_branches.py",
}
#: Points reached outside the daemon (a CLI command's own writes), killed at by the test named.
OUTSIDE_POINTS = {"graph.state_writing": "tests/locusd/graph/test_index.py"}


#: What a run's state says the cloud last heard (once the outbox has drained).
HEARD = {
    "awaiting_review": "awaiting_review",
    "needs_input": "needs_input",
    "failed": "failed",
    "completed": "failed",
    "cancelled": "queued",
    "reported": "verification",
    "discarded": "failed",  # discarded awaiting review: the reviewer ended the attempt
}


def test_every_kill_point_is_in_the_code_and_has_a_case() -> None:
    """Each point named in locusd/ is listed (with what recovery does), and each has a case."""
    used = set()
    for path in Path(locusd.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "crashpoint"
            ):
                (argument,) = node.args
                assert isinstance(argument, ast.Constant), f"{path}: name the point literally"
                used.add(argument.value)
    assert used == set(POINTS)
    covered = {case.point.partition("#")[0] for case in CASES}
    covered |= set(AGENT_PROCESS_POINTS) | set(OUTSIDE_POINTS)
    assert covered == set(POINTS)


def test_the_docs_list_every_point() -> None:
    page = Path(locusd.__file__).parents[1] / "docs" / "daemon.md"
    assert crashpoints.markdown() in page.read_text(encoding="utf-8")


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    found: Case = request.param
    return found


@pytest.fixture
def settings_overrides(case: Case) -> dict[str, Any]:
    short = case.outage or case.point == "run.claimed"
    return {"lease_seconds": SHORT_LEASE if short else LONG_LEASE}


def configure(user: User) -> None:
    """The recorded session as the model; the outbox retries at least every half second."""
    user.config.write_text(
        f'[agent]\nprovider = "replay"\nreplay = "{DEMO_TRANSCRIPT}"\n'
        "[daemon]\noutbox_retry_cap = 0.5\n"
    )


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """Until an async ``condition`` holds (the cloud's reaper has no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def run_once(user: User) -> dict[str, Any]:
    _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review", err
    return dict(run)


async def crash(user: User, case: Case, cloud: Cloud) -> int:
    """Bring the user's work to the case's point with a daemon that dies there; returns the
    task."""
    task_id = await login_and_queue(user, cloud)
    run: dict[str, Any] | None = None
    if case.scenario != "run":
        run = await run_once(user)
        await drained(user)
        if case.scenario == "send_back":
            await user.locus("review", run["run_id"], "--reject-all", "--comment", "not so")
    await user.locus("daemon", "stop")
    doomed = dataclasses.replace(user, env={**user.env, "LOCUS_CRASH_AT": case.point})
    pid = int((await doomed.json("status"))["pid"])
    if case.scenario == "run":
        action = ["run", "--once", "--repo", str(user.repo)]
    elif case.scenario == "commit":
        assert run is not None
        action = ["review", run["run_id"], "--accept-all", "--commit"]
    elif case.scenario == "discard":
        assert run is not None
        action = ["review", run["run_id"], "--discard"]
    else:
        assert run is not None
        action = ["review", run["run_id"], "--send-back"]
    await doomed.locus(*action, check=False)
    await until(lambda: not alive(pid), timeout=60)  # it died at the point, not elsewhere
    return task_id


#: The agent's command in the cancel scenarios: it runs until the user cancels the run.
STOP_ME = "locus-killpoint-stop-me"


async def crash_cancelling(user: User, case: Case, cloud: Cloud) -> int:
    """The cancel scenarios: ``locus run`` works on the task, the user runs ``locus cancel``
    (with ``--requeue`` for the give-back), and the daemon dies once the choice is recorded."""
    task_id = await login_and_queue(user, cloud)
    await user.locus("daemon", "stop")
    doomed = dataclasses.replace(user, env={**user.env, "LOCUS_CRASH_AT": case.point})
    pid = int((await doomed.json("status"))["pid"])
    working = await doomed.start("run", "--once", "--repo", str(user.repo), quiet=True)
    try:
        await until(lambda: bool(processes_named(STOP_ME)), timeout=60)
        (run,) = (await doomed.json("runs"))["runs"]
        requeue = ["--requeue"] if case.scenario == "requeue" else []
        await doomed.locus("cancel", run["runId"], *requeue, check=False)
        await until(lambda: not alive(pid), timeout=60)
    finally:
        await asyncio.wait_for(working.wait(), 60)  # it lost its daemon
    return task_id


async def outage(user: User, cloud: Cloud, task_id: int) -> web.AppRunner:
    """The cloud goes away; a new daemon recovers (and cannot send); after the lease has run
    out the cloud comes back (its reaper re-queues what was leased) and so does the daemon."""
    port = int(cloud.url.rsplit(":", 1)[1])
    await cloud.runner.cleanup()
    await user.json("status")  # a new daemon: recovery, with the cloud away
    await user.locus("daemon", "stop")
    await asyncio.sleep(SHORT_LEASE * 1.5)
    runner, _, _ = await start_cloud(cloud.db_url, port=port, lease_seconds=SHORT_LEASE)

    async def reaped() -> bool:
        return await cloud_status(cloud, task_id) not in ("claimed", "running")

    await eventually(reaped)
    return runner


async def check_invariant(
    user: User, cloud: Cloud, task_id: int, heard: dict[str, str] = HEARD
) -> tuple[dict[str, Any] | None, str]:
    """The invariant after recovery and a drained outbox (``heard``: what each run state says
    the cloud last heard); returns the task's latest run and the cloud's status."""
    await drained(user)
    runs = (await user.json("runs"))["runs"]
    for run in runs:
        assert run["state"] not in ("starting", "running", "committing"), run
    named = {run["worktree"] for run in runs if run.get("worktree")}
    on_disk = {
        str(path)
        for path in (Path(user.env["XDG_DATA_HOME"]) / "locus" / "worktrees").glob("*/*")
        if path.is_dir()
    }
    assert on_disk <= named, f"worktrees nobody names: {on_disk - named}"
    assert all(Path(path).is_dir() for path in named), "a run names a worktree that is gone"
    status = await cloud_status(cloud, task_id)
    ours = [run for run in runs if run["taskId"] == task_id]
    latest = ours[-1] if ours else None
    if latest is not None:
        no_litter(user.repo, latest)
    if latest is not None:
        if latest.get("cloudError"):
            assert latest["state"] != "reported" and status in ("queued", "failed"), latest
        else:
            assert heard.get(latest["state"]) == status, (latest, status)
    # Nothing lost or sent twice: each status the cloud applied from this worker is audited
    # once, and none repeats.
    events = await timeline(cloud.api, task_id)
    moves = [
        e["to_status"]
        for e in events
        if e["kind"] == "status" and e["actor"] == "worker" and e["to_status"] != "claimed"
    ]
    audited = [e for e in (await user.json("audit"))["entries"] if e["kind"] == "status"]
    assert len(moves) == len(audited), (moves, audited)
    assert all(a != b for a, b in itertools.pairwise(moves)), moves
    return latest, status


def no_litter(repo: Path, run: dict[str, Any]) -> None:
    """A ``locus/*`` branch only for a committed run; the work of one awaiting review under its
    ref (a snapshot on its base that holds the change); no ref once committed or discarded."""
    branches = git(repo, "branch", "--list", "--format=%(refname:short)", "locus/*").split()
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/locus/runs/").split()
    ref = f"refs/locus/runs/{run['runId']}"
    if run["state"] in ("committed", "reported", "report_refused"):
        assert branches == [run["branch"]] and ref not in refs, (branches, refs)
        assert git(repo, "rev-parse", run["branch"]) == run["commit"]
        return
    assert branches == [], branches
    if run["state"] == "discarded":
        assert ref not in refs, refs
    elif run["state"] == "awaiting_review":
        assert "ordered[middle - 1]" in git(repo, "diff", run["baseCommit"], ref)


async def the_user_acts(user: User, cloud: Cloud, task_id: int, run: dict[str, Any]) -> str:
    """What the user can still do with the run, done: commit its change (and offer it again
    when the cloud refuses the report), or nothing when there is nothing to act on."""
    if run["state"] in ("reported", "discarded") or not run.get("worktree"):
        return str(run["state"])
    view = await user.json("review", run["runId"])
    if not view["files"]:
        discarded = await user.json("review", run["runId"], "--discard")
        return f"{run['state']} → discarded ({discarded['state']})"
    before = await cloud_status(cloud, task_id)
    await user.locus("review", run["runId"], "--accept-all", "--commit", "--json")
    await drained(user)
    after = next(r for r in (await user.json("runs"))["runs"] if r["runId"] == run["runId"])
    if before == "awaiting_review":
        assert after["state"] == "reported" and await cloud_status(cloud, task_id) == "verification"
        return f"{run['state']} → commit → reported"
    assert after["state"] == "report_refused" and after["cloudError"], after
    if before == "queued":  # the task is free again: offer the commit under a new claim
        offered = await user.json("review", run["runId"], "--resubmit")
        assert offered["state"] == "committed"
        await drained(user)
        again = next(r for r in (await user.json("runs"))["runs"] if r["runId"] == run["runId"])
        assert again["state"] == "reported", again
        assert await cloud_status(cloud, task_id) == "verification"
        return f"{run['state']} → commit → report_refused → resubmit → reported"
    code, _, err = await user.locus("review", run["runId"], "--resubmit", check=False)
    assert code != 0 and "not queued" in err, err
    return f"{run['state']} → commit → report_refused (task {before}: retry it in the cloud first)"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_the_daemon_killed_at_a_point_recovers_explicitly(
    case: Case, user: User, cloud: Cloud
) -> None:
    if case.scenario in ("cancel", "requeue"):
        await cancelled_at_the_point(case, user, cloud)
        return
    configure(user)
    task_id = await crash(user, case, cloud)
    runner = await outage(user, cloud, task_id) if case.outage else None
    try:
        if case.point == "run.claimed":  # nothing was recorded: the lease gives the task back

            async def requeued() -> bool:
                return await cloud_status(cloud, task_id) == "queued"

            await eventually(requeued)
        latest, status = await check_invariant(user, cloud, task_id)
        assert (latest["state"] if latest else None) == case.expect, latest
        if latest is None:
            outcome = f"no run · cloud {status}"
        else:
            refused = " (report refused)" if latest.get("cloudError") else ""
            acted = await the_user_acts(user, cloud, task_id, latest)
            outcome = f"{latest['state']}{refused} · cloud {status} · {acted}"
        OUTCOMES.append((case.id, outcome))
    finally:
        await user.locus("daemon", "stop", check=False)
        if runner is not None:
            await runner.cleanup()
    assert os.environ.get("LOCUS_CRASH_AT") is None  # the test process itself never crashes


async def cancelled_at_the_point(case: Case, user: User, cloud: Cloud) -> None:
    """The user's cancel survives the daemon's death: the next daemon ends the run cancelled
    and the cloud hears the user's choice — the task cancelled, or given back."""
    script = [call("run_command", command=f"exec -a {STOP_ME} sleep 600", timeout=900)]
    async with AnthropicServer(script) as model:
        user.config.write_text(
            f'[agent]\nbase_url = "{model.base_url}"\n[daemon]\noutbox_retry_cap = 0.5\n'
        )
        try:
            task_id = await crash_cancelling(user, case, cloud)
            assert not processes_named(STOP_ME)  # its agent process went with the daemon
            chosen = "queued" if case.scenario == "requeue" else "cancelled"
            latest, status = await check_invariant(
                user, cloud, task_id, {**HEARD, "cancelled": chosen}
            )
            assert latest is not None and latest["state"] == case.expect, latest
            assert status == chosen
            acted = await the_user_acts(user, cloud, task_id, latest)
            OUTCOMES.append((case.id, f"{latest['state']} · cloud {status} · {acted}"))
        finally:
            await user.locus("daemon", "stop", check=False)
