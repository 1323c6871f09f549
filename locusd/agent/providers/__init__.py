"""Model providers behind one small protocol, so the loop never knows which model it talks to.

* ``anthropic`` — the official SDK's Messages API (streaming, tool use, prompt caching);
* ``openai`` — any OpenAI-compatible chat-completions endpoint (Ollama, llama.cpp, vLLM);
* ``replay`` — a recorded transcript played back, failing loudly when the run diverges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from locusd.agent.messages import Request, Response, Usage

#: Called with each piece of streamed text, for live progress.
OnText = Callable[[str], None]


class ProviderError(Exception):
    """The model call failed for good (after the provider's own retries); says why."""


class ConfigurationError(ProviderError):
    """The provider cannot even start: no API key, no base URL, no transcript."""


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        """One model turn. Cancelling the calling task stops the stream."""
        ...

    def cost(self, usage: Usage) -> float | None:
        """USD for ``usage``, or None when the price of the model is unknown."""
        ...
