"""The user's Locus configuration (``~/.config/locus/config.toml``, or ``$LOCUS_CONFIG``): which
model to use, budgets, the command policy, where worktrees and transcripts live.

It is the user's file, not the repository's: a repository may describe itself in
``.locus.toml`` (files to copy, setup, verify) but cannot raise its own budgets or permissions.
Validation errors name the key and the file. A relative path in it (``replay``, the
repositories, the directories) is relative to the file's own directory, not to the working
directory of whoever reads it (the daemon runs in ``/``); ``~`` is the home directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from locusd.agent.budget import Budget
from locusd.agent.egress.rules import EgressRuleError, Rule
from locusd.agent.policy import CommandPolicy, ContainerChoice, Mode
from locusd.agent.providers.pricing import Price
from locusd.agent.sandbox import HOME_ALLOW
from locusd.cloudurl import url_problem
from locusd.errors import describe

ProviderName = Literal["anthropic", "openai", "replay"]


class ConfigError(ValueError):
    pass


def _from_config_dir(path: Path, info: ValidationInfo) -> Path:
    """Relative to the config file's directory (given as ``base`` by :func:`load`)."""
    path = path.expanduser()
    base = info.context.get("base") if isinstance(info.context, dict) else None
    return path if path.is_absolute() or base is None else Path(base) / path


#: A path in the config file.
ConfigPath = Annotated[Path, AfterValidator(_from_config_dir)]


