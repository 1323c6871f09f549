"""The Anthropic provider against faults scripted in the real wire format (the loopback server
in tests/support, the official SDK): what is retried, what is said plainly, and that a broken
stream never leaves half a response behind. Then the same faults through the real runner."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.messages import Request
from locusd.agent.providers import ProviderError
from locusd.agent.providers.anthropic import AnthropicProvider
from locusd.git.worktrees import Worktrees
from tests.locusd.agent.providerkit import (
    NOTES,
    REQUEST,
    failed_with_a_footer,
    failure,
    same_requests,
    wrote_the_notes_once,
)
from tests.locusd.agentkit import anthropic, call, make_config, make_sample_repo, run
from tests.support.anthropic_server import (
    AnthropicItem,
    AnthropicServer,
    Drop,
    Fail,
    MidStreamError,
    Reply,
    Reset,
    text,
    tool_use,
)

pytestmark = pytest.mark.timeout(60)

#: A tool call whose input is long enough to arrive in several input_json_delta frames.
WRITE = tool_use("write_file", {"path": "a.txt", "content": "x" * 60}, id="toolu_whole")
#: Frames of a streamed WRITE: message_start, ping, content_block_start, the input's deltas…
MID_INPUT = 5


def whole() -> Reply:
    return Reply([text("Writing it."), WRITE], stop_reason="tool_use")


async def complete(server: AnthropicServer, **options: Any) -> Any:
    return await anthropic(server, **options).complete(REQUEST)


# --- failures inside a started stream: retried by the provider ------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        MidStreamError(after_blocks=1, error_type="overloaded_error"),
        MidStreamError(after_blocks=0, error_type="api_error"),
        Drop(whole(), after_frames=MID_INPUT),  # the body ends mid tool input
        Drop(whole(), after_frames=MID_INPUT, abort=True),  # the socket is cut mid-body
        Drop(whole(), after_frames=100),  # everything but message_stop
        Drop(
            whole(),
            after_frames=MID_INPUT,
            garbage=b'event: content_block_delta\ndata: {"type": "content_blo\n\n',
        ),
    ],
    ids=["overloaded", "api-error", "ends-early", "cut", "no-message-stop", "garbled"],
)
async def test_a_broken_stream_is_retried_and_never_half_applied(fault: AnthropicItem) -> None:
    async with AnthropicServer([fault, whole()]) as server:
        response = await complete(server)
    assert len(server.requests) == 2 and same_requests(server)
    assert response.stop_reason == "tool_use"
    (used,) = response.message.tool_calls
    assert used.id == "toolu_whole" and used.input == {"path": "a.txt", "content": "x" * 60}
    assert "partial" not in response.message.text


async def test_a_stream_that_keeps_breaking_ends_with_the_reason() -> None:
    async with AnthropicServer([Drop(whole(), after_frames=MID_INPUT)] * 3) as server:
        said = await failure(server, complete(server, stream_retries=2), requests=3)
    assert "giving up after 3 attempts" in said and "message_stop" in said


# --- before the stream: the SDK's retries, bounded ------------------------------------------


async def test_429_and_529_are_retried_honouring_retry_after() -> None:
    script: list[AnthropicItem] = [
        Fail(529, "overloaded_error", headers={"retry-after-ms": "5"}),
        Fail(429, "rate_limit_error", headers={"retry-after": "0.01"}),
        Fail(500, "api_error", headers={"retry-after-ms": "1"}),
        whole(),
    ]
    async with AnthropicServer(script) as server:
        response = await complete(server, max_retries=3)
    assert [r.status for r in server.requests] == [529, 429, 500, 200]
    assert response.message.tool_calls[0].id == "toolu_whole"


@pytest.mark.timeout(20)  # without the bound the SDK sleeps the hour: this times out
async def test_a_retry_after_beyond_the_bound_is_not_waited_for() -> None:
    """The SDK alone would sleep the hour; the run instead ends at once, saying why."""
    script: list[AnthropicItem] = [
        Fail(429, "rate_limit_error", headers={"retry-after": "3600"}),
        whole(),
    ]
    async with AnthropicServer(script) as server:
        said = await failure(server, complete(server), requests=1)
    assert "429 rate_limit_error" in said and "asked to wait 3600 s" in said


async def test_overload_beyond_the_retries_says_how_often_it_was_tried() -> None:
    overloaded = Fail(529, "overloaded_error", headers={"retry-after-ms": "1"})
    async with AnthropicServer([overloaded] * 3) as server:
        said = await failure(server, complete(server, max_retries=2), requests=3)
    assert said == (
        "Anthropic API error 529 overloaded_error: Overloaded (still failing after 2 retries)"
    )


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (
            Fail(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            "prompt is too long: 210000 tokens > 200000 maximum (the conversation no longer "
            "fits the model's context window; not retried)",
        ),
        (Fail(400, "invalid_request_error", "tools.0: bad"), "tools.0: bad (the request is invalid"),
        (Fail(401, "authentication_error"), "401 authentication_error: invalid x-api-key (the API key was rejected"),
        (Fail(403, "permission_error"), "403 permission_error"),
        (Fail(404, "not_found_error", "model: claude-nope"), "model: claude-nope (no such model"),
        (MidStreamError(error_type="invalid_request_error", message="bad tool schema"),
         "invalid_request_error inside the stream: bad tool schema (not retried)"),
    ],
    ids=["too-long", "invalid", "auth", "permission", "no-model", "in-stream"],
)  # fmt: skip
async def test_what_is_not_retryable_ends_at_once_with_a_clear_message(
    fault: AnthropicItem, says: str
) -> None:
    async with AnthropicServer([fault, whole()]) as server:
        said = await failure(server, complete(server), requests=1)
    assert says in said


async def test_a_connection_reset_before_the_answer_is_retried_by_the_sdk() -> None:
    async with AnthropicServer([Reset(), whole()]) as server:
        response = await complete(server, max_retries=1)
    assert [r.status for r in server.requests] == [0, 200]
    assert response.message.tool_calls[0].id == "toolu_whole"


async def test_a_refused_connection_is_retried_then_said_plainly() -> None:
    with socket.socket() as probe:  # a port with nobody listening: bound, never listened on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        provider = AnthropicProvider(
            api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=1, backoff=0.01
        )
        with pytest.raises(ProviderError) as caught:
            await provider.complete(REQUEST)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the Anthropic API at http://127.0.0.1:{port}")
    assert "still failing after 1 retries" in message


# --- through the real runner ----------------------------------------------------------------


async def test_a_tool_call_cut_mid_stream_runs_once_whole(tmp_path: Path) -> None:
    """The first attempt streams half of a write_file call and drops; only the retried, whole
    call runs, once."""
    repo = make_sample_repo(tmp_path)
    turn = call("write_file", path="notes.txt", content=NOTES)
    script: list[AnthropicItem] = [
        Drop(turn, after_frames=MID_INPUT, abort=True),
        turn,
        call("ask_user", question="done?"),
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    wrote_the_notes_once(report)
    assert report.turns == 2


async def test_a_context_too_long_ends_the_run_with_a_footer_and_a_report(
    tmp_path: Path,
) -> None:
    repo = make_sample_repo(tmp_path)
    too_long = Fail(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000")
    script: list[AnthropicItem] = [
        call("write_file", path="notes.txt", content="started\n"),
        too_long,
    ]
    async with AnthropicServer(script) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    failed_with_a_footer(report)
    assert report.reason is not None and "context window" in report.reason
    assert "+started" in report.diff  # the work so far is kept for review
    worktrees = Worktrees(repo, Path(report.worktree).parent)
    (held,) = [w for w in worktrees.list() if str(w.path) == report.worktree]
    assert worktrees.state(held) == "review"


class BrokenProvider:
    """A provider with a bug: what the runner must survive even when no SDK is at fault."""

    name = "broken"
    model = "broken-1"

    async def complete(self, request: Request, on_text: Any = None) -> Any:
        raise KeyError("usage")

    def cost(self, usage: Any) -> float | None:
        return 0.0


async def test_a_provider_bug_still_ends_the_run_with_a_footer_and_a_report(
    tmp_path: Path,
) -> None:
    repo = make_sample_repo(tmp_path)
    report = await run(BrokenProvider(), repo, make_config(tmp_path))
    failed_with_a_footer(report)
    assert report.reason == "the broken provider failed: KeyError: 'usage'"
    worktrees = Worktrees(repo, Path(report.worktree).parent)
    (held,) = [w for w in worktrees.list() if str(w.path) == report.worktree]
    assert worktrees.state(held) == "discarded"
