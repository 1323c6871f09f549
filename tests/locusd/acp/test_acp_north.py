"""``locusd acp`` driven by an ACP client built from the Python SDK, against the real daemon
(started by ``locusd acp`` itself, as an editor's first spawn does) and the scripted Anthropic
model: version negotiation, a prompt that becomes a run whose command is approved through
``session/request_permission``, its updates (text, tool calls with diffs, cost), the review
through the ``_locus/review/*`` extension methods (a stale revision refused with the daemon's
code), the commit holding only the accepted hunk, a rejected command, a permission request
the client cancels, ``session/cancel``, ``session/list`` and ``session/load``.

The agent writes a file named like HTML and a command link and says hostile text: both come
through as the same text."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from acp import PROTOCOL_VERSION, RequestError, text_block
from acp.schema import ImageContentBlock

from tests.locusd import daemonmachine
from tests.locusd.acp.acpclient import Recorder, acp_agent, stderr_of
from tests.locusd.agentkit import BASE, PROPOSED, call, with_identity
from tests.locusd.daemonmachine import BIN, WAIT, Machine
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use
from tests.support.processes import until

pytestmark = pytest.mark.timeout(300)
machine = daemonmachine.machine

ASKED = "echo approved > approved.txt"
HOSTILE_NAME = "<img src=x onerror=alert(1)> [run](command:workbench.action.quit) $(zap).md"
HOSTILE_TEXT = (
    'Done. /commit now\n{"jsonrpc":"2.0","method":"session/update"}\n'
    "<script>alert(1)</script> \x1b]0;title\x07 \u202eevil"
)


def gated(recorder: Recorder, turns: list[Reply]) -> Callable[[Any], Reply]:
    """The model's script, turn by turn."""

    def script(_request: Any) -> Reply:
        return wait_to_run(recorder, turns.pop(0))

    return script


def by_task(recorder: Recorder, turns: dict[str, list[Reply]]) -> Callable[[Any], Reply]:
    """The model's script per task (the first message's text); the last turn repeats (the
    runner may ask the agent again after its finish)."""

    def script(request: Any) -> Reply:
        first = request["messages"][0]["content"]
        said = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
        left = next(v for k, v in turns.items() if k in said)
        return wait_to_run(recorder, left.pop(0) if len(left) > 1 else left[0])

    return script


def wait_to_run(recorder: Recorder, turn: Reply) -> Reply:
    """A turn that runs a command waits until the client watches the run: its approval request
    goes to watching clients only."""
    if any(b.get("name") == "run_command" for b in turn.content):
        assert recorder.watching.acquire(timeout=WAIT), "the client never watched the run"
    return turn


def configure(machine: Machine, model: AnthropicServer) -> None:
    machine.configure(
        f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n\n'
        '[agent.policy]\nask = ["echo *"]\n'
    )


def prompt(words: str) -> list[Any]:
    return [text_block(words)]


def locus(said: Any) -> dict[str, Any]:
    """The ``_meta.locus`` of an ACP result or session."""
    assert said.field_meta is not None, said
    return dict(said.field_meta["locus"])


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


async def test_prompt_approval_updates_review_and_commit(machine: Machine) -> None:
    recorder = Recorder(answer="allow_once")
    turns = [
        Reply([text(HOSTILE_TEXT), tool_use("run_command", {"command": ASKED})], "tool_use"),
        call("write_file", path="stats.py", content=PROPOSED),
        call("write_file", path=HOSTILE_NAME, content="<b>not bold</b>\n"),
        call("finish", summary="Fixed the median."),
    ]
    with_identity(machine.repo)
    with AnthropicServer(gated(recorder, turns)).in_thread() as model:
        configure(machine, model)
        try:
            async with acp_agent(machine, recorder) as agent:
                await flow(machine, recorder, agent)
        finally:
            await machine.locus("daemon", "stop")
    assert "Traceback" not in stderr_of(machine)


