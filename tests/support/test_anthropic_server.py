"""The scripted Anthropic server, driven by the official ``anthropic`` SDK.

These tests pin down that the stand-in is faithful enough for the SDK's own parser,
retry logic and error mapping to behave as they do against the real API.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import MessageParam, ToolResultBlockParam, Usage

from tests.support.anthropic_server import (
    AnthropicItem,
    AnthropicServer,
    Fail,
    Hang,
    MidStreamError,
    Reply,
    text,
    thinking,
    tool_use,
)
from tests.support.scripted import canonical_json

MODEL = "claude-test-1"
KEY = "sk-ant-test"
HELLO: list[MessageParam] = [{"role": "user", "content": "hello"}]


def client(server: AnthropicServer, **kwargs: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=KEY, base_url=server.base_url, **kwargs)


async def raw_stream(server: AnthropicServer, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """POST without the SDK and split the SSE body into (event, data) pairs."""
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.base_url}/v1/messages", json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["request-id"].startswith("req_")
        raw = await resp.text()
    frames = []
    for frame in raw.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        frames.append((event_line[len("event: ") :], json.loads(data_line[len("data: ") :])))
    assert raw.endswith("\n\n")
    return frames


async def test_stream_wire_format_is_the_real_event_sequence() -> None:
    reply = Reply(
        [text("Let me look at that file."), tool_use("read", {"path": "src/app.py"}, "toolu_1")],
        "tool_use",
    )
    async with AnthropicServer([reply]) as server:
        frames = await raw_stream(
            server, {"model": MODEL, "max_tokens": 64, "messages": HELLO, "stream": True}
        )
    events = [name for name, _ in frames]
    assert events[:2] == ["message_start", "ping"]
    assert events[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in frames)
    start = frames[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["id"].startswith("msg_") and start["model"] == MODEL
    assert start["role"] == "assistant" and start["type"] == "message"
    assert start["usage"]["input_tokens"] > 0
    deltas = [d["delta"] for name, d in frames if name == "content_block_delta"]
    text_parts = [d["text"] for d in deltas if d["type"] == "text_delta"]
    json_parts = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert len(text_parts) >= 2 and "".join(text_parts) == "Let me look at that file."
    assert len([p for p in json_parts if p]) >= 2
    assert json.loads("".join(json_parts)) == {"path": "src/app.py"}
    tool_start = [d for name, d in frames if name == "content_block_start"][1]
    assert tool_start == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {}},
    }
    end = frames[-2][1]
    assert end["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert set(end["usage"]) == {"output_tokens"} and end["usage"]["output_tokens"] > 0


async def test_sdk_stream_assembles_text_tool_input_stop_reason_and_usage() -> None:
    reply = Reply(
        [
            thinking("The user wants the file."),
            text("Reading it now."),
            tool_use("read", {"path": "a.py", "range": [1, 20], "note": "ünïcode"}),
        ],
        "tool_use",
    )
    async with (
        AnthropicServer([reply]) as server,
        client(server) as sdk,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        streamed = [chunk async for chunk in stream.text_stream]
        message = await stream.get_final_message()
    assert "".join(streamed) == "Reading it now." and len(streamed) >= 2
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text", "tool_use"]
    block = message.content[2]
    assert block.type == "tool_use"
    assert block.name == "read" and block.id.startswith("toolu_")
    assert block.input == {"path": "a.py", "range": [1, 20], "note": "ünïcode"}
    first = message.content[0]
    assert first.type == "thinking" and first.thinking == "The user wants the file."
    assert first.signature
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 1
    assert message.model == MODEL
    (recorded,) = server.requests
    assert recorded.path == "/v1/messages" and recorded.status == 200
    assert recorded.body["stream"] is True and recorded.body["messages"] == HELLO
    assert recorded.item is reply and server.remaining == 0


async def test_sdk_create_non_streaming() -> None:
    usage = {"input_tokens": 7, "output_tokens": 3}
    reply = Reply([text("Done."), tool_use("bash", {"cmd": "ls"})], "max_tokens", usage=usage)
    async with AnthropicServer([reply]) as server, client(server) as sdk:
        message = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.stop_reason == "max_tokens"
    assert message.content[0].type == "text" and message.content[0].text == "Done."
    tool = message.content[1]
    assert tool.type == "tool_use" and tool.id.startswith("toolu_") and tool.input == {"cmd": "ls"}
    assert message.usage.input_tokens == 7 and message.usage.output_tokens == 3
    assert message.usage.cache_read_input_tokens == 0  # computed keys not overridden remain
    assert server.requests[0].body.get("stream") is None


async def test_overloaded_then_reply_is_retried_by_the_sdk() -> None:
    script: list[AnthropicItem] = [
        Fail(529, "overloaded_error", headers={"retry-after-ms": "10"}),
        Reply([text("ok")]),
    ]
    async with (
        AnthropicServer(script) as server,
        client(server) as sdk,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        message = await stream.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == "ok"
    assert [r.status for r in server.requests] == [529, 200]
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]
    # A retry resends the same body (this SDK sends no idempotency-key header).
    assert server.requests[0].body == server.requests[1].body


async def test_rate_limited_with_retry_after_then_reply() -> None:
    script: list[AnthropicItem] = [
        Fail(429, "rate_limit_error", headers={"retry-after": "0.01"}),
        Reply([text("hi")]),
    ]
    async with AnthropicServer(script) as server, client(server) as sdk:
        message = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.content[0].type == "text" and message.content[0].text == "hi"
    assert [r.status for r in server.requests] == [429, 200]


async def test_retries_exhausted_raise_the_sdk_error_types() -> None:
    overloaded = Fail(529, "overloaded_error", headers={"retry-after-ms": "1"})
    limited = Fail(429, "rate_limit_error", "slow down", headers={"retry-after-ms": "1"})
    async with AnthropicServer([overloaded] * 3 + [limited] * 2) as server:
        async with client(server, max_retries=2) as sdk:
            with pytest.raises(anthropic.OverloadedError) as overloaded_info:
                await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
        async with client(server, max_retries=1) as sdk:
            with pytest.raises(anthropic.RateLimitError) as limited_info:
                await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    err = overloaded_info.value
    assert isinstance(err, anthropic.InternalServerError)
    assert err.status_code == 529 and err.type == "overloaded_error"
    assert err.api_message == "Overloaded"
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert isinstance(err.body, dict) and err.body["request_id"] == err.request_id
    assert limited_info.value.status_code == 429 and limited_info.value.api_message == "slow down"
    assert [r.status for r in server.requests] == [529, 529, 529, 429, 429]


async def test_error_code_lands_in_details() -> None:
    script = [Fail(400, "invalid_request_error", "prompt is too long", code="prompt_too_long")]
    async with AnthropicServer(script) as server, client(server) as sdk:
        with pytest.raises(anthropic.BadRequestError) as info:
            await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert info.value.error_code == "prompt_too_long"
    assert info.value.api_message == "prompt is too long"
    assert len(server.requests) == 1  # 400 is not retried


async def test_mid_stream_error_raises_api_status_error_and_is_not_retried() -> None:
    async with AnthropicServer([MidStreamError(after_blocks=1)]) as server, client(server) as sdk:
        received: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as info:
            async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
                async for chunk in stream.text_stream:
                    received.append(chunk)
    err = info.value
    # The HTTP status was 200: the SDK builds a plain APIStatusError (not OverloadedError /
    # InternalServerError) from the in-band error event.
    assert type(err) is anthropic.APIStatusError
    assert err.status_code == 200
    assert err.type == "overloaded_error" and err.api_message == "Overloaded"
    assert err.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert "".join(received) == "partial block 0"
    assert len(server.requests) == 1


async def test_mid_stream_error_on_a_non_streaming_request_is_an_http_error() -> None:
    script = [MidStreamError(error_type="api_error")]
    async with AnthropicServer(script) as server, client(server, max_retries=0) as sdk:
        with pytest.raises(anthropic.InternalServerError) as info:
            await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert info.value.status_code == 500 and info.value.type == "api_error"


async def test_count_tokens_does_not_consume_the_script() -> None:
    async with AnthropicServer([Reply([text("x")])]) as server, client(server) as sdk:
        counted = await sdk.messages.count_tokens(model=MODEL, messages=HELLO, system="Be brief.")
    assert counted.input_tokens > 0
    expected = (
        len(canonical_json({"system": "Be brief."}))
        + len(canonical_json({"role": "user", "index": 0, "content": "hello"}))
    ) // 4
    assert counted.input_tokens == expected
    assert server.requests[0].path == "/v1/messages/count_tokens"
    assert server.remaining == 1


def _system(cached: bool) -> list[Any]:
    block: dict[str, Any] = {"type": "text", "text": "You are a careful coding agent. " * 40}
    if cached:
        block["cache_control"] = {"type": "ephemeral"}
    return [block]


def _turn(n: int, cached: bool) -> list[Any]:
    """A conversation of n user/assistant exchanges, breakpoint on the last user block."""
    messages: list[dict[str, Any]] = []
    for i in range(n):
        if messages:
            messages.append({"role": "assistant", "content": [text(f"answer {i} " * 30)]})
        messages.append({"role": "user", "content": [text(f"question {i} " * 30)]})
    if cached:
        messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return messages


async def test_prompt_caching_is_simulated() -> None:
    async with AnthropicServer(lambda _body: Reply([text("ok")])) as server, client(server) as sdk:

        async def usage(
            system: list[Any], messages: list[Any], model: str = MODEL, **extra: Any
        ) -> Usage:
            message = await sdk.messages.create(
                model=model, max_tokens=64, system=system, messages=messages, extra_body=extra
            )
            return message.usage

        first = await usage(_system(True), _turn(1, True))
        second = await usage(_system(True), _turn(2, True))
        third = await usage(_system(True), _turn(3, False))
        other_model = await usage(_system(True), _turn(1, True), model="claude-other")
        top_level = await usage(
            _system(False), _turn(1, False), cache_control={"type": "ephemeral"}
        )
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_input_tokens is not None and first.cache_creation_input_tokens > 0
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    # The breakpoint moved to the new last message; the old prefix (marker stripped) is a hit.
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens is not None and second.cache_creation_input_tokens > 0
    # Only the system breakpoint is left: it reads that prefix and writes nothing new.
    assert third.cache_read_input_tokens is not None
    assert 0 < third.cache_read_input_tokens < first.cache_creation_input_tokens
    assert third.cache_creation_input_tokens == 0
    assert third.input_tokens > second.input_tokens
    # Caches are per model.
    assert other_model.cache_read_input_tokens == 0
    # A top-level cache_control marks the last block: same content as `first`, so a hit.
    assert top_level.cache_read_input_tokens == first.cache_creation_input_tokens
    assert top_level.cache_creation_input_tokens == 0
    # Totals are consistent across the three usage fields.
    total_first = first.input_tokens + first.cache_creation_input_tokens
    total_top = top_level.input_tokens + top_level.cache_read_input_tokens
    assert total_first == total_top


def _parallel_turn(calls: int) -> list[Any]:
    """The task, then one turn of ``calls`` parallel tool calls and their results."""
    ids = [f"toolu_{n:02d}" for n in range(calls)]
    return [
        {"role": "user", "content": [text("do the task " * 40)]},
        {
            "role": "assistant",
            "content": [tool_use("read", {"n": n}, id=i) for n, i in enumerate(ids)],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": i, "content": f"r{i}"} for i in ids],
        },
    ]


def _mark(messages: list[Any], *indexes: int) -> list[Any]:
    """A copy with a breakpoint on the last block of each message at ``indexes``."""
    marked: list[Any] = json.loads(json.dumps(messages))
    for i in indexes:
        marked[i]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return marked


@pytest.mark.parametrize(("calls", "found"), [(9, True), (10, True), (11, False), (12, False)])
async def test_a_prior_entry_is_found_only_within_20_blocks_of_a_breakpoint(
    calls: int, found: bool
) -> None:
    """The API's lookback: from a breakpoint it checks that boundary and the 20 before it.
    A turn of n parallel calls puts 2n blocks between the task's breakpoint and the newest."""
    messages = _parallel_turn(calls)
    async with AnthropicServer(lambda _body: Reply([text("ok")])) as server, client(server) as sdk:
        first = await sdk.messages.create(
            model=MODEL, max_tokens=8, system=_system(True), messages=_mark(messages[:1], 0)
        )
        newest_only = await sdk.messages.create(
            model=MODEL, max_tokens=8, system=_system(True), messages=_mark(messages, 2)
        )
    written = first.usage.cache_creation_input_tokens
    assert written is not None and written > 0
    assert (newest_only.usage.cache_read_input_tokens == written) is found
    if not found:  # only the system prompt's entry is within reach: the rest is written again
        assert 0 < (newest_only.usage.cache_read_input_tokens or 0) < written


