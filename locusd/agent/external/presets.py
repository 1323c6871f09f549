"""Which ACP agent a run starts, and how: the presets (``claude``, ``codex``, ``gemini``) and
``[agents.NAME]`` from the user's config. Resolving a choice into a :class:`Launch` (the
command line, its environment, the one model endpoint its network reaches) happens here and
nowhere else; the repository has no say (``.locus.toml`` cannot name an agent)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from locusd.agent.external.gateway import STAND_IN_KEY, inside_url
from locusd.agent.providers import ConfigurationError

if TYPE_CHECKING:
    from locusd.config import AgentConfig, ExternalAgentConfig

BUILTIN = "builtin"


@dataclass(frozen=True)
class Launch:
    """One ACP agent process, as the run starts it inside its sandbox."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    #: The model endpoint (``host:port``): the only place the agent's network reaches.
    endpoint: str
    #: Directories the agent writes although they lie in hidden places (``CODEX_HOME``).
    writable: tuple[Path, ...] = ()
    #: Whether Locus offers ``fs/read_text_file``: Gemini CLI cannot create a file when it
    #: reads through its client (docs/acp-agents-notes.md), so it reads for itself.
    read_files: bool = True
    #: The model endpoint's base URL when the agent is given the run's model gateway instead
    #: (the presets: Locus sets their base URL); None: its network reaches ``endpoint``.
    upstream: str | None = None
    #: The user's API key, which the gateway puts on the way out: the agent has a stand-in.
    key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ModelAccess:
    """The model settings of the daemon's config and environment an agent gets."""

    base_url: str
    api_key: str
    model: str | None
    home: Path  # a per-run directory of the agent's own, outside $TMPDIR


def _claude(access: ModelAccess) -> tuple[dict[str, str], tuple[Path, ...]]:
    env = {
        "ANTHROPIC_BASE_URL": access.base_url,
        "ANTHROPIC_API_KEY": access.api_key,
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        # The machine's IS_SANDBOX=yes makes Claude Code refuse to run as root.
        "IS_SANDBOX": "1",
    }
    if access.model:
        env["ANTHROPIC_MODEL"] = access.model
    return env, ()


def _codex(access: ModelAccess) -> tuple[dict[str, str], tuple[Path, ...]]:
    home = access.home / "codex-home"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    # JSON strings are TOML basic strings: a quote in a value cannot add a key.
    model = f"model = {json.dumps(access.model)}\n" if access.model else ""
    (home / "config.toml").write_text(
        f'{model}model_provider = "locus"\n\n[model_providers.locus]\nname = "Locus"\n'
        f"base_url = {json.dumps(access.base_url)}\n"
        'env_key = "OPENAI_API_KEY"\nwire_api = "responses"\n',
        encoding="utf-8",
    )
    return {"CODEX_HOME": str(home), "OPENAI_API_KEY": access.api_key}, (home,)


#: Gemini CLI's settings: no telemetry, and the API key as its way in (no login prompt).
GEMINI_SETTINGS = {
    "telemetry": {"enabled": False},
    "privacy": {"usageStatisticsEnabled": False},
    "security": {"auth": {"selectedType": "gemini-api-key"}},
}


def _gemini(access: ModelAccess) -> tuple[dict[str, str], tuple[Path, ...]]:
    # Its own home (GEMINI_CLI_HOME): settings, and the state it keeps under .gemini/.
    home = access.home / "gemini-home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_SETTINGS), "utf-8")
    env = {
        "GEMINI_CLI_HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": access.base_url,
        "GEMINI_API_KEY": access.api_key,
    }
    if access.model:
        env["GEMINI_MODEL"] = access.model
    return env, (home,)


@dataclass(frozen=True)
class Preset:
    program: str
    args: tuple[str, ...]
    install: str
    key_variable: str  # where the daemon's environment holds the API key
    url_variable: str  # and the base URL, when [agent] base_url does not say
    default_url: str
    env: Callable[[ModelAccess], tuple[dict[str, str], tuple[Path, ...]]] = field(repr=False)
    read_files: bool = True


PRESETS: dict[str, Preset] = {
    "claude": Preset(
        "claude-agent-acp", (), "npm i -g @zed-industries/claude-agent-acp",
        "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com", _claude,
    ),
    "codex": Preset(
        "codex-acp", (), "npm i -g @zed-industries/codex-acp",
        "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1", _codex,
    ),
    "gemini": Preset(
        "gemini", ("--acp",), "npm i -g @google/gemini-cli",
        "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "https://generativelanguage.googleapis.com", _gemini,
        read_files=False,
    ),
}  # fmt: skip


