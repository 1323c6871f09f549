"""Any OpenAI-compatible chat-completions endpoint with tool calls — Ollama, llama.cpp server,
vLLM, or OpenAI itself. Pointed at a local server this is the fully local mode: not even the
model sees code off the machine.

Locus's conversation folds into the chat shape: the system prompt and the repository's
instructions become one system message, tool uses become ``tool_calls`` on the assistant
message and tool results become ``role: tool`` messages. The stream is assembled here from
deltas (tool-call arguments arrive in pieces, keyed by index), which every compatible server
emits the same way; ``stream_options.include_usage`` asks for the usage chunk at the end.

Retries (see :mod:`locusd.agent.providers.retry`): the SDK retries 408/409/429/5xx and
connection errors before a stream starts (``retry-after`` honoured up to two minutes). Once a
stream has started, an ``{"error": …}`` chunk (unless it blames the request: invalid, too long,
unauthorised), a stream that ends without a ``finish_reason`` and a connection that drops are
retried here, the whole turn again; the half-received response is dropped.
"""

from __future__ import annotations

import json
from typing import Any, cast

import openai
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from locusd.agent.messages import (
    Message,
    Request,
    Response,
    StopReason,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from locusd.agent.providers import OnText, ProviderError
from locusd.agent.providers.pricing import Price
from locusd.agent.providers.retry import Retryable, StreamRetries, refusal
from locusd.backoff import Backoff

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


#: Words (underscores dropped) in an in-stream error's type or code that blame the request:
#: asking again is no use. vLLM says ``BadRequestError`` / 400, OpenAI ``invalid_request_error``.
_FINAL_STREAM_ERRORS = (
    "invalidrequest",
    "badrequest",
    "contextlength",
    "authentication",
    "permission",
    "notfound",
    "invalidapikey",
)


def _stream_error(exc: openai.APIError) -> tuple[str | None, str, bool]:
    """An in-band error chunk's type (or code), message, and whether it is worth a retry."""
    body = exc.body if isinstance(exc.body, dict) else {}
    kind, code = body.get("type"), body.get("code")
    labels = f"{kind} {code}".lower().replace("_", "")
    final = any(word in labels for word in _FINAL_STREAM_ERRORS) or (
        isinstance(code, int) and 400 <= code < 500 and code not in (408, 409, 429)
    )
    name = kind if kind is not None else code
    return (str(name) if name is not None else None), exc.message, not final


def wire_messages(request: Request) -> list[ChatCompletionMessageParam]:
    system = request.system + (f"\n\n{request.instructions}" if request.instructions else "")
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for message in request.messages:
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.input)},
                    }
                    for call in message.tool_calls
                ]
            wire.append(entry)
            continue
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                content = f"ERROR: {block.content}" if block.is_error else block.content
                wire.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": content})
            elif isinstance(block, TextBlock):
                wire.append({"role": "user", "content": block.text})
    return cast(list[ChatCompletionMessageParam], wire)


def wire_tools(request: Request) -> list[ChatCompletionToolParam]:
    return [
        cast(
            ChatCompletionToolParam,
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            },
        )
        for t in request.tools
    ]


def _parse_arguments(arguments: str) -> dict[str, Any]:
    """Local models sometimes emit malformed JSON; the tool dispatcher then tells the model."""
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"__invalid_json__": arguments}
    return parsed if isinstance(parsed, dict) else {"__invalid_json__": arguments}


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        max_retries: int = 4,
        stream_retries: int = 3,
        backoff: float = 1.0,
        price: Price | None = None,
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        # Local servers need no key, but the SDK insists on one.
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed", base_url=base_url, max_retries=max_retries
        )
        self.retries = StreamRetries(stream_retries, Backoff(base=backoff, cap=max(backoff, 30.0)))
        self.price = price

    def cost(self, usage: Usage) -> float | None:
        return 0.0 if self.price is None else self.price.cost(usage)

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        return await self.retries.run(
            "OpenAI-compatible API", lambda: self._attempt(request, on_text)
        )

    async def _attempt(self, request: Request, on_text: OnText | None) -> Response:
        """One try of the turn: a complete response, :class:`Retryable`, or ProviderError."""
        turn = _Turn(self.model, on_text)
        try:
            stream = await self.client.chat.completions.create(
                model=self.model,
                max_tokens=request.max_tokens,
                messages=wire_messages(request),
                tools=wire_tools(request),
                stream=True,
                stream_options={"include_usage": True},
            )
            turn.started = True
            async with stream:
                async for chunk in stream:
                    turn.add(chunk)
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            kind = body.get("type") or body.get("code")
            raise refusal(
                "OpenAI-compatible API",
                exc.status_code,
                str(kind) if kind is not None else None,
                str(body.get("message") or exc.message),
                retries=self.max_retries,
                headers=exc.response.headers,
            ) from exc
        except openai.APIConnectionError as exc:
            if turn.started:
                raise Retryable(f"the stream broke off: {exc.message}") from exc
            raise ProviderError(
                f"cannot reach the OpenAI-compatible endpoint {self.client.base_url}: "
                f"{exc.message} (still failing after {self.max_retries} retries)"
            ) from exc
        except openai.APIError as exc:  # an {"error": …} chunk inside the started stream
            kind, message, retryable = _stream_error(exc)
            if retryable:
                raise Retryable(f"{kind or 'error'} inside the stream: {message}") from exc
            raise refusal("OpenAI-compatible API", None, kind, message) from exc
        except ValueError as exc:  # a chunk that is not the JSON it should be
            if turn.started:
                raise Retryable(f"the stream was malformed: {exc}") from exc
            raise
        if turn.finish is None:
            raise Retryable("the stream ended without a finish_reason (connection dropped)")
        return turn.response()


class _Turn:
    """One streamed response being assembled from its chunks."""

    def __init__(self, model: str, on_text: OnText | None) -> None:
        self.model = model
        self.on_text = on_text
        self.started = False
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish: str | None = None
        self.usage = Usage()

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            cached = getattr(chunk.usage.prompt_tokens_details, "cached_tokens", 0) or 0
            self.usage = Usage(
                input_tokens=chunk.usage.prompt_tokens - cached,
                cache_read_tokens=cached,
                output_tokens=chunk.usage.completion_tokens,
            )
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                self.text.append(delta.content)
                if self.on_text is not None:
                    self.on_text(delta.content)
            for call in delta.tool_calls or ():
                slot = self.calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["args"] += call.function.arguments or ""
            if choice.finish_reason:
                self.finish = choice.finish_reason

    def response(self) -> Response:
        blocks: list[TextBlock | ToolUseBlock] = []
        if self.text:
            blocks.append(TextBlock(text="".join(self.text)))
        for index in sorted(self.calls):
            slot = self.calls[index]
            blocks.append(
                ToolUseBlock(
                    id=slot["id"] or f"call_{index}",
                    name=slot["name"],
                    input=_parse_arguments(slot["args"]),
                )
            )
        stop_reason = _STOP_REASONS.get(self.finish or "stop", "end_turn")
        if self.calls and stop_reason == "end_turn":
            stop_reason = "tool_use"  # some servers say "stop" even with tool calls
        return Response(
            message=Message(role="assistant", content=tuple(blocks)),
            stop_reason=stop_reason,
            usage=self.usage,
            model=self.model,
        )