async def test_a_breakpoint_on_the_previous_turns_end_bridges_the_lookback() -> None:
    messages = _parallel_turn(12)
    async with AnthropicServer(lambda _body: Reply([text("ok")])) as server, client(server) as sdk:
        first = await sdk.messages.create(
            model=MODEL, max_tokens=8, system=_system(True), messages=_mark(messages[:1], 0)
        )
        bridged = await sdk.messages.create(
            model=MODEL, max_tokens=8, system=_system(True), messages=_mark(messages, 0, 2)
        )
    assert bridged.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


async def test_minimum_cacheable_size_and_one_hour_ttl() -> None:
    tools: list[Any] = [
        {
            "name": "read",
            "description": "Read a file. " * 20,
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    script = lambda _body: Reply([text("ok")])  # noqa: E731
    async with (
        AnthropicServer(script, min_cacheable_tokens=100_000) as server,
        client(server) as sdk,
    ):
        small = await sdk.messages.create(model=MODEL, max_tokens=8, tools=tools, messages=HELLO)
        again = await sdk.messages.create(model=MODEL, max_tokens=8, tools=tools, messages=HELLO)
    assert small.usage.cache_creation_input_tokens == 0 and small.usage.cache_read_input_tokens == 0
    assert again.usage.cache_read_input_tokens == 0
    async with AnthropicServer(script) as server, client(server) as sdk:
        cached = await sdk.messages.create(model=MODEL, max_tokens=8, tools=tools, messages=HELLO)
    assert cached.usage.cache_creation is not None
    assert cached.usage.cache_creation.ephemeral_1h_input_tokens > 0
    assert cached.usage.cache_creation.ephemeral_5m_input_tokens == 0


async def test_auth_styles_are_recorded_and_missing_auth_is_a_401() -> None:
    async with AnthropicServer(lambda _body: Reply([text("ok")])) as server:
        async with client(server) as sdk:
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
            await sdk.messages.create(
                model=MODEL,
                max_tokens=8,
                messages=HELLO,
                extra_headers={"Authorization": anthropic.omit, "X-Api-Key": "sk-header"},
            )
            with pytest.raises(anthropic.AuthenticationError) as info:
                await sdk.messages.create(
                    model=MODEL,
                    max_tokens=8,
                    messages=HELLO,
                    extra_headers={"Authorization": anthropic.omit},
                )
        async with anthropic.AsyncAnthropic(
            auth_token="oauth-token", base_url=server.base_url
        ) as sdk:
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    sdk_default, header_key, missing, token = server.requests
    # anthropic 2.12 sends the api_key as a bearer token, not as x-api-key.
    assert (sdk_default.auth_style, sdk_default.api_key) == ("bearer", KEY)
    assert sdk_default.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in sdk_default.headers
    assert sdk_default.headers["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    assert (header_key.auth_style, header_key.api_key) == ("x-api-key", "sk-header")
    assert (missing.auth_style, missing.status, missing.item) == (None, 401, None)
    assert info.value.type == "authentication_error"
    assert (token.auth_style, token.api_key) == ("bearer", "oauth-token")


async def test_exhausted_script_fails_loudly_without_sdk_retries() -> None:
    async with AnthropicServer([Reply([text("only one")])]) as server, client(server) as sdk:
        await sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
        with pytest.raises(anthropic.InternalServerError, match="script ran out") as info:
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert info.value.status_code == 500
    assert [r.status for r in server.requests] == [200, 500]
    assert server.requests[1].item is None


async def test_a_raising_script_callable_fails_loudly() -> None:
    def script(body: dict[str, Any]) -> Reply:
        raise LookupError(f"no reply scripted for {len(body['messages'])} messages")

    async with AnthropicServer(script) as server, client(server) as sdk:
        with pytest.raises(anthropic.InternalServerError, match="LookupError: no reply"):
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    (recorded,) = server.requests  # not retried
    assert isinstance(recorded.error, LookupError) and server.errors == [recorded.error]


async def test_malformed_conversations_get_the_real_400s() -> None:
    unanswered: list[Any] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [tool_use("bash", {"cmd": "ls"}, "toolu_9")]},
        {"role": "user", "content": [text("forgot the result")]},
    ]
    orphan: list[Any] = [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}],
        }
    ]
    marked = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    too_many: list[Any] = [{"role": "user", "content": [marked] * 5}]
    async with AnthropicServer([Reply([text("ok")])]) as server, client(server) as sdk:
        for messages, fragment in [
            (unanswered, "`tool_use` ids were found without `tool_result` blocks"),
            (orphan, "unexpected `tool_use_id`"),
            (too_many, "A maximum of 4 blocks with cache_control"),
        ]:
            with pytest.raises(anthropic.BadRequestError, match=fragment):
                await sdk.messages.create(model=MODEL, max_tokens=8, messages=messages)
        answered = [
            *unanswered[:2],
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "a.py"}],
            },
        ]
        message = await sdk.messages.create(model=MODEL, max_tokens=8, messages=answered)
    assert message.content[0].type == "text"
    assert [r.status for r in server.requests] == [400, 400, 400, 200]


