"""What the providers retry, how long they wait, and how they say what they will not retry.

Two layers, because the SDKs cover only the first:

* **Before a stream starts** the SDK itself retries 408/409/429/5xx/529 and connection
  errors (refused, reset before an answer), ``max_retries`` times, honouring ``retry-after``.
  A server asking for a longer wait than :data:`MAX_RETRY_AFTER` is not waited for: the run
  ends saying so (the openai SDK does this by itself; :func:`bounded_retry_after` makes the
  anthropic SDK, which would wait any length, do the same).
* **After a stream started** a failure reaches us as it is: an in-band error event
  (Anthropic's ``event: error`` with ``overloaded_error``, an OpenAI-compatible server's
  ``{"error": …}`` chunk), a connection that drops before the stream's end
  (``message_stop`` / a ``finish_reason``), a garbled frame. The provider raises
  :class:`Retryable` and :class:`StreamRetries` asks the whole turn again, with exponential
  backoff, a bounded number of times. The broken attempt's partial response is dropped:
  only a complete response ever reaches the conversation.

Everything else — invalid request (a conversation too long for the context window), rejected
key, no such model — is a :class:`ProviderError` at once, its message naming the status, the
API's own words and what to do.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx2

from locusd.agent.providers import ProviderError
from locusd.backoff import Backoff

log = logging.getLogger("locusd.agent.providers")

T = TypeVar("T")

#: The longest ``retry-after`` a provider waits for (the openai SDK's own bound).
MAX_RETRY_AFTER = 120.0

_HINTS: dict[int, str] = {
    400: "the request is invalid; not retried",
    401: "the API key was rejected: check the key in the environment or the configuration",
    402: "the account cannot pay for the request: check its billing",
    403: "the API key may not use this model or resource",
    404: "no such model or endpoint: check the model and base_url in [agent] (or locus agent run"
    " --model and --base-url)",
    413: "the request is too large for the API",
    422: "the request is invalid; not retried",
}
_TOO_LONG = "the conversation no longer fits the model's context window; not retried"


class Retryable(Exception):
    """A started stream failed in a way worth asking the same turn again; says why."""


@dataclass(frozen=True)
class StreamRetries:
    """Bounded retries of a turn whose stream failed after it started."""

    retries: int = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=30.0))

    async def run(self, api: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()`` until it returns, retrying :class:`Retryable` up to ``retries`` times;
        then a :class:`ProviderError` with the last reason."""
        for failures in range(1, self.retries + 2):
            try:
                return await attempt()
            except Retryable as exc:
                if failures > self.retries:
                    raise ProviderError(
                        f"{api}: giving up after {failures} attempts: {exc}"
                    ) from exc
                wait = self.backoff.delay(failures)
                log.warning("%s: %s; trying the turn again in %.2f s", api, exc, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait (``retry-after-ms``, ``retry-after`` as seconds or an
    HTTP date), or None."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            pass
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return float(email.utils.mktime_tz(parsed)) - time.time()
    return None


def bounded_retry_after(
    limit: float = MAX_RETRY_AFTER,
) -> Callable[[httpx2.Response], Awaitable[None]]:
    """An httpx response hook: a ``retry-after`` beyond ``limit`` marks the response
    ``x-should-retry: false``, so the SDK raises it at once instead of sleeping that long."""

    async def hook(response: httpx2.Response) -> None:
        wait = retry_after(response.headers)
        if response.status_code >= 400 and wait is not None and wait > limit:
            response.headers["x-should-retry"] = "false"

    return hook


def refusal(
    api: str,
    status: int | None,
    kind: str | None,
    message: str,
    *,
    retries: int = 0,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """The error that ends the run for an answer that is not (or no longer) worth retrying;
    ``status`` None for an error event inside a started stream."""
    what = f"{kind or 'error'} inside the stream" if status is None else f"{status} {kind or ''}"
    wait = retry_after(headers or {})
    if wait is not None and wait > MAX_RETRY_AFTER:
        hint = (
            f"the API asked to wait {wait:.0f} s before trying again, longer than the "
            f"{MAX_RETRY_AFTER:.0f} s Locus waits; try the task again later"
        )
    elif status in (None, 400) and _too_long(kind, message):
        hint = _TOO_LONG
    elif status is None:
        hint = "not retried"
    elif status in _HINTS:
        hint = _HINTS[status]
    else:
        hint = f"still failing after {retries} retries"
    return ProviderError(f"{api} error {what.strip()}: {message} ({hint})")


def _too_long(kind: str | None, message: str) -> bool:
    """Anthropic: "prompt is too long"; OpenAI and vLLM: "maximum context length",
    ``context_length_exceeded``; llama.cpp: "exceeds the available context size"."""
    text = f"{kind} {message}".lower().replace("_", " ")
    return any(
        words in text for words in ("too long", "context length", "context size", "context window")
    )
