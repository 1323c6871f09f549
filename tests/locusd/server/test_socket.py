"""Where the socket lives and who may use it: the directory is ours and 0700 or refused, the
socket is 0600, one daemon per socket, a stale socket is replaced, and a connection from
another uid is closed at once."""

from __future__ import annotations

import logging
import os
import socket
import stat
from pathlib import Path

import pytest

from locusd.server.client import DaemonUnavailable, connect_or_start_socket, connect_socket
from locusd.server.main import main
from locusd.server.paths import (
    SocketDirError,
    check_socket_dir,
    peer_uid,
    socket_path,
)
from locusd.server.server import DaemonAlreadyRunning, LocusServer
from tests.locusd.server.democore import DemoCore
from tests.locusd.server.support import RawClient, ThreadedDaemon, frame
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(60)
NOBODY = 65534


def test_socket_path_locations() -> None:
    uid = os.geteuid()
    assert socket_path({"XDG_RUNTIME_DIR": "/run/user/7"}) == Path("/run/user/7/locus/locusd.sock")
    assert socket_path({"TMPDIR": "/var/tmp"}) == Path(f"/var/tmp/locus-{uid}/locusd.sock")
    assert socket_path({"XDG_RUNTIME_DIR": ""}).parent.name == f"locus-{uid}"
    assert socket_path({"LOCUS_SOCKET": "/x/y.sock", "XDG_RUNTIME_DIR": "/r"}) == Path("/x/y.sock")


async def test_modes_and_one_daemon_per_socket() -> None:
    with short_tmp() as tmp:
        path = tmp / "run" / "locusd.sock"
        server = LocusServer(path)
        await server.start(DemoCore(path))
        try:
            assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
            assert stat.S_ISSOCK(os.stat(path).st_mode)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(path.parent / "locusd.lock").st_mode) == 0o600

            with pytest.raises(DaemonAlreadyRunning, match=f"pid {os.getpid()}"):
                LocusServer(path).claim()
        finally:
            await server.close()
        assert not path.exists()  # removed on close
        LocusServer(path).claim()  # and the lock was released


def test_serve_refuses_while_a_daemon_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with short_tmp() as tmp, ThreadedDaemon(tmp / "run" / "locusd.sock") as daemon:
        core = "tests.locusd.server.democore:create_core"
        assert main(["serve", "--socket", str(daemon.path), "--core", core]) == 1
        assert "already serves" in capsys.readouterr().err
        with RawClient(daemon.path) as raw:  # untouched
            raw.initialize()


async def test_stale_socket_is_replaced_live_one_is_not() -> None:
    with short_tmp() as tmp:
        path = tmp / "run" / "locusd.sock"
        path.parent.mkdir(mode=0o700)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()  # the file stays, nobody listens: a daemon that was killed
        server = LocusServer(path)
        await server.start(DemoCore(path))
        await server.close()

        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        live.bind(str(path))
        live.listen()
        try:  # something listens without holding our lock (an older daemon?)
            with pytest.raises(DaemonAlreadyRunning, match="already listens"):
                LocusServer(path).claim()
        finally:
            live.close()
            path.unlink()

        path.write_text("not a socket")
        with pytest.raises(SocketDirError, match="not a socket"):
            LocusServer(path).claim()


@pytest.mark.parametrize("problem", ["foreign owner", "group access", "symlink", "file"])
def test_untrusted_socket_dir_is_refused(problem: str) -> None:
    with short_tmp() as tmp:
        directory = tmp / "run"
        if problem == "foreign owner":
            directory.mkdir(mode=0o700)
            os.chown(directory, NOBODY, NOBODY)
            says = f"owned by uid {NOBODY}"
        elif problem == "group access":
            directory.mkdir()
            directory.chmod(0o750)
            says = "0750"
        elif problem == "symlink":
            (tmp / "elsewhere").mkdir(mode=0o700)
            directory.symlink_to(tmp / "elsewhere")
            says = "not a directory"
        else:
            directory.write_text("")
            says = "not a directory"
        with pytest.raises(SocketDirError, match=says):
            LocusServer(directory / "locusd.sock").claim()
        with pytest.raises(SocketDirError, match=says):
            check_socket_dir(directory)
        # the client refuses to talk through it too (the CLI gets one exception type)
        with pytest.raises(SocketDirError):
            connect_socket(directory / "locusd.sock")
        with pytest.raises(DaemonUnavailable, match=says):
            connect_or_start_socket(directory / "locusd.sock")


def test_socket_path_too_long() -> None:
    with pytest.raises(SocketDirError, match="longer than"):
        LocusServer(Path("/tmp") / ("x" * 120) / "locusd.sock").claim()


def test_peer_uid_on_a_socketpair() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peer_uid(left) == os.geteuid()
        assert peer_uid(right) == os.geteuid()


def test_connection_from_another_uid_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    """A process of uid 65534 connects (the test loosens the modes that would otherwise stop
    it at the directory) and is cut off before anything is read."""
    caplog.set_level(logging.WARNING, logger="locusd.server")
    with short_tmp() as tmp, ThreadedDaemon(tmp / "run" / "locusd.sock") as daemon:
        tmp.chmod(0o711)
        daemon.path.parent.chmod(0o711)
        daemon.path.chmod(0o666)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(10)
                sock.connect(str(daemon.path))
                try:
                    sock.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}))
                    data = sock.recv(100)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                os.write(write_end, b"closed" if data == b"" else b"answered:" + data)
            except BaseException as exc:
                os.write(write_end, repr(exc).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        try:
            report = b""
            while chunk := os.read(read_end, 1000):
                report += chunk
        finally:
            os.close(read_end)
            os.waitpid(pid, 0)
        assert report == b"closed"
        assert f"refused a connection from uid {NOBODY}" in caplog.text
        with RawClient(daemon.path) as raw:  # our own uid is still served
            raw.initialize()


def test_connect_without_daemon() -> None:
    with short_tmp() as tmp:
        path = tmp / "run" / "locusd.sock"
        with pytest.raises(DaemonUnavailable, match="no daemon listens"):
            connect_or_start_socket(path, start=False)
        with pytest.raises(DaemonUnavailable, match=r"exited \(status 3\)"):
            connect_or_start_socket(
                path,
                serve_command=["sh", "-c", "echo cannot start >&2; exit 3"],
                env={**os.environ, "XDG_STATE_HOME": str(tmp / "state")},
            )
        log = (tmp / "state" / "locus" / "locusd.log").read_text()
        assert "cannot start" in log
