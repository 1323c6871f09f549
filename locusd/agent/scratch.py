"""A run's scratch space and its quota: the agent's commands' output files and their
``$TMPDIR``, one directory per run outside the worktree.

Why a quota: each command's output is capped (16 MB), but a run may run hundreds of commands,
and ``$TMPDIR`` takes whatever a command writes there. Why by accounting rather than a
size-limited tmpfs: a tmpfs lives as long as one bwrap call, so ``$TMPDIR`` would not outlast a
command, and it costs memory, not disk; a per-run directory works the same with and without
bubblewrap. While a command runs, the space is measured every second and the command killed
once it is over the quota; after every command, output files of earlier commands go first, then
``$TMPDIR``'s content, until the space is under the quota again. (The agent's commands run
with the user's rights: this bounds what Locus keeps for a run, not the disk the commands could
write elsewhere.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

#: Bytes a run's scratch space may hold (command output files and $TMPDIR together).
SCRATCH_QUOTA = 1024 * 1024 * 1024
#: Files and directories it may hold: an inode flood fills a disk as surely as bytes do.
SCRATCH_ENTRIES = 100_000
#: Seconds between two measurements while a command runs.
WATCH_INTERVAL = 1.0


@dataclass(frozen=True)
class Usage:
    bytes: int
    entries: int

    def over(self, quota: int, entries: int) -> bool:
        return self.bytes > quota or self.entries > entries

    def __str__(self) -> str:
        return f"{self.bytes / 2**20:.0f} MB in {self.entries} files"


def usage(root: Path, stop_after: int = SCRATCH_ENTRIES + 1) -> Usage:
    """The disk space under ``root`` (allocated blocks: a sparse file counts what it holds),
    symlinks not followed; the count stops after ``stop_after`` entries."""
    total, entries = 0, 0
    pending = [root]
    while pending and entries < stop_after:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as listing:
            for entry in listing:
                entries += 1
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
    return Usage(total, entries)


def _empty(directory: Path) -> None:
    """Remove what ``directory`` holds (never following a symlink), keeping it."""
    with contextlib.suppress(OSError), os.scandir(directory) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


@dataclass
class Scratch:
    """One run's scratch directory: ``command-N.log`` files and ``tmp/`` (the commands'
    ``$TMPDIR``)."""

    root: Path
    quota: int = SCRATCH_QUOTA
    max_entries: int = SCRATCH_ENTRIES

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def prepare(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True, mode=0o700)

    def usage(self) -> Usage:
        return usage(self.root, self.max_entries + 1)

    def limits(self) -> str:
        return f"{self.quota / 2**20:.0f} MB and {self.max_entries} files"

    async def watch(self, cancel: asyncio.Event, stop: asyncio.Event) -> str | None:
        """Until ``cancel`` is set (then ``stop`` too) or the space goes over the quota (then
        ``stop``, and why); meant to be cancelled when the command ends."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancel.wait(), WATCH_INTERVAL)
            if cancel.is_set():
                stop.set()
                return None
            found = await asyncio.to_thread(self.usage)
            if found.over(self.quota, self.max_entries):
                stop.set()
                return (
                    f"killed: the run's scratch space ($TMPDIR and command output) reached"
                    f" {found}, over its quota of {self.limits()}"
                )

    def enforce(self, keep: Path) -> str | None:
        """Bring the space under the quota: earlier commands' output files first (``keep``,
        the last one, stays), then ``$TMPDIR``'s content; what was removed, if anything."""
        found = self.usage()
        if not found.over(self.quota, self.max_entries):
            return None
        for old in sorted(self.root.glob("command-*.log")):
            if old != keep:
                old.unlink(missing_ok=True)
        if not self.usage().over(self.quota, self.max_entries):
            return None  # the model never read those files: nothing to tell
        _empty(self.tmp)
        return (
            f"the run's scratch space held {found}, over its quota of {self.limits()}:"
            " $TMPDIR was emptied (keep big files out of it, or remove them when done)"
        )
