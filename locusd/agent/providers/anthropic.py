"""The Anthropic Messages API through the official SDK: streaming, tool use, prompt caching.

Caching: the stable prefix (tools, then the system prompt, then the repository's instructions)
ends with a ``cache_control`` breakpoint; the newest message's last block has one, and so has
the last block of the user message before it (where the previous turn's breakpoint was). The
API finds an earlier cache entry only within 20 blocks before a breakpoint, and a turn of 12
parallel tool calls adds 24 blocks (12 ``tool_use``, 12 ``tool_result``): without that second
breakpoint such a turn would rewrite the whole conversation to the cache. Three breakpoints of
the four the API allows.

Retries (see :mod:`locusd.agent.providers.retry`): the SDK retries 408/409/429/5xx/529 and
connection errors before a stream starts, honouring ``retry-after`` up to
:data:`~locusd.agent.providers.retry.MAX_RETRY_AFTER`; an ``event: error`` inside a started
stream (``overloaded_error``, ``rate_limit_error``, ``api_error``), a stream that ends before
``message_stop`` and a connection that drops mid-stream are retried here, the whole turn again.
"""

from __future__ import annotations

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
from locusd.agent.providers.retry import Retryable, StreamRetries, bounded_retry_after, refusal
from locusd.backoff import Backoff

DEFAULT_MODEL = "claude-sonnet-4-6"
_CACHE: dict[str, str] = {"type": "ephemeral"}
#: Error types inside a started stream that are worth another try.
_RETRYABLE_STREAM_ERRORS = {"overloaded_error", "rate_limit_error", "api_error"}


def _error_fields(exc: anthropic.APIStatusError) -> tuple[str | None, str]:
    """The API's ``error.type`` and ``error.message`` (the SDK's text when the body has none)."""
    body = exc.body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind = error.get("type")
        message = error.get("message")
        return (
            kind if isinstance(kind, str) else None,
            message if isinstance(message, str) and message else exc.message,
        )
    return None, exc.message


def wire_messages(messages: tuple[Message, ...]) -> list[MessageParam]:
    """The conversation in the Messages API shape, with cache breakpoints on the last block of
    the newest message and of the user message before it (the previous turn's end)."""
    wire: list[dict[str, Any]] = [
        {"role": m.role, "content": [block.model_dump() for block in m.content]} for m in messages
    ]
    marked = [len(wire) - 1]
    earlier = [i for i in range(len(wire) - 1) if wire[i]["role"] == "user"]
    if earlier:
        marked.append(earlier[-1])
    for i in marked:
        if i >= 0 and wire[i]["content"]:
            wire[i]["content"][-1]["cache_control"] = _CACHE
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
        self.max_retries = max_retries
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            http_client=anthropic.DefaultAsyncHttpxClient(
                event_hooks={"response": [bounded_retry_after()]}
            ),
        )
        self.retries = StreamRetries(stream_retries, Backoff(base=backoff, cap=max(backoff, 30.0)))
        self.price = price or lookup(model)

    def cost(self, usage: Usage) -> float | None:
        return None if self.price is None else self.price.cost(usage)

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        return await self.retries.run("Anthropic API", lambda: self._attempt(request, on_text))

    async def _attempt(self, request: Request, on_text: OnText | None) -> Response:
        """One try of the turn: a complete response, :class:`Retryable`, or ProviderError."""
        started = False
        try:
            async with self.client.messages.stream(
                model=self.model,
                max_tokens=request.max_tokens,
                system=wire_system(request),
                tools=wire_tools(request),
                messages=wire_messages(request.messages),
            ) as stream:
                started = True
                stopped = False
                async for event in stream:
                    if event.type == "text" and on_text is not None:
                        on_text(event.text)
                    stopped = stopped or event.type == "message_stop"
                if not stopped:
                    raise Retryable("the stream ended before message_stop (connection dropped)")
                final = await stream.get_final_message()
        except anthropic.APIStatusError as exc:
            kind, message = _error_fields(exc)
            if exc.status_code < 400:  # an `event: error` inside the started stream
                if kind in _RETRYABLE_STREAM_ERRORS:
                    raise Retryable(f"{kind} inside the stream: {message}") from exc
                raise refusal("Anthropic API", None, kind, message) from exc
            raise refusal(
                "Anthropic API",
                exc.status_code,
                kind,
                message,
                retries=self.max_retries,
                headers=exc.response.headers,
            ) from exc
        except anthropic.APIConnectionError as exc:
            if started:
                raise Retryable(f"the stream broke off: {exc.message}") from exc
            raise ProviderError(
                f"cannot reach the Anthropic API at {self.client.base_url}: {exc.message} "
                f"(still failing after {self.max_retries} retries)"
            ) from exc
        except ValueError as exc:  # a frame that is not the JSON it should be
            if started:
                raise Retryable(f"the stream was malformed: {exc}") from exc
            raise
        return _from_wire(final)
