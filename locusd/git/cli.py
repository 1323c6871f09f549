"""Child processes the daemon can stop, with the environment Locus gives git.

Every git command (through :class:`locusd.git.repo.Repository`, which hands GitPython's
command wrapper this process layer) and the repository's own setup command run here: stdin
closed (or a file), their own process group, and a timeout that kills the whole group — a
``git fetch`` leaves ``ssh`` or ``git-remote-https`` children that a plain kill would orphan.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from locusd.agent.commands import is_secret_name
from locusd.git import programs

#: Variables that point git at another repository than the one ``-C``/``cwd`` names; a daemon
#: started from a git hook would otherwise inherit them (the list git itself clears for
#: submodules, ``local_repo_env``).
REPOSITORY_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_PREFIX",
)

#: git's own ``-c`` in the environment (``GIT_CONFIG_KEY_0``): a config key's name, not a secret.
_CONFIG_KEY = re.compile(r"GIT_CONFIG_KEY_[0-9]+")

GIT_ENV = {
    # Never wait for a password nobody will type: fail, and let the caller decide.
    "GIT_TERMINAL_PROMPT": "0",
    # LFS content is not downloaded into run worktrees: pointers stay pointers (with git-lfs
    # installed, its smudge filter would otherwise fetch every object over the network).
    "GIT_LFS_SKIP_SMUDGE": "1",
}


def git_env(*, secrets: bool = False) -> dict[str, str]:
    """The daemon's environment as git gets it: without the repository variables, with
    :data:`GIT_ENV`, and without any variable whose name says it holds a secret (the model
    API keys, Locus's own, tokens) unless ``secrets`` — a fetch or a push, whose credential
    helper may need one. Read at each call, so it follows the process environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in REPOSITORY_ENV
        and (secrets or _CONFIG_KEY.fullmatch(k) or not is_secret_name(k))
    }
    return {**env, **GIT_ENV}


def hardened_env(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the overrides that keep the repository's configuration from making the git
    call ``argv`` run a program (:mod:`locusd.git.programs`), computed from the configuration
    as it is now (one ``git config --list``: the agent may have changed it since the last
    call) unless the command can run none."""
    listing = ""
    if programs.needs_listing(argv[1:]):
        listed = run(programs.listing_argv(argv[0]), cwd, timeout=30, env=env)
        listing = listed.stdout if listed.returncode == 0 else ""
    return programs.config_env(programs.overrides(listing), env)


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str

    def tail(self, limit: int = 2000) -> str:
        return (self.stdout + self.stderr)[-limit:].strip()


class TimedOut(Exception):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{' '.join(argv)} took over {timeout:.0f} s")
        self.timeout = timeout


class GitFailed(Exception):
    def __init__(self, argv: Sequence[str], done: Finished) -> None:
        super().__init__(f"{' '.join(argv)} failed ({done.returncode}): {done.tail(500)}")
        self.done = done


def run(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
) -> Finished:
    """Run ``argv`` in its own process group, stdin closed (or ``stdin``, a real file); on
    timeout kill the group and raise :class:`TimedOut`. Output is decoded so that any path
    bytes round-trip, and stdout as it is: a ``\r`` in a file stays in its diff (text mode's
    newline translation would make a CRLF file's diff, or a line with a lone ``\r``, lie)."""
    with subprocess.Popen(  # noqa: S603 - argv is built by the callers, never a shell string
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise TimedOut(argv, timeout or 0) from None
    said = stderr.decode("utf-8", "surrogateescape").replace("\r\n", "\n").replace("\r", "\n")
    return Finished(process.returncode, stdout.decode("utf-8", "surrogateescape"), said)


class Git:
    """One git executable with Locus's environment, run in any directory: kept for the callers
    in ``locusd/runner`` until they move to :class:`locusd.git.repo.Repository`."""

    def __init__(self, executable: str) -> None:
        self.executable = executable

    @property
    def env(self) -> dict[str, str]:
        return git_env()

    def run(self, cwd: Path, *args: str, timeout: float | None = None) -> Finished:
        argv = [self.executable, *args]
        return run(argv, cwd, timeout=timeout, env=hardened_env(argv, cwd, git_env()))

    def __call__(self, cwd: Path, *args: str, timeout: float | None = None) -> str:
        """stdout of ``git args`` in ``cwd``; raises :class:`GitFailed` on a non-zero exit."""
        done = self.run(cwd, *args, timeout=timeout)
        if done.returncode != 0:
            raise GitFailed(["git", *args], done)
        return done.stdout
