"""The daemon's listening socket: many clients at once, one :class:`Connection` (one pygls
protocol) per client, all sharing one core.

pygls's own ``start_tcp``/``start_ws`` serve a single client (a second connection replaces the
first one's writer and the first close stops the server), so the accept loop is asyncio's
``start_unix_server`` and pygls only ever sees one connection's messages.

Claiming the socket is a separate step from listening so that ``locusd serve`` can take the
daemon lock *before* building its core: the core's crash recovery must never run while another
daemon is alive and working on the same runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
from pathlib import Path

from locusd.server.connection import Connection
from locusd.server.framing import MAX_BODY, MAX_HEADER_LINE
from locusd.server.handlers import Handler, bind
from locusd.server.paths import (
    SocketDirError,
    check_socket_path,
    peer_pid,
    peer_uid,
    prepare_socket_dir,
    socket_path,
)
from locusd.server.peer import Core

log = logging.getLogger("locusd.server")

LOCK_NAME = "locusd.lock"


class DaemonAlreadyRunning(RuntimeError):
    """Another daemon holds the socket (or its lock)."""


class LocusServer:
    """Listen on the socket and serve every client with its own connection.

    ``claim()`` (directory checks, the daemon lock, a stale socket replaced) then
    ``await listen(core)``; ``await start(core)`` does both. ``await close()`` stops listening,
    closes every connection after flushing what was written, and removes the socket.
    """

    def __init__(self, path: Path | None = None, *, max_body: int = MAX_BODY) -> None:
        self.path = path or socket_path()
        self.max_body = max_body
        self.connections: set[Connection] = set()
        self.core: Core | None = None
        self.handlers: dict[str, Handler] = {}
        self._lock_fd: int | None = None
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- claiming the socket ---------------------------------------------------------------

    def claim(self) -> None:
        """Make sure no other daemon runs for this socket and that the directory is safe;
        raises :class:`SocketDirError` or :class:`DaemonAlreadyRunning`."""
        check_socket_path(self.path)
        directory = prepare_socket_dir(self.path.parent)
        lock_path = directory / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonAlreadyRunning(
                f"another locusd (pid {holder}) already serves {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        try:
            self._clear_stale()
        except BaseException:
            self._release_lock()
            raise

    def _clear_stale(self) -> None:
        """A socket file nobody listens on is left by a daemon that died: remove it. One
        that answers means a daemon (one that does not take our lock) is alive."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise SocketDirError(f"{self.path} exists and is not a socket; remove it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2)
        try:
            probe.connect(str(self.path))
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing the stale socket %s", self.path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise SocketDirError(f"cannot probe {self.path}: {exc.strerror}") from None
        finally:
            probe.close()
        raise DaemonAlreadyRunning(f"a daemon already listens on {self.path}")

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # --- serving ------------------------------------------------------------------------------

    async def listen(self, core: Core) -> None:
        """Bind (socket file 0600) and accept clients for ``core``; a core whose handlers do
        not match the method table is refused first
        (:class:`~locusd.server.handlers.HandlerBindingError`)."""
        if self._lock_fd is None:
            raise RuntimeError("claim() the socket before listening")
        self.handlers = bind(core)
        self.core = core
        self._server = await asyncio.start_unix_server(
            self._accept, path=str(self.path), limit=MAX_HEADER_LINE
        )
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino
        log.info("listening on %s", self.path)

    async def start(self, core: Core) -> None:
        self.claim()
        try:
            await self.listen(core)
        except BaseException:
            self._release_lock()
            raise

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            uid = peer_uid(sock)
        except OSError as exc:
            log.warning("refused a connection whose peer uid cannot be read: %s", exc)
            writer.transport.abort()
            return
        if uid != os.geteuid():
            log.warning(
                "refused a connection from uid %d (pid %s): the daemon serves uid %d only",
                uid,
                peer_pid(sock),
                os.geteuid(),
            )
            writer.transport.abort()
            return
        assert self.core is not None
        connection = Connection(
            self.core, reader, writer, handlers=self.handlers, max_body=self.max_body
        )
        self.connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        log.info("client %d connected (pid %s)", connection.id, peer_pid(sock))
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        """Stop accepting, close every connection (what was written is flushed first), remove
        the socket if it is still ours, release the lock."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._inode is not None:
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
            self._inode = None
        self._release_lock()

    async def __aenter__(self) -> LocusServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
