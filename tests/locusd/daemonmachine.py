"""A user's machine with a real ``locusd serve`` on it, for tests that talk to the daemon as
a client does (an editor, pygls's LanguageClient): XDG dirs and $HOME in tmp, a short socket
path, a sample checkout, the stand-in notify-send (tests/locusd/notifyprog.py) first on PATH.
Shared by the daemon's notification tests and the editor tests (tests/editors)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.locusd.agentkit import make_sample_repo
from tests.locusd.cliuser import machine_env
from tests.locusd.notifyprog import FakeProgram, fake_program
from tests.support.processes import until
from tests.support.shortpath import short_tmp

BIN = Path(sys.executable).parent
WAIT = 60.0


@dataclass
class Machine:
    """A user's machine: XDG dirs and $HOME in tmp, the stand-in notify-send on PATH."""

    env: dict[str, str]
    socket: Path
    home: Path
    repo: Path
    config: Path
    program: FakeProgram
    log: Path

    def configure(self, text: str) -> None:
        self.config.write_text(text)

    async def locus(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "locus"), *args, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), WAIT)
        assert process.returncode == 0, err.decode()
        return out.decode()


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    with short_tmp() as runtime:
        runtime.chmod(0o700)
        home = tmp_path / "home"
        home.mkdir()
        (home / "keep").write_text("still here")
        program = fake_program(tmp_path)
        env = {
            **machine_env(tmp_path, runtime, api_key="sk-ant-must-stay-in-the-daemon"),
            "PATH": f"{program.directory}:{os.environ['PATH']}",
            "HOME": str(home),
        }
        config = tmp_path / "config" / "locus" / "config.toml"
        config.parent.mkdir(parents=True)
        yield Machine(
            env=env,
            socket=runtime / "locus" / "locusd.sock",
            home=home,
            repo=make_sample_repo(tmp_path),
            config=config,
            program=program,
            log=tmp_path / "locusd.log",
        )


@contextlib.asynccontextmanager
async def serving(machine: Machine) -> AsyncIterator[asyncio.subprocess.Process]:
    """``locusd serve`` as a service starts it; stopped with SIGTERM (unless killed)."""
    with machine.log.open("a") as log:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "locusd"), "serve", env=machine.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        await until(lambda: answers(machine.socket), timeout=WAIT)
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), WAIT)


def answers(path: Path) -> bool:
    """A daemon listens on ``path`` (after a kill -9 the old socket file is still there)."""
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
