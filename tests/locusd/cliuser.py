"""A user's machine for tests that drive the real ``locus`` CLI (each command a subprocess) and
the daemon it starts (a detached process), against a real cloud: all state in a temp dir.
The ``user`` fixture (tests/locusd/conftest.py) makes one."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect

from tests.conftest import Cloud
from tests.locusd.agentkit import TASK, git, make_sample_repo
from tests.support.anthropic_server import AnthropicServer, Reply
from tests.support.shortpath import short_tmp

LOCUS = str(Path(sys.executable).parent / "locus")
REMOTE = "https://git.example.com/acme/sample.git"


@dataclass
class User:
    """A user's machine: environment (all XDG dirs in tmp), a checkout, the config."""

    env: dict[str, str]
    repo: Path
    config: Path

    @property
    def outside(self) -> Path:
        """Where commands run unless a test says otherwise: the user's temp dir, in no git
        checkout — never the test runner's own directory, whose remotes (a clone of a clone,
        a hosted URL) would decide which project ``locus tasks`` means."""
        return Path(self.env["XDG_STATE_HOME"]).parent

    async def locus(
        self, *args: str, check: bool = True, stdin: str | None = None, cwd: Path | None = None
    ) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            LOCUS,
            *args,
            env=self.env,
            cwd=cwd or self.outside,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        data = stdin.encode() if stdin is not None else None
        out, err = await asyncio.wait_for(proc.communicate(data), 120)
        assert proc.returncode is not None
        if check:
            assert proc.returncode == 0, f"locus {' '.join(args)}: {err.decode()}"
        return proc.returncode, out.decode(), err.decode()

    async def start(self, *args: str, quiet: bool = False) -> asyncio.subprocess.Process:
        """``locus ARGS`` left running (a worker's loop, a wait) in :attr:`outside`: stdin
        closed, stdout and stderr piped (``quiet``: dropped)."""
        out = asyncio.subprocess.DEVNULL if quiet else asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(
            LOCUS,
            *args,
            env=self.env,
            cwd=self.outside,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )

    async def json(self, *args: str, stdin: str | None = None, cwd: Path | None = None) -> Any:
        _, out, _ = await self.locus(*args, "--json", stdin=stdin, cwd=cwd)
        return json.loads(out)

    def terminal(self, *args: str, columns: int = 250) -> pexpect.spawn[str]:
        """``locus ARGS`` on a real pseudo-terminal ``columns`` wide (rich's own idea of the
        terminal comes from it, not from the test's environment)."""
        env = {k: v for k, v in self.env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env = {k: v for k, v in env.items() if not k.startswith(("FORCE_COLOR", "TTY_"))}
        return pexpect.spawn(
            LOCUS,
            list(args),
            env={**env, "TERM": "xterm-256color"},
            dimensions=(60, columns),
            cwd=str(self.outside),
            encoding="utf-8",
            timeout=120,
        )

    def agent(self, **settings: str) -> None:
        lines = "".join(f'{key} = "{value}"\n' for key, value in settings.items())
        self.config.write_text(f"[agent]\n{lines}")


@asynccontextmanager
async def machine(cloud: Cloud, tmp_path: Path) -> AsyncIterator[User]:
    """A user whose checkout's remote the cloud's project lists; the daemon is stopped after.
    The runtime dir (the daemon's socket) is a short one, whatever $TMPDIR is."""
    with short_tmp() as runtime:
        runtime.chmod(0o700)
        async with _machine(cloud, tmp_path, runtime) as user:
            yield user


def machine_env(
    tmp_path: Path, runtime: Path, api_key: str = "sk-ant-cli-daemon"
) -> dict[str, str]:
    """This process's environment with every XDG dir in ``tmp_path`` (the socket's in
    ``runtime``), no keyring, and no Locus or Anthropic setting but ``api_key``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "LOCUS"))},
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "ANTHROPIC_API_KEY": api_key,
    }


@asynccontextmanager
async def _machine(cloud: Cloud, tmp_path: Path, runtime: Path) -> AsyncIterator[User]:
    env = machine_env(tmp_path, runtime)
    config = tmp_path / "config" / "locus" / "config.toml"
    config.parent.mkdir(parents=True)
    repo = make_sample_repo(tmp_path)
    git(repo, "remote", "add", "origin", REMOTE)
    git(repo, "config", "user.name", "Ada Lovelace")
    git(repo, "config", "user.email", "ada@example.com")
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    machine = User(env, repo, config)
    try:
        yield machine
    finally:
        await machine.locus("daemon", "stop", check=False)


async def login_and_queue(user: User, cloud: Cloud, title: str = TASK) -> int:
    status = await user.json("login", "--cloud", cloud.url, "--token", cloud.first_start.token)
    assert status["loggedIn"] and status["kind"] == "user"
    assert "0600" in status["warning"]  # no keyring here: said plainly
    task = await user.json("tasks", "create", "--project", str(cloud.project_id), "--title", title)
    assert task["status"] == "queued"
    return int(task["id"])


async def awaiting_review(
    user: User, cloud: Cloud, replies: Sequence[Reply], title: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log in, create a cloud task titled ``title`` and run it once with a model that answers
    ``replies``: (the task, its run, awaiting review)."""
    async with AnthropicServer(replies) as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        await user.json("login", "--cloud", cloud.url, "--token", cloud.first_start.token)
        task = await user.json(
            "tasks", "create", "--project", str(cloud.project_id), "--title", title
        )
        _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review", err
    return task, run


async def drained(user: User) -> None:
    """Until the daemon's outbox is empty (bounded)."""
    for _ in range(600):
        if (await user.json("status"))["outboxPending"] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the outbox did not drain")


async def cloud_status(cloud: Cloud, task_id: int) -> str:
    return str((await cloud.api.get(f"/tasks/{task_id}")).ok()["status"])
