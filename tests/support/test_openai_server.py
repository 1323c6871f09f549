"""The scripted OpenAI server, driven by the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.support.openai_server import (
    Fail,
    Hang,
    MidStreamError,
    OpenAIItem,
    OpenAIServer,
    Reply,
)

MODEL = "gpt-test"
KEY = "sk-openai-test"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def client(server: OpenAIServer, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", **kwargs)


def accumulate(chunks: list[ChatCompletionChunk]) -> tuple[str, dict[int, dict[str, str]], str]:
    """Assemble content and tool calls from deltas, as an agent loop has to."""
    content = ""
    calls: dict[int, dict[str, str]] = {}
    finish = ""
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            content += delta.content or ""
            for call in delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.id:
                    slot["id"] = call.id
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    return content, calls, finish


async def test_stream_assembles_content_tool_calls_and_usage_chunk() -> None:
    reply = Reply(
        "I'll read both files.",
        [
            {"name": "read", "arguments": {"path": "a.py"}},
            {"id": "call_given", "name": "read", "arguments": '{"path": "b.py"}'},
        ],
    )
    async with OpenAIServer([reply]) as server, client(server) as sdk:
        stream = await sdk.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    content, calls, finish = accumulate(chunks)
    assert content == "I'll read both files."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    assert finish == "tool_calls"
    assert calls[0]["id"].startswith("call_") and calls[1]["id"] == "call_given"
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"path": "a.py"},
        {"path": "b.py"},
    ]
    assert all(c["name"] == "read" for c in calls.values())
    argument_deltas = [
        call
        for c in chunks
        for choice in c.choices
        for call in choice.delta.tool_calls or []
        if call.function is not None and call.function.arguments
    ]
    assert len(argument_deltas) >= 4  # two calls, arguments split across deltas
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    (recorded,) = server.requests
    assert recorded.path == "/v1/chat/completions" and recorded.auth_style == "bearer"
    assert recorded.api_key == KEY and recorded.headers["authorization"] == f"Bearer {KEY}"


async def test_raw_stream_ends_with_done_and_has_no_usage_chunk_unless_asked() -> None:
    async with OpenAIServer([Reply("hi there")]) as server:
        body = {"model": MODEL, "messages": HELLO, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.base_url}/v1/chat/completions", json=body, headers=headers) as r,
        ):
            assert r.headers["Content-Type"].startswith("text/event-stream")
            raw = await r.text()
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    assert frames[-1] == "data: [DONE]"
    payloads = [json.loads(f[len("data: ") :]) for f in frames[:-1]]
    assert all("usage" not in p and len(p["choices"]) == 1 for p in payloads)
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


async def test_create_non_streaming() -> None:
    reply = Reply(None, [{"name": "bash", "arguments": {"cmd": "ls"}}], usage={"prompt_tokens": 11})
    script: list[OpenAIItem] = [reply, Reply("plain", finish_reason="length")]
    async with OpenAIServer(script) as server, client(server) as sdk:
        tools = await sdk.chat.completions.create(model=MODEL, messages=HELLO)
        plain = await sdk.chat.completions.create(model=MODEL, messages=HELLO)
    choice = tools.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "bash"
    assert json.loads(call.function.arguments) == {"cmd": "ls"}
    assert tools.usage is not None and tools.usage.prompt_tokens == 11
    assert plain.choices[0].message.content == "plain"
    assert plain.choices[0].finish_reason == "length"
    assert plain.choices[0].message.tool_calls is None


async def test_rate_limited_with_retry_after_then_reply() -> None:
    script: list[OpenAIItem] = [
        Fail(429, "requests", code="rate_limit_exceeded", headers={"retry-after": "0.01"}),
        Reply("ok"),
    ]
    async with OpenAIServer(script) as server, client(server) as sdk:
        completion = await sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content == "ok"
    assert [r.status for r in server.requests] == [429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]


async def test_retries_exhausted_raise_the_sdk_error_types() -> None:
    limited = Fail(429, "tokens", code="rate_limit_exceeded", headers={"retry-after-ms": "1"})
    broken = Fail(500, "server_error", headers={"retry-after-ms": "1"})
    async with OpenAIServer([limited] * 3 + [broken] * 2) as server:
        async with client(server, max_retries=2) as sdk:
            with pytest.raises(openai.RateLimitError) as limited_info:
                await sdk.chat.completions.create(model=MODEL, messages=HELLO)
        async with client(server, max_retries=1) as sdk:
            with pytest.raises(openai.InternalServerError) as broken_info:
                await sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert limited_info.value.code == "rate_limit_exceeded" and limited_info.value.type == "tokens"
    assert limited_info.value.status_code == 429
    assert broken_info.value.type == "server_error"
    assert [r.status for r in server.requests] == [429, 429, 429, 500, 500]


async def test_mid_stream_error_raises_api_error() -> None:
    async with OpenAIServer([MidStreamError(after_chunks=2)]) as server, client(server) as sdk:
        received = ""
        stream = await sdk.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        with pytest.raises(openai.APIError) as info:
            async for chunk in stream:
                received += chunk.choices[0].delta.content or ""
    err = info.value
    assert type(err) is openai.APIError  # not an APIStatusError: the HTTP status was 200
    assert err.type == "server_error"
    assert isinstance(err.body, dict) and err.body["type"] == "server_error"
    assert received == "partial 0 partial 1 "
    assert len(server.requests) == 1


async def test_automatic_prompt_caching_reports_cached_tokens() -> None:
    system: ChatCompletionMessageParam = {"role": "system", "content": "You are careful. " * 50}
    first_turn = [system, *HELLO]
    second_turn: list[ChatCompletionMessageParam] = [
        *first_turn,
        {"role": "assistant", "content": "Hi! What next?"},
        {"role": "user", "content": "fix the bug"},
    ]
    script = lambda _body: Reply("ok")  # noqa: E731
    async with OpenAIServer(script) as server, client(server) as sdk:
        first = await sdk.chat.completions.create(model=MODEL, messages=first_turn)
        second = await sdk.chat.completions.create(model=MODEL, messages=second_turn)
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == first.usage.prompt_tokens
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    async with OpenAIServer(script, min_cacheable_tokens=1024) as server, client(server) as sdk:
        await sdk.chat.completions.create(model=MODEL, messages=first_turn)
        short = await sdk.chat.completions.create(model=MODEL, messages=second_turn)
    assert short.usage is not None and short.usage.prompt_tokens_details is not None
    assert short.usage.prompt_tokens_details.cached_tokens == 0


async def test_unanswered_tool_calls_are_rejected_like_the_real_api() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
    unanswered: list[Any] = [*HELLO, {"role": "assistant", "tool_calls": [call]}, *HELLO]
    orphan: list[Any] = [*HELLO, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]
    answered: list[Any] = [
        *unanswered[:2],
        {"role": "tool", "tool_call_id": "call_1", "content": "a"},
    ]
    async with OpenAIServer([Reply("ok")]) as server, client(server) as sdk:
        with pytest.raises(openai.BadRequestError, match="did not have response messages: call_1"):
            await sdk.chat.completions.create(model=MODEL, messages=unanswered)
        with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding"):
            await sdk.chat.completions.create(model=MODEL, messages=orphan)
        completion = await sdk.chat.completions.create(model=MODEL, messages=answered)
    assert completion.choices[0].message.content == "ok"
    assert [r.status for r in server.requests] == [400, 400, 200]


async def test_missing_auth_wrong_path_and_exhausted_script() -> None:
    async with OpenAIServer([]) as server:
        async with client(server) as sdk:
            with pytest.raises(openai.AuthenticationError, match="didn't provide an API key"):
                await sdk.chat.completions.create(
                    model=MODEL, messages=HELLO, extra_headers={"Authorization": openai.omit}
                )
            with pytest.raises(openai.InternalServerError, match="script ran out"):
                await sdk.chat.completions.create(model=MODEL, messages=HELLO)
        async with openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url) as no_v1:
            with pytest.raises(openai.NotFoundError, match="Invalid URL"):
                await no_v1.chat.completions.create(model=MODEL, messages=HELLO)
    assert [(r.status, r.auth_style) for r in server.requests] == [
        (401, None),
        (500, "bearer"),
        (404, "bearer"),
    ]


async def test_hang_until_the_client_cancels() -> None:
    hang = Hang()
    async with OpenAIServer([hang]) as server, client(server) as sdk:
        received: list[ChatCompletionChunk] = []

        async def consume() -> None:
            stream = await sdk.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
            async for chunk in stream:
                received.append(chunk)

        task = asyncio.create_task(consume())
        await asyncio.wait_for(hang.reached.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert hang.disconnected.is_set()


def test_in_thread_serves_synchronous_callers() -> None:
    server = OpenAIServer([Reply("threaded")])
    with (
        server.in_thread(),
        openai.OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1") as sdk,
    ):
        completion = sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content == "threaded"
    assert len(server.requests) == 1