class EgressConfig(BaseModel):
    """Where sandboxed commands may connect (docs/security.md, "Network")."""

    model_config = ConfigDict(extra="forbid")

    proxy: bool = Field(
        True,
        description="reach the allowed hosts through Locus's egress proxy; false: no network"
        " at all for sandboxed commands",
    )
    registries: bool = Field(
        True,
        description="allow the package registries of the ecosystems the repository uses (the"
        " ones your package managers are configured with, else the public ones)",
    )
    allow: list[str] = Field(
        default_factory=list,
        description="more hosts: a name, *.domain or an address, optionally :port",
    )

    @field_validator("allow")
    @classmethod
    def _hosts(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            try:
                Rule.parse(entry, "your config")
            except EgressRuleError as exc:
                raise ValueError(str(exc)) from None
        return entries


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: ProviderName = Field("anthropic", description="anthropic, openai or replay")
    model: str | None = Field(None, description="model name; each provider has a default")
    base_url: str | None = Field(None, description="API base URL (e.g. a local Ollama /v1)")
    replay: ConfigPath | None = Field(
        None, description="with provider = 'replay': the transcript every run plays back"
    )
    price_input_per_mtok: float | None = Field(
        None, ge=0, description="USD per million input tokens (overrides the built-in table)"
    )
    price_output_per_mtok: float | None = Field(
        None, ge=0, description="USD per million output tokens (with price_input_per_mtok)"
    )
    max_output_tokens: int = Field(8192, gt=0, description="max_tokens of each model call")
    command_timeout: float = Field(600, gt=0, description="seconds before a command is killed")
    verify_timeout: float = Field(1800, gt=0, description="seconds before verify is killed")
    max_verify_rounds: int = Field(3, gt=0, description="failed verifications before giving up")
    stuck_threshold: int = Field(3, ge=2, description="identical calls in a row that mean stuck")
    sandbox: bool = Field(
        True, description="contain commands with bubblewrap when it works here (see docs)"
    )
    allow_network: bool = Field(
        False,
        description="give sandboxed commands the whole network, unfiltered and unrecorded"
        " (rather than [agent.egress])",
    )
    egress: EgressConfig = Field(default_factory=EgressConfig)
    containers: ContainerChoice = Field(
        "ask",
        description="docker, podman and other container engines: 'ask' (the default; denied in"
        " unattended runs), 'allow' (their sockets are bound into the sandbox: root-equivalent"
        " for Docker's) or 'deny'",
    )
    home_allow: list[str] = Field(
        default_factory=lambda: list(HOME_ALLOW),
        description="directories under $HOME (relative) that sandboxed commands see, read-only;"
        " the rest of $HOME is an empty scratch directory",
    )
    mode: Mode = Field(
        "ask",
        description="permission mode: 'ask' (ask before commands the policy marks 'ask'),"
        " 'auto-edit' (also run file-managing commands inside the sandboxed worktree without"
        " asking) or 'full-auto' (run every command no deny pattern stops, in the sandbox only;"
        " the sandbox, the network and [agent] containers stay as they are). Yours only: never"
        " .locus.toml",
    )
    agent: str = Field(
        "builtin",
        min_length=1,
        description="which agent works on a run: 'builtin' (Locus's own loop), 'claude',"
        " 'codex', 'gemini' (ACP agents, docs/acp.md) or the NAME of an [agents.NAME] table."
        " Yours only: never .locus.toml",
    )
    hints: bool = Field(
        True,
        description="end a run's first message with the files it likely touches, ranked from"
        " the repository's history (docs/graph.md, Hints)",
    )
    budget: Budget = Field(default_factory=Budget)
    policy: CommandPolicy = Field(default_factory=CommandPolicy)

    @field_validator("home_allow")
    @classmethod
    def _inside_home(cls, names: list[str]) -> list[str]:
        for name in names:
            parts = Path(name).parts
            if not name.strip() or not parts or Path(name).is_absolute() or ".." in parts:
                raise ValueError(
                    f"{name!r} is not a directory inside $HOME: give paths relative to it,"
                    ' without "..", e.g. ".cargo" or ".local/bin"'
                )
        return names

    def price(self) -> Price | None:
        if self.price_input_per_mtok is None or self.price_output_per_mtok is None:
            return None
        return Price(self.price_input_per_mtok, self.price_output_per_mtok)


class ExternalAgentConfig(BaseModel):
    """An ACP agent Locus runs as a run's agent (``[agents.NAME]``; docs/acp.md)."""

    model_config = ConfigDict(extra="forbid")

    command: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list,
        description='the program and its arguments, e.g. ["/opt/bin/my-agent"];'
        " for a preset (claude, codex, gemini) empty means: its program, found on PATH",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="variables the agent gets, over the preset's"
    )


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cloud_url: str = Field("http://127.0.0.1:8420", description="the Locus Cloud to log in to")

    @field_validator("cloud_url")
    @classmethod
    def _an_http_url(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    repositories: list[ConfigPath] = Field(
        default_factory=list,
        description="checkouts whose tasks this daemon runs (locus run adds the current one)",
    )
    auto_commit: list[ConfigPath] = Field(
        default_factory=list,
        description="checkouts whose finished runs are committed and reported without a review"
        " (unattended workers; off for every repository by default)",
    )
    share_proposed_diffs: list[ConfigPath] = Field(
        default_factory=list,
        description="checkouts whose proposed diffs go to the cloud before you accept them (for"
        " review on the dashboard; scrubbed and audited). Otherwise only counts leave until a"
        " commit (off for every repository by default)",
    )
    outbox_retry_cap: float = Field(
        30.0, gt=0, description="longest wait between two tries of an unsent cloud write (s)"
    )
    upload_graph: bool = Field(
        True,
        description="while the worker runs, send each served repository's knowledge graph to"
        " its project (paths, languages, dependency names, commands, change counts, finished"
        " tasks' files; never contents or messages: locus graph show prints it)",
    )


class NotificationsConfig(BaseModel):
    """When a run needs a person (docs/daemon.md, "Notifications")."""

    model_config = ConfigDict(extra="forbid")

    desktop: bool = Field(
        True,
        description="raise a desktop notification (notify-send, or osascript on macOS) when a"
        " run asks for an approval, asks a question or awaits review",
    )


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: AgentConfig = Field(default_factory=AgentConfig)
    agents: dict[str, ExternalAgentConfig] = Field(
        default_factory=dict, description="ACP agents by name ([agents.NAME]; docs/acp.md)"
    )
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    credentials_dir: ConfigPath = Field(
        default_factory=lambda: Path(platformdirs.user_config_dir("locus")),
        description="where the cloud secret is kept when there is no OS keyring (0600 file)",
    )
    worktree_dir: ConfigPath = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("locus")) / "worktrees",
        description="where run worktrees are created (outside every checkout)",
    )
    state_dir: ConfigPath = Field(
        default_factory=lambda: Path(platformdirs.user_state_dir("locus")),
        description="transcripts and command output of runs",
    )
    cache_dir: ConfigPath = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir("locus")),
        description="package caches of sandboxed commands, one per repository (never your own"
        " ~/.npm or ~/.cache/pip: what the agent writes there, your own installs would use)",
    )

    @model_validator(mode="after")
    def _known_agent(self) -> Config:
        from locusd.agent.external.presets import agent_problem

        problem = agent_problem(self.agent.agent, self.agents)
        if problem is not None:
            raise ValueError(problem)
        return self


def config_path() -> Path:
    override = os.environ.get("LOCUS_CONFIG")
    return (
        Path(override) if override else Path(platformdirs.user_config_dir("locus")) / "config.toml"
    )


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    if not path.exists():
        return Config()
    try:
        return parse(path.read_text(encoding="utf-8"), path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None


def parse(text: str, path: Path) -> Config:
    """The config in ``text``, the contents of ``path`` (its relative paths are resolved
    against the file's directory); :class:`ConfigError` naming the line or the key."""
    try:
        return Config.model_validate(tomllib.loads(text), context={"base": path.absolute().parent})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc)}") from None