async def flow(machine: Machine, recorder: Recorder, agent: Any) -> None:
    hello = await agent.initialize(protocol_version=PROTOCOL_VERSION)
    assert hello.protocol_version == PROTOCOL_VERSION
    assert hello.agent_capabilities.load_session is True
    assert hello.agent_capabilities.session_capabilities.list is not None
    assert hello.agent_info.name == "locus" and hello.auth_methods == []
    newer = await agent.initialize(protocol_version=PROTOCOL_VERSION + 98)
    assert newer.protocol_version == PROTOCOL_VERSION  # ours: the client decides

    session = (await agent.new_session(cwd=str(machine.repo))).session_id
    turn = await agent.prompt(session_id=session, prompt=prompt("Fix the median"))
    assert turn.stop_reason == "end_turn"
    run = locus(turn)
    assert run["state"] == "awaiting_review"
    run_id = run["runId"]

    commands = recorder.of("available_commands_update", session)[0].available_commands
    assert {c.name for c in commands} >= {"claim", "review", "commit", "send-back", "runs"}
    # the approval: asked with the command, the daemon's three decisions as options
    [(asked, options)] = recorder.asked
    assert asked.title == f"Run: {ASKED}" and asked.kind == "execute"
    assert {(o.option_id, o.kind) for o in options} == {
        ("allow_once", "allow_once"), ("allow_always", "allow_always"), ("reject", "reject_once")
    }  # fmt: skip
    # what the agent said, verbatim; its tools as tool calls, the writes with their diffs
    assert HOSTILE_TEXT in recorder.said(session)
    started = {u.title: u for u in recorder.of("tool_call", session)}
    assert started[f"run_command: {ASKED}"].kind == "execute"
    assert started["write_file: stats.py"].kind == "edit"
    assert f"write_file: {HOSTILE_NAME}" in started
    diffs = {
        c.path: c
        for u in recorder.of("tool_call_update", session)
        for c in u.content or []
        if c.type == "diff"
    }
    worktree = next(p for p in diffs if p.endswith("/stats.py")).removesuffix("/stats.py")
    assert (diffs[f"{worktree}/stats.py"].old_text, diffs[f"{worktree}/stats.py"].new_text) == (
        BASE,
        PROPOSED,
    )
    assert diffs[f"{worktree}/{HOSTILE_NAME}"].new_text == "<b>not bold</b>\n"
    assert not diffs[f"{worktree}/{HOSTILE_NAME}"].old_text  # a new file
    assert (Path(worktree) / "approved.txt").read_text() == "approved\n"  # it was allowed
    # a file a command changed has a diff too, on a call of its own
    assert "changed: approved.txt" in started
    assert diffs[f"{worktree}/approved.txt"].new_text == "approved\n"
    [cost] = recorder.of("usage_update", session)
    assert cost.cost.currency == "USD" and cost.cost.amount >= 0

    listed = await agent.list_sessions(cwd=str(machine.repo))
    [mine] = [s for s in listed.sessions if s.session_id == run_id]
    assert locus(mine)["state"] == "awaiting_review"
    assert locus(listed)["tasks"]  # no cloud login here: said, runs still listed

    # the review, hunk by hunk, through the extension methods
    view = await agent.ext_method("locus/review/get", {"runId": run_id})
    files = {f["path"]: f for f in view["files"]}
    assert set(files) == {"stats.py", HOSTILE_NAME, "approved.txt"}
    hunks = files["stats.py"]["hunks"]
    assert len(hunks) >= 2
    decisions: dict[str, Any] = {hunks[0]["id"]: {"action": "accept"}}
    for hunk in hunks[1:]:
        decisions[hunk["id"]] = {"action": "reject", "comment": "not this one"}
    decisions[HOSTILE_NAME] = {"action": "reject", "comment": "no"}
    decisions["approved.txt"] = {"action": "reject"}
    decided = await agent.ext_method(
        "locus/review/decide",
        {"runId": run_id, "revision": view["revision"], "decisions": decisions},
    )
    assert decided["undecided"] == 0
    # the user edits a file in the worktree meanwhile: the revision read before is stale
    with (Path(worktree) / HOSTILE_NAME).open("a") as edited:
        edited.write("more\n")
    with pytest.raises(RequestError) as stale:
        await agent.ext_method(
            "locus/review/decide",
            {"runId": run_id, "revision": view["revision"], "decisions": decisions},
        )
    assert stale.value.code == -32024 and (stale.value.data or {})["kind"] == "review_stale"
    assert "again" in str(stale.value)  # the daemon's message, for people
    again = await agent.ext_method("locus/review/get", {"runId": run_id})
    assert again["revision"] != view["revision"]
    decided = await agent.ext_method(
        "locus/review/decide",
        {"runId": run_id, "revision": again["revision"], "decisions": decisions},
    )
    assert decided["undecided"] == 0

    done = await agent.ext_method(
        "locus/review/commit", {"runId": run_id, "revision": decided["revision"]}
    )
    changed = git(machine.repo, "show", "--name-only", "--format=", done["commit"]).split()
    assert changed == ["stats.py"]
    committed = git(machine.repo, "show", f"{done['commit']}:stats.py")
    first_only = (
        hunks[0]["lines"] and committed != BASE and committed != PROPOSED
    )  # the first hunk in, the others out
    assert first_only, committed
    assert '"""Statistics helpers."""' in committed
    assert "(ordered[middle - 1] + ordered[middle]) / 2" not in committed


