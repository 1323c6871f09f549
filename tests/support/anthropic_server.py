"""A scripted loopback server speaking the Anthropic Messages API wire format.

Point the official SDK at it (``AsyncAnthropic(api_key=..., base_url=server.base_url)``)
so agent code runs against the real client, streaming parser and retry logic without a
network. Routes: ``POST /v1/messages`` (streaming and not) and
``POST /v1/messages/count_tokens``; anything else gets an API-shaped 404.

Script items, one consumed per ``/v1/messages`` request (a sequence, or a callable
``(request_json) -> item``):

- ``Reply(content, stop_reason="end_turn", usage=None, stop_sequence=None)``: a message.
  ``content`` holds Anthropic block dicts (see ``text``, ``tool_use``, ``thinking``);
  tool_use ids are generated when missing. Streamed as ``message_start``, ``ping``, per
  block ``content_block_start`` / ``text_delta`` | ``input_json_delta`` (the input JSON in
  several ``partial_json`` chunks) | ``thinking_delta`` + ``signature_delta`` /
  ``content_block_stop``, then ``message_delta`` and ``message_stop``. With ``usage=None``
  the usage is computed (below); a dict overrides the computed keys it names.
- ``Fail(status, error_type, message="", headers={}, code=None)``: an HTTP error, body
  ``{"type":"error","error":{"type","message"},"request_id"}`` (e.g. 529
  ``overloaded_error``, 429 ``rate_limit_error``, with ``retry-after-ms`` headers).
- ``MidStreamError(after_blocks=0, error_type="overloaded_error", message="")``: the
  stream starts normally, sends ``after_blocks`` complete text blocks, then
  ``event: error`` and ends. For a non-streaming request it is the matching HTTP error.
- ``Hang()``: send ``message_start`` + ``ping`` and wait for the client to disconnect.
- ``Reset()``: close the connection without an answer.
- ``Drop(Reply(...), after_frames=3, abort=False)``: the reply's stream (``message_start``
  and ``ping`` count as frames 1 and 2) cut before ``message_stop``; for a non-streaming
  request the connection closes without an answer.

Requests are validated like the real API in the ways agent code gets wrong: required
fields, the ``anthropic-version`` header, at most 4 ``cache_control`` breakpoints, and
``tool_use`` / ``tool_result`` pairing between consecutive messages (400
``invalid_request_error``; no script item is consumed).

Usage simulates prompt caching: the prompt is segmented in API order (each tool, each
system block, each message content block), every segment estimated at canonical JSON
length / 4 tokens; ``cache_control`` breakpoints (on a tool, a system block, a message
content block, or top-level for "the last block") mark prefixes that are remembered per
model. ``cache_read_input_tokens`` is the longest remembered prefix of this prompt that a
breakpoint finds within the API's 20-block lookback (the breakpoint's own boundary and the
20 before it; see ``PrefixCache``), ``cache_creation_input_tokens`` the rest up to the last
breakpoint, ``input_tokens`` what follows it. Input usage goes in ``message_start``,
``output_tokens`` in ``message_delta``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

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
    "AnthropicItem",
    "AnthropicServer",
    "Drop",
    "Fail",
    "Hang",
    "MidStreamError",
    "Recorded",
    "Reply",
    "Reset",
    "prompt_segments",
    "text",
    "thinking",
    "tool_use",
]

_MAX_BREAKPOINTS = 4

_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

_DEFAULT_MESSAGE = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "This request would exceed the rate limit for your organization. "
    "Please try again later.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


@dataclass
class Reply:
    """One assistant message; ``content`` holds Anthropic content block dicts."""

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"  # end_turn | tool_use | max_tokens | pause_turn | refusal | …
    usage: dict[str, Any] | None = None
    stop_sequence: str | None = None


@dataclass
class MidStreamError:
    """The stream fails after ``after_blocks`` complete text blocks with ``event: error``."""

    after_blocks: int = 0
    error_type: str = "overloaded_error"
    message: str = ""


AnthropicItem: TypeAlias = Reply | Fail | MidStreamError | Hang | Reset | Drop[Reply]


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, input: Mapping[str, Any], id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_use", "name": name, "input": dict(input)}
    if id is not None:
        block["id"] = id
    return block


def thinking(value: str, signature: str = "c2NyaXB0ZWQtc2lnbmF0dXJl") -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": signature}


def _ttl(block: Any) -> str | None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(control, dict):
        return None
    return str(control.get("ttl", "5m"))


def prompt_segments(body: Json) -> list[Segment]:
    """The request's cacheable units in API order: tools, system, then message blocks."""
    segments = [Segment({"tool": tool}, _ttl(tool)) for tool in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str) and system:
        segments.append(Segment({"system": system}))
    elif isinstance(system, list):
        segments.extend(Segment({"system": block}, _ttl(block)) for block in system)
    for message in body.get("messages") or []:
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            segments.extend(
                Segment({"role": role, "index": j, "content": block}, _ttl(block))
                for j, block in enumerate(content)
            )
        else:
            segments.append(Segment({"role": role, "index": 0, "content": content}))
    top = _ttl(body)
    if top is not None and segments:
        segments[-1] = Segment(segments[-1].data, top)
    return segments


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _tool_pairing_problem(messages: Sequence[Any]) -> str | None:
    """The real API's 400s for unanswered tool_use and orphan tool_result blocks."""
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        blocks = _blocks(message)
        if role == "assistant" and i + 1 < len(messages):
            ids = [str(b.get("id")) for b in blocks if b.get("type") == "tool_use"]
            after = messages[i + 1]
            answered = {
                b.get("tool_use_id")
                for b in _blocks(after)
                if b.get("type") == "tool_result" and after.get("role") == "user"
            }
            missing = [x for x in ids if x not in answered]
            if missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )
        if role == "user":
            previous = messages[i - 1] if i > 0 else None
            offered = {
                b.get("id")
                for b in _blocks(previous)
                if b.get("type") == "tool_use"
                and isinstance(previous, dict)
                and previous.get("role") == "assistant"
            }
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in offered:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous message."
                    )
    return None


