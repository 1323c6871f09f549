"""A scripted loopback server speaking the Gemini API (generateContent) wire format.

Gemini CLI speaks only this API (through ``@google/genai``); ``GOOGLE_GEMINI_BASE_URL``
points it here and ``GEMINI_API_KEY`` supplies the ``x-goog-api-key`` header. Routes:
``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (Gemini CLI's),
``…:generateContent`` and ``…:countTokens``, the same under ``/v1/`` (the Python SDK's
default); anything else gets an API-shaped 404.

Script items, one consumed per generate request (a sequence, or a callable
``(request_json) -> item``; ``Recorded.path`` names the model and method):

- ``Reply(parts, finish_reason="STOP", usage=None)``: one candidate whose content holds
  part dicts (``text``, ``function_call``). Streamed as ``data:`` frames, each a whole
  ``GenerateContentResponse``: the text in several chunks, each function call whole in
  its own chunk (as the API sends them), the last chunk carrying ``finishReason`` and the
  full ``usageMetadata``. There is no terminal event: the body just ends.
- ``Fail(status, error_type, message="")``: ``{"error": {"code", "message", "status"}}``
  with ``error_type`` as the status name (``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, …).
- ``Hang()``: send nothing after the headers and wait for the client to disconnect.
- ``Reset()``: close the connection without an answer.
- ``Drop(Reply(...), after_frames=1, abort=False)``: the reply's frames cut before the one
  with ``finishReason``; non-streaming: no answer.

Requests are validated where agent code goes wrong: ``contents`` present and non-empty,
and a turn of ``functionResponse`` parts answering, one for one, the ``functionCall``
parts of the model turn just before it (400 ``INVALID_ARGUMENT``; no item consumed).

Usage follows implicit caching: system instruction, each tool and each content are
segments; ``cachedContentTokenCount`` is the longest remembered prefix.
"""

from __future__ import annotations

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
    "Drop",
    "Fail",
    "GeminiItem",
    "GeminiServer",
    "Hang",
    "Recorded",
    "Reply",
    "Reset",
    "function_call",
    "prompt_segments",
    "text",
]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_MODEL_VERSION = "scripted-001"


@dataclass
class Reply:
    """One candidate: part dicts in order (see ``text``, ``function_call``)."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "STOP"
    usage: dict[str, Any] | None = None


GeminiItem: TypeAlias = Reply | Fail | Hang | Reset | Drop[Reply]


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def function_call(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": dict(args)}}


def prompt_segments(body: Json) -> list[Segment]:
    """System instruction, tools, then contents; every boundary is cacheable."""
    segments = [Segment({"system": body.get("systemInstruction")}, "auto")]
    segments += [Segment({"tool": tool}, "auto") for tool in body.get("tools") or []]
    segments += [Segment({"content": c}, "auto") for c in body.get("contents") or []]
    return segments


def _parts(content: Any, key: str) -> list[Any]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or [] if isinstance(p, dict) and key in p]


def _pairing_problem(contents: Sequence[Any]) -> str | None:
    """The real API's 400 for function responses that do not answer the previous turn."""
    for i, content in enumerate(contents):
        answers = _parts(content, "functionResponse")
        if not answers:
            continue
        calls = _parts(contents[i - 1], "functionCall") if i > 0 else []
        if len(calls) != len(answers):
            return (
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
                if calls
                else "Please ensure that function response turn comes immediately after a "
                "function call turn."
            )
    return None


class GeminiServer(ScriptedServer[GeminiItem]):
    """Scripted ``models/{model}:(stream)generateContent`` and ``:countTokens`` with
    implicit-caching usage (settings: ``ScriptedServer``)."""

    accepted_auth = ("x-goog-api-key",)
    server_error_type = "INTERNAL"

    cache_lookback = None

    def routes(self) -> dict[str, Handler]:
        return {"/v1beta/models/{call}": self._model_call, "/v1/models/{call}": self._model_call}

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
        name = error_type if error_type.isupper() else _STATUS.get(status, "UNKNOWN")
        error = {"code": status, "message": message or error_type, "status": name}
        return web.json_response({"error": error}, status=status, headers=dict(headers or {}))

    def missing_auth_response(self) -> web.Response:
        return self.error_response(403, "PERMISSION_DENIED", _NO_KEY)

    def not_found_response(self, request: web.Request) -> web.Response:
        return self.error_response(404, "NOT_FOUND", f"Method not found: {request.path}")

    # -- route -----------------------------------------------------------------------

    async def _model_call(self, request: web.Request, record: Recorded) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        body: Json = record.body
        if method == "countTokens":
            tokens = self.cache.account(model, prompt_segments(body), write=False).total
            return web.json_response({"totalTokens": max(1, tokens)})
        if method not in ("generateContent", "streamGenerateContent"):
            return self.not_found_response(request)
        problem = self._problem(body)
        if problem is not None:
            return self.error_response(400, "INVALID_ARGUMENT", problem)
        streaming = method == "streamGenerateContent"
        item = self.take_or_answer(record, streaming=streaming)
        if isinstance(item, web.Response):
            return item
        if isinstance(item, Hang):
            if streaming:
                response = await self.open_stream(request, record)
                await self.hang(item)
                return await self.finish(response)
            await self.hang(item)
            return self.error_response(500, "INTERNAL", "scripted server stopped")
        reply = item.reply if isinstance(item, Drop) else item
        if not isinstance(reply, Reply):  # take_or_answer answered Fail and Reset
            raise TypeError(f"not a Gemini script item: {item!r}")
        chunks = self._chunks(model, body, reply)
        if not streaming:
            whole = {**chunks[-1], "candidates": [self._candidate(reply.parts, reply)]}
            return web.json_response(whole)
        response = await self.open_stream(request, record)
        frames = [self.sse_frame(chunk) for chunk in chunks]
        if isinstance(item, Drop):
            return await self.cut(request, response, frames[:-1], item)
        await self.write_frames(response, frames)
        return await self.finish(response)

    def _problem(self, body: Json) -> str | None:
        if not self.validate:
            return None
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified\n"
        return _pairing_problem(contents)

    # -- rendering -------------------------------------------------------------------

    @staticmethod
    def _candidate(parts: list[Json], reply: Reply | None) -> Json:
        candidate: Json = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if reply is not None:
            candidate["finishReason"] = reply.finish_reason
        return candidate

    def _chunks(self, model: str, body: Json, reply: Reply) -> list[Json]:
        """The stream's chunks; the last one carries ``finishReason`` and the full usage."""
        pieces: list[Json] = []
        for part in reply.parts:
            if "text" in part:
                pieces += [{**part, "text": t} for t in split_text(str(part["text"]), self.chunks)]
            else:
                pieces.append(dict(part))
        cached = self.cache.account(model, prompt_segments(body))
        produced = max(1, estimate_tokens(reply.parts))
        usage: Json = {
            "promptTokenCount": cached.total,
            "candidatesTokenCount": produced,
            "totalTokenCount": cached.total + produced,
            "cachedContentTokenCount": cached.read,
        }
        usage.update(reply.usage or {})
        opening = {"promptTokenCount": cached.total, "totalTokenCount": cached.total}
        base = {"modelVersion": _MODEL_VERSION, "responseId": new_id("")}
        chunks: list[Json] = [
            {"candidates": [self._candidate([piece], None)], "usageMetadata": opening, **base}
            for piece in pieces or [{"text": ""}]
        ]
        chunks[-1]["candidates"][0]["finishReason"] = reply.finish_reason
        chunks[-1]["usageMetadata"] = usage
        return chunks
