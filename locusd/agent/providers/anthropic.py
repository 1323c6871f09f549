"""The Anthropic Messages API through the official SDK: streaming, tool use, prompt caching.

Caching: the stable prefix (tools, then the system prompt, then the repository's instructions)
ends with a ``cache_control`` breakpoint, and so does the newest message; each turn therefore
reads the previous turn's prefix from the cache and writes only what is new.

Retries: the SDK itself retries 408/409/429/5xx/529 before a stream starts, honouring
``retry-after`` / ``retry-after-ms`` (``max_retries``). An error *inside* a stream that has
started (``event: error``, e.g. ``overloaded_error``) or a dropped connection is not retried by
the SDK; this provider retries those turns itself, with exponential backoff, a bounded number of
times.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import anthropic
from anthropic.types import MessageParam, TextBlockParam, ToolParam

from locusd.agent.messages import (
    Message,
    Request,
    Response,
    StopReason,
    TextBlock,
    ToolUseBlock,
    Usage,
)
from locusd.agent.providers import OnText, ProviderError
from locusd.agent.providers.pricing import Price, lookup

DEFAULT_MODEL = "claude-sonnet-4-6"
_CACHE: dict[str, str] = {"type": "ephemeral"}
#: Error types inside a started stream that are worth another try.
_RETRYABLE_STREAM_ERRORS = {"overloaded_error", "rate_limit_error", "api_error"}


def _error_type(exc: anthropic.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def wire_messages(messages: tuple[Message, ...]) -> list[MessageParam]:
    """The conversation in the Messages API shape, with a cache breakpoint on the last block
    of the newest message."""
    wire: list[dict[str, Any]] = [
        {"role": m.role, "content": [block.model_dump() for block in m.content]} for m in messages
    ]
    if wire and wire[-1]["content"]:
        wire[-1]["content"][-1]["cache_control"] = _CACHE
    return cast(list[MessageParam], wire)


def wire_system(request: Request) -> list[TextBlockParam]:
    blocks: list[TextBlockParam] = [{"type": "text", "text": request.system}]
    if request.instructions:
        blocks.append({"type": "text", "text": request.instructions})
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks


def wire_tools(request: Request) -> list[ToolParam]:
    return [
        cast(
            ToolParam,
            {"name": t.name, "description": t.description, "input_schema": t.input_schema},
        )
        for t in request.tools
    ]


def _from_wire(message: anthropic.types.Message) -> Response:
    blocks: list[TextBlock | ToolUseBlock] = []
    for block in message.content:
        if block.type == "text":
            blocks.append(TextBlock(text=block.text))
        elif block.type == "tool_use":
            blocks.append(
                ToolUseBlock(id=block.id, name=block.name, input=cast(dict[str, Any], block.input))
            )
        # thinking and server-tool blocks are not part of Locus's conversation
    usage = message.usage
    return Response(
        message=Message(role="assistant", content=tuple(blocks)),
        stop_reason=cast(StopReason, message.stop_reason or "end_turn"),
        usage=Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_write_tokens=usage.cache_creation_input_tokens or 0,
        ),
        model=message.model,
    )


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        max_retries: int = 4,
        stream_retries: int = 3,
        backoff: float = 1.0,
        price: Price | None = None,
    ) -> None:
        self.model = model
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries
        )
        self.stream_retries = stream_retries
        self.backoff = backoff
        self.price = price or lookup(model)

    def cost(self, usage: Usage) -> float | None:
        return None if self.price is None else self.price.cost(usage)

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        for attempt in range(self.stream_retries + 1):
            try:
                return await self._stream(request, on_text)
            except anthropic.APIStatusError as exc:
                mid_stream = exc.status_code == 200
                if not (mid_stream and _error_type(exc) in _RETRYABLE_STREAM_ERRORS):
                    raise ProviderError(f"Anthropic API error {exc.status_code}: {exc}") from exc
                last: Exception = exc
            except anthropic.APIConnectionError as exc:
                last = exc
            if attempt < self.stream_retries:
                await asyncio.sleep(self.backoff * 2**attempt)
        raise ProviderError(
            f"Anthropic API: giving up after {self.stream_retries + 1} attempts: {last}"
        ) from last

    async def _stream(self, request: Request, on_text: OnText | None) -> Response:
        async with self.client.messages.stream(
            model=self.model,
            max_tokens=request.max_tokens,
            system=wire_system(request),
            tools=wire_tools(request),
            messages=wire_messages(request.messages),
        ) as stream:
            async for event in stream:
                if event.type == "text" and on_text is not None:
                    on_text(event.text)
            return _from_wire(await stream.get_final_message())
