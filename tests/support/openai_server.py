"""A scripted loopback server speaking the OpenAI chat-completions wire format.

Point the official SDK at it (``AsyncOpenAI(api_key=..., base_url=server.base_url + "/v1")``)
so code runs against the real client, stream parser and retry logic without a network.
Route: ``POST /v1/chat/completions`` (streaming and not); anything else gets an
API-shaped 404. Auth is ``Authorization: Bearer <key>`` only, as on the real API.

Script items, one consumed per request (a sequence, or a callable
``(request_json) -> item``):

- ``Reply(content=None, tool_calls=[], finish_reason=None, usage=None)``: one assistant
  message. ``tool_calls`` items are ``{"id"?, "name", "arguments": dict | str}`` (ids are
  generated when missing); ``finish_reason`` defaults to ``"tool_calls"`` when there are
  tool calls, else ``"stop"``. Streamed as ``chat.completion.chunk`` frames: a first chunk
  with the role, the content in several chunks, each tool call as ``delta.tool_calls``
  (index, id, type and name first, then ``function.arguments`` in several chunks), a
  chunk with ``finish_reason``, a usage chunk with empty ``choices`` when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``. ``usage=None`` computes
  usage (below); a dict overrides the computed keys it names.
- ``Fail(status, error_type, message="", headers={}, code=None)``: an HTTP error shaped
  ``{"error": {"message", "type", "param", "code"}}`` (e.g. 429 with ``retry-after``).
- ``MidStreamError(after_chunks=1, error_type="server_error", message="")``: the stream
  sends the role chunk and ``after_chunks`` content chunks, then ``data: {"error": …}``
  and ends without ``[DONE]``. For a non-streaming request it is an HTTP 500.
- ``Hang()``: send the role chunk and wait for the client to disconnect.
- ``Reset()``: close the connection without an answer.
- ``Drop(Reply(...), after_frames=3, abort=False)``: the reply's chunks (the role chunk is
  frame 1) cut before ``[DONE]``; for a non-streaming request the connection closes
  without an answer.

Requests are validated where agent code goes wrong: ``model`` / ``messages`` present, and
every assistant ``tool_calls`` entry answered by a following ``tool`` message (400
``invalid_request_error``; no script item is consumed).

Usage follows the real API's automatic prompt caching: the prompt (each tool, each
message) is estimated at canonical JSON length / 4 tokens, every message boundary is a
cacheable prefix remembered per model, and ``prompt_tokens_details.cached_tokens`` is the
longest remembered prefix of this prompt (at least ``min_cacheable_tokens`` long).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from aiohttp import web

from tests.support.scripted import (
    Drop,
    Fail,
    Handler,
    Hang,
    Json,
    Recorded,
    Reset,
    ScriptedServer,
    Segment,
    estimate_tokens,
    new_id,
    split_text,
)

__all__ = [
    "Drop",
    "Fail",
    "Hang",
    "MidStreamError",
    "OpenAIBase",
    "OpenAIItem",
    "OpenAIServer",
    "Recorded",
    "Reply",
    "Reset",
    "prompt_segments",
]

ItemT = TypeVar("ItemT")

_FINGERPRINT = "fp_scripted"

_DEFAULT_MESSAGE = {
    "invalid_request_error": "Invalid request.",
    "requests": "Rate limit reached for requests. Please try again later.",
    "tokens": "Rate limit reached for tokens. Please try again later.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and "
    "billing details.",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


@dataclass
class Reply:
    """One assistant message: text and/or tool calls ``{"id"?, "name", "arguments"}``."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None  # stop | tool_calls | length | content_filter
    usage: dict[str, Any] | None = None


@dataclass
class MidStreamError:
    """The stream fails after ``after_chunks`` content chunks with an in-band error."""

    after_chunks: int = 1
    error_type: str = "server_error"
    message: str = ""


OpenAIItem: TypeAlias = Reply | Fail | MidStreamError | Hang | Reset | Drop[Reply]


def prompt_segments(body: Json) -> list[Segment]:
    """Tools then messages; every boundary is cacheable (OpenAI caches automatically)."""
    tools = [Segment({"tool": tool}, "auto") for tool in body.get("tools") or []]
    messages = [Segment({"message": m}, "auto") for m in body.get("messages") or []]
    return tools + messages


def _tool_call_problem(messages: Sequence[Any]) -> str | None:
    """The real API's 400s for unanswered tool calls and orphan tool messages."""
    pending: list[str] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            pending.remove(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}"
            )
        if role == "assistant":
            pending = [
                str(call.get("id"))
                for call in message.get("tool_calls") or []
                if isinstance(call, dict)
            ]
    return None


