"""The container engines' sockets in the sandbox: a Unix socket on the read-only root can
still be connected to, and Docker's is root on the host — so they are hidden unless the
user's config allows containers, and then bound in (even from inside the hidden runtime dir).
Real sockets, real bwrap, a real command that tries to connect."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from locusd.agent.commands import CommandResult, run_command, scrubbed_env
from locusd.agent.sandbox import Sandbox, container_sockets, probe, secret_places
from tests.support.engine_socket import CONNECT, engine_socket, visible_dir

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sandbox() -> Sandbox:
    found = probe()
    assert found.sandbox is not None, f"bwrap should work here: {found.warning}"
    return found.sandbox


@pytest.fixture
def visible() -> Iterator[Path]:
    with visible_dir() as path:
        yield path


async def connect(socket: Path, cwd: Path, sandbox: Sandbox | None) -> CommandResult:
    return await run_command(
        CONNECT,
        cwd,
        output_path=cwd / "out.log",
        env=scrubbed_env(os.environ) | {"DOCKER_HOST": f"unix://{socket}"},
        timeout=30,
        sandbox=sandbox,
    )


async def test_an_engine_socket_is_hidden_unless_containers_are_allowed(
    tmp_path: Path, visible: Path, sandbox: Sandbox
) -> None:
    with engine_socket(visible) as engine:
        reached = await connect(engine.path, tmp_path, sandbox)
        assert "engine reached" in reached.output, "the socket must be in sight without hiding"
        assert engine.connections == 1
        hidden = sandbox.with_engines([engine.path])
        refused = await connect(engine.path, tmp_path, hidden)
        assert refused.exit_code != 0 and "engine reached" not in refused.output
        assert engine.connections == 1
        allowed = await connect(
            engine.path, tmp_path, sandbox.with_engines([engine.path], allowed=True)
        )
        assert allowed.exit_code == 0 and "engine reached" in allowed.output, allowed.output
        assert engine.connections == 2


async def test_a_socket_named_through_a_symlink_is_hidden_by_its_real_path(
    tmp_path: Path, visible: Path, sandbox: Sandbox
) -> None:
    """``/var/run`` is a link to ``/run``: hiding the name would not hide the socket."""
    (visible / "link").symlink_to(visible / "real")
    with engine_socket(visible / "real") as engine:
        named = container_sockets({"DOCKER_HOST": f"unix://{visible / 'link' / 'docker.sock'}"})
        assert engine.path in named
        hidden = sandbox.with_engines(named)
        for path in (engine.path, visible / "link" / "docker.sock"):
            refused = await connect(path, tmp_path, hidden)
            assert refused.exit_code != 0 and "engine reached" not in refused.output, path
        assert engine.connections == 0


async def test_an_allowed_socket_in_the_hidden_runtime_dir_is_bound_back(
    tmp_path: Path, visible: Path, sandbox: Sandbox
) -> None:
    """Rootless podman and rootless Docker listen in ``$XDG_RUNTIME_DIR``, which is hidden
    whole (the daemon's socket, ssh and gpg agents): only the engine's socket comes back."""
    runtime = visible / "runtime"
    (runtime / "gnupg").mkdir(parents=True)
    (runtime / "gnupg" / "agent-secret").write_text("gpg agent")
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    with engine_socket(runtime, "podman/podman.sock") as engine:
        assert engine.path in container_sockets(env)
        boxed = sandbox.hiding(secret_places(env))
        hidden = await connect(engine.path, tmp_path, boxed.with_engines(container_sockets(env)))
        assert "engine reached" not in hidden.output
        allowed = boxed.with_engines(container_sockets(env), allowed=True)
        reached = await connect(engine.path, tmp_path, allowed)
        assert reached.exit_code == 0 and "engine reached" in reached.output, reached.output
        assert engine.connections == 1
        other = await run_command(
            f"cat {runtime / 'gnupg' / 'agent-secret'}",
            tmp_path,
            output_path=tmp_path / "cat.log",
            env=scrubbed_env(os.environ),
            timeout=30,
            sandbox=allowed,
        )
        assert other.exit_code != 0 and "gpg agent" not in other.output


def test_the_usual_engine_sockets_are_on_the_list() -> None:
    runtime = Path("/run/user/1000")
    found = container_sockets({"XDG_RUNTIME_DIR": str(runtime)})
    for expected in (
        Path("/var/run/docker.sock").resolve(),
        Path("/run/docker.sock").resolve(),
        runtime / "docker.sock",
        runtime / "podman" / "podman.sock",
        Path("/run/podman/podman.sock"),
        Path("/run/containerd/containerd.sock"),
    ):
        assert expected in found, expected
    assert Path("/run/user") / str(os.getuid()) / "docker.sock" in container_sockets({})
    tcp = container_sockets({"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert tcp == container_sockets({})  # a TCP engine is the network namespace's business


async def test_cargos_registry_token_is_hidden_though_cargo_is_bound_back(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """``~/.cargo`` is a toolchain directory commands see; its publish token is not."""
    home = tmp_path / "home"
    (home / ".cargo" / "bin").mkdir(parents=True)
    (home / ".cargo" / "bin" / "tool").write_text("a tool")
    (home / ".cargo" / "credentials.toml").write_text('[registry]\ntoken = "cio-secret"\n')
    boxed = sandbox.hiding(secret_places({"HOME": str(home)})).with_home(home, [".cargo"])
    work = tmp_path / "work"
    work.mkdir()
    shown = await run_command(
        f"cat {home}/.cargo/bin/tool; cat {home}/.cargo/credentials.toml",
        work,
        output_path=tmp_path / "cat.log",
        env=scrubbed_env(os.environ),
        timeout=30,
        sandbox=boxed,
    )
    assert "a tool" in shown.output and "cio-secret" not in shown.output
