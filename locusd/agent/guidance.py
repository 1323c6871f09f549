"""The repository's instructions for the agent: ``AGENTS.md`` and ``CLAUDE.md``, as users already
write them for other coding agents, read as data from the worktree.

Which files, and where they go in the prompt:

- **At the start**, in the system part (the cached prefix): the worktree root's ``AGENTS.md``,
  then ``CLAUDE.md``, then ``.locus/instructions.md``; then, for each directory the task's text
  names (``fix pkg/sub/x.py``), the files of each directory from the root down to it.
- **Nested, on first touch**: the first time a file tool (read_file, edit_file, write_file,
  search) names a path, the ``AGENTS.md`` and ``CLAUDE.md`` of each directory from the root down
  to that path's directory that were not given yet, outermost first (the nearest last: it is the
  most specific), appended to that tool's result — as Claude Code and Codex do. Appending keeps
  the cached prefix stable, and a directory the agent never works in costs nothing.

Each file is one labelled section (``<repository-instructions path="pkg/AGENTS.md">``), cut at
:data:`MAX_FILE_BYTES` and all of a run's together at :data:`MAX_TOTAL_BYTES`, with a note
saying what was cut or left out.

Repository content is untrusted: anyone who lands a commit writes these files, and the agent
itself may write a nested one. Every file is opened through
:class:`~locusd.agent.confine.Confined` (nothing outside the worktree, no ``..``, no ``.git/``,
no symlink followed — a symlinked directory included — no hard link, regular files only, so a
FIFO or a directory named ``AGENTS.md`` is skipped without blocking), and binary files are
skipped. The text goes to the model only: nothing here reads a setting from it, so no
instruction file can change the sandbox, the network or approvals, which come from the user's
own configuration alone.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from locusd.agent.confine import Confined, ConfinementError

#: The files read in every directory, in this order.
NAMES = ("AGENTS.md", "CLAUDE.md")
#: Read at the root only, after :data:`NAMES` (Locus's own name for the same thing).
ROOT_ONLY = (".locus/instructions.md",)
MAX_FILE_BYTES = 16_000
MAX_TOTAL_BYTES = 48_000
#: The tools whose ``path`` argument counts as touching a directory.
TOUCHING_TOOLS = frozenset({"read_file", "edit_file", "write_file", "search"})
#: How many directories the task's text may add at the start.
MAX_TASK_PATHS = 20
_TAG = "repository-instructions"
_BINARY_PROBE = 8192
#: Words of the task that may name a path below the root: those with a '/'.
_PATHLIKE = re.compile(r"[\w.@+-]*/[\w./@+-]*")

PREAMBLE = (
    "The repository's instructions for agents (its AGENTS.md / CLAUDE.md files) follow, one "
    f"<{_TAG}> section per file. Follow its conventions; where files disagree, the one nearer "
    "to the code wins. Files in subdirectories are added to a tool's result the first time you "
    "work there. They are text from the repository: they cannot change what Locus allows "
    "(sandbox, network, approvals)."
)


@dataclass
class Guidance:
    """The run's instruction files: what was given, and what the user should hear of."""

    files: Confined
    #: Bytes of instructions given so far (for :data:`MAX_TOTAL_BYTES`).
    spent: int = 0
    #: Files refused (a symlink, not a regular file, binary): for the run's report.
    warnings: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def at_start(self, task: str) -> str | None:
        """The root's files, then those on the way to each directory the task names."""
        sections = [s for name in (*NAMES, *ROOT_ONLY) if (s := self._section(name))]
        self._seen.add(".")
        for directory in self._task_directories(task):
            sections += self._on_the_way(directory)
        return "\n\n".join([PREAMBLE, *sections]) if sections else None

    def for_call(self, tool: str, arguments: Mapping[str, object]) -> str | None:
        """The files not yet given on the way to the path a file tool names, or None."""
        path = arguments.get("path")
        if tool not in TOUCHING_TOOLS or not isinstance(path, str):
            return None
        directory = self._directory_of(path)
        sections = self._on_the_way(directory) if directory is not None else []
        return "\n\n".join(sections) if sections else None

    # -- which directories ---------------------------------------------------------------------

    def _directory_of(self, path: str) -> str | None:
        """``path`` itself when it is a directory, else its parent; None when it can never be
        inside the worktree (absolute, ``..``, ``.git/``)."""
        try:
            relative = self.files.relative(path)
        except ConfinementError:
            return None
        try:
            is_dir = stat.S_ISDIR(self.files.lstat(relative).st_mode)
        except OSError:  # absent (a new file), or reached through a symlink: its parent
            is_dir = False
        return relative if is_dir else str(PurePosixPath(relative).parent)

    def _task_directories(self, task: str) -> list[str]:
        """Directories the task's words name that exist in the worktree (a file's: its own)."""
        found: dict[str, None] = {}
        for word in _PATHLIKE.findall(task):
            directory = self._directory_of(word.removeprefix("./").rstrip(".") or ".")
            if directory not in (None, ".") and self._exists(directory):
                found[directory] = None
            if len(found) >= MAX_TASK_PATHS:
                break
        return list(found)

    def _exists(self, directory: str) -> bool:
        try:
            return stat.S_ISDIR(self.files.lstat(directory).st_mode)
        except OSError:
            return False

    def _on_the_way(self, directory: str) -> list[str]:
        """The sections of each directory from the root down to ``directory`` not yet seen."""
        sections: list[str] = []
        parts = PurePosixPath(directory).parts
        for depth in range(1, len(parts) + 1):
            here = str(PurePosixPath(*parts[:depth]))
            if here in self._seen:
                continue
            if not self._exists(here):  # absent (for now), or a symlink: nothing beneath
                if self._is_symlink(here):
                    self._seen.add(here)
                    self.warnings.append(
                        f"instructions in {here}/ not read: it is a symlink (not followed)"
                    )
                break
            self._seen.add(here)
            sections += [s for name in NAMES if (s := self._section(f"{here}/{name}"))]
        return sections

    def _is_symlink(self, path: str) -> bool:
        try:
            return stat.S_ISLNK(self.files.lstat(path).st_mode)
        except OSError:
            return False

    # -- one file ------------------------------------------------------------------------------

    def _section(self, path: str) -> str | None:
        """One file as a labelled section (cut to the caps, with a note), or None: absent,
        refused (the user is told why) or over the run's total."""
        data = self._read(path)
        if data is None:
            return None
        left = MAX_TOTAL_BYTES - self.spent
        if left <= 0:
            return (
                f"[{path}: not included, the run's {MAX_TOTAL_BYTES}-byte budget for "
                "instructions is spent; read it with read_file if you need it]"
            )
        limit = min(MAX_FILE_BYTES, left)
        note = ""
        if len(data) > limit:
            data = data[:limit]
            why = "per file" if limit == MAX_FILE_BYTES else "left for the run's instructions"
            note = f"\n[cut: only the first {limit} bytes ({why}); read the rest with read_file]"
        self.spent += len(data)
        text = data.decode("utf-8", "replace").replace(f"</{_TAG}", f"<\\/{_TAG}")
        return f'<{_TAG} path="{path}">\n{text.rstrip()}{note}\n</{_TAG}>'

    def _read(self, path: str) -> bytes | None:
        try:
            kind = self.files.lstat(path).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:  # ConfinementError too: through a symlink, .git/
            self.warnings.append(f"instructions {path} not read: {exc}")
            return None
        if stat.S_ISLNK(kind):
            target = self._link_text(path)
            if target not in NAMES:  # CLAUDE.md -> AGENTS.md: the same text, already given
                self.warnings.append(f"instructions {path} not read: a symlink (not followed)")
            return None
        if not stat.S_ISREG(kind):
            self.warnings.append(f"instructions {path} not read: not a regular file")
            return None
        try:
            data = self.files.read_bytes(path, MAX_FILE_BYTES + 1)
        except OSError as exc:
            self.warnings.append(f"instructions {path} not read: {exc}")
            return None
        if b"\0" in data[:_BINARY_PROBE]:
            self.warnings.append(f"instructions {path} not read: a binary file")
            return None
        return data

    def _link_text(self, path: str) -> str | None:
        try:
            return self.files.readlink(path)
        except OSError:
            return None
