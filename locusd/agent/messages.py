"""The provider-neutral conversation: what the loop keeps, what the transcript stores, what the
providers translate to and from their wire formats.

It is deliberately close to the Anthropic Messages shape (content blocks; tool results are
blocks in a user message), because that shape loses nothing: the OpenAI translation folds it
into ``tool_calls`` / ``role: tool`` messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextBlock(_Model):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(_Model):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Model):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


Block = Annotated[TextBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class Message(_Model):
    role: Literal["user", "assistant"]
    content: tuple[Block, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=(TextBlock(text=text),))

    @property
    def tool_calls(self) -> list[ToolUseBlock]:
        return [block for block in self.content if isinstance(block, ToolUseBlock)]

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content if isinstance(block, TextBlock))


class ToolSpec(_Model):
    """A tool as the model sees it: name, what it is for, a JSON Schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


class Usage(_Model):
    """Tokens of one response (or a sum). ``input_tokens`` excludes cached tokens, as the
    Anthropic API reports it: the whole prompt is input + cache_read + cache_write."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


StopReason = Literal["end_turn", "tool_use", "max_tokens", "pause_turn", "refusal", "stop_sequence"]


class Request(_Model):
    """One model call. ``system`` and ``instructions`` (the repository's own guidance) together
    with ``tools`` form the stable prefix that providers may cache."""

    system: str
    instructions: str | None = None
    tools: tuple[ToolSpec, ...]
    messages: tuple[Message, ...]
    max_tokens: int


class Response(_Model):
    message: Message
    stop_reason: StopReason
    usage: Usage
    model: str