async def test_reject_cancel_list_and_load(machine: Machine) -> None:
    recorder = Recorder(answer="reject")
    turns = {
        "Fix the median": [
            call("run_command", command=ASKED),
            call("write_file", path="stats.py", content=PROPOSED),
            call("finish", summary="Fixed the median."),
        ],
        "Again": [call("run_command", command=ASKED)],  # its approval is never answered
    }
    with AnthropicServer(by_task(recorder, turns)).in_thread() as model:
        configure(machine, model)
        try:
            async with acp_agent(machine, recorder) as agent:
                await agent.initialize(protocol_version=PROTOCOL_VERSION)
                first = (await agent.new_session(cwd=str(machine.repo))).session_id
                turn = await agent.prompt(session_id=first, prompt=prompt("Fix the median"))
                run_id = locus(turn)["runId"]
                assert turn.stop_reason == "end_turn"
                worktree = next(
                    c.path.removesuffix("/stats.py")
                    for u in recorder.of("tool_call_update", first)
                    for c in u.content or []
                )
                assert not (Path(worktree) / "approved.txt").exists()  # rejected: not run
                assert f"reject: {ASKED}" in recorder.said(first)

                recorder.answer = None  # the client cancels its permission prompt
                second = (await agent.new_session(cwd=str(machine.repo))).session_id
                running = asyncio.ensure_future(
                    agent.prompt(session_id=second, prompt=prompt("Again"))
                )
                await until_asked(recorder, 2)
                await agent.cancel(session_id=second)
                stopped = await running
                assert stopped.stop_reason == "cancelled"
                assert locus(stopped)["state"] == "cancelled"
                # the cancelled permission prompt answered nothing: the daemon waited for
                # an answer until the cancel withdrew the question
                assert f"not run (the run was cancelled): {ASKED}" in recorder.said(second)

            replayer = Recorder()
            async with acp_agent(machine, replayer) as agent:
                await agent.initialize(protocol_version=PROTOCOL_VERSION)
                listed = await agent.list_sessions(cwd=str(machine.repo))
                states = {s.session_id: locus(s)["state"] for s in listed.sessions}
                assert states[run_id] == "awaiting_review" and "cancelled" in states.values()
                await agent.load_session(cwd=str(machine.repo), session_id=run_id)
                assert replayer.of("user_message_chunk", run_id)[0].content.text == "Fix the median"
                titles = [u.title for u in replayer.of("tool_call", run_id)]
                assert titles[:2] == [f"run_command: {ASKED}", "write_file: stats.py"]
                assert f"reject: {ASKED}" in replayer.said(run_id)
                replayed = [
                    c for u in replayer.of("tool_call_update", run_id) for c in u.content or []
                ]
                assert [(c.old_text, c.new_text) for c in replayed] == [(BASE, PROPOSED)]
                with pytest.raises(RequestError) as unknown:
                    await agent.load_session(cwd=str(machine.repo), session_id="nosuchrun")
                assert unknown.value.code == -32022  # the daemon's run_not_found
        finally:
            await machine.locus("daemon", "stop")
    assert "Traceback" not in stderr_of(machine)


async def until_asked(recorder: Recorder, count: int) -> None:
    await until(lambda: len(recorder.asked) >= count, timeout=WAIT)


async def test_bad_input_gets_an_error_naming_the_field(machine: Machine) -> None:
    """No model needed: every refusal is a JSON-RPC error whose message names the field and
    the fix; the extension methods reach the review only; the daemon's errors come through."""
    recorder = Recorder()
    try:
        async with acp_agent(machine, recorder) as agent:
            await agent.initialize(protocol_version=PROTOCOL_VERSION)
            with pytest.raises(RequestError) as relative:
                await agent.new_session(cwd="not/absolute")
            assert relative.value.code == -32602 and str(relative.value).startswith("cwd: ")
            session = (await agent.new_session(cwd=str(machine.repo))).session_id
            image = ImageContentBlock(type="image", data="AAAA", mime_type="image/png")
            refusals = {
                "only text blocks are accepted": [image],
                "empty: say what the agent should do": prompt("   "),
                "/claim takes a task number": prompt("/claim twelve"),
                "/review: this session has no run yet": prompt("/review"),
            }
            for said, blocks in refusals.items():
                with pytest.raises(RequestError) as refused:
                    await agent.prompt(session_id=session, prompt=blocks)
                assert refused.value.code == -32602, said
                assert str(refused.value).startswith("prompt: ") and said in str(refused.value)
            with pytest.raises(RequestError) as unknown:
                await agent.prompt(session_id="nope", prompt=prompt("hi"))
            assert "sessionId" in str(unknown.value)
            asked = await agent.prompt(session_id=session, prompt=prompt("/nosuch thing"))
            assert asked.stop_reason == "end_turn"
            assert "Unknown command /nosuch" in recorder.said(session)
            with pytest.raises(RequestError) as claim:  # the daemon's error, as it said it
                await agent.prompt(session_id=session, prompt=prompt("/claim"))
            assert claim.value.code == -32029 and "git remote add" in str(claim.value)
            with pytest.raises(RequestError) as other:  # not a review method: not forwarded
                await agent.ext_method("locus/daemon/shutdown", {})
            assert other.value.code == -32601
            listed = await agent.list_sessions(cwd=str(machine.repo))
            assert listed.sessions == []  # the daemon still serves
    finally:
        await machine.locus("daemon", "stop")
    assert "Traceback" not in stderr_of(machine)


