"""The privacy promise, end to end, once per review outcome: every byte the daemon sends to the
cloud during a whole trip (claim → agent → review → commit or discard → report) is recorded by
a proxy in front of the real cloud (tests/support/recorder.py).

Every trip runs the same agent over the same repository, and plants the same canaries — each a
string found in one place only: a file the agent never touches, a file it only reads, the
``.locusignore``d file it writes, the output of a command it runs, its prose (what a log line
quoting the agent would carry), and in all but the first trip a change the reviewer rejects.
None may appear in any recorded path, query string or body. Until the reviewer commits, the
cloud holds the run's counts, never a line of the proposed change (read back through the REST
API); after a commit it holds exactly the committed patch; the audit log lists each
acknowledged write with the hash and size of the bytes the cloud received."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from locusd.daemon import Daemon
from locusd.privacy import AuditEntry
from locusd.protocol.messages import (
    CommitParams,
    DecideParams,
    DecisionIn,
    LoginParams,
    ReviewParams,
    Run,
    SendBackParams,
    TaskCreateParams,
    WorkerStartParams,
)
from tests.conftest import Cloud
from tests.locusd.agentkit import (
    BUGGY,
    FIXED,
    TASK,
    call,
    git,
    make_config,
    make_sample_repo,
    with_identity,
)
from tests.locusd.peers import Client, commit_everything
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use
from tests.support.client import every
from tests.support.cloudrows import every_row
from tests.support.recorder import Recorder

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
REMOTE = "https://git.example.com/acme/private.git"
SECRET = "sk_live_4f9a1c7e2b8d6053aa17"  # a payment-provider-style key, fake
SECRET_FILE = f'PAYMENT_API_KEY = "{SECRET}"\nTIMEOUT_SECONDS = 30\n'
# The canaries: distinct, each planted in one place only (plain ASCII: JSON cannot escape them).
IGNORED = "CANARY_IGNORED_vault_row_17_Alice_Example"  # what the agent writes to private/
UNTOUCHED = "CANARY_UNTOUCHED_never_opened_3b1f"  # in a file the agent never opens
READ_ONLY = "CANARY_READ_ONLY_undocumented_helper_77c2"  # in a file the agent only reads
COMMAND = "CMD_42_CANARY"  # only in a command's output: the command says CMD_$((6*7))_CANARY
PROSE = "CANARY_PROSE_thinking_aloud_5d0e"  # only in the agent's prose
REJECTED = "CANARY_REJECTED_scratch_9e4a"  # in a change the reviewer rejects
CREDENTIAL = "CANARY_REMOTE_CREDENTIAL_c4d2"  # in a remote's URL, as a deploy token sits there
# Text the agent writes into its tool calls: a command line, a path (code could ride in either).
IN_COMMAND = "CANARY_IN_COMMAND_LINE_1a9f"
IN_PATH = "CANARY_IN_PATH_6b2e"
EVERY_TRIP = (
    *(SECRET, "TIMEOUT_SECONDS", IGNORED, UNTOUCHED, READ_ONLY, COMMAND, PROSE, CREDENTIAL),
    *(IN_COMMAND, IN_PATH),
)
# (non-ASCII on purpose: the audit log hashes the UTF-8 bytes sent, not \u escapes)
SUMMARY = f"Médiane corrigée ✓ (the key {SECRET} was not needed.)"
NOTICE = "# Locus: the change to private/notes.txt is left out (.locusignore)\n"
SCRATCH = "scratch.py"
REJECTED_SCRATCH = f"EXPERIMENT = '{REJECTED}'\n"
REVISED_SCRATCH = "EXPERIMENT = 'kept short, as the reviewer asked'\n"
EDITED = "        return (ordered[middle - 1] + ordered[middle]) / 2.0  # the reviewer's edit"
JSON = "application/json"
ACCEPT = DecisionIn(action="accept")
REJECT = DecisionIn(action="reject")


@pytest.fixture(autouse=True)
def model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-privacy-test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = make_sample_repo(tmp_path)
    (checkout / "settings.py").write_text(SECRET_FILE)
    (checkout / "private").mkdir()
    (checkout / "private" / "notes.txt").write_text("nothing yet\n")
    (checkout / "helpers.py").write_text(f"def helper(): return '{READ_ONLY}'\n")
    (checkout / "untouched.py").write_text(f"NEVER_OPENED = '{UNTOUCHED}'\n")
    (checkout / ".locusignore").write_text("private/\n")
    # A check whose output quotes the code under review, as a failing test's traceback does.
    (checkout / ".locus.toml").write_text('verify = "python3 -m unittest -q && git diff"\n')
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "more files")
    git(checkout, "remote", "add", "origin", REMOTE)
    # A second remote with a credential in its URL: the worker registers what it serves by
    # fingerprint (host/owner/repo), so the credential never leaves.
    mirror = REMOTE.replace("https://", f"https://deploy:{CREDENTIAL}@")
    git(checkout, "remote", "add", "mirror", mirror)
    return with_identity(checkout)


def session(*more: Reply) -> list[Reply]:
    """The agent reads the secret and quotes it with its prose's canary, reads a helper, runs a
    command whose output is a canary, writes the ignored file, fixes the bug, does ``more``,
    and finishes."""
    return [
        Reply(
            [
                text(f"settings.py has {SECRET}; {PROSE}"),
                tool_use("read_file", {"path": "settings.py"}),
            ],
            stop_reason="tool_use",
        ),
        call("read_file", path="helpers.py"),
        call("run_command", command="cat settings.py helpers.py; echo CMD_$((6*7))_CANARY"),
        call("run_command", command=f"true {IN_COMMAND}"),
        call("read_file", path=f"{IN_PATH}.py"),
        call("write_file", path="private/notes.txt", content=f"{IGNORED}\n"),
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        *more,
        call("finish", summary=SUMMARY),
    ]


def writes_scratch(content: str) -> Reply:
    return call("write_file", path=SCRATCH, content=content)


def strings(value: Any) -> list[str]:
    """Every string in JSON-shaped ``value`` (keys too), decoded: what a reader of it sees."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