class OpenAIBase(ScriptedServer[ItemT]):
    """What the chat-completions and Responses servers share: OpenAI's error shape, Bearer
    auth, and automatic caching (no breakpoints, so no lookback limit; the real API's
    ``min_cacheable_tokens`` is 1024)."""

    accepted_auth = ("bearer",)
    server_error_type = "server_error"

    cache_lookback = None

    def error_response(
        self,
        status: int,
        error_type: str,
        message: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> web.Response:
        error = {
            "message": message or _DEFAULT_MESSAGE.get(error_type, error_type),
            "type": error_type,
            "param": param,
            "code": code,
        }
        return web.json_response(
            {"error": error},
            status=status,
            headers={"x-request-id": new_id("req_"), **(headers or {})},
        )

    def missing_auth_response(self) -> web.Response:
        return self.error_response(401, "invalid_request_error", _NO_KEY)

    def not_found_response(self, request: web.Request) -> web.Response:
        return self.error_response(
            404, "invalid_request_error", f"Invalid URL ({request.method} {request.path})"
        )

    def missing_parameter(self, body: Json, names: Sequence[str]) -> web.Response | None:
        """The API's 400 for the first of ``names`` absent from the request body."""
        for name in names:
            if name not in body:
                return self.error_response(
                    400,
                    "invalid_request_error",
                    f"Missing required parameter: '{name}'.",
                    code="missing_required_parameter",
                    param=name,
                )
        return None


class OpenAIServer(OpenAIBase[OpenAIItem]):
    """Scripted ``/v1/chat/completions`` with automatic-prompt-caching usage."""

    def routes(self) -> dict[str, Handler]:
        return {"/v1/chat/completions": self._completions}

    def _problem(self, body: Json) -> web.Response | None:
        if not self.validate:
            return None
        missing = self.missing_parameter(body, ("model", "messages"))
        if missing is not None:
            return missing
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self.error_response(
                400,
                "invalid_request_error",
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                code="empty_array",
                param="messages",
            )
        problem = _tool_call_problem(messages)
        if problem is not None:
            return self.error_response(400, "invalid_request_error", problem, param="messages")
        return None

    # -- route -----------------------------------------------------------------------

    async def _completions(self, request: web.Request, record: Recorded) -> web.StreamResponse:
        body: Json = record.body
        problem = self._problem(body)
        if problem is not None:
            return problem
        streaming = body.get("stream") is True
        item = self.take_or_answer(record, streaming=streaming)
        if isinstance(item, web.Response):
            return item
        if isinstance(item, MidStreamError) and not streaming:
            return self.error_response(500, item.error_type, item.message)

        if isinstance(item, Drop):
            reply = item.reply
        else:
            reply = item if isinstance(item, Reply) else Reply()
        calls = self._complete(reply.tool_calls)
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        usage = self._usage(body, reply, calls)
        base: Json = {
            "id": new_id("chatcmpl-"),
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": _FINGERPRINT,
        }
        headers = {"x-request-id": new_id("req_")}
        if not streaming:
            if isinstance(item, Hang):
                await self.hang(item)
                return self.error_response(500, "server_error", "scripted server stopped")
            message: Json = {
                "role": "assistant",
                "content": reply.content,
                "refusal": None,
                "annotations": [],
            }
            if calls:
                message["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": c["function"]} for c in calls
                ]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            completion = {
                **base,
                "object": "chat.completion",
                "choices": [choice],
                "usage": usage,
                "service_tier": "default",
            }
            return web.json_response(completion, headers=headers)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {**base, "object": "chat.completion.chunk", "service_tier": "default"}

        def chunk(delta: Json, finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            data = {**base, "choices": [choice]}
            if include_usage:
                data["usage"] = None
            return self.sse_frame(data)

        response = await self.open_stream(request, record, headers)
        opening = "" if reply.content or isinstance(item, Hang | MidStreamError) else None
        first = chunk({"role": "assistant", "content": opening, "refusal": None})
        if isinstance(item, Hang):
            await self.write_frames(response, [first])
            await self.hang(item)
            return await self.finish(response)
        if isinstance(item, MidStreamError):
            pieces = [f"partial {n} " for n in range(item.after_chunks)]
            error = {
                "message": item.message or _DEFAULT_MESSAGE.get(item.error_type, item.error_type),
                "type": item.error_type,
                "param": None,
                "code": None,
            }
            frames = [
                first,
                *(chunk({"content": piece}) for piece in pieces),
                self.sse_frame({"error": error}),
            ]
        else:
            frames = [first, *self._delta_frames(chunk, reply.content, calls)]
            frames.append(chunk({}, finish))
            if include_usage:
                frames.append(self.sse_frame({**base, "choices": [], "usage": usage}))
            if isinstance(item, Drop):
                return await self.cut(request, response, frames, item)
            frames.append(self.sse_frame("[DONE]"))
        await self.write_frames(response, frames)
        return await self.finish(response)

    # -- rendering -------------------------------------------------------------------

    @staticmethod
    def _complete(tool_calls: Sequence[Mapping[str, Any]]) -> list[Json]:
        """Wire-shaped calls: generated ids, arguments JSON-encoded when given as a dict."""
        calls = []
        for call in tool_calls:
            arguments = call.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            calls.append(
                {
                    "id": call.get("id") or new_id("call_"),
                    "function": {"name": call["name"], "arguments": arguments},
                }
            )
        return calls

    def _delta_frames(
        self, chunk: Callable[[Json], bytes], content: str | None, calls: Sequence[Json]
    ) -> Iterator[bytes]:
        for piece in split_text(content or "", self.chunks):
            yield chunk({"content": piece})
        for index, call in enumerate(calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            for piece in split_text(call["function"]["arguments"], self.chunks):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})

    def _usage(self, body: Json, reply: Reply, calls: Sequence[Json]) -> Json:
        cached = self.cache.account(str(body.get("model")), prompt_segments(body))
        completion = max(1, estimate_tokens({"content": reply.content, "tool_calls": calls}))
        usage: Json = {
            "prompt_tokens": cached.total,
            "completion_tokens": completion,
            "total_tokens": cached.total + completion,
            "prompt_tokens_details": {"cached_tokens": cached.read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        usage.update(reply.usage or {})
        return usage
