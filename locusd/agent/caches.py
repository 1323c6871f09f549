"""Package caches per repository, owned by Locus: where a sandboxed command's package managers
keep what they downloaded, so that the second install of the same package is fast.

Why not the user's own caches (``~/.npm``, ``~/.cache/pip``): the agent is untrusted, and what it
writes into a cache the user's own, unsandboxed ``npm install`` would later install. Why one per
repository: a run of one repository must not be able to poison (or read) another's. So each
repository gets ``<cache dir>/packages/<repo key>/<tool>``, bound read-write into its runs'
sandboxes (:meth:`locusd.agent.sandbox.Sandbox.with_cache`), with the tools pointed at it by
environment variables (:func:`PackageCaches.env`); the cache dir itself is hidden from every
command, so no run sees another repository's.

Why a cap trimmed between runs rather than a quota watched while commands run: a package
manager killed mid-write leaves a cache it may not read again, and the worktree a command
installs into (``node_modules``) is unbounded the same way. Before each run, a cache over its
cap loses whole tool directories, the largest first, until it is under (a tool refetches
what is gone) — unless another run of the repository holds them (a shared lock beside them,
for the run's length), whose installs may be reading them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from locusd.agent.report import repo_key
from locusd.agent.scratch import Usage, usage

#: Bytes one repository's package caches may hold at the start of a run.
CACHE_QUOTA = 8 * 1024**3
#: Files and directories they may hold (a Go module cache is many small files).
CACHE_ENTRIES = 2_000_000

#: Each tool's directory, and the variables that point the tool at it. Cargo has none for its
#: cache, which lives in ``CARGO_HOME`` beside its config and credentials: see :data:`CARGO`.
TOOLS: dict[str, tuple[str, ...]] = {
    "pip": ("PIP_CACHE_DIR",),
    "uv": ("UV_CACHE_DIR",),
    "npm": ("npm_config_cache",),
    "yarn": ("YARN_CACHE_FOLDER",),
    "go-mod": ("GOMODCACHE",),
    "go-build": ("GOCACHE",),
    "gradle": ("GRADLE_USER_HOME",),
}
#: Maven has no variable for its local repository: a JVM property in ``MAVEN_OPTS``.
MAVEN = "maven"
#: Cargo's downloads (``$CARGO_HOME/registry``, ``$CARGO_HOME/git``): Locus's directories are
#: bound over them inside the sandbox, while the rest of ``CARGO_HOME`` (``config.toml``, the
#: registry credentials, ``bin/``) stays the user's, read-only or hidden.
CARGO = "cargo"
CARGO_PARTS = ("registry", "git")


@dataclass
class PackageCaches:
    """One repository's package caches: ``root`` holds a directory per tool."""

    root: Path
    quota: int = CACHE_QUOTA
    max_entries: int = CACHE_ENTRIES
    #: While a run uses the caches: a shared lock on :meth:`lock_path` (see :meth:`open`).
    _held: int | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, cache_dir: Path, repo: Path) -> PackageCaches:
        """The caches of the repository checked out at ``repo``, under Locus's ``cache_dir``."""
        return cls(cache_dir / "packages" / repo_key(repo))

    def lock_path(self) -> Path:
        """Beside the caches, not in them: out of every command's reach."""
        return self.root.with_name(f"{self.root.name}.lock")

    def open(self) -> str | None:
        """Trim the caches — unless another run of the repository is using them — and prepare
        them, then hold them (a shared lock) until :meth:`release`: a trim never removes what
        a running install reads. What the trim removed, if anything."""
        self.root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        held = os.open(self.lock_path(), flags, 0o600)
        try:
            trimmed = None
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                trimmed = self.trim()
            self.prepare()
            fcntl.flock(held, fcntl.LOCK_SH)
        except BaseException:
            os.close(held)
            raise
        self._held = held
        return trimmed

    def release(self) -> None:
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def tools(self) -> list[Path]:
        return [self.root / name for name in (*TOOLS, MAVEN, CARGO)]

    def prepare(self) -> None:
        """Make the directories (the owner's only). A tool's entry that is not a plain
        directory — a symlink or file a command left — is replaced: the variables must name
        Locus's directory, not a place a command chose."""
        self.root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.mkdir(exist_ok=True, mode=0o700)
        cargo = [self.root / CARGO / part for part in CARGO_PARTS]
        for place in [*self.tools(), *cargo]:
            if place.is_symlink() or (place.exists() and not place.is_dir()):
                place.unlink()
            place.mkdir(exist_ok=True, mode=0o700)

    def env(self) -> dict[str, str]:
        """The variables that point every tool at its directory here."""
        found = {name: str(self.root / tool) for tool, names in TOOLS.items() for name in names}
        return found | {"MAVEN_OPTS": f"-Dmaven.repo.local={self.root / MAVEN}"}

    def binds(self, env: Mapping[str, str]) -> list[tuple[Path, Path]]:
        """What the sandbox binds read-write, (source, inside): the caches where they are, and
        cargo's where cargo looks (``$CARGO_HOME``, else ``~/.cargo``) — only where that
        directory exists: inside the read-only ``~/.cargo`` no mount point can be made (a
        ``cargo fetch`` of your own makes it once)."""
        found = [(self.root, self.root)]
        home = env.get("CARGO_HOME") or (f"{env['HOME']}/.cargo" if env.get("HOME") else "")
        for part in CARGO_PARTS if home else ():
            inside = Path(home) / part
            if inside.is_dir() and not inside.is_symlink():
                found.append((self.root / CARGO / part, inside))
        return found

    def usage(self) -> Usage:
        return usage(self.root, self.max_entries + 1)

    def trim(self) -> str | None:
        """Bring the caches under the cap: whole tool directories go, the largest first (what
        was removed, if anything). Never follows a symlink."""
        found = self.usage()
        if not found.over(self.quota, self.max_entries):
            return None
        sizes = sorted(
            ((usage(tool, self.max_entries + 1), tool) for tool in self.tools() if tool.is_dir()),
            key=lambda pair: (pair[0].bytes, pair[0].entries),
            reverse=True,
        )
        removed = []
        for _, tool in sizes:
            _remove(tool)
            removed.append(tool.name)
            if not self.usage().over(self.quota, self.max_entries):
                break
        limits = f"{self.quota / 2**30:.0f} GB and {self.max_entries} files"
        return (
            f"the package caches of this repository held {found}, over their cap of {limits}:"
            f" emptied {', '.join(removed)} (they fill again on the next install)"
        )


def _remove(tree: Path) -> None:
    """Remove ``tree`` even where a tool made it read-only (Go's module cache)."""

    def writable_again(function: Callable[..., object], path: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            parent = os.path.dirname(path)
            os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)
            function(path)

    if tree.is_symlink():
        tree.unlink()
    else:
        shutil.rmtree(tree, onerror=writable_again)


def for_run(cache_dir: Path, repo: Path, warnings: list[str]) -> PackageCaches | None:
    """The repository's caches, trimmed and ready before the run's first command, held until
    :meth:`PackageCaches.release`; None (the
    tools keep their caches in the command's tmpfs ``$HOME``, for the one command) when they
    cannot be made — the run goes on, and its warnings say why."""
    caches = PackageCaches.of(cache_dir, repo)
    try:
        trimmed = caches.open()
    except OSError as exc:
        warnings.append(
            f"the package caches cannot be made in {caches.root} ({exc}): installs fetch"
            " everything anew (fix the directory, or set cache_dir in your Locus config)"
        )
        return None
    if trimmed:
        warnings.append(trimmed)
    return caches
