"""``locusd acp``: serve ACP on stdin/stdout, forwarding to the user's daemon (started if none
runs, as ``locusd --stdio`` does). stdout is the protocol: logs and errors go to stderr."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from acp import Agent, run_agent

from locusd.acp.agent import LocusAgent
from locusd.cli.rpc import DaemonClient
from locusd.server.client import DaemonUnavailable, connect_or_start


def acp(
    path: Path | None,
    *,
    start: bool = True,
    serve_command: Sequence[str] | None = None,
    unstable: bool = False,
) -> int:
    """Run until the client closes stdin (the daemon's runs go on without it)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        return asyncio.run(_serve(path, start, serve_command, unstable))
    except KeyboardInterrupt:
        return 130


async def _serve(
    path: Path | None, start: bool, serve_command: Sequence[str] | None, unstable: bool
) -> int:
    try:
        reader, writer = await connect_or_start(path, start=start, serve_command=serve_command)
    except DaemonUnavailable as exc:
        print(f"locusd acp: {exc}", file=sys.stderr)
        return 1
    async with DaemonClient(reader, writer, client_name="locusd-acp") as daemon:
        agent = LocusAgent(daemon)
        daemon.on_notification = agent.on_daemon_notification
        daemon.on_request = agent.on_daemon_request
        await run_agent(cast(Agent, agent), use_unstable_protocol=unstable)
    return 0
