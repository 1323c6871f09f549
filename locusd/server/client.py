"""The client side of the socket: connect to the user's daemon, starting it if none runs, and
the ``locusd --stdio`` forwarder for editors that can only spawn a process.

Shared by the forwarder and the ``locus`` CLI, so both find, trust and start the daemon the
same way: the socket directory must be ours and 0700, the peer must run as our uid, and two
clients racing to start the daemon start one (a lock file serialises the spawn).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import selectors
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from locusd.server.paths import (
    SocketDirError,
    check_socket_dir,
    peer_uid,
    prepare_socket_dir,
    socket_path,
    state_dir,
)

START_LOCK = "start.lock"
LOG_NAME = "locusd.log"
#: Seconds ``connect_or_start`` waits for a daemon it started to listen.
START_TIMEOUT = 15.0


class DaemonUnavailable(RuntimeError):
    """No daemon answers and none could be started; the message says why and where to look."""


def default_serve_command(env: Mapping[str, str] = os.environ) -> list[str]:
    """How to start the daemon: ``$LOCUSD_SERVE_COMMAND`` (shell-quoted words) if set, else
    this interpreter running ``locusd serve`` (no dependence on PATH)."""
    custom = env.get("LOCUSD_SERVE_COMMAND")
    if custom:
        return shlex.split(custom)
    return [sys.executable, "-m", "locusd.server.main", "serve"]


def connect_socket(path: Path, timeout: float = 5.0) -> socket.socket:
    """A connected, blocking socket to the daemon at ``path``.

    Raises FileNotFoundError or ConnectionRefusedError when no daemon listens (the caller may
    start one), :class:`SocketDirError` when the directory or the peer cannot be trusted.
    """
    try:
        check_socket_dir(path.parent)
    except SocketDirError:
        if not path.parent.exists():
            raise FileNotFoundError(str(path)) from None
        raise
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.settimeout(None)
        uid = peer_uid(sock)
        if uid != os.geteuid():
            raise SocketDirError(
                f"the socket {path} is served by uid {uid}, not by you (uid {os.geteuid()})"
            )
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def _start_lock(directory: Path) -> Iterator[None]:
    fd = os.open(directory / START_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def connect_or_start_socket(
    path: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    serve_command: Sequence[str] | None = None,
    start_timeout: float = START_TIMEOUT,
    start: bool = True,
) -> socket.socket:
    """Connect to the daemon; where none listens (and ``start``), spawn ``serve_command``
    detached and wait for it. Blocking; see :func:`connect_or_start` for asyncio.

    Every failure is a :class:`DaemonUnavailable` whose message says what to do (an untrusted
    socket directory, a daemon that would not start, a socket we may not use…)."""
    path = path or socket_path(env)
    try:
        return _connect_or_start(path, env, serve_command, start_timeout, start)
    except DaemonUnavailable:
        raise
    except SocketDirError as exc:
        raise DaemonUnavailable(str(exc)) from exc
    except OSError as exc:
        raise DaemonUnavailable(f"cannot connect to the daemon at {path}: {exc}") from exc


def _connect_or_start(
    path: Path,
    env: Mapping[str, str],
    serve_command: Sequence[str] | None,
    start_timeout: float,
    start: bool,
) -> socket.socket:
    try:
        return connect_socket(path)
    except (FileNotFoundError, ConnectionRefusedError):
        if not start:
            raise DaemonUnavailable(
                f"no daemon listens on {path} (start one: locusd serve)"
            ) from None
    directory = prepare_socket_dir(path.parent)
    with _start_lock(directory):
        try:  # another client may have started it while we waited for the lock
            return connect_socket(path)
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        logged = _size(state_dir(env) / LOG_NAME)
        process, log_path = spawn_daemon(path, env=env, serve_command=serve_command)
        return _wait_for_daemon(path, process, log_path, start_timeout, logged)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def spawn_daemon(
    path: Path,
    *,
    env: Mapping[str, str] = os.environ,
    serve_command: Sequence[str] | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``locusd serve`` detached from the caller: its own session (no SIGHUP when the
    editor's terminal goes), stdin from /dev/null, stdout and stderr appended to
    ``<state dir>/locusd.log`` (0600). ``LOCUS_SOCKET`` tells it where to listen."""
    command = list(serve_command or default_serve_command(env))
    log_dir = state_dir(env)
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = log_dir / LOG_NAME
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    child_env = dict(env)
    child_env["LOCUS_SOCKET"] = str(path)
    try:
        # the command is the user's own configuration (or this interpreter), not remote input
        process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=child_env,
            cwd="/",
        )
    except OSError as exc:
        raise DaemonUnavailable(f"cannot start the daemon ({shlex.join(command)}): {exc}") from None
    finally:
        os.close(log_fd)
    return process, log_path


def _wait_for_daemon(
    path: Path, process: subprocess.Popen[bytes], log_path: Path, timeout: float, logged: int = 0
) -> socket.socket:
    """Poll for the socket with backoff until the deadline, or until the daemon exits (then
    what it wrote to its log from byte ``logged`` on: this daemon's words, not an older's)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return connect_socket(path)
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        status = process.poll()
        if status is not None:
            raise DaemonUnavailable(
                f"the daemon exited (status {status}) before listening on {path};"
                f" its log {log_path} ends with:\n{_tail(log_path, logged)}"
            )
        if time.monotonic() >= deadline:
            raise DaemonUnavailable(
                f"the daemon (pid {process.pid}) did not listen on {path} within {timeout:g} s;"
                f" see {log_path}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _tail(path: Path, since: int = 0, lines: int = 10) -> str:
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


async def connect_or_start(
    path: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    serve_command: Sequence[str] | None = None,
    start_timeout: float = START_TIMEOUT,
    start: bool = True,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams to the daemon, starting it if none runs (see :func:`connect_or_start_socket`);
    frame messages with :mod:`locusd.server.framing`."""
    sock = await asyncio.to_thread(
        connect_or_start_socket,
        path,
        env=env,
        serve_command=serve_command,
        start_timeout=start_timeout,
        start=start,
    )
    return await asyncio.open_unix_connection(sock=sock)


# --- the stdio forwarder -------------------------------------------------------------------


def forward_stdio(sock: socket.socket, stdin: int = 0, stdout: int = 1) -> int:
    """Pipe bytes between our stdin/stdout and the daemon until the daemon closes the
    connection. End of stdin is passed on as a half-close, so the daemon sees the client go
    and closes its side, which ends the loop. Framing is not touched: the editor and the daemon
    speak LSP through us unchanged."""
    # poll(2) also accepts a regular file as stdin (epoll refuses it)
    selector: selectors.BaseSelector = (
        selectors.PollSelector()
        if hasattr(selectors, "PollSelector")
        else selectors.SelectSelector()
    )
    selector.register(stdin, selectors.EVENT_READ, "stdin")
    selector.register(sock, selectors.EVENT_READ, "socket")
    try:
        while True:
            for key, _events in selector.select():
                if key.data == "stdin":
                    data = os.read(stdin, 65536)
                    if data:
                        sock.sendall(data)
                    else:
                        selector.unregister(stdin)
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_WR)
                else:
                    data = sock.recv(65536)
                    if not data:
                        return 0
                    _write_all(stdout, data)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        selector.close()
        sock.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