@dataclass
class Trip:
    """One claimed task's way through the daemon, seen through the recording proxy."""

    cloud: Cloud
    proxy: Recorder
    model: AnthropicServer
    daemon: Daemon
    peer: Client
    task_id: int
    uploads: list[AuditEntry] = field(default_factory=list)  # filled when the trip ends

    async def settled(self) -> None:
        """Until every queued upload has been acknowledged."""
        await asyncio.wait_for(self.daemon.outbox.wait_empty(), 30)

    async def decide(self, run: Run, decisions: dict[str, DecisionIn]) -> str:
        """The decisions, taken on the review as it is now; the revision decided on."""
        view = await self.daemon.review_get(ReviewParams(run_id=run.run_id), self.peer)
        params = DecideParams(run_id=run.run_id, revision=view.revision, decisions=decisions)
        await self.daemon.review_decide(params, self.peer)
        return view.revision

    async def proposed_lines(self, run: Run) -> list[str]:
        """The lines the run proposes to add (long enough not to occur by chance)."""
        view = await self.daemon.review_get(ReviewParams(run_id=run.run_id), self.peer)
        added = [line[1:].strip() for f in view.files for h in f.hunks for line in h.lines
                 if line.startswith("+")]  # fmt: skip
        return [line for line in added if len(line) >= 8]

    async def assert_held_locally(self, run: Run, files: int, added: int, removed: int) -> None:
        """The cloud's whole view of the task — the task, every artifact with its content,
        every event and log row, and every row of its database — holds the proposed change's
        counts and not one of its lines, and no patch."""
        await self.settled()
        api = self.cloud.api
        task = (await api.get(f"/tasks/{self.task_id}")).ok()
        listed = await every(api, f"/tasks/{self.task_id}/artifacts")
        artifacts = [
            (await api.get(f"/tasks/{self.task_id}/artifacts/{a['id']}")).ok() for a in listed
        ]
        events = await every(api, f"/tasks/{self.task_id}/events")
        assert task["status"] == "awaiting_review"
        assert "patch" not in [a["kind"] for a in artifacts]
        summary = [json.loads(a["content"]) for a in artifacts if a["kind"] == "summary"][-1]
        assert summary == {"heldLocally": True, "files": files, "added": added, "removed": removed}
        assert any(e["kind"] == "log" for e in events)  # logs were read, not absent
        decoded = [json.loads(a["content"]) for a in artifacts if a["media_type"] == JSON]
        seen = "\n".join(strings([task, artifacts, decoded, events]))
        rows = every_row(self.cloud.db_url)  # and what the API does not show
        for line in await self.proposed_lines(run):
            assert line not in seen and line not in rows

    def sent(self) -> bytes:
        return self.proxy.sent()

    def patches(self) -> list[str]:
        """The content of every patch artifact the daemon uploaded, in order."""
        found = []
        for request in self.proxy.requests:
            if request.method == "POST" and request.path_qs.endswith("/artifacts"):
                body = json.loads(request.body)
                if body["kind"] == "patch":
                    found.append(body["content"])
        return found


