"""The agent end to end on real git repositories, with the real anthropic and openai SDKs
talking to loopback servers that speak their wire formats (tests/support). Each scenario
asserts on what the agent did (outcome, diff, files, processes) and on what it sent."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.providers.openai import OpenAIProvider
from locusd.agent.providers.pricing import lookup
from locusd.agent.providers.replay import ReplayProvider
from locusd.agent.report import Event
from locusd.agent.transcript import Footer, Header, ToolResultRecord, read
from locusd.git.worktrees import Worktree, Worktrees
from tests.locusd.agentkit import (
    BUGGY,
    FIXED,
    anthropic,
    call,
    fix_median_session,
    git,
    make_config,
    make_sample_repo,
    result_text,
    run,
    tool_results,
)
from tests.support import openai_server
from tests.support.anthropic_server import (
    AnthropicItem,
    AnthropicServer,
    Fail,
    Hang,
    MidStreamError,
    Reply,
    text,
    tool_use,
)
from tests.support.processes import processes_named, until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_sample_repo(tmp_path)


async def test_fixes_a_failing_test_and_verification_passes(repo: Path, tmp_path: Path) -> None:
    async with AnthropicServer(fix_median_session()) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))

    assert report.outcome == "completed", report.reason
    assert report.verification is not None and report.verification.passed
    assert report.verification.reason == "from .locus.toml at the base commit (verify)"
    assert report.verification.counts is not None and report.verification.counts.ran == 3
    assert "OK" in report.verification.output_tail
    assert "+        return (ordered[middle - 1] + ordered[middle]) / 2" in report.diff
    # The user's checkout is untouched: same file, clean status, same branch.
    assert BUGGY in (repo / "stats.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert FIXED in (Path(report.worktree) / "stats.py").read_text()

    # What the agent sent: the real SDK, our tools, cache breakpoints, the tool results.
    requests = server.requests
    assert len(requests) == 4
    first = requests[0]
    assert first.auth_style == "bearer" and first.api_key == "sk-ant-test-key"
    assert first.body is not None
    assert {t["name"] for t in first.body["tools"]} >= {
        *("read_file", "list_files", "search", "edit_file", "write_file", "run_command"),
        *("run_verify", "ask_user", "create_follow_up", "finish"),
    }
    assert first.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    for n, request in enumerate(requests):
        assert request.body is not None
        assert request.body["stream"] is True
        newest = request.body["messages"][-1]["content"]
        assert newest[-1]["cache_control"] == {"type": "ephemeral"}
        breakpoints = json.dumps(request.body).count('"cache_control"')
        # The stable prefix, the newest message and (after turn 1) the previous turn's end,
        # where the last request's breakpoint was: nothing stale.
        assert breakpoints == (2 if n == 0 else 3)
        if n:
            assert request.body["messages"][-3]["content"][-1]["cache_control"] is not None
    read_back = result_text(tool_results(requests[1])[0])
    assert "15\t    return ordered[middle]" in read_back
    verify_result = tool_results(requests[3])[0]
    assert "passed" in result_text(verify_result) and not verify_result.get("is_error")

    # Usage and cost, cache reads and writes included, priced by the model's table.
    assert report.usage.cache_write_tokens > 0 and report.usage.cache_read_tokens > 0
    price = lookup("claude-sonnet-4-6")
    assert price is not None
    assert report.cost_usd == pytest.approx(price.cost(report.usage), abs=1e-6)
    assert report.cost_known

    # The transcript: header first, footer last, every tool call with its result.
    records = read(Path(report.transcript))
    assert isinstance(records[0], Header) and records[0].base_commit == report.base_commit
    assert Path(report.transcript).parent.stat().st_mode & 0o777 == 0o700  # it holds code
    assert isinstance(records[-1], Footer) and records[-1].diff == report.diff
    assert [r.name for r in records if isinstance(r, ToolResultRecord)] == [
        "read_file",
        "edit_file",
        "run_verify",
        "finish",
    ]


async def test_a_breaking_edit_is_caught_by_verification(repo: Path, tmp_path: Path) -> None:
    broken = "    return sum(values) / len(values)\n"
    script = [
        call("edit_file", path="stats.py", old_string=broken, new_string="    return 0.0\n"),
        call("finish", summary="done"),  # the model's word: verification says otherwise
        call("edit_file", path="stats.py", old_string="    return 0.0\n", new_string=broken),
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        call("finish", summary="fixed median, restored mean"),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))

    assert report.outcome == "completed"
    refused = tool_results(server.requests[2])[0]
    assert refused["is_error"] is True
    assert "FAILED" in result_text(refused) and "test_mean" in result_text(refused)
    assert "2 rounds left" in result_text(refused)
    assert report.verification is not None and report.verification.passed


async def test_verification_failing_every_round_fails_the_run(repo: Path, tmp_path: Path) -> None:
    script = [call("finish", summary=f"done, attempt {n}") for n in range(3)]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "failed"
    assert report.reason == "verification still fails after 3 rounds"
    assert report.verification is not None and not report.verification.passed
    assert report.verification.exit_code == 1


async def test_a_worktree_the_agent_broke_still_ends_with_a_footer_and_a_report(
    repo: Path, tmp_path: Path
) -> None:
    """``rm .git`` unlinks the worktree from the repository: the diff cannot be computed. The
    run ends as a failure that says so — a footer, a report — never a traceback. (Without the
    sandbox: inside it ``.git`` is read-only, tests/locusd/agent/test_sandbox_repository.py.)"""
    script = [
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        call("run_command", command="rm .git"),
        call("ask_user", question="is this right?"),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path, sandbox=False))
    assert report.outcome == "failed" and report.diff == ""
    assert report.reason is not None and "cannot be read" in report.reason
    records = read(Path(report.transcript))
    assert isinstance(records[-1], Footer) and records[-1].outcome == "failed"
    assert any("could not be recorded" in warning for warning in report.warnings)


async def test_a_hard_linked_outside_file_stays_out_of_the_diff_and_the_report_says_so(
    repo: Path, tmp_path: Path
) -> None:
    """A hard link to a file outside (planted as the worktree appears, as a command of the
    agent's could) passes every path check and git would read what it points to: the diff
    leaves it out, keeps the rest, and the report names it."""
    canary = tmp_path / "outside" / "id_rsa"
    canary.parent.mkdir()
    canary.write_text("CANARY-PRIVATE-KEY\n")

    def plant(worktree: Worktree) -> None:
        os.link(canary, worktree.path / "stolen_key")

    script = [
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        call("finish", summary="fixed"),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path), on_worktree=plant)
    assert report.outcome == "completed", report.reason
    assert "CANARY" not in report.diff and "stolen_key" not in report.diff
    assert "return (ordered[middle - 1] + ordered[middle]) / 2" in report.diff
    assert any("left out of the diff: stolen_key" in w for w in report.warnings), report.warnings
    footer = read(Path(report.transcript))[-1]
    assert isinstance(footer, Footer) and "CANARY" not in footer.diff


async def test_a_529_storm_then_success(repo: Path, tmp_path: Path) -> None:
    overloaded = Fail(529, "overloaded_error", headers={"retry-after-ms": "5"})
    limited = Fail(429, "rate_limit_error", headers={"retry-after": "0.01"})
    script: list[AnthropicItem] = [overloaded, overloaded, limited, *fix_median_session()]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "completed"
    assert [r.status for r in server.requests[:4]] == [529, 529, 429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in server.requests[:4]] == [
        "0",
        "1",
        "2",
        "3",
    ]


async def test_overload_beyond_the_retries_fails_with_the_reason(
    repo: Path, tmp_path: Path
) -> None:
    overloaded = Fail(529, "overloaded_error", headers={"retry-after-ms": "1"})
    async with AnthropicServer([overloaded] * 3) as server:
        report = await run(anthropic(server, max_retries=2), repo, make_config(tmp_path))
    assert report.outcome == "failed"
    assert report.reason is not None and "529" in report.reason
    assert report.diff == ""


async def test_a_mid_stream_error_is_retried(repo: Path, tmp_path: Path) -> None:
    session = fix_median_session()
    script: list[AnthropicItem] = [session[0], MidStreamError(after_blocks=1), *session[1:]]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "completed"
    assert len(server.requests) == 5
    # The retried request is the same request: nothing of the broken stream leaked in.
    assert server.requests[1].body == server.requests[2].body


async def test_mid_stream_errors_that_persist_fail_the_run(repo: Path, tmp_path: Path) -> None:
    async with AnthropicServer([MidStreamError()] * 3) as server:
        report = await run(anthropic(server, stream_retries=2), repo, make_config(tmp_path))
    assert report.outcome == "failed"
    assert report.reason is not None and "overloaded" in report.reason.lower()
    assert len(server.requests) == 3


async def test_path_escapes_are_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's private file\n")
    os.symlink(outside, repo / "link.txt")
    git(repo, "add", "link.txt")
    git(repo, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-q", "-m", "link")
    attempts = [
        call("read_file", path="../outside.txt"),
        call("read_file", path=str(outside)),
        call("read_file", path="link.txt"),
        call("edit_file", path="link.txt", old_string="private", new_string="public"),
        call("write_file", path="../outside.txt", content="overwritten"),
        call("write_file", path=".git/hooks/pre-commit", content="#!/bin/sh\nexit 0\n"),
        call("ask_user", question="I cannot reach those files; what now?"),
    ]
    async with AnthropicServer(attempts) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))

    assert report.outcome == "needs_input"
    assert report.question == "I cannot reach those files; what now?"
    refusals = [tool_results(request)[0] for request in server.requests[1:]]
    assert len(refusals) == 6
    for refusal in refusals:
        assert refusal["is_error"] is True
        assert "private file" not in result_text(refusal)
    assert "'..' is not allowed" in result_text(refusals[0])
    assert "absolute paths are not allowed" in result_text(refusals[1])
    assert "symlink; not followed" in result_text(refusals[2])
    assert ".git/" in result_text(refusals[5])
    assert outside.read_text() == "the user's private file\n"
    assert not (Path(report.worktree) / ".git").is_dir()  # a worktree's .git is a file
    assert report.diff == ""


async def test_commands_see_no_secrets(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-should-not-leak",
        "MY_SERVICE_TOKEN": "tok-should-not-leak",
        "AWS_SECRET_ACCESS_KEY": "aws-should-not-leak",
        "DATABASE_PASSWORD": "pw-should-not-leak",
        "LOCUS_SESSION": "locus-should-not-leak",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    probe = 'env; echo "[$ANTHROPIC_API_KEY][$MY_SERVICE_TOKEN][$AWS_SECRET_ACCESS_KEY]"'
    script = [call("run_command", command=probe), call("ask_user", question="ok?")]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))

    output = result_text(tool_results(server.requests[1])[0])
    assert "[][][]" in output
    assert "PATH=" in output  # the command did run, with an environment
    for request in server.requests:
        sent = json.dumps(request.body)
        for value in secrets.values():
            assert value not in sent
    transcript = Path(report.transcript).read_text()
    for value in secrets.values():
        assert value not in transcript


async def test_a_hanging_command_is_killed_on_timeout(repo: Path, tmp_path: Path) -> None:
    script = [
        call("run_command", command="echo started; sleep 300", timeout=1),
        call("ask_user", question="it hung; what now?"),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    killed = tool_results(server.requests[1])[0]
    assert killed["is_error"] is True
    assert "ran over its timeout" in result_text(killed)
    assert "started" in result_text(killed)
    assert report.outcome == "needs_input"


async def test_cancellation_during_a_long_command_kills_it(repo: Path, tmp_path: Path) -> None:
    marker = f"locus-cancel-{uuid.uuid4().hex}"
    # The command hangs under a name we can find (the sandbox's /tmp is its own: no fifo there).
    command = f"exec -a {marker} sleep 300"
    script = [call("run_command", command=command, timeout=600)]
    cancel = asyncio.Event()

    async with AnthropicServer(script) as server:
        running = asyncio.ensure_future(
            run(anthropic(server), repo, make_config(tmp_path), cancel=cancel)
        )
        await until(lambda: bool(processes_named(marker)), timeout=60)
        cancel.set()
        report = await running

    assert report.outcome == "cancelled"
    assert processes_named(marker) == []  # killed, not orphaned
    records = read(Path(report.transcript))
    assert isinstance(records[-1], Footer) and records[-1].outcome == "cancelled"


async def test_cancellation_while_the_model_streams(repo: Path, tmp_path: Path) -> None:
    cancel = asyncio.Event()
    async with AnthropicServer([Hang()]) as server:
        running = asyncio.ensure_future(
            run(anthropic(server), repo, make_config(tmp_path), cancel=cancel)
        )
        await server.hung.wait()
        cancel.set()
        report = await running
        await server.disconnected.wait()  # the stream was closed, not left open
    assert report.outcome == "cancelled"


async def test_the_turn_budget_ends_the_run(repo: Path, tmp_path: Path) -> None:
    script = [call("list_files", pattern=f"*{n}*") for n in range(5)]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path, budget={"max_turns": 3}))
    assert report.outcome == "budget_exhausted"
    assert report.reason == "max turns reached (3 of 3)"
    assert len(server.requests) == 3


async def test_the_cost_budget_ends_the_run(repo: Path, tmp_path: Path) -> None:
    script = [call("list_files", pattern=f"*{n}*") for n in range(5)]
    async with AnthropicServer(script) as server:
        report = await run(
            anthropic(server), repo, make_config(tmp_path, budget={"max_cost_usd": 0.001})
        )
    assert report.outcome == "budget_exhausted"
    assert report.reason is not None and report.reason.startswith("max cost reached")
    assert report.cost_usd >= 0.001


async def test_the_wall_time_budget_interrupts_a_stream(repo: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path, budget={"max_wall_seconds": 0.5})
    async with AnthropicServer([Hang()]) as server:
        report = await run(anthropic(server), repo, config)
    assert report.outcome == "budget_exhausted"
    assert report.reason == "max wall time (0.5 s)"


async def test_the_same_call_over_and_over_is_stuck(repo: Path, tmp_path: Path) -> None:
    script = [call("read_file", path="stats.py")] * 5
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "failed"
    assert report.reason == "stuck: the same read_file call 3 times in a row"
    assert len(server.requests) == 3


async def test_stop_reasons_refusal_max_tokens_and_chatter(repo: Path, tmp_path: Path) -> None:
    script = [
        Reply([text("Here is my plan.")], stop_reason="end_turn"),  # no tool: nudged
        Reply([text("Writing a big file"), tool_use("write_file", {"path": "x"})], "max_tokens"),
        Reply([text("I will not do that.")], stop_reason="refusal"),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "failed"
    assert report.reason == "the model refused: I will not do that."
    second, third = (r.body for r in server.requests[1:])
    assert second is not None and third is not None
    assert "call finish" in second["messages"][-1]["content"][-1]["text"]
    # The cut-off tool call was dropped (it could not run) and the model was told why.
    cut = third["messages"][-2]["content"]
    assert [b["type"] for b in cut] == ["text"]
    assert "cut off" in third["messages"][-1]["content"][-1]["text"]


async def test_follow_ups_and_progress_events(repo: Path, tmp_path: Path) -> None:
    session = fix_median_session()
    script = [
        call("create_follow_up", title="Add tests for mean of negatives", description="why"),
        *session,
    ]
    events: list[Event] = []
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path), on_event=events.append)
    assert [f.title for f in report.follow_ups] == ["Add tests for mean of negatives"]
    kinds = [e.kind for e in events]
    assert kinds.count("turn") == 5
    assert "text" in kinds and "verify" in kinds
    assert [e.text for e in events if e.kind == "tool"][-1] == "finish"


async def test_replay_reproduces_the_same_diff(tmp_path: Path) -> None:
    first = make_sample_repo(tmp_path / "a")
    async with AnthropicServer(fix_median_session()) as server:
        recorded = await run(anthropic(server), first, make_config(tmp_path / "a"))
    second = make_sample_repo(tmp_path / "b")
    replayed = await run(
        ReplayProvider(Path(recorded.transcript)), second, make_config(tmp_path / "b")
    )
    assert replayed.outcome == "completed"
    assert replayed.diff == recorded.diff != ""
    assert replayed.verification is not None and replayed.verification.passed
    assert replayed.cost_usd == 0


async def test_replay_fails_loudly_when_the_run_diverges(tmp_path: Path) -> None:
    first = make_sample_repo(tmp_path / "a")
    async with AnthropicServer(fix_median_session()) as server:
        recorded = await run(anthropic(server), first, make_config(tmp_path / "a"))
    # Another repository state: the recorded edit no longer applies.
    second = make_sample_repo(tmp_path / "b")
    (second / "stats.py").write_text((second / "stats.py").read_text().replace("middle]", "m]"))
    git(second, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qam", "change")
    replayed = await run(
        ReplayProvider(Path(recorded.transcript)), second, make_config(tmp_path / "b")
    )
    assert replayed.outcome == "failed"
    # caught at the first read of the changed file, before the edit that no longer applies
    assert (
        replayed.reason is not None and "turn 2: the recorded read_file result" in replayed.reason
    )


async def test_the_openai_provider_fixes_the_failing_test(repo: Path, tmp_path: Path) -> None:
    Reply = openai_server.Reply

    def calls(name: str, **arguments: Any) -> openai_server.Reply:
        return Reply(tool_calls=[{"name": name, "arguments": arguments}])

    script = [
        Reply(
            content="Reading.",
            tool_calls=[{"name": "read_file", "arguments": {"path": "stats.py"}}],
        ),
        calls("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        Reply(tool_calls=[{"name": "run_verify", "arguments": "{not json"}]),
        calls("finish", summary="fixed"),
    ]
    async with openai_server.OpenAIServer(script) as server:
        provider = OpenAIProvider(model="qwen2.5-coder", base_url=server.base_url + "/v1")
        report = await run(provider, repo, make_config(tmp_path))

    assert report.outcome == "completed"
    assert FIXED in (Path(report.worktree) / "stats.py").read_text()
    assert report.cost_usd == 0 and report.usage.output_tokens > 0
    bodies = [r.body for r in server.requests]
    assert all(b is not None and b["stream"] is True for b in bodies)
    second = bodies[1]
    assert second is not None
    assert second["messages"][0]["role"] == "system"
    assert second["messages"][2]["tool_calls"][0]["function"]["name"] == "read_file"
    tool_message = second["messages"][3]
    assert tool_message["role"] == "tool" and "return ordered[middle]" in tool_message["content"]
    malformed = bodies[3]
    assert malformed is not None
    assert "not valid JSON" in malformed["messages"][-1]["content"]


async def test_worktree_states_and_the_pool(repo: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    question = [call("ask_user", question="which median?")]
    async with AnthropicServer(question + fix_median_session()) as server:
        asked = await run(anthropic(server), repo, config)
        fixed = await run(anthropic(server), repo, config)
    worktrees = Worktrees(repo, Path(asked.worktree).parent)
    # No changes: the worktree went back to the pool, and the next run took it — renamed for
    # that run. Neither run made a branch; the second one's work is under its ref.
    assert asked.diff == "" and not Path(asked.worktree).exists()
    assert Path(fixed.worktree).parent == Path(asked.worktree).parent
    assert Path(fixed.worktree).name.startswith(f"{fixed.task_id}-")
    assert fixed.branch == asked.branch == "" and git(repo, "branch", "--list", "locus/*") == ""
    assert git(repo, "diff", fixed.base_commit, f"refs/locus/runs/{fixed.task_id}") != ""
    assert fixed.outcome == "completed"
    # Changes: the worktree waits for review, and pruning keeps it.
    (held,) = [w for w in worktrees.list() if str(w.path) == fixed.worktree]
    assert worktrees.state(held) == "review"
    report = worktrees.prune(keep_pool=0)
    assert Path(fixed.worktree) in [k.path for k in report.kept]
    assert Path(fixed.worktree).is_dir()


async def test_a_paused_turn_is_sent_back_to_resume(repo: Path, tmp_path: Path) -> None:
    script: list[AnthropicItem] = [
        Reply([text("Still looking around…")], stop_reason="pause_turn"),
        *fix_median_session(),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "completed"
    resumed = server.requests[1].body
    assert resumed is not None
    # The paused assistant message goes back as it was, with nothing added after it.
    assert resumed["messages"][-1]["role"] == "assistant"
    assert resumed["messages"][-1]["content"][0]["text"] == "Still looking around…"
