"""The agent's file access stays inside the worktree: '..', absolute paths, symlinks (to files
and to directories), .git/ and hard links are refused — with the kernel's openat2 and with the
component-by-component fallback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from locusd.agent.confine import HAS_OPENAT2, Confined, ConfinementError

MODES = [True, False] if HAS_OPENAT2 else [False]


@pytest.fixture(params=MODES, ids=lambda m: "openat2" if m else "fallback")
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Confined, Path, Path]:
    root = tmp_path / "worktree"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOKEN=abc\n")
    return Confined(root, use_openat2=request.param), root, outside


def test_reads_inside_the_root(setup: tuple[Confined, Path, Path]) -> None:
    fs, _root, _outside = setup
    assert fs.read_bytes("src/app.py") == b"print('hi')\n"
    assert fs.read_bytes("./src/app.py", limit=5) == b"print"


@pytest.mark.parametrize("path", ["../outside/secret.txt", "src/../../outside/secret.txt"])
def test_dot_dot_is_refused(setup: tuple[Confined, Path, Path], path: str) -> None:
    fs, _root, _outside = setup
    with pytest.raises(ConfinementError, match=r"'\.\.'"):
        fs.read_bytes(path)


def test_absolute_paths_are_refused(setup: tuple[Confined, Path, Path]) -> None:
    fs, root, outside = setup
    for path in (str(outside / "secret.txt"), str(root / "src" / "app.py"), "/etc/passwd"):
        with pytest.raises(ConfinementError, match="absolute"):
            fs.read_bytes(path)


def test_symlinks_out_are_refused(setup: tuple[Confined, Path, Path]) -> None:
    fs, root, outside = setup
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "src" / "dir").symlink_to(outside)
    (root / "rel.txt").symlink_to("../outside/secret.txt")
    for path in ("leak.txt", "src/dir/secret.txt", "rel.txt"):
        with pytest.raises(ConfinementError):
            fs.read_bytes(path)
    with pytest.raises(ConfinementError):
        fs.write_bytes("src/dir/planted.txt", b"x")
    assert not (outside / "planted.txt").exists()


def test_a_symlink_that_stays_inside_is_not_followed_either(
    setup: tuple[Confined, Path, Path],
) -> None:
    """One rename would point it outside the moment after the check: no symlink is followed."""
    fs, root, _outside = setup
    (root / "alias.py").symlink_to("src/app.py")
    (root / "srcdir").symlink_to("src")
    for path in ("alias.py", "srcdir/app.py"):
        with pytest.raises(ConfinementError, match="symlink"):
            fs.read_bytes(path)


@pytest.mark.parametrize(
    "path",
    ["proc/self/root/etc/passwd", "proc/self/cwd/src/app.py", "fd/0", "self/root/etc/hostname"],
)
def test_proc_magic_links_in_the_tree_are_not_followed(
    setup: tuple[Confined, Path, Path], path: str
) -> None:
    """A symlink the agent plants to /proc (or /dev/fd) would reach anything through the
    kernel's magic links: the first symlink on the way stops the open."""
    fs, root, _outside = setup
    (root / "proc").symlink_to("/proc")
    (root / "fd").symlink_to("/dev/fd")
    (root / "self").symlink_to("/proc/self")
    with pytest.raises(ConfinementError, match="symlink"):
        fs.read_bytes(path)


def test_lstat_reports_a_symlink_without_following_it(setup: tuple[Confined, Path, Path]) -> None:
    fs, root, outside = setup
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    assert stat.S_ISLNK(fs.lstat("leak.txt").st_mode)
    assert stat.S_ISDIR(fs.lstat("src").st_mode)
    assert stat.S_ISREG(fs.lstat("src/app.py").st_mode)
    with pytest.raises(FileNotFoundError):
        fs.lstat("src/missing.py")
    assert fs.readlink("leak.txt") == str(outside / "secret.txt")
    with pytest.raises(ConfinementError, match="not a symlink"):
        fs.readlink("src/app.py")
    (root / "srcdir").symlink_to(root / "src")
    (root / "src" / "inner").symlink_to(outside)
    with pytest.raises(ConfinementError, match="symlink"):
        fs.readlink("srcdir/inner")  # a symlink on the way is not followed either


def test_git_dir_is_refused(setup: tuple[Confined, Path, Path]) -> None:
    fs, _root, _outside = setup
    with pytest.raises(ConfinementError, match=r"\.git/"):
        fs.read_bytes(".git/config")
    with pytest.raises(ConfinementError, match=r"\.git/"):
        fs.write_bytes(".git/hooks/pre-commit", b"evil")


def test_hard_links_are_refused(setup: tuple[Confined, Path, Path]) -> None:
    fs, root, outside = setup
    os.link(outside / "secret.txt", root / "linked.txt")
    with pytest.raises(ConfinementError, match="hard links"):
        fs.read_bytes("linked.txt")
    with pytest.raises(ConfinementError, match="hard links"):
        fs.write_bytes("linked.txt", b"overwritten")
    assert (outside / "secret.txt").read_text() == "TOKEN=abc\n"


def test_atomic_write_replaces_a_symlink_not_its_target(setup: tuple[Confined, Path, Path]) -> None:
    fs, root, outside = setup
    fs.write_bytes("src/new.py", b"x = 1\n")
    fs.write_bytes("src/app.py", b"print('fixed')\n")
    assert (root / "src" / "new.py").read_bytes() == b"x = 1\n"
    assert (root / "src" / "app.py").read_bytes() == b"print('fixed')\n"
    (root / "link.txt").symlink_to(outside / "secret.txt")
    fs.write_bytes("link.txt", b"mine\n")
    assert not (root / "link.txt").is_symlink() and (root / "link.txt").read_bytes() == b"mine\n"
    assert (outside / "secret.txt").read_text() == "TOKEN=abc\n"
    assert [p.name for p in (root / "src").iterdir() if ".locus-" in p.name] == []
