"""``.locus.toml``: what a repository tells Locus about itself.

Only the parts the worktree layer needs so far (files to copy in, a setup command, the verify
command); unknown sections are kept for the parts that come later and tolerated, so a newer
``.locus.toml`` does not break an older daemon.
"""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from locusd.errors import describe

FILENAME = ".locus.toml"


class RepoConfigError(ValueError):
    pass


def copy_pattern_problem(pattern: str) -> str | None:
    """Why a ``copy`` entry can never be confined to the checkout (an absolute path, a ``..``,
    a NUL), or None."""
    if "\0" in pattern:
        return f"{pattern!r} holds a NUL character: remove it"
    pure = PurePosixPath(pattern)
    if pure.is_absolute() or pattern.startswith("~"):
        return f"{pattern!r} is absolute: give a path relative to the checkout, e.g. '.env'"
    if ".." in pure.parts:
        return f"{pattern!r} leaves the checkout ('..'): name files inside it, e.g. 'config/.env'"
    return None


def _copy_inside(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        problem = copy_pattern_problem(pattern)
        if problem is not None:
            raise ValueError(problem)
    return patterns


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    copy_files: Annotated[
        list[Annotated[str, StringConstraints(min_length=1)]], AfterValidator(_copy_inside)
    ] = Field(
        default_factory=list,
        alias="copy",
        description="paths or globs (relative to the checkout) copied into each worktree, "
        "e.g. ignored files such as .env",
    )
    setup: str | None = Field(None, description="shell command run once in a new worktree")
    verify: str | None = Field(None, description="shell command that says whether a run passed")
    secret_patterns: list[str] = Field(
        default_factory=list,
        description="regular expressions of this repository's own secrets, redacted from uploads",
    )
    setup_timeout: float = Field(
        600, gt=0, description="seconds before the setup command is killed"
    )


#: What only the user sets (config.toml, flags): the agent is untrusted, and ``.locus.toml`` is
#: repository content it can write — a repository must not grant itself permissions.
USERS_ONLY = {
    "mode": "[agent] mode",
    "agent": "[agent]",
    "agents": "[agents.NAME]",
    "policy": "[agent.policy]",
    "permissions": "[agent.policy]",
    "sandbox": "[agent] sandbox",
    "containers": "[agent] containers",
    "allow_network": "[agent] allow_network",
    "egress": "[agent.egress]",
}


def ignored(settings: RepoConfig) -> list[str]:
    """Warnings for the user's own settings a ``.locus.toml`` tries to set (``mode =
    "full-auto"``, an ``[agent]`` table, ...): ignored, and said so."""
    found = []
    for key, value in (settings.model_extra or {}).items():
        if key not in USERS_ONLY:
            continue
        inner = f" ({', '.join(f'{key}.{k}' for k in value)})" if isinstance(value, dict) else ""
        found.append(
            f"{FILENAME} sets {key!r}{inner}: ignored — permissions are yours to set, in your"
            f" own config ({USERS_ONLY[key]} in config.toml) or with locus run --mode, never by the"
            " repository"
        )
    return found


def load(checkout: Path) -> RepoConfig:
    """The repository's config, or the defaults when it has no ``.locus.toml``."""
    path = checkout / FILENAME
    if not path.exists():
        return RepoConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return RepoConfig.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise RepoConfigError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise RepoConfigError(f"{path}: {describe(exc)}") from None
