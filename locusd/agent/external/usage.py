"""A model call's usage, read from its response as the gateway passes it on: the tokens the
model server says it used, whatever the agent reports (docs/acp.md, "Budget").

Three wire formats, each as a stream (SSE) or one JSON body:

- Anthropic Messages (``…/messages``): ``message_start``'s ``usage`` (input, cache), then
  ``message_delta``'s (the output so far); a JSON ``message`` carries the whole ``usage``.
- OpenAI Responses (``…/responses``): ``response.completed`` (or ``.incomplete``/``.failed``)
  carries ``response.usage``; ``input_tokens`` there includes the cached ones.
- Gemini (``…:generateContent``, ``…:streamGenerateContent``, SSE with ``?alt=sse`` or a JSON
  array): each chunk's ``usageMetadata`` is the call's so far; the last one counts.

Any other path is an unknown format: its bytes are counted, no tokens. The reader is fed the
bytes as they pass, in pieces of any size, and keeps only bounded state (an over-long event or
body leaves the call's usage as far as it was read, with a ``problem`` saying why).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from locusd.agent.messages import Usage

Format = Literal["anthropic", "responses", "gemini", "unknown"]
#: The longest SSE event or JSON body read for usage; longer ones pass on, unread.
MAX_EVENT = 4 * 1024 * 1024
MAX_JSON = 32 * 1024 * 1024
#: No count a server sends is taken above this (a nonsense value cannot overflow a sum).
MAX_COUNT = 10**12


def format_of(path: str) -> Format:
    """Which API a request path speaks, by its last segment."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last == "messages":
        return "anthropic"
    if last == "responses":
        return "responses"
    if last.endswith((":generateContent", ":streamGenerateContent")):
        return "gemini"
    return "unknown"


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), MAX_COUNT)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Metered:
    """What one call's response said it used (``usage`` None: no usage read)."""

    format: Format
    usage: Usage | None = None
    model: str | None = None
    problem: str | None = None


class UsageReader:
    """Feed a response's (decoded) body with :meth:`feed`, then :meth:`finish`."""

    def __init__(self, format: Format, *, sse: bool) -> None:
        self.metered = Metered(format)
        self._sse = sse
        self._buffer = bytearray()
        self._data: list[bytes] = []
        self._skipping = False  # inside an over-long SSE line, until its end
        self._handle: Callable[[dict[str, Any]], None] = {
            "anthropic": self._anthropic,
            "responses": self._responses,
            "gemini": self._gemini,
            "unknown": lambda event: None,
        }[format]
        self._fields: dict[str, int] = {}

    def feed(self, data: bytes) -> None:
        if self.metered.format == "unknown" or not data:
            return
        if not self._sse:
            if len(self._buffer) + len(data) > MAX_JSON:
                self._give_up(f"a JSON body over {MAX_JSON} bytes")
                self._buffer.clear()
                self.metered.format = "unknown"
                return
            self._buffer += data
            return
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            self._line(line)
        if len(self._buffer) > MAX_EVENT:
            self._give_up(f"an event over {MAX_EVENT} bytes")
            self._buffer.clear()
            self._skipping = True

    def finish(self) -> Metered:
        """The usage read; at the end of a stream that was cut, what came before the cut."""
        if self._sse:
            if self._buffer and not self._skipping:
                self._line(bytes(self._buffer).rstrip(b"\r"))
            self._line(b"")
        elif self._buffer and self.metered.format != "unknown":
            try:
                body = json.loads(bytes(self._buffer))
            except ValueError:
                self._give_up("the body is not JSON")
            else:
                for item in body if isinstance(body, list) else [body]:
                    self._event(item)
        self._buffer.clear()
        return self.metered

    def _give_up(self, why: str) -> None:
        self.metered.problem = self.metered.problem or f"usage not read past {why}"

    def _line(self, line: bytes) -> None:
        if not line:  # an event ends: its data lines, joined, are one JSON value
            if self._data:
                data, self._data = b"\n".join(self._data), []
                with contextlib.suppress(ValueError):  # [DONE], a keep-alive: not usage
                    self._event(json.loads(data))
            return
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
            if sum(len(d) for d in self._data) > MAX_EVENT:
                self._give_up(f"an event over {MAX_EVENT} bytes")
                self._data = []

    def _event(self, event: object) -> None:
        if isinstance(event, dict):
            self._handle(event)

    def _set(self, model: object, **counts: object) -> None:
        """Each count the event names replaces the one before (each format's are cumulative)."""
        for name, value in counts.items():
            if value is not None:
                self._fields[name] = _count(value)
        f = self._fields
        self.metered.usage = Usage(
            input_tokens=f.get("input", 0),
            output_tokens=f.get("output", 0),
            cache_read_tokens=f.get("cache_read", 0),
            cache_write_tokens=f.get("cache_write", 0),
        )
        if isinstance(model, str) and model:
            self.metered.model = model[:200]

    def _anthropic(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = _object(event.get("message"))
            usage, model = _object(message.get("usage")), message.get("model")
        elif kind == "message":  # a JSON (not streamed) answer
            usage, model = _object(event.get("usage")), event.get("model")
        elif kind == "message_delta":
            usage, model = _object(event.get("usage")), None
        else:
            return
        if usage:
            self._set(
                model,
                input=usage.get("input_tokens"),
                output=usage.get("output_tokens"),
                cache_read=usage.get("cache_read_input_tokens"),
                cache_write=usage.get("cache_creation_input_tokens"),
            )

    def _responses(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            response = _object(event.get("response"))
        elif event.get("object") == "response":  # a JSON (not streamed) answer
            response = event
        else:
            return
        usage = _object(response.get("usage"))
        if usage:
            total_in = _count(usage.get("input_tokens"))
            cached = min(
                _count(_object(usage.get("input_tokens_details")).get("cached_tokens")), total_in
            )
            self._set(
                response.get("model"),
                input=total_in - cached,
                output=usage.get("output_tokens"),
                cache_read=cached,
            )

    def _gemini(self, event: dict[str, Any]) -> None:
        usage = _object(event.get("usageMetadata"))
        if usage:
            prompt = _count(usage.get("promptTokenCount")) + _count(
                usage.get("toolUsePromptTokenCount")
            )
            cached = min(_count(usage.get("cachedContentTokenCount")), prompt)
            output = _count(usage.get("candidatesTokenCount")) + _count(
                usage.get("thoughtsTokenCount")
            )
            self._set(
                event.get("modelVersion"),
                input=prompt - cached,
                output=output,
                cache_read=cached,
            )
