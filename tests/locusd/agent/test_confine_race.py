"""Confinement under a rename race: while another thread keeps swapping a directory inside the
worktree with a symlink to the outside (renameat2 RENAME_EXCHANGE, atomically), reads through
:class:`Confined` never return outside content. A check-then-open implementation fails this;
openat2(RESOLVE_BENEATH) and the O_NOFOLLOW walk must not."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

import pytest

from locusd.agent.confine import HAS_OPENAT2, Confined, ConfinementError

RENAME_EXCHANGE = 2
AT_FDCWD = -100
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def exchange(a: Path, b: Path) -> None:
    if _libc.renameat2(AT_FDCWD, bytes(a), AT_FDCWD, bytes(b), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def naive_read(root: Path, rel: str) -> bytes:
    """The racy way: resolve, check, then open by path."""
    resolved = (root / rel).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise PermissionError(rel)
    return resolved.read_bytes()


@pytest.mark.parametrize(
    "use_openat2",
    [pytest.param(True, marks=pytest.mark.skipif(not HAS_OPENAT2, reason="no openat2")), False],
    ids=["openat2", "nofollow-walk"],
)
def test_no_escape_under_a_rename_race(tmp_path: Path, use_openat2: bool) -> None:
    root = tmp_path / "worktree"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f").write_text("inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("SECRET")
    os.symlink(outside, root / "b")

    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            exchange(root / "a", root / "b")

    confined = Confined(root, use_openat2=use_openat2)
    seen: dict[str, int] = {"inside": 0, "refused": 0, "missing": 0, "SECRET": 0}
    naive_escapes = 0
    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(3000):
            try:
                seen[confined.read_bytes("a/f").decode()] += 1
            except ConfinementError:
                seen["refused"] += 1
            except (FileNotFoundError, NotADirectoryError):
                seen["missing"] += 1
            with contextlib.suppress(OSError):
                naive_escapes += naive_read(root, "a/f") == b"SECRET"
    finally:
        stop.set()
        swapper.join()

    assert seen["SECRET"] == 0, seen
    # The race really ran: the swap was seen from both sides.
    assert seen["inside"] > 0 and seen["refused"] + seen["missing"] > 0, seen
    print(f"{seen}; the naive check-then-open escaped {naive_escapes} times")
