"""A scripted loopback server speaking the OpenAI Responses API wire format.

Codex talks only the Responses API (``wire_api = "chat"`` is refused), so the Codex ACP
adapter is pointed at this server through a custom model provider; the official SDK works
against it too (``AsyncOpenAI(api_key=..., base_url=server.base_url + "/v1")``, then
``client.responses.create(...)`` / ``.stream(...)``). Route: ``POST /v1/responses``
(streaming and not); anything else gets an API-shaped 404. Auth: ``Bearer`` only.

Script items, one consumed per request (a sequence, or a callable
``(request_json) -> item``):

- ``Reply(output, usage=None)``: one response whose ``output`` holds item dicts, built with
  ``message``, ``function_call`` and ``custom_tool_call`` (Codex declares ``apply_patch``
  as a freeform *custom* tool for codex models: its input is the raw patch text, not
  JSON). Streamed as ``response.created``, ``response.in_progress``, then per item
  ``response.output_item.added``, its deltas (``response.content_part.added`` /
  ``response.output_text.delta`` / ``.done`` / ``response.content_part.done`` for a
  message; ``response.function_call_arguments.delta`` / ``.done`` for a function call;
  ``response.custom_tool_call_input.delta`` / ``.done`` for a custom tool call) and
  ``response.output_item.done``, finally ``response.completed`` carrying ``usage``.
  Every event has ``event:`` and a ``sequence_number``. ``usage=None`` computes usage
  (below); a dict overrides the computed keys it names.
- ``Fail(status, error_type, message="", headers={}, code=None)``: an HTTP error shaped
  ``{"error": {"message", "type", "param", "code"}}``.
- ``MidStreamError(after_items=0, code="server_error", message="")``: the stream sends
  the opening events and ``after_items`` complete text messages, then
  ``response.failed`` (status ``failed``, ``error: {code, message}``) and ends. For a
  non-streaming request it is an HTTP 500.
- ``Hang()``: send ``response.created`` + ``response.in_progress`` and wait for the client
  to disconnect.
- ``Reset()``: close the connection without an answer.
- ``Drop(Reply(...), after_frames=3, abort=False)``: the reply's events (the opening two
  are frames 1 and 2) cut before ``response.completed``; non-streaming: no answer.

Requests are validated where agent code goes wrong: ``model`` and ``input`` present, and
every ``function_call_output`` / ``custom_tool_call_output`` answering a call earlier in
``input`` (400 ``invalid_request_error``; no script item is consumed).

Usage follows automatic prompt caching as in ``openai_server``: instructions, each tool
and each input item are segments; ``input_tokens_details.cached_tokens`` is the longest
remembered prefix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web

from tests.support.openai_server import OpenAIBase
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
    "Recorded",
    "Reply",
    "Reset",
    "ResponsesItem",
    "ResponsesServer",
    "custom_tool_call",
    "function_call",
    "message",
    "prompt_segments",
]

_OUTPUTS = {"function_call_output": "function_call", "custom_tool_call_output": "custom_tool_call"}


@dataclass
class Reply:
    """One response: output item dicts in order (``message``, ``function_call``, …)."""

    output: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@dataclass
class MidStreamError:
    """The stream fails after ``after_items`` text messages with ``response.failed``."""

    after_items: int = 0
    code: str = "server_error"
    message: str = "The server had an error while processing your request."


ResponsesItem: TypeAlias = Reply | Fail | MidStreamError | Hang | Reset | Drop[Reply]


def message(text: str) -> dict[str, Any]:
    """An assistant message with one ``output_text`` part."""
    return {"type": "message", "text": text}


def function_call(
    name: str, arguments: Mapping[str, Any] | str, call_id: str | None = None
) -> dict[str, Any]:
    """A function tool call; ``arguments`` a dict (JSON-encoded on the wire) or raw JSON."""
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"type": "function_call", "name": name, "arguments": encoded, "call_id": call_id}


def custom_tool_call(name: str, input: str, call_id: str | None = None) -> dict[str, Any]:
    """A freeform (custom) tool call: ``input`` is plain text, e.g. an apply_patch patch."""
    return {"type": "custom_tool_call", "name": name, "input": input, "call_id": call_id}


def prompt_segments(body: Json) -> list[Segment]:
    """Instructions, tools, then input items; every boundary is cacheable."""
    segments = [Segment({"instructions": body.get("instructions")}, "auto")]
    segments += [Segment({"tool": tool}, "auto") for tool in body.get("tools") or []]
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    segments += [Segment({"item": item}, "auto") for item in items or []]
    return segments


def _orphan_output(items: Sequence[Any]) -> str | None:
    """The real API's 400 for a tool output without its call earlier in ``input``."""
    calls: set[str] = set()
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in _OUTPUTS.values():
            calls.add(str(item.get("call_id")))
        elif kind in _OUTPUTS and str(item.get("call_id")) not in calls:
            return (
                f"No tool call found for function call output with call_id {item.get('call_id')}."
            )
    return None


