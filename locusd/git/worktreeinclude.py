"""``.worktreeinclude``: the ignored files (a ``.env``, a local config) the user wants in every
run's worktree, listed in gitignore syntax at the checkout's root — the file Claude Code and
other worktree tools already read, so one file serves them all. It adds to ``.locus.toml``'s
``copy``.

A file is copied when it matches a pattern **and** git ignores it in the checkout (so a tracked
file never is; git does both matchings, by its own rules) **and** git ignores that path in the
run's worktree too (never over a file the base commit tracks, never into the run's diff). The
copy is ``copy``'s own (:func:`locusd.git.copying.copy_confined`): a regular file inside the
checkout, not through a symlink, not a hard link, written inside the worktree without following
a symlink. A refused file is a warning, not a failure: the run goes on without it.

The file is read from the user's checkout (where the other tools read it, committed or not) and
treated as repository content, i.e. untrusted: through the confined open (a symlink, a FIFO or
a directory of that name is refused), at most :data:`MAX_PATTERN_BYTES`; and it brings at most
:data:`MAX_FILES` files, :data:`MAX_BYTES` in all — it is for small files such as ``.env``; a
build cache is better made by ``setup``.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from locusd.agent.confine import Confined
from locusd.git.cli import GitFailed, TimedOut
from locusd.git.copying import CopyRefused, copy_confined
from locusd.git.repo import Repository

FILENAME = ".worktreeinclude"
MAX_PATTERN_BYTES = 64 * 1024
MAX_FILES = 1000
MAX_BYTES = 100 * 1024 * 1024


def present(checkout: Path) -> bool:
    """Whether the checkout has a ``.worktreeinclude`` (of whatever kind: reading says more)."""
    return os.path.lexists(checkout / FILENAME)


def copy_included(checkout: Path, worktree: Path, already: Collection[str] = ()) -> list[str]:
    """Copy what ``.worktreeinclude`` names from ``checkout`` into ``worktree`` (except the
    paths in ``already``, copied by ``copy``); returns warnings for the run's report."""
    if not present(checkout):
        return []
    warnings: list[str] = []
    try:
        data = Confined(checkout).read_bytes(FILENAME, MAX_PATTERN_BYTES + 1)
    except OSError as exc:  # a symlink, a FIFO, a directory, a hard link
        return [f"{FILENAME} not used: {exc}; make it a regular file at the checkout's root"]
    if len(data) > MAX_PATTERN_BYTES:
        return [f"{FILENAME} not used: over {MAX_PATTERN_BYTES} bytes; list fewer patterns"]
    try:
        sources = _matching(checkout, worktree, data.decode("utf-8", "surrogateescape"), warnings)
    except (GitFailed, TimedOut) as exc:
        return [f"{FILENAME} not used: git could not list the files it names: {exc}"]
    total = 0
    for number, source in enumerate(s for s in sources if s not in already):
        size = _size(checkout / source)
        if number >= MAX_FILES or total + size > MAX_BYTES:
            warnings.append(
                f"{FILENAME}: {source} and the files after it not copied: at most {MAX_FILES}"
                f" files, {MAX_BYTES // 2**20} MB in all; narrow its patterns (it is for files"
                " such as .env; let setup in .locus.toml build caches)"
            )
            break
        try:
            copy_confined(checkout, worktree, source)
        except CopyRefused as exc:
            warnings.append(f"{FILENAME}: not copied: {exc}")
            continue
        total += size
    return warnings


def _matching(checkout: Path, worktree: Path, patterns: str, warnings: list[str]) -> list[str]:
    """The checkout's files the patterns match that git ignores there and in the worktree."""
    here = Repository(checkout)
    matched = here.untracked_matching(patterns)
    ignored = here.ignored(matched)
    in_worktree = set(Repository(worktree).ignored(ignored))
    for path in ignored:
        if path not in in_worktree:
            warnings.append(
                f"{FILENAME}: {path} not copied: the run's base commit tracks it (or does not"
                " ignore it), so a copy would change the run's diff"
            )
    return sorted(path for path in ignored if path in in_worktree)


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0