@asynccontextmanager
async def trip(
    cloud: Cloud, repo: Path, tmp_path: Path, replies: list[Reply]
) -> AsyncIterator[tuple[Trip, Run]]:
    """A daemon logged in through the recorder claims a new task for ``repo`` and works it with
    the scripted ``replies`` (later rounds' too: the model stays up) until the run awaits
    review; on leaving, every upload is acknowledged and the audit log read."""
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    peer = Client()
    async with Recorder(cloud.url) as proxy, AnthropicServer(replies) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        try:
            login = LoginParams(cloud_url=proxy.url, token=cloud.first_start.token)
            await daemon.auth_login(login, peer)
            task = await daemon.tasks_create(
                TaskCreateParams(project_id=cloud.project_id, title="Fix median", description=TASK),
                peer,
            )
            await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
            await asyncio.wait_for(daemon.worker_done(), 90)
            (run,) = daemon.store.all()
            assert run.state == "awaiting_review", run.reason
            here = Trip(cloud, proxy, model, daemon, peer, task.id)
            yield here, run
            await here.settled()
            here.uploads = daemon.audit.entries()
        finally:
            await daemon.close()
    assert_nothing_planted_left(here)
    assert_audited(here)


def pieces(canary: str, size: int = 10) -> set[str]:
    """Every ``size``-character piece of a long ``canary``: uploads cut into lines (a streamed
    text logged chunk by chunk) can carry a canary in pieces, none of them whole."""
    if len(canary) < 2 * size:
        return {canary}
    return {canary[i : i + size] for i in range(len(canary) - size + 1)}


def assert_nothing_planted_left(trip: Trip) -> None:
    """No canary, nor a piece of one, in any recorded path or body — and each was really there
    to leak: the agent read the files and the command's output, and wrote the ignored file."""
    for request in trip.proxy.requests:
        for canary in EVERY_TRIP:
            for piece in pieces(canary):
                assert piece.encode() not in request.raw, (canary, piece, request.path_qs)
    told = json.dumps([r.body for r in trip.model.requests])
    assert READ_ONLY in told and COMMAND in told and "TIMEOUT_SECONDS" in told
    assert any(r.path_qs.endswith("/logs") for r in trip.proxy.requests)
    (register,) = [r for r in trip.proxy.requests if r.path_qs == "/api/v1/worker/register"]
    assert json.loads(register.body)["repositories"] == ["git.example.com/acme/private"]