class ResponsesServer(OpenAIBase[ResponsesItem]):
    """Scripted ``/v1/responses`` with automatic-prompt-caching usage."""

    def routes(self) -> dict[str, Handler]:
        return {"/v1/responses": self._responses}

    def _problem(self, body: Json) -> web.Response | None:
        if not self.validate:
            return None
        missing = self.missing_parameter(body, ("model", "input"))
        if missing is not None:
            return missing
        items = body["input"]
        if not isinstance(items, str | list):
            return self.error_response(
                400,
                "invalid_request_error",
                "Invalid 'input': expected a string or an array.",
                code="invalid_type",
                param="input",
            )
        problem = _orphan_output(items) if isinstance(items, list) else None
        if problem is not None:
            return self.error_response(400, "invalid_request_error", problem, param="input")
        return None

    # -- route -----------------------------------------------------------------------

    async def _responses(self, request: web.Request, record: Recorded) -> web.StreamResponse:
        body: Json = record.body
        problem = self._problem(body)
        if problem is not None:
            return problem
        streaming = body.get("stream") is True
        item = self.take_or_answer(record, streaming=streaming)
        if isinstance(item, web.Response):
            return item
        if isinstance(item, MidStreamError) and not streaming:
            return self.error_response(500, "server_error", item.message, code=item.code)

        reply = item.reply if isinstance(item, Drop) else item
        output = self._complete(reply.output) if isinstance(reply, Reply) else []
        usage = self._usage(body, output, reply.usage if isinstance(reply, Reply) else None)
        response = self._response(body, "in_progress", [], None)
        headers = {"x-request-id": new_id("req_")}
        if not streaming:
            if isinstance(item, Hang):
                await self.hang(item)
                return self.error_response(500, "server_error", "scripted server stopped")
            return web.json_response(
                {**response, "status": "completed", "output": output, "usage": usage},
                headers=headers,
            )

        events = _Events()
        stream = await self.open_stream(request, record, headers)
        opening = [
            events.frame("response.created", response=response),
            events.frame("response.in_progress", response=response),
        ]
        if isinstance(item, Hang):
            await self.write_frames(stream, opening)
            await self.hang(item)
            return await self.finish(stream)
        if isinstance(item, MidStreamError):
            partial = self._complete([message(f"partial {n}") for n in range(item.after_items)])
            failed = {
                **response,
                "status": "failed",
                "output": partial,
                "error": {"code": item.code, "message": item.message},
            }
            frames = [
                *opening,
                *self._item_frames(events, partial),
                events.frame("response.failed", response=failed),
            ]
        else:
            done = {**response, "status": "completed", "output": output, "usage": usage}
            frames = [
                *opening,
                *self._item_frames(events, output),
                events.frame("response.completed", response=done),
            ]
            if isinstance(item, Drop):
                return await self.cut(request, stream, frames[:-1], item)
        await self.write_frames(stream, frames)
        return await self.finish(stream)

    # -- rendering -------------------------------------------------------------------

    @staticmethod
    def _response(body: Json, status: str, output: list[Json], usage: Json | None) -> Json:
        """The Response object as the API echoes it (request settings included)."""
        return {
            "id": new_id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model"),
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    @staticmethod
    def _complete(output: Sequence[Mapping[str, Any]]) -> list[Json]:
        """Wire-shaped, completed output items with generated ids."""
        items: list[Json] = []
        for scripted in output:
            kind = scripted.get("type")
            if kind == "message":
                part = {
                    "type": "output_text",
                    "text": scripted["text"],
                    "annotations": [],
                    "logprobs": [],
                }
                items.append(
                    {
                        "id": new_id("msg_"),
                        "type": "message",
                        "status": "completed",
                        "role": "assistant",
                        "content": [part],
                    }
                )
            elif kind in ("function_call", "custom_tool_call"):
                prefix = "fc_" if kind == "function_call" else "ctc_"
                item = {"id": new_id(prefix), **scripted, "status": "completed"}
                item["call_id"] = scripted.get("call_id") or new_id("call_")
                items.append(item)
            else:
                items.append(dict(scripted))  # e.g. a reasoning item, sent whole
        return items

    def _item_frames(self, events: _Events, output: Sequence[Json]) -> Iterator[bytes]:
        for index, item in enumerate(output):
            at: Json = {"item_id": item.get("id"), "output_index": index}
            kind = item.get("type")
            if kind == "message":
                yield events.frame(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                part = item["content"][0]
                text = part["text"]
                yield events.frame(
                    "response.content_part.added", **at, content_index=0, part={**part, "text": ""}
                )
                for piece in split_text(text, self.chunks):
                    yield events.frame(
                        "response.output_text.delta",
                        **at,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                yield events.frame(
                    "response.output_text.done", **at, content_index=0, text=text, logprobs=[]
                )
                yield events.frame("response.content_part.done", **at, content_index=0, part=part)
            elif kind in ("function_call", "custom_tool_call"):
                field_name, event = (
                    ("arguments", "response.function_call_arguments")
                    if kind == "function_call"
                    else ("input", "response.custom_tool_call_input")
                )
                yield events.frame(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", field_name: ""},
                )
                for piece in split_text(item[field_name], self.chunks):
                    yield events.frame(f"{event}.delta", **at, delta=piece)
                done: Json = {field_name: item[field_name]}
                if kind == "function_call":
                    done["name"] = item["name"]
                yield events.frame(f"{event}.done", **at, **done)
            else:
                yield events.frame("response.output_item.added", output_index=index, item=item)
            yield events.frame("response.output_item.done", output_index=index, item=item)

    def _usage(self, body: Json, output: list[Json], override: Json | None) -> Json:
        cached = self.cache.account(str(body.get("model")), prompt_segments(body))
        produced = max(1, estimate_tokens(output))
        usage: Json = {
            "input_tokens": cached.total,
            "input_tokens_details": {"cached_tokens": cached.read},
            "output_tokens": produced,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": cached.total + produced,
        }
        usage.update(override or {})
        return usage


class _Events:
    """SSE frames of one stream, numbered by ``sequence_number`` as the API does."""

    def __init__(self) -> None:
        self._next = 0

    def frame(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._next, **data}
        self._next += 1
        return ScriptedServer.sse_frame(payload, kind)
