"""Any OpenAI-compatible chat-completions endpoint with tool calls — Ollama, llama.cpp server,
vLLM, or OpenAI itself. Pointed at a local server this is the fully local mode: not even the
model sees code off the machine.

Locus's conversation folds into the chat shape: the system prompt and the repository's
instructions become one system message, tool uses become ``tool_calls`` on the assistant
message and tool results become ``role: tool`` messages. The stream is assembled here from
deltas (tool-call arguments arrive in pieces, keyed by index), which every compatible server
emits the same way; ``stream_options.include_usage`` asks for the usage chunk at the end.
"""

from __future__ import annotations

import json
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

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

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


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
        price: Price | None = None,
    ) -> None:
        self.model = model
        # Local servers need no key, but the SDK insists on one.
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed", base_url=base_url, max_retries=max_retries
        )
        self.price = price

    def cost(self, usage: Usage) -> float | None:
        return 0.0 if self.price is None else self.price.cost(usage)

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        try:
            return await self._stream(request, on_text)
        except openai.APIStatusError as exc:
            raise ProviderError(f"OpenAI-compatible API error {exc.status_code}: {exc}") from exc
        except openai.APIConnectionError as exc:
            raise ProviderError(
                f"cannot reach the OpenAI-compatible endpoint {self.client.base_url}: {exc}"
            ) from exc

    async def _stream(self, request: Request, on_text: OnText | None) -> Response:
        stream = await self.client.chat.completions.create(
            model=self.model,
            max_tokens=request.max_tokens,
            messages=wire_messages(request),
            tools=wire_tools(request),
            stream=True,
            stream_options={"include_usage": True},
        )
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish = "stop"
        usage = Usage()
        model = self.model
        async with stream:
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    cached = getattr(chunk.usage.prompt_tokens_details, "cached_tokens", 0) or 0
                    usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens - cached,
                        cache_read_tokens=cached,
                        output_tokens=chunk.usage.completion_tokens,
                    )
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        if on_text is not None:
                            on_text(delta.content)
                    for call in delta.tool_calls or ():
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                        slot["id"] = call.id or slot["id"]
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["args"] += call.function.arguments or ""
                    if choice.finish_reason:
                        finish = choice.finish_reason
        blocks: list[TextBlock | ToolUseBlock] = []
        if text:
            blocks.append(TextBlock(text="".join(text)))
        for index in sorted(calls):
            slot = calls[index]
            blocks.append(
                ToolUseBlock(
                    id=slot["id"] or f"call_{index}",
                    name=slot["name"],
                    input=_parse_arguments(slot["args"]),
                )
            )
        stop_reason = _STOP_REASONS.get(finish, "end_turn")
        if calls and stop_reason == "end_turn":
            stop_reason = "tool_use"  # some servers say "stop" even with tool calls
        return Response(
            message=Message(role="assistant", content=tuple(blocks)),
            stop_reason=stop_reason,
            usage=usage,
            model=model,
        )
