"""Choosing and building a provider from the configuration, with one clear message when no
model is configured at all. Checking is apart from building so that the daemon can refuse a bad
configuration at once without importing a model SDK (its agent processes build the provider)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from locusd.agent.external import presets
from locusd.agent.providers import ConfigurationError, Provider
from locusd.config import AgentConfig, Config, ProviderName

HOW_TO_CONFIGURE = """\
No model is configured. Three ways to give Locus one:
  1. Anthropic: export ANTHROPIC_API_KEY=sk-ant-… and run the command again
     (optionally ANTHROPIC_BASE_URL too)
  2. A local or OpenAI-compatible server (Ollama, llama.cpp, vLLM): in the [agent] table of
     ~/.config/locus/config.toml, provider = "openai", base_url = "http://127.0.0.1:11434/v1"
     and model = "qwen2.5-coder" (or OPENAI_BASE_URL / OPENAI_API_KEY in the environment);
     for one run: locus agent run --provider openai --base-url URL --model NAME
  3. Replay a recorded transcript, no model at all: provider = "replay" and
     replay = "FILE.jsonl" in [agent]; for one run: locus agent run --replay FILE.jsonl
locus run hands the daemon the model variables of the shell it runs in, and the daemon reads
config.toml again for each new run: no restart needed."""


@dataclass(frozen=True)
class Choice:
    """A provider the configuration names, with what building it takes (nothing imported)."""

    name: ProviderName
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    replay: Path | None = None


def check_provider(
    config: AgentConfig, *, replay: Path | None = None, env: Mapping[str, str] = os.environ
) -> Choice:
    """The provider to build, or :class:`ConfigurationError` saying how to configure one.
    Imports no SDK: the daemon checks here and only its agent processes build (and import).
    ``env``: the environment the run will have (the daemon's, with a client's model
    variables)."""
    replay = replay or config.replay
    if config.provider == "replay" or replay is not None:
        if replay is None:
            raise ConfigurationError(
                'the replay provider needs a transcript: replay = "FILE.jsonl" in [agent] (or'
                " locus agent run --replay FILE.jsonl)\n\n" + HOW_TO_CONFIGURE
            )
        if not replay.is_file():
            raise ConfigurationError(f"replay {replay}: no such transcript file")
        return Choice("replay", replay=replay)
    if config.provider == "openai":
        base_url = config.base_url or env.get("OPENAI_BASE_URL")
        api_key = env.get("OPENAI_API_KEY")
        if base_url is None and api_key is None:
            raise ConfigurationError(
                "the openai provider needs a base URL: base_url in [agent] or OPENAI_BASE_URL"
                " (or OPENAI_API_KEY for api.openai.com; locus agent run --base-url URL)"
                "\n\n" + HOW_TO_CONFIGURE
            )
        if not config.model:
            raise ConfigurationError(
                "the openai provider needs a model: model in [agent] (the name the server knows"
                " the model by; locus agent run --model NAME)"
            )
        return Choice("openai", model=config.model, base_url=base_url, api_key=api_key)
    key = env.get("ANTHROPIC_API_KEY")
    if not key:
        raise ConfigurationError(HOW_TO_CONFIGURE)
    return Choice("anthropic", model=config.model, base_url=config.base_url, api_key=key)


def make_provider(config: AgentConfig, *, replay: Path | None = None) -> Provider:
    choice = check_provider(config, replay=replay)
    if choice.replay is not None:
        from locusd.agent.providers.replay import ReplayProvider

        return ReplayProvider(choice.replay)
    if choice.name == "openai":
        from locusd.agent.providers.openai import OpenAIProvider

        assert choice.model is not None  # checked above
        return OpenAIProvider(
            model=choice.model,
            base_url=choice.base_url,
            api_key=choice.api_key,
            price=config.price(),
        )
    from locusd.agent.providers.anthropic import DEFAULT_MODEL, AnthropicProvider

    assert choice.api_key is not None  # checked above
    return AnthropicProvider(
        api_key=choice.api_key,
        model=choice.model or DEFAULT_MODEL,
        base_url=choice.base_url,
        price=config.price(),
    )


def check_agent(
    config: Config, *, replay: Path | None = None, env: Mapping[str, str] = os.environ
) -> None:
    """What the run's agent needs, or :class:`ConfigurationError` saying how to configure it:
    the built-in loop's provider, or an ACP agent's own program, key and endpoint (its runs
    use no ``[agent] provider``). Imports no SDK."""
    if config.agent.agent == presets.BUILTIN:
        check_provider(config.agent, replay=replay, env=env)
    else:
        presets.check(config.agent, config.agents, env)


def provider_for(config: Config, *, replay: Path | None = None) -> Provider | None:
    """The built-in loop's provider, built; None for an ACP agent (checked, not built)."""
    if config.agent.agent == presets.BUILTIN:
        return make_provider(config.agent, replay=replay)
    check_agent(config, replay=replay)
    return None
