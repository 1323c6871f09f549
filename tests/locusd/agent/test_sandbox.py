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
from locusd.agent.sandbox import SHARED_SCRATCH, Sandbox, probe, secret_places
from tests.support.engine_socket import visible_dir
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


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A runtime dir for a socket: a short path, whatever $TMPDIR is, and one the sandbox
    would show were it not hidden (not under /tmp, which each command gets a fresh one of)."""
    with visible_dir() as path:
        yield path


async def test_the_sandbox_hides_the_daemons_socket_and_the_users_secrets(
    tmp_path: Path, runtime: Path, sandbox: Sandbox
) -> None:
    """A command cannot reach the daemon (a Unix socket is not cut by --unshare-net), the
    runtime dir's other agents, Locus's own state, or the credential stores in $HOME; the rest
    of the file system is as it was, and the command's own directory stays even when it lies
    inside a hidden place."""
    home, state = tmp_path / "home", tmp_path / "state"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    (home / ".netrc").write_text("machine x password hunter2")
    (runtime / "locus").mkdir(parents=True)
    (state / "runs").mkdir(parents=True)
    (state / "locusd.sqlite").write_text("claim tokens")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(runtime / "locus" / "locusd.sock"))
    listening.listen()
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    hidden = sandbox.hiding(secret_places(env, locus_dirs=(state,)))
    work = tmp_path / "work"
    work.mkdir()
    probe_script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({str(runtime / 'locus' / 'locusd.sock')!r})\n"
    )
    (work / "probe.py").write_text(probe_script)
    try:
        reached = await run("python3 probe.py", work, hidden)
        assert reached.exit_code != 0, "the daemon's socket must not be reachable"
        assert (await run("python3 probe.py", work, None)).exit_code == 0  # (it is, outside)
        unhidden = await run("python3 probe.py", work, sandbox)  # and inside, but for hiding
        assert unhidden.exit_code == 0, unhidden.output
        for secret in (home / ".ssh" / "id_rsa", home / ".netrc", state / "locusd.sqlite"):
            shown = await run(f"cat {secret}", work, hidden)
            assert shown.exit_code != 0 or shown.output.strip() == "", secret
            assert secret.read_text() not in shown.output
        # The rest of the file system is readable (/etc/passwd; /tmp, where the test's home
        # lies, is a tmpfs of the command's own).
        ordinary = await run("head -1 /etc/passwd", work, hidden)
        expected = Path("/etc/passwd").read_text().splitlines()[0]
        assert ordinary.exit_code == 0 and expected in ordinary.output
        inside = state / "runs" / "worktree"
        inside.mkdir()
        stays = await run("pwd", inside, hidden)
        assert stays.exit_code == 0 and stays.output.strip() == str(inside)
    finally:
        listening.close()


async def test_the_file_system_is_read_only_outside_the_commands_directory(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """A write anywhere but the command's own directory fails (outside /tmp: the user's home),
    and /tmp is a tmpfs of the command's own — what it leaves there is gone."""
    home = Path.home().resolve()  # a place of the user's own, outside the scratch places
    if any(home == Path(p) or Path(p) in home.parents for p in SHARED_SCRATCH):
        pytest.skip(f"$HOME ({home}) is under {SHARED_SCRATCH}: no writable place outside them")
    outside = home / f".sandbox-write-{uuid.uuid4().hex}"
    left = tmp_path / "left-in-tmp"
    work = tmp_path / "work"
    work.mkdir()
    try:
        done = await run(f"touch {outside}; touch {left}; touch mine; ls {left}", work, sandbox)
        assert "Read-only file system" in done.output
        assert not outside.exists() and not left.exists()
        assert (work / "mine").exists()
        assert done.exit_code == 0  # the tmpfs took the write to /tmp
    finally:
        outside.unlink(missing_ok=True)
