"""The daemon's runs: starting them (an agent run in a worktree, as ``locus agent run`` does),
cancelling them, recording and fanning out their events to subscribed clients, routing
approval requests to those clients, and recovering after a crash.

Cloud bookkeeping (claims, leases, status reports) is not here: the worker wraps a run with it
through the ``on_end`` hook, so a local run and a cloud task run the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locusd.agent.loop import Event
from locusd.agent.run import RunReport, local_task_id
from locusd.config import Config
from locusd.git.worktrees import Worktree
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    ApprovalAnswer,
    ApprovalRequest,
    ApprovalResolved,
    Decision,
    Run,
    RunEvent,
    RunEventKind,
    RunState,
)
from locusd.runner.agent_process import run_in_child
from locusd.runner.store import RunStore, now
from locusd.server.peer import Peer

log = logging.getLogger(__name__)

EVENT = "locus/runs/event"
OnEnd = Callable[[Run, RunReport | None], Awaitable[None]]
INTERRUPTED = "interrupted: the daemon stopped during the run"
#: The largest piece of a tool's result copied into an event (the transcript has it all).
EVENT_TEXT_LIMIT = 4000


def _state_after(report: RunReport) -> RunState:
    if report.outcome == "completed":
        return "awaiting_review" if report.diff else "completed"
    if report.outcome == "needs_input":
        return "needs_input"
    if report.outcome == "cancelled":
        return "cancelled"
    return "failed"


def _token(run_id: str) -> str:
    return f"locus/run/{run_id}"


def _progress_value(event: RunEvent) -> dict[str, Any] | None:
    """The ``$/progress`` value an event shows, if any: the turn and tool as a report, the
    run's end as ``end``."""
    if event.kind == "completed":
        return {"kind": "end", "message": event.text}
    if event.kind == "turn":
        return {"kind": "report", "message": f"turn {event.data.get('turn', '')}"}
    if event.kind in ("tool", "verify", "state"):
        return {"kind": "report", "message": f"{event.kind}: {event.text}"[:200]}
    return None


@dataclass
class _Active:
    task: asyncio.Task[Run]
    cancel: asyncio.Event
    allowed: set[str] = field(default_factory=set)  # commands answered "allow always"