class AnthropicServer(ScriptedServer[AnthropicItem]):
    """Scripted ``/v1/messages`` + ``/v1/messages/count_tokens`` with prompt-cache usage.

    ``chunks``: how many deltas a text / tool input / thinking block is split into.
    ``min_cacheable_tokens``: the API's minimum cacheable prompt length (0 = no minimum).
    ``validate``: reject malformed requests with the real API's 400s.
    """

    accepted_auth = ("x-api-key", "bearer")

    def routes(self) -> dict[str, Handler]:
        return {"/v1/messages": self._messages, "/v1/messages/count_tokens": self._count_tokens}

    # -- errors ----------------------------------------------------------------------

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
        request_id = new_id("req_")
        error: Json = {
            "type": error_type,
            "message": message or _DEFAULT_MESSAGE.get(error_type, ""),
        }
        if code is not None:
            error["details"] = {"error_code": code}
        return web.json_response(
            {"type": "error", "error": error, "request_id": request_id},
            status=status,
            headers={"request-id": request_id, **(headers or {})},
        )

    def missing_auth_response(self) -> web.Response:
        return self.error_response(401, "authentication_error", "x-api-key header is required")

    def _problem(self, request: web.Request, body: Json, *, needs_max_tokens: bool) -> str | None:
        if not self.validate:
            return None
        if "anthropic-version" not in request.headers:
            return "anthropic-version: header is required"
        required = (
            ("model", "max_tokens", "messages") if needs_max_tokens else ("model", "messages")
        )
        for name in required:
            if name not in body:
                return f"{name}: Field required"
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        found = sum(1 for s in prompt_segments(body) if s.breakpoint is not None)
        if found > _MAX_BREAKPOINTS:
            return (
                f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {found}."
            )
        return _tool_pairing_problem(messages)

    # -- routes ----------------------------------------------------------------------

    async def _count_tokens(self, request: web.Request, record: Recorded) -> web.StreamResponse:
        body: Json = record.body
        problem = self._problem(request, body, needs_max_tokens=False)
        if problem is not None:
            return self.error_response(400, "invalid_request_error", problem)
        usage = self.cache.account(str(body.get("model")), prompt_segments(body), write=False)
        return web.json_response(
            {"input_tokens": max(1, usage.total)}, headers={"request-id": new_id("req_")}
        )

    async def _messages(self, request: web.Request, record: Recorded) -> web.StreamResponse:
        body: Json = record.body
        problem = self._problem(request, body, needs_max_tokens=True)
        if problem is not None:
            return self.error_response(400, "invalid_request_error", problem)
        streaming = body.get("stream") is True
        item = self.take_or_answer(record, streaming=streaming)
        if isinstance(item, web.Response):
            return item
        if isinstance(item, MidStreamError) and not streaming:
            status = _ERROR_STATUS.get(item.error_type, 500)
            return self.error_response(status, item.error_type, item.message)

        request_id = new_id("req_")
        reply = item.reply if isinstance(item, Drop) else item
        content = self._complete(reply.content) if isinstance(reply, Reply) else []
        usage = self._usage(body, content, reply.usage if isinstance(reply, Reply) else None)
        message: Json = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": reply.stop_reason if isinstance(reply, Reply) else None,
            "stop_sequence": reply.stop_sequence if isinstance(reply, Reply) else None,
            "usage": usage,
        }
        if not streaming:
            if isinstance(item, Hang):
                await self.hang(item)
                return self.error_response(500, "api_error", "scripted server stopped")
            return web.json_response(message, headers={"request-id": request_id})

        response = await self.open_stream(request, record, {"request-id": request_id})
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": min(1, usage["output_tokens"])},
        }
        opening = [
            self.sse_frame({"type": "message_start", "message": start}, "message_start"),
            self.sse_frame({"type": "ping"}, "ping"),
        ]
        if isinstance(item, Hang):
            await self.write_frames(response, opening)
            await self.hang(item)
            return await self.finish(response)
        if isinstance(item, MidStreamError):
            partial = [text(f"partial block {n}") for n in range(item.after_blocks)]
            error = {
                "type": "error",
                "error": {
                    "type": item.error_type,
                    "message": item.message or _DEFAULT_MESSAGE.get(item.error_type, ""),
                },
            }
            frames = [
                *opening,
                *self._block_frames(partial),
                self.sse_frame(error, "error"),
            ]
        else:
            end = {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": message["stop_sequence"],
                },
                "usage": {"output_tokens": usage["output_tokens"]},
            }
            frames = [
                *opening,
                *self._block_frames(content),
                self.sse_frame(end, "message_delta"),
                self.sse_frame({"type": "message_stop"}, "message_stop"),
            ]
            if isinstance(item, Drop):
                return await self.cut(request, response, frames[:-1], item)
        await self.write_frames(response, frames)
        return await self.finish(response)

    # -- rendering -------------------------------------------------------------------

    @staticmethod
    def _complete(content: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Copies of the scripted blocks with the fields the API always sends filled in."""
        blocks = []
        for original in content:
            block = dict(original)
            if block.get("type") == "tool_use":
                block.setdefault("id", new_id("toolu_"))
                block.setdefault("input", {})
            blocks.append(block)
        return blocks

    def _usage(self, body: Json, content: list[dict[str, Any]], override: Json | None) -> Json:
        cached = self.cache.account(str(body.get("model")), prompt_segments(body))
        usage: Json = {
            "input_tokens": cached.uncached,
            "cache_creation_input_tokens": cached.created,
            "cache_read_input_tokens": cached.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cached.created_by_ttl.get("5m", 0),
                "ephemeral_1h_input_tokens": cached.created_by_ttl.get("1h", 0),
            },
            "output_tokens": max(1, estimate_tokens(content)),
            "service_tier": "standard",
        }
        usage.update(override or {})
        return usage

    def _block_frames(self, content: Sequence[Mapping[str, Any]]) -> list[bytes]:
        frames: list[bytes] = []
        for index, block in enumerate(content):
            kind = block.get("type")
            deltas: list[Json] = []
            if kind == "text":
                start: Json = {"type": "text", "text": ""}
                deltas = [
                    {"type": "text_delta", "text": piece}
                    for piece in split_text(str(block.get("text", "")), self.chunks)
                ]
            elif kind == "tool_use":
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                # UTF-8 as the API sends it; a lone surrogate (a hostile model's) can only
                # travel escaped, as in any JSON the API would send.
                encoded = json.dumps(block.get("input", {}), ensure_ascii=False)
                if any("\ud800" <= char <= "\udfff" for char in encoded):
                    encoded = json.dumps(block.get("input", {}))
                deltas = [
                    {"type": "input_json_delta", "partial_json": piece}
                    for piece in ["", *split_text(encoded, self.chunks)]
                ]
            elif kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [
                    {"type": "thinking_delta", "thinking": piece}
                    for piece in split_text(str(block.get("thinking", "")), self.chunks)
                ]
                deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
            else:
                start = dict(block)  # other block types arrive whole in content_block_start
            frames.append(
                self.sse_frame(
                    {"type": "content_block_start", "index": index, "content_block": start},
                    "content_block_start",
                )
            )
            frames.extend(
                self.sse_frame(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
                for delta in deltas
            )
            frames.append(
                self.sse_frame({"type": "content_block_stop", "index": index}, "content_block_stop")
            )
        return frames
