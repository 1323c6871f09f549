"""The server under test: a real `locus-cloud serve` in its own process, on SQLite or on a
throwaway PostgreSQL, migrated and bootstrapped, with worker tokens made through the API.

The server runs as a separate process so the load generator (this process) does not share its
event loop — each gets a core of its own, as a real deployment would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

from bench import proc
from cloud_api.bootstrap import bootstrap
from cloud_api.store.db import Database
from tests.support.client import Api, Worker
from tests.support.pgserver import PostgresServer

Backend = Literal["sqlite", "postgresql"]
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass
class Cloud:
    """A running server: where it is, its database, and the bootstrap admin's project."""

    backend: Backend
    url: str
    db_url: str
    admin_token: str
    project_id: int
    process: subprocess.Popen[bytes]
    log_path: Path
    lease_seconds: float
    #: PostgreSQL only: the postmaster's pid, so its CPU time can be read from /proc.
    postmaster_pid: int | None = None
    db: Database = field(init=False)

    def __post_init__(self) -> None:
        # The bench's own handle on the same database: seeding tasks, raw claims, checks.
        self.db = Database(self.db_url)

    def admin(self, session: aiohttp.ClientSession) -> Api:
        return Api(session, self.url, self.admin_token)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def cli() -> list[str]:
    """`locus-cloud` of the interpreter running the bench (the project's venv)."""
    script = Path(sys.executable).with_name("locus-cloud")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cloud_api.cli"]


def _run_cli(*args: str) -> None:
    proc = subprocess.run([*cli(), *args], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"locus-cloud {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")


async def _bootstrap(db_url: str) -> tuple[str, int]:
    db = Database(db_url)
    try:
        created = await bootstrap(db)
    finally:
        await db.close()
    if created is None:
        raise RuntimeError(f"{db_url} already has users: the bench wants a fresh database")
    return created.token, created.project_id


async def _wait_ready(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]
) -> None:
    """Poll /readyz (there is no event to wait on across processes) within a deadline."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{url}/readyz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the server at {url} was not ready within {READY_TIMEOUT_S:.0f} s")


def _spawn(db_url: str, port: int, lease_seconds: float, log_path: Path) -> subprocess.Popen[bytes]:
    """`locus-cloud serve`, its output (logs, first-start JSON) into ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                *cli(),
                "serve",
                "--db", db_url,
                "--host", HOST,
                "--port", str(port),
                "--lease-seconds", str(lease_seconds),
                "--json",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # aiohttp's run_app shuts down gracefully on SIGINT
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


def _postmaster_pid(pg: PostgresServer) -> int | None:
    try:
        return int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.asynccontextmanager
async def running_cloud(
    backend: Backend, workdir: Path, *, lease_seconds: float
) -> AsyncIterator[Cloud]:
    """A fresh, migrated, bootstrapped database and a server on a free loopback port."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    pg: PostgresServer | None = None
    proc: subprocess.Popen[bytes] | None = None
    cloud: Cloud | None = None
    try:
        if backend == "postgresql":
            pg = PostgresServer(workdir / "pg")
            await asyncio.to_thread(pg.start)
            db_url = await asyncio.to_thread(pg.create_database, "locus_bench")
        else:
            db_url = f"sqlite:///{workdir / 'cloud.db'}"
        await asyncio.to_thread(_run_cli, "migrate", "--db", db_url)
        token, project_id = await _bootstrap(db_url)
        port = free_port()
        log_path = workdir / f"server-{backend}.log"
        proc = await asyncio.to_thread(_spawn, db_url, port, lease_seconds, log_path)
        url = f"http://{HOST}:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                await _wait_ready(session, url, proc)
        except RuntimeError as exc:
            tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-3000:]
            raise RuntimeError(f"{exc}; tail of {log_path}:\n{tail}") from None
        cloud = Cloud(
            backend=backend,
            url=url,
            db_url=db_url,
            admin_token=token,
            project_id=project_id,
            process=proc,
            log_path=log_path,
            lease_seconds=lease_seconds,
            postmaster_pid=_postmaster_pid(pg) if pg is not None else None,
        )
        yield cloud
    finally:
        if cloud is not None:
            await cloud.db.close()
        if proc is not None:
            await asyncio.to_thread(_stop, proc)
        if pg is not None:
            await asyncio.to_thread(pg.stop)


async def make_workers(admin: Api, project_id: int, count: int, prefix: str) -> list[Worker]:
    """Worker tokens and registrations through the real API (setup, not measured)."""
    return [await Worker.create(admin, project_id, f"{prefix}-{i}") for i in range(count)]


def _proc_cpu(pid: int) -> float:
    """user + system CPU seconds of one process (0 if it is gone)."""
    try:
        return proc.cpu_seconds(pid)
    except OSError:
        return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cpu_seconds(cloud: Cloud) -> dict[str, float]:
    """CPU used so far by the API server and (PostgreSQL) by the database server processes."""
    used = {"server": _proc_cpu(cloud.process.pid), "bench": time.process_time()}
    if cloud.postmaster_pid is not None:
        pids = [cloud.postmaster_pid, *_children(cloud.postmaster_pid)]
        used["postgres"] = sum(_proc_cpu(p) for p in pids)
    return used