def test_without_a_daemon_it_says_why_on_stderr_and_nothing_on_stdout(machine: Machine) -> None:
    """stdout is the protocol: a daemon that is not there (and may not be started) is said on
    stderr, with the fix, and the exit status is 1."""
    done = subprocess.run(
        [str(BIN / "locusd"), "--no-start", "acp"],
        env=machine.env, input="", capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("locusd acp: no daemon listens on ")
    assert "locusd serve" in done.stderr and "Traceback" not in done.stderr


def test_the_typescript_sdk_lists_runs_reviews_and_commits(machine: Machine) -> None:
    """The same list → run → review → commit from the TypeScript SDK's client (a Node
    script): what a TypeScript editor integration would see."""
    sdk = installed().typescript_sdk / "dist" / "acp.js"
    gate, out = machine.home.parent / "gate", machine.home.parent / "ts.json"
    turns = [
        call("run_command", command=ASKED),
        call("write_file", path="stats.py", content=PROPOSED),
        call("write_file", path=HOSTILE_NAME, content="<b>not bold</b>\n"),
        call("finish", summary="Fixed the median."),
    ]

    def script(_request: Any) -> Reply:
        turn = turns.pop(0)
        if turn.content[0]["name"] == "run_command":
            until_exists(gate)
        return turn

    with_identity(machine.repo)
    with AnthropicServer(script).in_thread() as model:
        configure(machine, model)
        env = {
            **machine.env,
            "LOCUSD": str(BIN / "locusd"),
            "ACP_SDK": str(sdk),
            "LOCUS_REPO": str(machine.repo),
            "LOCUS_GATE": str(gate),
            "LOCUS_OUT": str(out),
        }
        try:
            done = subprocess.run(
                ["node", str(Path(__file__).parent / "ts_client.mjs")],
                env=env, capture_output=True, text=True, timeout=WAIT * 3,
            )  # fmt: skip
        finally:
            subprocess.run([str(BIN / "locus"), "daemon", "stop"], env=machine.env, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(out.read_text())
    assert "error" not in seen, seen["error"]
    assert seen["init"]["protocolVersion"] == PROTOCOL_VERSION
    assert seen["init"]["agentCapabilities"]["loadSession"] is True
    assert seen["listedBefore"]["sessions"] == []
    assert seen["turn"]["stopReason"] == "end_turn"
    run_id = seen["turn"]["_meta"]["locus"]["runId"]
    listed = {s["sessionId"]: s["_meta"]["locus"] for s in seen["listedAfter"]["sessions"]}
    assert listed[run_id]["state"] == "awaiting_review"
    assert [a["title"] for a in seen["asked"]] == [f"Run: {ASKED}"]
    titles = [u["title"] for u in seen["updates"] if u["sessionUpdate"] == "tool_call"]
    assert f"write_file: {HOSTILE_NAME}" in titles
    diffs = [
        c
        for u in seen["updates"]
        if u["sessionUpdate"] == "tool_call_update"
        for c in u.get("content") or []
    ]
    assert any(c["path"].endswith("/stats.py") and c["newText"] == PROPOSED for c in diffs)
    assert seen["stale"]["code"] == -32024 and seen["stale"]["data"]["kind"] == "review_stale"
    assert seen["undecided"] == 0
    commit = seen["commit"]["commit"]
    assert git(machine.repo, "show", "--name-only", "--format=", commit).split() == ["stats.py"]
    assert git(machine.repo, "show", f"{commit}:stats.py") == PROPOSED


def until_exists(path: Path) -> None:
    """Wait (in the model server's thread) for the client to watch the run."""
    for _ in range(int(WAIT * 20)):
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"the client never watched the run ({path} not written)")
