"""The cloud as a real process (``locus-cloud serve``) on a fixed port, so it can be killed
with SIGKILL and started again where its clients (or a proxy) expect it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

LOCUS_CLOUD = str(Path(sys.executable).with_name("locus-cloud"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CloudProcess:
    """``locus-cloud serve --db URL`` on ``port`` (a free one by default), its log in
    ``log_path``; extra settings go in as ``LOCUS_CLOUD_*`` environment variables."""

    def __init__(self, db_url: str, log_path: Path, port: int = 0, **settings: str | float) -> None:
        self.db_url, self.log_path = db_url, log_path
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **{f"LOCUS_CLOUD_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start and return once it listens (its "listening" event on stdout)."""
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                LOCUS_CLOUD,
                "serve",
                "--db",
                self.db_url,
                "--port",
                str(self.port),
                "--no-migrate",
                "--json",
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=self.env,
            )
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the cloud exited before listening; see {self.log_path}")
                if line.startswith(b"{") and json.loads(line).get("event") == "listening":
                    return

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight requests and transactions die as they are."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