def assert_audited(trip: Trip) -> None:
    """The audit log lists exactly the acknowledged writes — the login, claims and heartbeats
    are reads and bookkeeping, not uploads of work — each with the sha256 and size of the
    exact bytes the cloud received."""
    graph = f"/api/v1/worker/projects/{trip.cloud.project_id}/graph"
    writes = [
        r for r in trip.proxy.requests
        if (r.path_qs.startswith("/api/v1/worker/tasks/") or r.path_qs == graph)
        and r.method == "POST" and not r.path_qs.endswith("/heartbeat")
    ]  # fmt: skip
    named = {"logs": "log", "artifacts": "artifact", "review": "review", "graph": "graph"}
    kinds = [named.get(r.path_qs.rsplit("/", 1)[1], "status") for r in writes]
    assert "graph" in kinds  # the served repository's graph went through the outbox too
    assert sorted(u.kind for u in trip.uploads) == sorted(kinds)
    for upload in trip.uploads:
        assert upload.destination == trip.proxy.url
        assert upload.task_id == (None if upload.kind == "graph" else trip.task_id)
    assert sorted((u.sha256, u.bytes) for u in trip.uploads) == sorted(
        (hashlib.sha256(r.body).hexdigest(), len(r.body)) for r in writes
    )


def committed_diff(run: Run) -> str:
    """The commit's change as git shows it, byte for byte (not stripped)."""
    assert run.worktree and run.commit
    shown = subprocess.run(
        ["git", "diff", "--binary", "--no-color", "--no-ext-diff", f"{run.commit}^", run.commit],
        cwd=run.worktree, check=True, capture_output=True,
    )  # fmt: skip
    return shown.stdout.decode()


def as_reported(diff: str) -> str:
    """``diff`` with the ignored file's section replaced by Locus's notice."""
    sections = re.split(r"(?m)^(?=diff --git )", diff)
    return "".join(
        NOTICE if s.startswith("diff --git a/private/notes.txt ") else s for s in sections
    )


async def assert_reported_the_commit(trip: Trip, run: Run) -> str:
    """The one patch the cloud got, and holds, is the commit's diff (ignored file left out);
    returned for the trip's own checks."""
    committed = trip.daemon.runs.get(run.run_id)
    assert committed.state == "reported", committed.reason
    expected = as_reported(committed_diff(committed))
    assert NOTICE in expected
    assert trip.patches() == [expected]
    listed = await every(trip.cloud.api, f"/tasks/{trip.task_id}/artifacts")
    (patch,) = [a for a in listed if a["kind"] == "patch"]
    stored = (await trip.cloud.api.get(f"/tasks/{trip.task_id}/artifacts/{patch['id']}")).ok()
    assert stored["content"] == expected
    assert stored["sha256"] == hashlib.sha256(expected.encode()).hexdigest()
    task = (await trip.cloud.api.get(f"/tasks/{trip.task_id}")).ok()
    assert task["status"] == "verification"
    return expected