class Runs:
    def __init__(self, store: RunStore, config: Config) -> None:
        self.store = store
        self.config = config
        self.active: dict[str, _Active] = {}
        self.subscribers: dict[str, set[Peer]] = {}
        self._progress_starts: set[asyncio.Task[None]] = set()
        self.listeners: dict[str, list[Callable[[RunEvent], None]]] = {}
        #: Told of every new run (the daemon tells its clients: ``locus/runs/started``).
        self.on_started: Callable[[Run], None] = lambda run: None
        self._approvals = itertools.count(1)

    # --- lifecycle ------------------------------------------------------------------------

    def recover(self) -> list[Run]:
        """Runs a previous daemon left mid-flight become ``failed: interrupted`` (their
        worktrees, with whatever work is in them, are kept)."""
        recovered = []
        for run in self.store.interrupted():
            ended = run.model_copy(
                update={"state": "failed", "outcome": "failed", "reason": INTERRUPTED,
                        "ended_at": now()}
            )  # fmt: skip
            self.store.save(ended)
            self._emit(ended.run_id, "state", "failed", {"reason": INTERRUPTED})
            recovered.append(ended)
        return recovered

    async def start(
        self,
        *,
        repo: Path,
        task: str,
        replay: Path | None = None,
        title: str | None = None,
        task_id: int | None = None,
        cloud: dict[str, Any] | None = None,
        on_end: OnEnd | None = None,
        continue_in: Worktree | None = None,
    ) -> Run:
        run_id = f"{task_id}-{local_task_id()}" if task_id is not None else local_task_id()
        run = Run(
            run_id=run_id,
            task_id=task_id,
            title=title or task.splitlines()[0][:200],
            repo=str(repo),
            state="starting",
            started_at=now(),
        )
        self.store.save(run, cloud)
        cancel = asyncio.Event()
        work = self._run(run, task, replay, cancel, on_end, continue_in)
        active = _Active(asyncio.create_task(work), cancel)
        self.active[run_id] = active
        self._emit(run_id, "state", "starting")
        self.on_started(run)
        return run

    async def _run(
        self,
        run: Run,
        task: str,
        replay: Path | None,
        cancel: asyncio.Event,
        on_end: OnEnd | None,
        continue_in: Worktree | None = None,
    ) -> Run:
        report: RunReport | None = None
        try:
            report = await run_in_child(
                repo=Path(run.repo),
                task=task,
                config=self.config,
                replay=replay,
                task_id=run.run_id,
                cancel=cancel,
                approver=lambda command, reason: self._approve(run.run_id, command, reason),
                on_event=lambda event: self._agent_event(run.run_id, event),
                on_phase=lambda text: self._emit(run.run_id, "note", text),
                on_worktree=lambda worktree: self._at_worktree(run.run_id, worktree),
                continue_in=continue_in,
            )
            run = run.model_copy(
                update={
                    "state": _state_after(report),
                    "outcome": report.outcome,
                    "reason": report.reason,
                    "question": report.question,
                    "summary": report.summary,
                    "worktree": report.worktree,
                    "branch": report.branch,
                    "base_commit": report.base_commit,
                    "transcript": report.transcript,
                    "cost_usd": report.cost_usd,
                    "ended_at": now(),
                }
            )
            if report.diff:
                self._emit(run.run_id, "diff", report.diff)
        except Exception as exc:  # a worktree error, the agent process died: the run fails
            log.exception("run %s failed", run.run_id)
            run = self.get(run.run_id).model_copy(
                update={
                    "state": "failed",
                    "outcome": "failed",
                    "reason": str(exc),
                    "ended_at": now(),
                }
            )
        self.store.save(run)
        self._emit(run.run_id, "completed", run.state, run.wire())
        self.active.pop(run.run_id, None)
        self.listeners.pop(run.run_id, None)
        if on_end is not None:
            await on_end(run, report)
        return run

    def _at_worktree(self, run_id: str, worktree: Worktree) -> None:
        """Where the run works, recorded before the agent's first edit (kept if it crashes)."""
        where = {
            "worktree": str(worktree.path),
            "branch": worktree.branch,
            "base_commit": worktree.base_commit,
        }
        self.store.save(self.get(run_id).model_copy(update=where))

    async def wait(self, run_id: str) -> Run:
        active = self.active.get(run_id)
        if active is not None:
            return await asyncio.shield(active.task)
        return self.get(run_id)

    async def cancel(self, run_id: str) -> Run:
        run = self.get(run_id)
        active = self.active.get(run_id)
        if active is None:
            raise LocusError(Code.INVALID_RUN_STATE, f"run {run_id} is {run.state}, not running")
        active.cancel.set()
        return await self.wait(run_id)

    async def stop_all(self) -> None:
        for active in list(self.active.values()):
            active.cancel.set()
        for active in list(self.active.values()):
            with contextlib.suppress(Exception):
                await active.task

    # --- reading ----------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        run = self.store.get(run_id)
        if run is None:
            raise LocusError(Code.RUN_NOT_FOUND, f"no run {run_id!r}: see locus/runs/list")
        return run

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    # --- events and subscribers --------------------------------------------------------------

    def subscribe(self, run_id: str, peer: Peer) -> list[RunEvent]:
        run = self.get(run_id)
        self.subscribers.setdefault(run_id, set()).add(peer)
        if run_id in self.active:
            task = asyncio.ensure_future(self._begin_progress(run, peer))
            self._progress_starts.add(task)
            task.add_done_callback(self._progress_starts.discard)
        return self.store.events(run_id)

    async def _begin_progress(self, run: Run, peer: Peer) -> None:
        """Standard ``$/progress`` for editors that show it (a no-op for those that don't)."""
        with contextlib.suppress(Exception):  # a client that went away: nothing to show
            await peer.create_progress(_token(run.run_id))
            title = f"Locus: {run.title[:60]}"
            peer.progress(
                _token(run.run_id), {"kind": "begin", "title": title, "cancellable": False}
            )

    def listen(self, run_id: str, listener: Callable[[RunEvent], None]) -> None:
        """In-process subscribers (the worker's log shipping), for the run's lifetime."""
        self.listeners.setdefault(run_id, []).append(listener)

    def unsubscribe(self, run_id: str, peer: Peer) -> None:
        self.subscribers.get(run_id, set()).discard(peer)

    def drop_peer(self, peer: Peer) -> None:
        for peers in self.subscribers.values():
            peers.discard(peer)

    def _emit(
        self, run_id: str, kind: RunEventKind, text: str = "", data: dict[str, Any] | None = None
    ) -> None:
        event = self.store.append(run_id, kind, text, data)
        for listener in self.listeners.get(run_id, ()):
            listener(event)
        for peer in list(self.subscribers.get(run_id, ())):
            peer.notify(EVENT, event)
            progress = _progress_value(event)
            if progress is not None:
                peer.progress(_token(run_id), progress)

    def _agent_event(self, run_id: str, event: Event) -> None:
        if event.kind == "turn" and event.turn == 1:
            run = self.get(run_id)
            self.store.save(run.model_copy(update={"state": "running"}))
            self._emit(run_id, "state", "running")
        data = {**event.data, "turn": event.turn}
        content = str(data.pop("content", ""))
        self._emit(run_id, event.kind, event.text, data)
        if event.kind == "tool_done" and event.text in ("run_command", "run_verify"):
            self._emit(run_id, "output", content[-EVENT_TEXT_LIMIT:], {"tool": event.text})

    # --- approvals ---------------------------------------------------------------------------

    async def _approve(self, run_id: str, command: str, reason: str) -> bool:
        """Ask every client watching the run; the first answer wins, the others are told."""
        active = self.active.get(run_id)
        if active is not None and command in active.allowed:
            return True
        peers = list(self.subscribers.get(run_id, ()))
        if not peers:
            self._emit(run_id, "note", f"not run (no client is watching to approve): {command}")
            return False
        request = ApprovalRequest(
            approval_id=f"{run_id}/{next(self._approvals)}",
            run_id=run_id,
            command=command,
            reason=reason,
        )
        asks = {
            asyncio.ensure_future(peer.request("locus/approval", request, ApprovalAnswer)): peer
            for peer in peers
        }
        decision: Decision = "reject"
        answered_by: Peer | None = None
        pending = set(asks)
        while pending and answered_by is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for ask in done:
                if ask.exception() is None:
                    decision, answered_by = ask.result().decision, asks[ask]
                    break
        for ask in pending:
            ask.cancel()
        resolved = ApprovalResolved(approval_id=request.approval_id, decision=decision)
        for peer in peers:
            if peer is not answered_by:
                peer.notify("locus/approval/resolved", resolved)
        self._emit(run_id, "note", f"{decision.replace('_', ' ')}: {command}")
        if decision == "allow_always" and active is not None:
            active.allowed.add(command)
        return decision != "reject"
