"""The scripted Gemini API server, driven by Google's ``google-genai`` SDK (the Python twin of
the ``@google/genai`` that Gemini CLI uses): its stream parser, function-call accessors,
retries and error mapping must behave as against the real API."""

from __future__ import annotations

import json

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from tests.support.gemini_server import (
    Drop,
    Fail,
    GeminiItem,
    GeminiServer,
    Reply,
    function_call,
    text,
)

# The SDK subclasses aiohttp's ClientSession, which aiohttp deprecates: its business.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession")

MODEL = "gemini-test"
KEY = "gemini-test-key"


def client(server: GeminiServer, attempts: int = 1) -> genai.Client:
    retry = types.HttpRetryOptions(attempts=attempts, initial_delay=0.001, max_delay=0.001)
    options = types.HttpOptions(base_url=server.base_url, retry_options=retry)
    return genai.Client(api_key=KEY, http_options=options)


async def test_stream_assembles_text_and_a_function_call() -> None:
    reply = Reply([text("Writing the file now."), function_call("write_file", {"path": "a"})])
    async with GeminiServer([reply]) as server:
        stream = await client(server).aio.models.generate_content_stream(
            model=MODEL, contents="hello"
        )
        chunks = [chunk async for chunk in stream]
    assert len(chunks) >= 3  # the text in pieces, the call whole in its own chunk
    assert "".join(c.text or "" for c in chunks[:-1]) == "Writing the file now."
    (call,) = chunks[-1].function_calls or []
    assert call.name == "write_file" and call.args == {"path": "a"}
    last = chunks[-1].candidates
    assert last is not None and last[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.candidates_token_count and usage.prompt_token_count
    (recorded,) = server.requests
    assert recorded.path == f"/v1/models/{MODEL}:streamGenerateContent"
    assert recorded.auth_style == "x-goog-api-key" and recorded.api_key == KEY


async def test_raw_stream_is_sse_data_frames_without_a_terminal_event() -> None:
    async with GeminiServer([Reply([text("hi")])]) as server:
        url = f"{server.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, headers={"x-goog-api-key": KEY}) as response,
        ):
            assert response.headers["Content-Type"].startswith("text/event-stream")
            raw = await response.text()
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    last = json.loads(frames[-1][len("data: ") :])
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["candidates"][0]["content"]["role"] == "model"


async def test_non_streaming_and_count_tokens() -> None:
    async with GeminiServer([Reply([text("whole answer")])]) as server:
        sdk = client(server).aio.models
        whole = await sdk.generate_content(model=MODEL, contents="hello")
        counted = await sdk.count_tokens(model=MODEL, contents="hello")
    assert whole.text == "whole answer"
    assert counted.total_tokens is not None and counted.total_tokens > 0
    assert server.remaining == 0  # countTokens consumes no script item


async def test_function_response_must_answer_the_previous_turn() -> None:
    orphan = [
        types.Content(role="user", parts=[types.Part.from_text(text="hello")]),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="write_file", response={"ok": 1})],
        ),
    ]
    async with GeminiServer([Reply([text("never")])]) as server:
        with pytest.raises(errors.ClientError) as info:
            await client(server).aio.models.generate_content(model=MODEL, contents=orphan)
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "function response turn" in str(info.value.message)
    assert server.remaining == 1


async def test_fail_is_retried_then_answered_and_mapped_to_sdk_errors() -> None:
    script: list[GeminiItem] = [
        Fail(429, "RESOURCE_EXHAUSTED", "Quota exceeded"),
        Reply([text("after retry")]),
        Fail(503, "UNAVAILABLE", "The model is overloaded."),
    ]
    async with GeminiServer(script) as server:
        retried = await client(server, attempts=2).aio.models.generate_content(
            model=MODEL, contents="hello"
        )
        with pytest.raises(errors.ServerError) as info:
            await client(server).aio.models.generate_content(model=MODEL, contents="hello")
    assert retried.text == "after retry"
    assert info.value.code == 503 and info.value.status == "UNAVAILABLE"
    assert [r.status for r in server.requests] == [429, 200, 503]


async def test_drop_ends_the_stream_before_the_finish_reason() -> None:
    reply = Reply([text("a long answer cut short"), function_call("write_file", {"p": 1})])
    async with GeminiServer([Drop(reply, after_frames=2)]) as server:
        stream = await client(server).aio.models.generate_content_stream(
            model=MODEL, contents="hello"
        )
        chunks = [chunk async for chunk in stream]
    assert len(chunks) == 2
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks)
    assert not any(c.function_calls for c in chunks)


async def test_missing_key_is_refused() -> None:
    async with GeminiServer([]) as server:
        url = f"{server.base_url}/v1beta/models/{MODEL}:generateContent"
        async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
            assert response.status == 403
            error = (await response.json())["error"]
    assert error["status"] == "PERMISSION_DENIED" and error["code"] == 403
