"""File access confined to a worktree, symlinks included.

Checking a path with realpath() and then opening it is racy: between the two, a rename can
swap a directory for a symlink that points out (see docs/security.md). So the
kernel does the check while it opens: ``openat2(…, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)``
refuses any resolution that leaves the root (by ``..`` or an absolute path) or goes through a
symlink at all — one inside the tree too, since a rename can point it outside the moment after
(and ``/proc/self/root``-style magic links are symlinks). Where the kernel lacks openat2
(before Linux 5.6, or not Linux), each path component is opened with ``O_NOFOLLOW`` relative to
its parent instead: the same answer, race-free too.

Also refused: anything in ``.git/`` (the repository's own state), and files with more than one
hard link (a hard link passes any path check, and could expose a file from outside).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import secrets
import stat
from pathlib import PurePosixPath

_SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64
#: Linux's PATH_MAX: no longer path can name a file.
MAX_PATH = 4096
_RESOLVE_NO_SYMLINKS = 0x04  # implies RESOLVE_NO_MAGICLINKS
_RESOLVE_BENEATH = 0x08


class ConfinementError(PermissionError):
    """A path the agent may not use; the message says why, for the model to read."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True) if platform.system() == "Linux" else None


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int:
    assert _libc is not None
    # openat2 is strict: a mode without O_CREAT is EINVAL.
    mode = mode if flags & os.O_CREAT else 0
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS)
    fd = int(
        _libc.syscall(_SYS_OPENAT2, dir_fd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def _has_openat2() -> bool:
    if _libc is None:
        return False
    try:
        os.close(_openat2(os.open("/", os.O_RDONLY | os.O_DIRECTORY), ".", os.O_RDONLY, 0))
    except OSError as exc:
        return exc.errno not in (errno.ENOSYS, errno.EPERM)
    return True


HAS_OPENAT2 = _has_openat2()


def _step_into(fd: int, part: str, refusal: str) -> int:
    """Open the directory ``part`` beneath ``fd`` without following a symlink, close ``fd``
    and return the new one (or raise ConfinementError with ``refusal``)."""
    try:
        nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ConfinementError(refusal) from None
        raise
    os.close(fd)
    return nxt


class Confined:
    """Opens files beneath ``root`` only. Paths are relative to the root, as the model sees
    them; an absolute path is refused rather than reinterpreted."""

    def __init__(self, root: str | os.PathLike[str], *, use_openat2: bool = HAS_OPENAT2) -> None:
        self.root = os.path.realpath(root)
        self._openat2 = use_openat2

    def relative(self, path: str) -> str:
        """``path`` normalised and checked lexically (no absolute path, no .., not in .git;
        nothing the file system cannot name: a NUL, a lone surrogate, an endless path)."""
        if "\0" in path:
            raise ConfinementError(f"{path!r}: a path cannot contain a NUL character")
        if len(path) > MAX_PATH:
            raise ConfinementError(f"a path of {len(path)} characters: at most {MAX_PATH}")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfinementError(f"{path!r}: not a valid (UTF-8) file name") from None
        pure = PurePosixPath(path)
        if pure.is_absolute():
            raise ConfinementError(
                f"{path}: absolute paths are not allowed; use a path relative to the repository"
            )
        if ".." in pure.parts:
            raise ConfinementError(f"{path}: '..' is not allowed; stay inside the repository")
        if pure.parts[:1] == (".git",):
            raise ConfinementError(f"{path}: .git/ is the repository's own state; use git commands")
        return str(pure)

    def _open(self, path: str, flags: int, mode: int = 0o644) -> int:
        rel = self.relative(path)
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if self._openat2:
                try:
                    return _openat2(root_fd, rel, flags, mode)
                except OSError as exc:
                    if exc.errno == errno.EXDEV:  # resolution tried to leave the root
                        raise ConfinementError(
                            f"{path}: it resolves outside the repository"
                        ) from None
                    if exc.errno == errno.ELOOP:  # a symlink on the way (RESOLVE_NO_SYMLINKS)
                        raise ConfinementError(
                            f"{path}: is or goes through a symlink; not followed"
                        ) from None
                    raise
            return self._open_by_components(root_fd, rel, flags, mode, path)
        finally:
            os.close(root_fd)

    def _open_by_components(self, root_fd: int, rel: str, flags: int, mode: int, shown: str) -> int:
        parts = PurePosixPath(rel).parts
        fd = os.dup(root_fd)
        try:
            for part in parts[:-1]:
                fd = _step_into(fd, part, f"{shown}: goes through a symlink; not followed")
            try:
                return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
            except OSError as exc:
                # O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR when a directory was asked for.
                if exc.errno == errno.ELOOP or (
                    exc.errno == errno.ENOTDIR and flags & os.O_DIRECTORY
                ):
                    raise ConfinementError(f"{shown}: is a symlink; not followed") from None
                raise
        finally:
            os.close(fd)

    def lstat(self, path: str) -> os.stat_result:
        """What ``path`` itself is (a symlink is reported, not followed), found race-free like
        any open: for a tool to refuse a symlink or a directory by name before it looks in."""
        fd = self._open(path, os.O_PATH | os.O_NOFOLLOW)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        """Where the symlink ``path`` points (its text, as git stores it), never followed."""
        fd = self._open(path, os.O_PATH | os.O_NOFOLLOW)
        try:
            if not stat.S_ISLNK(os.fstat(fd).st_mode):
                raise ConfinementError(f"{path}: not a symlink")
            return os.readlink("", dir_fd=fd)
        finally:
            os.close(fd)

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        # O_NONBLOCK: opening a FIFO (or a device) for reading must not wait for a writer; it
        # is refused below as not a regular file, which reads of regular files never notice.
        fd = self._open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ConfinementError(f"{path}: not a regular file")
            if info.st_nlink > 1:
                raise ConfinementError(
                    f"{path}: has {info.st_nlink} hard links; refused (it may be a file from outside)"
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read() if limit is None else handle.read(limit)
        finally:
            os.close(fd)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Atomic: a temporary file beside the target, then a rename over it (which replaces a
        symlink or hard link itself, never what it points to)."""
        pure = PurePosixPath(self.relative(path))
        parent = str(pure.parent)
        dir_fd = (
            self._open(parent, os.O_RDONLY | os.O_DIRECTORY)
            if parent != "."
            else os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        )
        try:
            try:
                info = os.stat(pure.name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            if info is not None and stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                raise ConfinementError(f"{path}: has {info.st_nlink} hard links; refused")
            tmp = f".{pure.name}.locus-{secrets.token_hex(4)}"
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=dir_fd,
            )
            if info is not None and stat.S_ISREG(info.st_mode):
                os.fchmod(fd, stat.S_IMODE(info.st_mode))  # an edited script stays executable
            try:
                try:
                    with os.fdopen(fd, "wb", closefd=False) as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, pure.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
        finally:
            os.close(dir_fd)

    def makedirs(self, path: str) -> None:
        """Create the directory ``path`` and its missing parents, never through a symlink."""
        rel = self.relative(path)
        if rel == ".":
            return
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in PurePosixPath(rel).parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                fd = _step_into(fd, part, f"{path}: {part} is a symlink or a file, not a directory")
        finally:
            os.close(fd)
