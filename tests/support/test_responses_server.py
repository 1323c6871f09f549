"""The scripted Responses API server, driven by the official ``openai`` SDK.

These pin down that the stand-in is faithful enough for the SDK's event parser, its
``.stream()`` accumulator, retry logic and error mapping — and so for Codex, which reads
the same events (it fails a turn whose stream ends without ``response.completed``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.responses import ResponseInputParam, ResponseStreamEvent

from tests.support.responses_server import (
    Drop,
    Fail,
    Hang,
    MidStreamError,
    Reply,
    ResponsesItem,
    ResponsesServer,
    custom_tool_call,
    function_call,
    message,
)

MODEL = "gpt-5.3-codex"
KEY = "sk-test"
HELLO: ResponseInputParam = [{"role": "user", "content": "hello"}]
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"


def client(server: ResponsesServer, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", **kwargs)


async def test_raw_stream_is_the_real_event_sequence() -> None:
    reply = Reply([message("Hi."), function_call("read", {"path": "a.py"}, "call_1")])
    async with ResponsesServer([reply]) as server:
        body = {"model": MODEL, "input": HELLO, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.base_url}/v1/responses", json=body, headers=headers) as r,
        ):
            assert r.headers["Content-Type"].startswith("text/event-stream")
            raw = await r.text()
    frames = [f.split("\n") for f in raw.split("\n\n") if f]
    assert all(len(f) == 2 and f[0].startswith("event: ") for f in frames)
    events = [json.loads(data[len("data: ") :]) for _, data in frames]
    assert [f[0][len("event: ") :] for f in frames] == [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert (
        kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 2
    )
    created, completed = events[0]["response"], events[-1]["response"]
    assert created["id"] == completed["id"] and created["id"].startswith("resp_")
    assert created["status"] == "in_progress" and created["output"] == []
    assert completed["status"] == "completed" and completed["model"] == MODEL
    usage = completed["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    text, call = completed["output"]
    assert text["content"][0]["text"] == "Hi." and call["call_id"] == "call_1"


async def test_sdk_stream_assembles_text_function_and_custom_tool_calls() -> None:
    reply = Reply(
        [
            message("I'll add the file."),
            function_call("exec_command", {"cmd": "ls"}),
            custom_tool_call("apply_patch", PATCH, "call_patch"),
        ]
    )
    async with ResponsesServer([reply]) as server, client(server) as sdk:
        stream = await sdk.responses.create(model=MODEL, input=HELLO, stream=True)
        events: list[ResponseStreamEvent] = [event async for event in stream]
    kinds = [e.type for e in events]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "I'll add the file." and kinds.count("response.output_text.delta") >= 2
    arguments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(arguments) >= 2 and json.loads("".join(arguments)) == {"cmd": "ls"}
    patch = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    assert len(patch) >= 2 and "".join(patch) == PATCH
    done = events[-1]
    assert done.type == "response.completed"
    message_item, call, custom = done.response.output
    assert message_item.type == "message" and call.type == "function_call"
    assert call.name == "exec_command" and call.call_id.startswith("call_")
    assert custom.type == "custom_tool_call" and custom.input == PATCH
    assert custom.call_id == "call_patch" and custom.name == "apply_patch"
    assert done.response.usage is not None and done.response.usage.output_tokens > 0
    (recorded,) = server.requests
    assert recorded.path == "/v1/responses" and recorded.api_key == KEY


async def test_sdk_stream_helper_gives_the_final_response() -> None:
    async with (
        ResponsesServer([Reply([message("streamed")])]) as server,
        client(server) as sdk,
        sdk.responses.stream(model=MODEL, input=HELLO) as stream,
    ):
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == "streamed" == final.output_text
    assert final.status == "completed" and final.usage is not None


async def test_non_streaming_and_cached_tokens() -> None:
    answer: ResponseInputParam = [
        *HELLO,
        {"type": "function_call", "call_id": "call_1", "name": "ls", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.py"},
    ]
    script: list[ResponsesItem] = [Reply([function_call("ls", {})]), Reply([message("ok")])]
    async with ResponsesServer(script) as server, client(server) as sdk:
        first = await sdk.responses.create(model=MODEL, input=HELLO, instructions="Be brief.")
        second = await sdk.responses.create(model=MODEL, input=answer, instructions="Be brief.")
    (call,) = first.output
    assert call.type == "function_call" and call.name == "ls" and json.loads(call.arguments) == {}
    assert second.output_text == "ok"
    assert first.usage is not None and second.usage is not None
    assert first.usage.input_tokens_details.cached_tokens == 0
    assert second.usage.input_tokens_details.cached_tokens == first.usage.input_tokens


async def test_orphan_tool_output_is_rejected_like_the_real_api() -> None:
    orphan: ResponseInputParam = [
        *HELLO,
        {"type": "custom_tool_call_output", "call_id": "call_9", "output": "x"},
    ]
    async with ResponsesServer([Reply([message("never")])]) as server, client(server) as sdk:
        with pytest.raises(openai.BadRequestError, match="call_id call_9"):
            await sdk.responses.create(model=MODEL, input=orphan)
    assert server.remaining == 1


async def test_fail_is_retried_then_answered_and_exhausted_retries_raise() -> None:
    script: list[ResponsesItem] = [
        Fail(429, "requests", code="rate_limit_exceeded", headers={"retry-after-ms": "1"}),
        Reply([message("after retry")]),
        Fail(500, "server_error", headers={"retry-after-ms": "1"}),
        Fail(500, "server_error", headers={"retry-after-ms": "1"}),
    ]
    async with ResponsesServer(script) as server:
        async with client(server) as sdk:
            retried = await sdk.responses.create(model=MODEL, input=HELLO)
        async with client(server, max_retries=1) as sdk:
            with pytest.raises(openai.InternalServerError) as info:
                await sdk.responses.create(model=MODEL, input=HELLO, stream=True)
    assert retried.output_text == "after retry"
    assert info.value.type == "server_error"
    assert [r.status for r in server.requests] == [429, 200, 500, 500]


async def test_drop_cuts_the_stream_before_response_completed() -> None:
    reply = Reply([custom_tool_call("apply_patch", PATCH)])
    async with ResponsesServer([Drop(reply, after_frames=4)]) as server, client(server) as sdk:
        stream = await sdk.responses.create(model=MODEL, input=HELLO, stream=True)
        kinds = [event.type async for event in stream]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
    ]
    async with ResponsesServer([Drop(reply, abort=True)]) as server, client(server) as sdk:
        with pytest.raises(openai.APIError):
            async with sdk.responses.stream(model=MODEL, input=HELLO) as helper:
                await helper.get_final_response()


async def test_mid_stream_failure_arrives_as_response_failed() -> None:
    async with ResponsesServer([MidStreamError(after_items=1)]) as server, client(server) as sdk:
        stream = await sdk.responses.create(model=MODEL, input=HELLO, stream=True)
        events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.error is not None and last.response.error.code == "server_error"
    assert [o.type for o in last.response.output] == ["message"]


async def test_missing_auth_and_wrong_path() -> None:
    async with ResponsesServer([]) as server:
        async with client(server) as sdk:
            with pytest.raises(openai.AuthenticationError, match="didn't provide an API key"):
                await sdk.responses.create(
                    model=MODEL, input=HELLO, extra_headers={"Authorization": openai.omit}
                )
        async with openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url) as no_v1:
            with pytest.raises(openai.NotFoundError, match="Invalid URL"):
                await no_v1.responses.create(model=MODEL, input=HELLO)


async def test_hang_until_the_client_cancels() -> None:
    hang = Hang()
    async with ResponsesServer([hang]) as server, client(server) as sdk:
        received: list[str] = []

        async def consume() -> None:
            stream = await sdk.responses.create(model=MODEL, input=HELLO, stream=True)
            async for event in stream:
                received.append(event.type)

        task = asyncio.create_task(consume())
        await asyncio.wait_for(hang.reached.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert hang.disconnected.is_set()
    assert received in ([], ["response.created", "response.in_progress"])