def agent_problem(name: str, agents: Mapping[str, ExternalAgentConfig]) -> str | None:
    """Why ``[agent] agent = name`` cannot be run (for the config's validation), or None."""
    if name == BUILTIN or name in PRESETS:
        return None
    if name not in agents:
        known = ", ".join([BUILTIN, *PRESETS, *agents])
        return (
            f"agent.agent = {name!r} is not an agent Locus knows: use one of {known}, or add"
            f' an [agents.{name}] table with command = ["program", "arg"]'
        )
    if not agents[name].command:
        return f'[agents.{name}] needs command = ["program", ...]: the ACP agent to start'
    return None


def endpoint(base_url: str) -> str:
    """``host:port`` of ``base_url`` (the scheme's port when it names none)."""
    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigurationError(
            f"base_url {base_url!r} is not an http(s) URL: set [agent] base_url to the model"
            " endpoint, e.g. https://api.anthropic.com"
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    return f"{host}:{port}"


@dataclass(frozen=True)
class _Plan:
    """What a launch is made of, every part checked; nothing written yet."""

    name: str
    argv: tuple[str, ...]
    base_url: str
    key: str
    extra: dict[str, str]
    preset: Preset | None


def _plan(
    config: AgentConfig, agents: Mapping[str, ExternalAgentConfig], env: Mapping[str, str]
) -> _Plan:
    name = config.agent
    preset = PRESETS.get(name)
    own = agents.get(name)
    if preset is None and own is None:
        raise ConfigurationError(agent_problem(name, agents) or f"no agent {name!r}")
    extra = dict(own.env) if own else {}
    if preset is None:
        assert own is not None
        base_url = config.base_url or env.get("ANTHROPIC_BASE_URL") or ""
        if not base_url:
            raise ConfigurationError(
                f"[agents.{name}]: set [agent] base_url to the model endpoint the agent uses"
                " (the only host its network reaches)"
            )
        endpoint(base_url)
        return _Plan(name, tuple(own.command), base_url, "", extra, None)
    base_url = config.base_url or env.get(preset.url_variable) or preset.default_url
    endpoint(base_url)
    key = env.get(preset.key_variable)
    if not key:
        raise ConfigurationError(
            f"agent {name!r} needs an API key: export {preset.key_variable}=… for the daemon"
            " (locus run hands it the variables of its shell); [agent] provider is not used"
        )
    # [agents.NAME] command names where the program is; the preset's own arguments (gemini's
    # --acp) follow unless it gives them.
    argv = list(own.command) if own and own.command else []
    argv += [arg for arg in preset.args if argv and arg not in argv]
    if not argv:
        found = shutil.which(preset.program, path=env.get("PATH"))
        if found is None:
            raise ConfigurationError(
                f"agent {name!r}: {preset.program} is not on PATH: install it"
                f' ({preset.install}) or set [agents.{name}] command = ["/path/to/'
                f'{preset.program}"]'
            )
        argv = [found, *preset.args]
    return _Plan(name, tuple(argv), base_url, key, extra, preset)


def check(
    config: AgentConfig, agents: Mapping[str, ExternalAgentConfig], env: Mapping[str, str]
) -> None:
    """What ``config.agent`` (not ``builtin``) needs — its program, its key variable, its
    endpoint — is there, or :class:`ConfigurationError` naming the key and the fix. Writes
    nothing: the daemon checks here before a run starts; the built-in provider's settings
    are not asked for."""
    _plan(config, agents, env)


def resolve(
    config: AgentConfig,
    agents: Mapping[str, ExternalAgentConfig],
    env: Mapping[str, str],
    home: Path,
) -> Launch:
    """The launch of ``config.agent`` (not ``builtin``), or :class:`ConfigurationError`
    naming what is missing and how to get it. ``env``: the run's environment (the daemon's
    with a client's model variables); ``home``: a per-run directory for the agent's state."""
    plan = _plan(config, agents, env)
    if plan.preset is None:
        return Launch(plan.name, plan.argv, plan.extra, endpoint(plan.base_url))
    # The agent's base URL is the run's model gateway, which meters and forwards to base_url
    # with the user's key in place of the stand-in the agent holds.
    access = ModelAccess(inside_url(plan.base_url), STAND_IN_KEY, config.model, home)
    made, writable = plan.preset.env(access)
    return Launch(
        plan.name,
        plan.argv,
        {**made, **plan.extra},
        endpoint(plan.base_url),
        writable,
        plan.preset.read_files,
        upstream=plan.base_url,
        key=plan.key,
    )
