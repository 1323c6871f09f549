"""The files a repository's ``copy`` list brings from the user's checkout into a run's worktree,
confined at both ends.

``.locus.toml`` is repository content (anyone who lands a commit, or the agent in an earlier
round, writes it), so its ``copy`` list is untrusted: a source must be a regular file inside the
checkout — not through a symlink that leaves it, not a hard link (which could be any file of
the user's) — and a target a file inside the worktree, never written through a symlink. Both
ends go through :class:`locusd.agent.confine.Confined`, the kernel-checked open the agent's
file tools use, so a swapped directory cannot race the check either.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from locusd.agent.confine import Confined, ConfinementError


class CopyRefused(Exception):
    """A ``copy`` entry that would read or write outside its place; says which and why."""


def copy_confined(checkout: Path, worktree: Path, relative: str) -> None:
    """Copy ``checkout/relative`` to ``worktree/relative``, both confined."""
    try:
        data = Confined(checkout).read_bytes(relative)
    except (ConfinementError, OSError) as exc:
        raise CopyRefused(f"{relative} cannot be copied from the checkout: {exc}") from None
    target = Confined(worktree)
    try:
        target.makedirs(str(PurePosixPath(relative).parent))
        target.write_bytes(relative, data)
    except (ConfinementError, OSError) as exc:
        raise CopyRefused(f"{relative} cannot be written in the worktree: {exc}") from None
