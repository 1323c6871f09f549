"""The daemon core without the socket: runs started through the protocol handlers, their events,
subscribers, approvals (first answer wins), cancellation and crash recovery. The clients here are
in-process peers; tests/locusd/server drives the same core through real socket clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from locusd.agent.policy import CommandPolicy
from locusd.daemon import Daemon
from locusd.localdb import Database
from locusd.protocol.base import Empty, Wire
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    ApprovalAnswer,
    ApprovalRequest,
    LogsParams,
    Run,
    RunCancelParams,
    RunRef,
    RunStartParams,
)
from locusd.runner.store import RunStore
from tests.locusd.agentkit import DEMO_TRANSCRIPT, TASK, call, make_config, make_sample_repo
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer, Recorded

pytestmark = pytest.mark.timeout(120)
W = TypeVar("W", bound=Wire)
Answer = Callable[[ApprovalRequest], Awaitable[ApprovalAnswer]]


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    return Daemon(make_config(tmp_path))


async def start_demo(daemon: Daemon, tmp_path: Path, peer: Client) -> Run:
    repo = make_sample_repo(tmp_path)
    params = RunStartParams(repo=str(repo), task=TASK, replay=str(DEMO_TRANSCRIPT))
    return await daemon.runs_start(params, peer)


async def test_a_run_streams_its_events_to_subscribers_and_keeps_them(
    daemon: Daemon, tmp_path: Path
) -> None:
    watcher = Client()
    daemon.connected(watcher)
    run = await start_demo(daemon, tmp_path, watcher)
    backlog = await daemon.runs_subscribe(RunRef(run_id=run.run_id), watcher)
    done = await daemon.runs.wait(run.run_id)

    assert done.state == "awaiting_review" and done.outcome == "completed"
    assert done.worktree and done.summary
    assert done.branch is None, "no branch until a commit is accepted"
    live = watcher.events()
    seqs = [e.seq for e in backlog.events] + [e.seq for e in live]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    kinds = [e.kind for e in backlog.events + live]
    assert kinds[0] == "state" and kinds[-1] == "completed"
    for kind in ("turn", "tool", "tool_done", "output", "verify", "diff"):
        assert kind in kinds
    # Editors also get standard $/progress: begin, reports, end.
    kinds_shown = [value["kind"] for value in watcher.progress_values]
    assert kinds_shown[0] == "begin" and kinds_shown[-1] == "end"
    assert "report" in kinds_shown
    diff = next(e for e in live if e.kind == "diff")
    assert "ordered[middle - 1]" in diff.text
    # The log is kept: a client that comes later reads it all, or the rest after a seq.
    logs = await daemon.runs_logs(LogsParams(run_id=run.run_id), watcher)
    assert [e.seq for e in logs.events] == seqs
    rest = await daemon.runs_logs(LogsParams(run_id=run.run_id, after=seqs[-3]), watcher)
    assert [e.seq for e in rest.events] == seqs[-2:]
    listed = await daemon.runs_list(Empty(), watcher)
    assert [r.run_id for r in listed.runs] == [run.run_id]


async def test_unknown_runs_and_bad_repositories_are_clear_errors(
    daemon: Daemon, tmp_path: Path
) -> None:
    peer = Client()
    with pytest.raises(LocusError) as missing:
        await daemon.runs_show(RunRef(run_id="nope"), peer)
    assert missing.value.code == Code.RUN_NOT_FOUND
    assert missing.value.data.kind == "run_not_found" and not missing.value.data.retryable
    with pytest.raises(LocusError) as relative:
        await daemon.runs_start(RunStartParams(repo="relative/path", task="x"), peer)
    assert relative.value.code == Code.INVALID_ARGUMENT
    plain = tmp_path / "plain"
    plain.mkdir()
    run = await daemon.runs_start(
        RunStartParams(repo=str(plain), task="x", replay=str(DEMO_TRANSCRIPT)), peer
    )
    failed = await daemon.runs.wait(run.run_id)
    assert failed.state == "failed" and "not inside a git repository" in (failed.reason or "")


COMMAND = "python3 -c 'print(41 + 1)'"
ASKING = [
    call("run_command", command=COMMAND),
    call("run_command", command=COMMAND),
    call("ask_user", question="done?"),
]


def ask_policy(tmp_path: Path, server: AnthropicServer) -> Daemon:
    config = make_config(tmp_path, base_url=server.base_url)
    config.agent.policy = CommandPolicy(ask=["python3 *"])
    return Daemon(config)


async def start_asking(daemon: Daemon, tmp_path: Path, *peers: Client) -> Run:
    repo = make_sample_repo(tmp_path)
    run = await daemon.runs_start(RunStartParams(repo=str(repo), task="check"), peers[0])
    for peer in peers:  # subscribed before the run's task first runs: no await in between
        await daemon.runs_subscribe(RunRef(run_id=run.run_id), peer)
    return run


def tool_result(request: Recorded) -> dict[str, Any]:
    assert request.body is not None
    block = request.body["messages"][-1]["content"][0]
    assert isinstance(block, dict)
    return block


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-daemon")


@pytest.mark.usefixtures("api_key")
async def test_the_first_answer_wins_and_the_others_are_told(tmp_path: Path) -> None:
    async def allow(request: ApprovalRequest) -> ApprovalAnswer:
        return ApprovalAnswer(decision="allow_always")

    fast, silent = Client(allow), Client(None)
    async with AnthropicServer(ASKING) as server:
        daemon = ask_policy(tmp_path, server)
        run = await start_asking(daemon, tmp_path, fast, silent)
        done = await daemon.runs.wait(run.run_id)

    assert done.state == "needs_input"
    assert len(fast.asked) == 1  # "allow always": the second time it ran without asking
    assert fast.asked[0].command == COMMAND and "python3 *" in fast.asked[0].reason
    assert "42" in tool_result(server.requests[1])["content"]
    assert "42" in tool_result(server.requests[2])["content"]
    resolved = [p for m, p in silent.notes if m == "locus/approval/resolved"]
    assert [r.model_dump() for r in resolved] == [
        {"approval_id": fast.asked[0].approval_id, "decision": "allow_always"}
    ]
    assert not [m for m, _ in fast.notes if m == "locus/approval/resolved"]


@pytest.mark.usefixtures("api_key")
async def test_a_rejection_goes_back_to_the_model(tmp_path: Path) -> None:
    async def reject(request: ApprovalRequest) -> ApprovalAnswer:
        return ApprovalAnswer(decision="reject")

    peer = Client(reject)
    async with AnthropicServer(ASKING) as server:
        daemon = ask_policy(tmp_path, server)
        run = await start_asking(daemon, tmp_path, peer)
        await daemon.runs.wait(run.run_id)
    refused = tool_result(server.requests[1])
    assert refused["is_error"] is True and "declined" in refused["content"]
    assert len(peer.asked) == 2  # "reject" is for this once: asked again


@pytest.mark.usefixtures("api_key")
async def test_a_cancel_answers_a_pending_approval_and_stops_the_run(tmp_path: Path) -> None:
    """The user is away from the prompt (the client never answers): ``locus cancel`` must not
    wait for them. The question is withdrawn from every client, and the command never ran."""
    watcher = Client(None)
    async with AnthropicServer(ASKING) as server:
        daemon = ask_policy(tmp_path, server)
        run = await start_asking(daemon, tmp_path, watcher)
        while not watcher.asked:
            await asyncio.sleep(0.05)
        cancelled = await daemon.runs_cancel(RunCancelParams(run_id=run.run_id), watcher)
    assert cancelled.state == "cancelled"
    resolved = [p for m, p in watcher.notes if m == "locus/approval/resolved"]
    assert [r.model_dump() for r in resolved] == [
        {"approval_id": watcher.asked[0].approval_id, "decision": "reject"}
    ]
    assert len(server.requests) == 1  # the model never saw the command run
    notes = [e.text for e in daemon.store.events(run.run_id) if e.kind == "note"]
    assert f"not run (the run was cancelled): {COMMAND}" in notes


@pytest.mark.usefixtures("api_key")
async def test_without_a_client_to_ask_the_command_is_not_run(tmp_path: Path) -> None:
    async with AnthropicServer(ASKING) as server:
        daemon = ask_policy(tmp_path, server)
        repo = make_sample_repo(tmp_path)
        run = await daemon.runs_start(RunStartParams(repo=str(repo), task="check"), Client())
        await daemon.runs.wait(run.run_id)
    refused = tool_result(server.requests[1])
    assert refused["is_error"] is True and "42" not in refused["content"]
    notes = [e.text for e in daemon.store.events(run.run_id) if e.kind == "note"]
    assert any("no client is watching" in note for note in notes)


@pytest.mark.usefixtures("api_key")
async def test_a_local_run_in_full_auto_runs_what_would_be_asked(tmp_path: Path) -> None:
    """An editor starting a run names its permission mode as ``locus run --mode`` does: with
    no one to ask, full-auto (in the sandbox) runs the command the policy would ask about."""
    async with AnthropicServer(ASKING) as server:
        daemon = ask_policy(tmp_path, server)
        repo = make_sample_repo(tmp_path)
        params = RunStartParams(repo=str(repo), task="check", mode="full-auto")
        run = await daemon.runs_start(params, Client())
        await daemon.runs.wait(run.run_id)
    ran = tool_result(server.requests[1])
    assert ran["is_error"] is False and "42" in ran["content"]


async def test_a_daemon_that_died_mid_run_leaves_an_explicit_state(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    db = Database(config.state_dir / "locusd.sqlite")
    store = RunStore(db)
    store.save(
        Run(run_id="r1", title="t", repo="/x", state="running", started_at="2026-11-24T10:00:00")
    )
    store.append("r1", "state", "running")
    db.close()  # what a kill -9 leaves: the row says running, nobody runs it

    daemon = Daemon(config)
    peer = Client()
    run = await daemon.runs_show(RunRef(run_id="r1"), peer)
    assert run.state == "failed" and run.reason == "interrupted: the daemon stopped during the run"
    assert [r.run_id for r in daemon.recovered] == ["r1"]
    events = (await daemon.runs_logs(LogsParams(run_id="r1"), peer)).events
    assert [(e.seq, e.kind, e.text) for e in events] == [
        (1, "state", "running"),
        (2, "state", "failed"),
    ]
    with pytest.raises(LocusError) as ended:
        await daemon.runs_cancel(RunCancelParams(run_id="r1"), peer)
    assert ended.value.code == Code.INVALID_RUN_STATE
