"""The OpenAI-compatible provider against faults scripted in the real wire format (the
loopback server in tests/support, the official SDK): an ``{"error": …}`` chunk mid-stream, a
stream cut before ``[DONE]``, 429/5xx, and what is not worth a retry. Then through the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from locusd.agent.providers.openai import OpenAIProvider
from tests.locusd.agent.providerkit import (
    NOTES,
    REQUEST,
    failed_with_a_footer,
    failure,
    same_requests,
    wrote_the_notes_once,
)
from tests.locusd.agentkit import make_config, make_sample_repo, run
from tests.support.openai_server import (
    Drop,
    Fail,
    MidStreamError,
    OpenAIItem,
    OpenAIServer,
    Reply,
    Reset,
)

pytestmark = pytest.mark.timeout(60)

ARGUMENTS = {"path": "a.txt", "content": "x" * 60}
#: Frames of a streamed whole(): the role chunk, 3 content chunks, the call's head, its
#: arguments in pieces, the finish chunk, the usage chunk.
MID_ARGUMENTS = 6


def whole() -> Reply:
    return Reply(
        content="Writing it.",
        tool_calls=[{"id": "call_whole", "name": "write_file", "arguments": ARGUMENTS}],
    )


def provider(server: OpenAIServer, **options: Any) -> OpenAIProvider:
    options.setdefault("backoff", 0.01)
    return OpenAIProvider(model="qwen2.5-coder", base_url=f"{server.base_url}/v1", **options)


async def complete(server: OpenAIServer, **options: Any) -> Any:
    return await provider(server, **options).complete(REQUEST)


@pytest.mark.parametrize(
    "fault",
    [
        MidStreamError(after_chunks=2, error_type="server_error"),
        MidStreamError(after_chunks=0, error_type="overloaded_error", message="busy"),
        Drop(whole(), after_frames=MID_ARGUMENTS),  # the body ends mid tool arguments
        Drop(whole(), after_frames=MID_ARGUMENTS, abort=True),  # the socket is cut
        Drop(whole(), after_frames=MID_ARGUMENTS, garbage=b'data: {"id": "chatcmpl-\n\n'),
    ],
    ids=["error-chunk", "overloaded-chunk", "ends-early", "cut", "garbled"],
)
async def test_a_broken_stream_is_retried_and_never_half_applied(fault: OpenAIItem) -> None:
    async with OpenAIServer([fault, whole()]) as server:
        response = await complete(server)
    assert len(server.requests) == 2 and same_requests(server)
    assert response.message.text == "Writing it."
    (used,) = response.message.tool_calls
    assert used.id == "call_whole" and used.input == ARGUMENTS
    assert response.stop_reason == "tool_use"


async def test_a_stream_cut_after_the_usage_chunk_but_with_its_finish_reason_is_whole() -> None:
    """Only [DONE] is missing: the response was complete, so it is used as it is."""
    async with OpenAIServer([Drop(whole(), after_frames=100)]) as server:
        response = await complete(server)
    assert len(server.requests) == 1
    assert response.message.tool_calls[0].input == ARGUMENTS


async def test_a_stream_that_keeps_failing_ends_with_the_reason() -> None:
    fault = MidStreamError(error_type="server_error", message="the GPU fell over")
    async with OpenAIServer([fault] * 3) as server:
        said = await failure(server, complete(server, stream_retries=2), requests=3)
    assert said == (
        "OpenAI-compatible API: giving up after 3 attempts: "
        "server_error inside the stream: the GPU fell over"
    )


async def test_429_and_5xx_are_retried_honouring_retry_after() -> None:
    script: list[OpenAIItem] = [
        Fail(429, "requests", headers={"retry-after-ms": "5"}),
        Fail(503, "server_error", headers={"retry-after": "0.01"}),
        Reset(),
        whole(),
    ]
    async with OpenAIServer(script) as server:
        response = await complete(server, max_retries=3)
    assert [r.status for r in server.requests] == [429, 503, 0, 200]
    assert response.message.tool_calls[0].id == "call_whole"


async def test_a_retry_after_beyond_the_bound_is_not_waited_for() -> None:
    script: list[OpenAIItem] = [Fail(429, "tokens", headers={"retry-after": "3600"}), whole()]
    async with OpenAIServer(script) as server:
        said = await failure(server, complete(server), requests=1)
    assert "asked to wait 3600 s" in said


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (
            Fail(400, "invalid_request_error", "This model's maximum context length is 8192 "
                 "tokens.", code="context_length_exceeded"),
            "context window; not retried",
        ),
        (Fail(401, "invalid_request_error", "Incorrect API key provided", code="invalid_api_key"),
         "401 invalid_request_error: Incorrect API key provided (the API key was rejected"),
        (Fail(404, "invalid_request_error", "The model `qwen` does not exist"),
         "(no such model or endpoint: check the model and base_url in [agent]"),
        (
            MidStreamError(error_type="invalid_request_error", message="This model's maximum "
                           "context length is 8192 tokens"),
            "inside the stream: This model's maximum context length is 8192 tokens (the "
            "conversation no longer fits the model's context window; not retried)",
        ),
        (
            MidStreamError(error_type="BadRequestError", message="bad tool call"),
            "BadRequestError inside the stream: bad tool call (not retried)",
        ),
    ],
    ids=["too-long", "auth", "no-model", "in-stream-too-long", "in-stream-vllm-bad-request"],
)  # fmt: skip
async def test_what_is_not_retryable_ends_at_once_with_a_clear_message(
    fault: OpenAIItem, says: str
) -> None:
    async with OpenAIServer([fault, whole()]) as server:
        said = await failure(server, complete(server), requests=1)
    assert says in said


# --- through the real runner ----------------------------------------------------------------


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[{"name": name, "arguments": arguments}])


async def test_an_error_chunk_mid_run_is_retried_by_the_runner(tmp_path: Path) -> None:
    """The issue's reproduction: this used to end the run with a traceback and no report."""
    repo = make_sample_repo(tmp_path)
    writes = call("write_file", path="notes.txt", content=NOTES)
    script: list[OpenAIItem] = [
        MidStreamError(after_chunks=1),
        Drop(writes, after_frames=4, abort=True),
        writes,
        call("ask_user", question="done?"),
    ]
    async with OpenAIServer(script) as server:
        report = await run(provider(server), repo, make_config(tmp_path))
    wrote_the_notes_once(report)


async def test_an_error_chunk_that_persists_ends_the_run_with_a_footer_and_a_report(
    tmp_path: Path,
) -> None:
    repo = make_sample_repo(tmp_path)
    async with OpenAIServer([MidStreamError()] * 2) as server:
        report = await run(provider(server, stream_retries=1), repo, make_config(tmp_path))
    failed_with_a_footer(report)
    assert report.reason is not None and "giving up after 2 attempts" in report.reason
