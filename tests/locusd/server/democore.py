"""A small real :class:`~locusd.server.peer.Core` for the server tests: it answers a handful of
methods from memory and exercises every way the core talks back (notifications, a request to
the client, progress, errors; the methods it leaves out are answered METHOD_NOT_FOUND), with
events the tests wait on instead of sleeping.

``create_core`` has the signature of ``locusd.daemon.create_core`` so that ``locusd serve
--core tests.locusd.server.democore:create_core`` runs it in a real daemon process.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.base import Empty, Wire
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    ApprovalAnswer,
    ApprovalRequest,
    AuthStatus,
    DaemonStatus,
    LocusCapabilities,
    LogsParams,
    Run,
    RunCancelParams,
    RunEvent,
    RunEvents,
    RunList,
    RunRef,
    RunStartParams,
    SandboxStatus,
    TaskList,
    TaskListParams,
    WorkerStatus,
)
from locusd.server.handlers import Unavailable, handles
from locusd.server.peer import Peer

RUN = Run(
    run_id="r1",
    title="démo ✓ — non-ASCII on purpose",
    repo="/tmp/repo",
    state="running",
    started_at="2025-01-01T00:00:00Z",
)


class DemoCore:
    def __init__(self, socket_path: Path | None = None) -> None:
        self.socket_path = socket_path
        self.started = time.monotonic()
        self.peers: list[Peer] = []
        self.gone: list[Peer] = []
        self.stopping = asyncio.Event()
        self.closed = False
        # runs/logs with run_id "slow" parks here until the test releases it
        self.slow_started = asyncio.Event()
        self.slow_release = asyncio.Event()
        self.slow_finished = asyncio.Event()
        self.disconnected_event = asyncio.Event()

    # --- Core -------------------------------------------------------------------------------

    def capabilities(self) -> LocusCapabilities:
        return LocusCapabilities(
            protocol_version=PROTOCOL_VERSION, daemon_version="0.0-demo", features=["demo"]
        )

    def connected(self, peer: Peer) -> None:
        self.peers.append(peer)

    def disconnected(self, peer: Peer) -> None:
        self.peers.remove(peer)
        self.gone.append(peer)
        self.disconnected_event.set()

    async def shutdown_requested(self) -> None:
        self.stopping.set()

    async def close(self) -> None:
        self.closed = True

    # --- methods ----------------------------------------------------------------------------

    @handles("locus/daemon/status")
    async def daemon_status(self, params: Empty, peer: Peer) -> DaemonStatus:
        return DaemonStatus(
            version="0.0-demo",
            protocol_version=PROTOCOL_VERSION,
            pid=os.getpid(),
            uptime_seconds=time.monotonic() - self.started,
            socket=str(self.socket_path or ""),
            clients=len(self.peers),
            runs={"running": 1},
            outbox_pending=0,
            auth=AuthStatus(logged_in=False, store="none"),
            worker=WorkerStatus(running=False),
            sandbox=SandboxStatus(contained=True, network=False),
        )

    @handles("locus/daemon/shutdown")
    async def daemon_shutdown(self, params: Empty, peer: Peer) -> Empty:
        await self.shutdown_requested()
        return Empty()

    @handles("locus/runs/list")
    async def runs_list(self, params: Empty, peer: Peer) -> RunList:
        return RunList(runs=[RUN])

    @handles("locus/runs/show")
    async def runs_show(self, params: RunRef, peer: Peer) -> Run:
        if params.run_id != RUN.run_id:
            raise LocusError(Code.RUN_NOT_FOUND, f"no run {params.run_id!r}")
        return RUN

    @handles("locus/runs/subscribe")
    async def runs_subscribe(self, params: RunRef, peer: Peer) -> RunEvents:
        """Answers the first event and then pushes the second as a notification."""
        first = RunEvent(run_id=params.run_id, seq=1, kind="state", text="running")
        second = RunEvent(run_id=params.run_id, seq=2, kind="text", text="héllo ✓")
        asyncio.get_running_loop().call_soon(peer.notify, "locus/runs/event", second)
        return RunEvents(run_id=params.run_id, events=[first])

    @handles("locus/runs/start")
    async def runs_start(self, params: RunStartParams, peer: Peer) -> Run:
        """Asks the client for approval of ``params.task`` and reports the decision."""
        request = ApprovalRequest(
            approval_id="a1", run_id="r1", command=params.task, reason="outside the policy"
        )
        answer = await peer.request("locus/approval", request, ApprovalAnswer)
        return RUN.model_copy(update={"outcome": answer.decision})

    @handles("locus/runs/unsubscribe")
    async def runs_unsubscribe(self, params: RunRef, peer: Peer) -> Empty:
        """Reports work-done progress (if the client supports it)."""
        await peer.create_progress("p1")
        peer.progress("p1", {"kind": "begin", "title": "unsubscribing"})
        peer.progress("p1", {"kind": "end"})
        return Empty()

    @handles("locus/runs/logs")
    async def runs_logs(self, params: LogsParams, peer: Peer) -> RunEvents:
        if params.run_id == "slow":
            self.slow_started.set()
            await self.slow_release.wait()
            self.slow_finished.set()
        return RunEvents(run_id=params.run_id, events=[])

    @handles("locus/tasks/list")
    async def tasks_list(self, params: TaskListParams, peer: Peer) -> TaskList:
        raise RuntimeError("the demo core has no cloud")

    @handles("locus/runs/cancel")
    async def runs_cancel(self, params: RunCancelParams, peer: Peer) -> Any:
        return Empty()  # the wrong result type on purpose: the server must catch it

    @handles(
        "locus/auth/status",
        "locus/auth/login",
        "locus/auth/logout",
        "locus/audit/list",
        "locus/tasks/show",
        "locus/tasks/create",
        "locus/tasks/pull",
        "locus/tasks/act",
        "locus/tasks/comment",
        "locus/tasks/edit",
        "locus/projects/resolve",
        "locus/runs/resolve",
        "locus/plan/start",
        "locus/plan/show",
        "locus/plan/accept",
        "locus/worker/start",
        "locus/worker/stop",
        "locus/review/get",
        "locus/review/content",
        "locus/review/decide",
        "locus/review/commit",
        "locus/review/send_back",
        "locus/review/discard",
        "locus/review/resubmit",
    )
    async def not_in_the_demo(self, params: Wire, peer: Peer) -> Wire:
        """What the demo leaves out is answered METHOD_NOT_FOUND, as by a daemon without it."""
        raise Unavailable


def create_core(config: object = None, *, socket_path: Path | None = None) -> DemoCore:
    return DemoCore(socket_path)