async def test_callable_script_drives_a_multi_turn_tool_loop() -> None:
    def script(body: dict[str, Any]) -> Reply:
        turn = len(body["messages"]) // 2
        if turn < 3:
            return Reply([tool_use("step", {"n": turn})], "tool_use")
        return Reply([text(f"finished after {turn} tools")])

    messages: list[MessageParam] = [{"role": "user", "content": "start"}]
    async with AnthropicServer(script) as server, client(server) as sdk:
        while True:
            async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=messages) as stream:
                message = await stream.get_final_message()
            messages.append({"role": "assistant", "content": message.content})
            if message.stop_reason != "tool_use":
                break
            call = message.content[0]
            assert call.type == "tool_use"
            result: ToolResultBlockParam = {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": "done",
            }
            messages.append({"role": "user", "content": [result]})
    final = message.content[0]
    assert final.type == "text" and final.text == "finished after 3 tools"
    assert len(server.requests) == 4 and server.remaining is None


async def test_hang_until_the_client_cancels() -> None:
    hang = Hang()
    async with AnthropicServer([hang]) as server, client(server) as sdk:
        events: list[str] = []

        async def consume() -> None:
            async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
                async for event in stream:
                    events.append(event.type)

        task = asyncio.create_task(consume())
        await asyncio.wait_for(server.hung.wait(), 5)
        assert not server.disconnected.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert hang.reached.is_set() and hang.disconnected.is_set()
    assert server.requests[0].status == 200


