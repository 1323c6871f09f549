"""bubblewrap containment of the agent's commands: what a process group cannot do (a grandchild
that calls setsid) and the network cut. bwrap is installed by scripts/test.sh."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from locusd.agent.commands import CommandResult, run_command, scrubbed_env
from locusd.agent.sandbox import Sandbox, probe
from tests.support.processes import processes_named

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sandbox() -> Sandbox:
    found = probe()
    assert found.sandbox is not None, (
        f"bwrap should work here (scripts/test.sh installs it): {found.warning}"
    )
    return found.sandbox


@pytest.fixture
def marker() -> Iterator[str]:
    name = f"locus-escape-{uuid.uuid4().hex}"
    yield name
    for pid in processes_named(name):  # whatever escaped, don't leave it behind
        os.kill(pid, signal.SIGKILL)


async def run(command: str, cwd: Path, sandbox: Sandbox | None) -> CommandResult:
    return await run_command(
        command,
        cwd,
        output_path=cwd / "out.log",
        env=scrubbed_env(os.environ),
        timeout=30,
        sandbox=sandbox,
    )


# The grandchild leaves the process group (setsid) and lives on; the command waits until it
# exists, so the check afterwards is meaningful.
ESCAPE = (
    "setsid bash -c 'exec -a {marker} sleep 300' & until pgrep -f {marker} >/dev/null; do :; done"
)


async def test_a_setsid_grandchild_escapes_a_process_group(tmp_path: Path, marker: str) -> None:
    result = await run(ESCAPE.format(marker=marker), tmp_path, None)
    assert result.exit_code == 0
    assert processes_named(marker), "without bwrap the grandchild survives (why bwrap is used)"


async def test_bwrap_takes_the_setsid_grandchild_down(
    tmp_path: Path, marker: str, sandbox: Sandbox
) -> None:
    result = await run(ESCAPE.format(marker=marker), tmp_path, sandbox)
    assert result.exit_code == 0
    assert processes_named(marker) == []


async def test_the_network_is_cut_unless_allowed(tmp_path: Path, sandbox: Sandbox) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = asyncio.get_running_loop().run_in_executor(None, listener.accept)
    connect = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 5)\""
    try:
        cut = await run(connect, tmp_path, sandbox)
        assert cut.exit_code != 0 and "Connection refused" in cut.output
        allowed = await run(connect, tmp_path, Sandbox(sandbox.bwrap, network=True))
        assert allowed.exit_code == 0, allowed.output
        connection, _ = await accepted
        connection.close()
    finally:
        listener.close()


async def test_commands_still_work_in_the_worktree(tmp_path: Path, sandbox: Sandbox) -> None:
    (tmp_path / "data.txt").write_text("hello\n")
    result = await run("cat data.txt && echo made > new.txt && pwd", tmp_path, sandbox)
    assert result.exit_code == 0
    assert result.output.split() == ["hello", str(tmp_path)]
    assert (tmp_path / "new.txt").read_text() == "made\n"


def test_without_bwrap_the_probe_says_what_to_install(tmp_path: Path) -> None:
    found = probe(path=str(tmp_path))
    assert found.sandbox is None
    assert found.warning is not None and "install the bubblewrap package" in found.warning
