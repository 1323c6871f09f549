"""A cloud server as its own process (``locus-cloud serve``): for replicas, and for faults a
process in the test cannot survive (SIGKILL at a crash point, or at any moment of a run)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import IO

LOCUS_CLOUD = str(Path(sys.executable).with_name("locus-cloud"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_cloud_process(
    db_url: str,
    env: dict[str, str] | None = None,
    *,
    port: int = 0,
    stderr: IO[bytes] | None = None,
) -> tuple[asyncio.subprocess.Process, str]:
    """Serve ``db_url`` (already migrated) from a new process on ``port`` (0: a free one);
    returns it and its base URL once it listens. ``env`` adds to the environment (e.g.
    ``LOCUS_CRASH_AT``); ``stderr`` takes its log."""
    port = port or free_port()
    proc = await asyncio.create_subprocess_exec(
        LOCUS_CLOUD,
        "serve",
        "--db",
        db_url,
        "--port",
        str(port),
        "--no-migrate",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = await proc.stdout.readline()
            assert line, "the cloud process exited before listening"
            if line.startswith(b"{") and json.loads(line).get("event") == "listening":
                return proc, f"http://127.0.0.1:{port}"


class CloudProcess:
    """A cloud process that keeps its port across restarts, so it can be killed with SIGKILL
    and started again where its clients (or a proxy) expect it. Its log goes to ``log_path``;
    ``settings`` become ``LOCUS_CLOUD_*`` environment variables."""

    def __init__(self, db_url: str, log_path: Path, **settings: str | float) -> None:
        self.db_url, self.log_path = db_url, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {f"LOCUS_CLOUD_{k.upper()}": str(v) for k, v in settings.items()}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc, _ = await start_cloud_process(
                self.db_url, self.env, port=self.port, stderr=log
            )

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight requests and transactions die as they are."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