async def test_stopping_the_server_releases_a_hang_without_flagging_a_disconnect() -> None:
    server = AnthropicServer([Hang()])
    async with server, client(server, max_retries=0) as sdk:
        task = asyncio.create_task(sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO))
        await asyncio.wait_for(server.hung.wait(), 5)
        await server.stop()
        with pytest.raises(anthropic.APIError):
            await task
    assert not server.disconnected.is_set()


async def test_unknown_path_is_an_api_shaped_404() -> None:
    async with AnthropicServer([]) as server, client(server) as sdk:
        with pytest.raises(anthropic.NotFoundError) as info:
            await sdk.models.retrieve("claude-test-1")
    assert info.value.type == "not_found_error"
    assert server.requests[0].method == "GET"


def test_in_thread_serves_synchronous_callers() -> None:
    server = AnthropicServer([Reply([text("from a thread")]), Hang()])
    with (
        server.in_thread(),
        anthropic.Anthropic(api_key=KEY, base_url=server.base_url, max_retries=0) as sdk,
    ):
        message = sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert message.content[0].type == "text" and message.content[0].text == "from a thread"
    assert server.requests[0].headers["x-stainless-async"] == "false"
    with pytest.raises(RuntimeError):
        _ = server.base_url


async def test_in_thread_signals_reach_another_loop() -> None:
    hang = Hang()
    server = AnthropicServer([hang])
    with server.in_thread():
        async with client(server) as sdk:
            task = asyncio.create_task(
                sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
            )
            await asyncio.wait_for(hang.reached.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(hang.disconnected.wait(), 5)
    assert server.disconnected.wait_blocking(0)
