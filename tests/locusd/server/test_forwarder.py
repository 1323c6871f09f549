"""``locusd --stdio`` as an editor runs it: pygls's LanguageClient spawns the forwarder and
speaks LSP through its stdin/stdout; the forwarder starts the daemon (a real ``locusd serve``
process, with the demo core) when none runs, and two forwarders racing start one daemon."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pygls.lsp.client import LanguageClient

from tests.locusd.server.support import TIMEOUT, init_params, stop
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[3]
CORE = "tests.locusd.server.democore:create_core"


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    with short_tmp() as tmp:
        runtime = tmp / "rt"
        runtime.mkdir(mode=0o700)
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("LOCUS_SOCKET", "LOCUSD_SERVE_COMMAND")
        }
        environment.update(
            XDG_RUNTIME_DIR=str(runtime),
            XDG_STATE_HOME=str(tmp / "state"),
            PYTHONPATH=str(ROOT),
            LOCUSD_SERVE_COMMAND=shlex.join(
                [sys.executable, "-m", "locusd.server.main", "serve", "--core", CORE]
            ),
        )
        yield environment
        _stop_daemon(runtime / "locus")


def _stop_daemon(directory: Path) -> None:
    """If a test failed with the daemon still up, stop it (its pid is in the lock file)."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int((directory / "locusd.lock").read_text().strip())
        if not _lock_free(directory):
            os.kill(pid, signal.SIGTERM)


def _lock_free(directory: Path) -> bool:
    fd = os.open(directory / "locusd.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


async def _forwarder(env: dict[str, str]) -> LanguageClient:
    client = LanguageClient("editor", "1.0")
    await client.start_io(sys.executable, "-m", "locusd.server.main", "--stdio", env=env, cwd=ROOT)
    return client


async def _call(client: LanguageClient, method: str, params: Any) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), TIMEOUT)


async def test_forwarders_start_one_daemon_and_share_it(env: dict[str, str]) -> None:
    socket_dir = Path(env["XDG_RUNTIME_DIR"]) / "locus"
    first, second = await asyncio.gather(_forwarder(env), _forwarder(env))
    try:
        await asyncio.gather(
            *(
                asyncio.wait_for(client.initialize_async(init_params(name=name)), TIMEOUT)
                for client, name in ((first, "one"), (second, "two"))
            )
        )
        one = await _call(first, "locus/daemon/status", {})
        two = await _call(second, "locus/daemon/status", {})
        assert one.pid == two.pid  # one daemon...
        assert two.clients == 2  # ...serving both
        assert first._server is not None and one.pid != first._server.pid  # not the forwarder
        assert one.socket == str(socket_dir / "locusd.sock")
        log = Path(env["XDG_STATE_HOME"]) / "locus" / "locusd.log"
        assert "listening on" in log.read_text()

        # the first editor quits: its forwarder ends, the daemon goes on
        await asyncio.wait_for(first.shutdown_async(None), TIMEOUT)
        first.exit(None)
        await stop(first)
        assert first._server is not None and first._server.returncode == 0
        assert (await _call(second, "locus/daemon/status", {})).clients == 1

        # a third forwarder finds the running daemon instead of starting another
        third = await _forwarder(env)
        await asyncio.wait_for(third.initialize_async(init_params(name="three")), TIMEOUT)
        assert (await _call(third, "locus/daemon/status", {})).pid == one.pid

        # stopping the daemon closes every connection, so every forwarder ends
        await _call(second, "locus/daemon/shutdown", {})
        await asyncio.gather(stop(second), stop(third))
        deadline = time.monotonic() + TIMEOUT
        while not _lock_free(socket_dir):  # bounded: the daemon releases its lock on exit
            assert time.monotonic() < deadline, "the daemon did not stop"
            await asyncio.sleep(0.02)
        assert not (socket_dir / "locusd.sock").exists()
    finally:
        for client in (first, second):
            if client._server is not None and client._server.returncode is None:
                client._server.kill()
                await client._server.wait()


async def test_forwarder_reports_a_daemon_that_cannot_start(env: dict[str, str]) -> None:
    env = {**env, "LOCUSD_SERVE_COMMAND": f"{sys.executable} -c 'raise SystemExit(4)'"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "locusd.server.main",
        "--stdio",
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 1 and out == b""
    assert b"exited (status 4) before listening" in err


def test_stdio_forwarder_is_light() -> None:
    """An editor spawns the forwarder for every window: it must not import pygls or the core."""
    code = (
        "import sys, locusd.server.main, locusd.server.client;"
        "print(sorted(m for m in sys.modules if m.startswith(('pygls', 'lsprotocol', 'locusd.daemon'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [[], ["--stdio", "serve"]])
def test_usage_errors(argv: list[str]) -> None:
    from locusd.server.main import main

    if argv:
        with pytest.raises(SystemExit):
            main(argv)
    else:
        assert main(argv) == 2


async def test_serve_stops_on_sigterm(env: dict[str, str]) -> None:
    socket_file = Path(env["XDG_RUNTIME_DIR"]) / "locus" / "locusd.sock"
    process = await asyncio.create_subprocess_exec(
        *shlex.split(env["LOCUSD_SERVE_COMMAND"]),
        env=env,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not socket_file.exists():  # bounded: wait for the daemon to listen
            assert process.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0, err.decode()
        assert not socket_file.exists()
        assert b"stopping" in err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_forwarder_with_the_real_core(env: dict[str, str]) -> None:
    """The default serve command builds ``locusd.daemon:create_core``: the whole path an
    editor takes, with every user directory in the test's temp dir."""
    base = Path(env["XDG_STATE_HOME"]).parent
    env = {key: value for key, value in env.items() if key != "LOCUSD_SERVE_COMMAND"}
    env.update(
        XDG_DATA_HOME=str(base / "data"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_CACHE_HOME=str(base / "cache"),
        LOCUS_CONFIG=str(base / "config" / "none.toml"),
    )
    client = await _forwarder(env)
    try:
        result = await asyncio.wait_for(client.initialize_async(init_params()), TIMEOUT)
        experimental = result.capabilities.experimental
        assert isinstance(experimental, dict)
        assert experimental["locus"]["protocolVersion"] == "1.0"
        status = await _call(client, "locus/daemon/status", {})
        assert status.clients == 1 and status.socket.endswith("locus/locusd.sock")
        await _call(client, "locus/daemon/shutdown", {})
        await stop(client)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()
            await client._server.wait()