async def test_accept_all_sends_exactly_the_committed_patch(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    async with trip(cloud, repo, tmp_path, session()) as (here, run):
        await here.assert_held_locally(run, files=2, added=3, removed=1)
        await commit_everything(here.daemon, run.run_id, here.peer)
        await here.settled()
        patch = await assert_reported_the_commit(here, run)

    assert "ordered[middle - 1] + ordered[middle]" in patch  # the accepted hunk did go
    statuses = [json.loads(r.body) for r in here.proxy.requests if r.path_qs.endswith("/status")]
    assert any("Médiane corrigée ✓" in s.get("summary", "") for s in statuses)


async def test_accept_some_with_an_edit_sends_the_edit_and_never_the_rejected_file(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    replies = session(writes_scratch(REJECTED_SCRATCH))
    async with trip(cloud, repo, tmp_path, replies) as (here, run):
        await here.assert_held_locally(run, files=3, added=4, removed=1)
        view = await here.daemon.review_get(ReviewParams(run_id=run.run_id), here.peer)
        (fix,) = next(f for f in view.files if f.path == "stats.py").hunks
        proposed = [line[1:] for line in fix.lines if line[:1] in (" ", "+")]
        edited = [EDITED if "ordered[middle - 1]" in line else line for line in proposed]
        assert edited != proposed
        decisions = {
            fix.id: DecisionIn(action="edit", lines=edited),
            "private/notes.txt": ACCEPT,
            SCRATCH: REJECT,
        }
        revision = await here.decide(run, decisions)
        params = CommitParams(run_id=run.run_id, revision=revision, integrate="none")
        await here.daemon.review_commit(params, here.peer)
        await here.settled()
        patch = await assert_reported_the_commit(here, run)

    assert f"+{EDITED}\n" in patch
    assert SCRATCH not in patch
    assert REJECTED.encode() not in here.sent()


async def test_reject_all_then_discard_sends_no_line_of_the_proposed_code(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    replies = session(writes_scratch(REJECTED_SCRATCH))
    async with trip(cloud, repo, tmp_path, replies) as (here, run):
        await here.assert_held_locally(run, files=3, added=4, removed=1)
        proposed = await here.proposed_lines(run)
        view = await here.daemon.review_get(ReviewParams(run_id=run.run_id), here.peer)
        await here.decide(run, {f.path: REJECT for f in view.files})
        await here.daemon.review_discard(ReviewParams(run_id=run.run_id), here.peer)
        await here.settled()
        task = (await cloud.api.get(f"/tasks/{here.task_id}")).ok()
        events = await every(cloud.api, f"/tasks/{here.task_id}/events")
        artifacts = await every(cloud.api, f"/tasks/{here.task_id}/artifacts")

    assert here.patches() == []
    assert "patch" not in [a["kind"] for a in artifacts]
    sent = here.sent()
    assert len(proposed) == 4
    for line in proposed:
        assert line.encode() not in sent
    assert REJECTED.encode() not in sent
    # NOTE — the lead's change (main, df4008b): a run discarded from awaiting_review tells the
    # cloud it failed, because the reviewer discarded the change (before it: awaiting_review).
    assert task["status"] == "failed"
    assert "discarded" in (task["status_reason"] or "")
    (last,) = [e for e in events if e["kind"] == "status"][-1:]
    assert last["to_status"] == "failed" and "discarded" in last["data"].get("reason", "")


async def test_send_back_never_sends_the_first_round_and_sends_the_final_patch(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    round_two = [
        writes_scratch(REVISED_SCRATCH),
        call("finish", summary="Kept the experiment short."),
    ]
    replies = [*session(writes_scratch(REJECTED_SCRATCH)), *round_two]
    async with trip(cloud, repo, tmp_path, replies) as (here, first):
        await here.assert_held_locally(first, files=3, added=4, removed=1)
        view = await here.daemon.review_get(ReviewParams(run_id=first.run_id), here.peer)
        (experiment,) = next(f for f in view.files if f.path == SCRATCH).hunks
        reject = DecisionIn(action="reject", comment="no experiments in this change")
        revision = await here.decide(first, {"stats.py": ACCEPT, experiment.id: reject})
        second = await here.daemon.review_send_back(
            SendBackParams(run_id=first.run_id, revision=revision), here.peer
        )
        second = await asyncio.wait_for(here.daemon.runs.wait(second.run_id), 90)
        assert second.state == "awaiting_review", second.reason
        await here.assert_held_locally(second, files=3, added=4, removed=1)
        await commit_everything(here.daemon, second.run_id, here.peer)
        await here.settled()
        patch = await assert_reported_the_commit(here, second)

    told = json.dumps(here.model.requests[-2].body)  # round two saw the rejected change
    assert REJECTED in told and "no experiments in this change" in told
    assert f"+{REVISED_SCRATCH}" in patch and "ordered[middle - 1] + ordered[middle]" in patch
    assert REJECTED.encode() not in here.sent()
