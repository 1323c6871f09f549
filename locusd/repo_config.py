"""``.locus.toml``: what a repository tells Locus about itself.

Only the parts the worktree layer needs so far (files to copy in, a setup command, the verify
command); unknown sections are kept for the parts that come later and tolerated, so a newer
``.locus.toml`` does not break an older daemon.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from locusd.errors import describe

FILENAME = ".locus.toml"


class RepoConfigError(ValueError):
    pass


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    copy_files: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
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
