"""Choosing and building a provider from the configuration, with one clear message when no
model is configured at all."""

from __future__ import annotations

import os
from pathlib import Path

from locusd.agent.providers import ConfigurationError, Provider
from locusd.config import AgentConfig

HOW_TO_CONFIGURE = """\
No model is configured. Three ways to give Locus one:
  1. Anthropic: export ANTHROPIC_API_KEY=sk-ant-… (optionally ANTHROPIC_BASE_URL, --model)
  2. A local or OpenAI-compatible server (Ollama, llama.cpp, vLLM):
       --provider openai --base-url http://127.0.0.1:11434/v1 --model qwen2.5-coder
     (or OPENAI_BASE_URL / OPENAI_API_KEY in the environment)
  3. Replay a recorded transcript, no model at all: --provider replay --replay FILE.jsonl
The same settings can live in the [agent] table of ~/.config/locus/config.toml."""


def make_provider(config: AgentConfig, *, replay: Path | None = None) -> Provider:
    replay = replay or config.replay
    if config.provider == "replay" or replay is not None:
        from locusd.agent.providers.replay import ReplayProvider

        if replay is None:
            raise ConfigurationError(
                "the replay provider needs a transcript: --replay FILE.jsonl\n\n" + HOW_TO_CONFIGURE
            )
        return ReplayProvider(replay)
    if config.provider == "openai":
        from locusd.agent.providers.openai import OpenAIProvider

        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        api_key = os.environ.get("OPENAI_API_KEY")
        if base_url is None and api_key is None:
            raise ConfigurationError(
                "the openai provider needs a --base-url (or OPENAI_API_KEY for api.openai.com)"
                "\n\n" + HOW_TO_CONFIGURE
            )
        if not config.model:
            raise ConfigurationError(
                "the openai provider needs --model (the name the server knows the model by)"
            )
        return OpenAIProvider(
            model=config.model, base_url=base_url, api_key=api_key, price=config.price()
        )
    from locusd.agent.providers.anthropic import DEFAULT_MODEL, AnthropicProvider

    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise ConfigurationError(HOW_TO_CONFIGURE)
    return AnthropicProvider(
        api_key=key,
        model=config.model or DEFAULT_MODEL,
        base_url=config.base_url,
        price=config.price(),
    )
