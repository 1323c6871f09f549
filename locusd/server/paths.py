"""Where the daemon listens and how both ends make sure nobody else is on the line.

One daemon per user, like gopls: the socket lives in ``$XDG_RUNTIME_DIR/locus/`` (a per-user,
0700 tmpfs the login manager creates) or, where that is unset (macOS, containers, ssh without
logind), in ``<tmp>/locus-<uid>/``. A shared temp dir is where a local attacker could plant a
directory first to intercept the socket, so the directory must be ours and 0700, or we refuse
— and the peer uid of every connection is checked as a second line of defence.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import platformdirs

SOCKET_NAME = "locusd.sock"
#: ``sockaddr_un.sun_path`` is 108 bytes on Linux, 104 on macOS (with the terminating NUL).
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107


class SocketDirError(RuntimeError):
    """The socket directory cannot be trusted or used; the message says what to do."""


def socket_path(env: Mapping[str, str] = os.environ) -> Path:
    """The daemon's socket: ``$LOCUS_SOCKET`` if set (tests, a second daemon), else
    ``$XDG_RUNTIME_DIR/locus/locusd.sock``, else ``<tmp>/locus-<uid>/locusd.sock``."""
    override = env.get("LOCUS_SOCKET")
    if override:
        return Path(override)
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "locus" / SOCKET_NAME
    tmp = env.get("TMPDIR") or tempfile.gettempdir()
    return Path(tmp) / f"locus-{os.geteuid()}" / SOCKET_NAME


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The daemon's state directory (its log when started by the forwarder): platformdirs'
    user state dir, which follows ``$XDG_STATE_HOME`` on Linux."""
    state_home = env.get("XDG_STATE_HOME")
    if state_home and sys.platform.startswith("linux"):
        return Path(state_home) / "locus"
    return Path(platformdirs.user_state_dir("locus"))


def prepare_socket_dir(directory: Path) -> Path:
    """Create ``directory`` 0700 (its parent must exist), or check an existing one is a real
    directory of ours with no group/other permissions; raises :class:`SocketDirError`."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise SocketDirError(
            f"cannot create {directory}: {directory.parent} does not exist"
            " (check XDG_RUNTIME_DIR, or set LOCUS_SOCKET)"
        ) from None
    except OSError as exc:
        raise SocketDirError(f"cannot create {directory}: {exc.strerror}") from None
    check_socket_dir(directory)
    return directory


def check_socket_dir(directory: Path) -> None:
    """Refuse a socket directory that another user could have planted or can reach."""
    try:
        info = os.lstat(directory)
    except OSError as exc:
        raise SocketDirError(f"cannot use {directory}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise SocketDirError(
            f"refusing {directory}: it is not a directory (a symlink or a file); remove it"
        )
    uid = os.geteuid()
    if info.st_uid != uid:
        raise SocketDirError(
            f"refusing {directory}: it is owned by uid {info.st_uid}, not by you (uid {uid});"
            " someone else may be trying to intercept the daemon's socket. Remove it, or set"
            " XDG_RUNTIME_DIR to a private directory"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SocketDirError(
            f"refusing {directory}: its mode is {mode:04o}, which lets other users in;"
            f" run 'chmod 700 {directory}'"
        )


def check_socket_path(path: Path) -> None:
    """AF_UNIX paths are short: say so instead of a bare 'AF_UNIX path too long'."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise SocketDirError(
            f"the socket path {path} is longer than {MAX_SOCKET_PATH} bytes, which AF_UNIX"
            " cannot bind; set LOCUS_SOCKET or XDG_RUNTIME_DIR to a shorter directory"
        )


def peer_uid(sock: socket.socket) -> int:
    """The effective uid of the process at the other end of a connected Unix socket, as the
    kernel recorded it at connect time (it cannot be spoofed by the peer)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid_t pid; uid_t uid; gid_t gid}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        return int(uid)
    if sys.platform == "darwin" or "bsd" in sys.platform:
        # LOCAL_PEERCRED (0x001) at level SOL_LOCAL (0): struct xucred {u_int cr_version;
        # uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]}; only the uid is read.
        raw = sock.getsockopt(0, 0x001, struct.calcsize("2I") + 2 + 2 + 16 * 4)
        _version, uid = struct.unpack_from("2I", raw)
        return int(uid)
    raise OSError(errno.ENOTSUP, "no way to learn a Unix socket peer's uid on this platform")


def peer_pid(sock: socket.socket) -> int | None:
    """The peer's pid where the platform says (for the log), else None."""
    if hasattr(socket, "SO_PEERCRED"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", raw)[0])
    return None
