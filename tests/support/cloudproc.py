"""A cloud server as its own process (``locus-cloud serve``): for replicas, and for faults a
process in the test cannot survive (SIGKILL at a crash point)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

LOCUS_CLOUD = str(Path(sys.executable).with_name("locus-cloud"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_cloud_process(
    db_url: str, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """Serve ``db_url`` (already migrated) from a new process; returns it and its base URL
    once it listens. ``env`` adds to the environment (e.g. ``LOCUS_CRASH_AT``)."""
    port = free_port()
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
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = await proc.stdout.readline()
            assert line, "the cloud process exited before listening"
            if line.startswith(b"{") and json.loads(line).get("event") == "listening":
                return proc, f"http://127.0.0.1:{port}"
