"""The daemon core: one per user, shared by every connected client. It answers the protocol's
methods (one coroutine per method, named after it: ``locus/runs/start`` → ``runs_start``) by
delegating to the parts that do the work — the run manager, the cloud session, the worker.

The server (``locusd/server``) owns sockets, framing and pygls; this module owns no IO of its
own beyond what those parts do, so it reads as the list of what the daemon can do.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from locusd import __version__
from locusd.agent.providers import ConfigurationError
from locusd.agent.providers.select import make_provider
from locusd.config import Config
from locusd.config import load as load_config
from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.base import Empty
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    AuthStatus,
    DaemonStatus,
    LocusCapabilities,
    LogsParams,
    Run,
    RunEvents,
    RunList,
    RunRef,
    RunStartParams,
    WorkerStatus,
)
from locusd.runner.runs import Runs
from locusd.runner.store import RunStore
from locusd.server.peer import Peer

FEATURES = ["runs", "approvals", "progress"]


class Daemon:
    def __init__(self, config: Config, *, socket_path: Path | None = None) -> None:
        self.config = config
        self.socket_path = socket_path
        self.started = time.monotonic()
        self.store = RunStore(config.state_dir / "locusd.sqlite")
        self.runs = Runs(self.store, config)
        self.peers: set[Peer] = set()
        self.stopping = asyncio.Event()
        self.recovered = self.runs.recover()

    # --- Core: connections ----------------------------------------------------------------

    def capabilities(self) -> LocusCapabilities:
        return LocusCapabilities(
            protocol_version=PROTOCOL_VERSION, daemon_version=__version__, features=FEATURES
        )

    def connected(self, peer: Peer) -> None:
        self.peers.add(peer)

    def disconnected(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self.runs.drop_peer(peer)

    async def shutdown_requested(self) -> None:
        self.stopping.set()

    async def close(self) -> None:
        await self.runs.stop_all()
        self.store.close()

    # --- daemon ----------------------------------------------------------------------------

    async def daemon_status(self, params: Empty, peer: Peer) -> DaemonStatus:
        return DaemonStatus(
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            pid=os.getpid(),
            uptime_seconds=round(time.monotonic() - self.started, 3),
            socket=str(self.socket_path or ""),
            clients=len(self.peers),
            runs=self.runs.counts(),
            outbox_pending=0,
            auth=AuthStatus(logged_in=False, store="not configured"),
            worker=WorkerStatus(running=False),
        )

    async def daemon_shutdown(self, params: Empty, peer: Peer) -> Empty:
        await self.shutdown_requested()
        return Empty()

    # --- runs ------------------------------------------------------------------------------

    async def runs_start(self, params: RunStartParams, peer: Peer) -> Run:
        repo = Path(params.repo)
        if not repo.is_absolute() or not await asyncio.to_thread(repo.is_dir):
            raise LocusError(
                Code.INVALID_REQUEST, f"repo {params.repo!r}: give the absolute path of a checkout"
            )
        replay = Path(params.replay) if params.replay else None
        try:
            provider = make_provider(self.config.agent, replay=replay)
        except ConfigurationError as exc:
            raise LocusError(Code.INVALID_REQUEST, str(exc)) from None
        return await self.runs.start(repo=repo, task=params.task, provider=provider)

    async def runs_list(self, params: Empty, peer: Peer) -> RunList:
        return RunList(runs=self.store.all())

    async def runs_show(self, params: RunRef, peer: Peer) -> Run:
        return self.runs.get(params.run_id)

    async def runs_subscribe(self, params: RunRef, peer: Peer) -> RunEvents:
        return RunEvents(run_id=params.run_id, events=self.runs.subscribe(params.run_id, peer))

    async def runs_unsubscribe(self, params: RunRef, peer: Peer) -> Empty:
        self.runs.unsubscribe(params.run_id, peer)
        return Empty()

    async def runs_cancel(self, params: RunRef, peer: Peer) -> Run:
        return await self.runs.cancel(params.run_id)

    async def runs_logs(self, params: LogsParams, peer: Peer) -> RunEvents:
        self.runs.get(params.run_id)
        return RunEvents(
            run_id=params.run_id, events=self.store.events(params.run_id, params.after)
        )


def create_core(config: Config | None = None, *, socket_path: Path | None = None) -> Daemon:
    """The daemon core for ``locusd serve``, from the user's configuration."""
    return Daemon(config or load_config(), socket_path=socket_path)
