"""The daemon's runs: starting them (an agent run in a worktree, as ``locus agent run`` does),
moving them through their lifecycle, cancelling them, recording and fanning out their events to
subscribed clients, routing approval requests to those clients, and recovering after a crash.

Every state change goes through :meth:`Runs.move`, the one write path: it checks the lifecycle
table (:mod:`locusd.runner.lifecycle`), saves the run, and — in the same transaction — lets the
run's cloud :class:`~locusd.runner.attempt.Attempt` (if it has one) enqueue what the cloud must
hear, then brings the worktree's own record in line. A local run and a cloud task run the same
way; only the attempt differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locusd.agent import transcript
from locusd.agent.policy import Mode
from locusd.agent.providers import ConfigurationError
from locusd.agent.providers.select import check_agent
from locusd.agent.report import Event, RunReport, local_task_id, repo_key
from locusd.cloud.outbox import OutboxEntry
from locusd.cloud.outbox import State as EntryState
from locusd.config import Config
from locusd.crashpoints import crashpoint
from locusd.git import runmeta
from locusd.git.worktrees import Worktree, WorktreeError, Worktrees, save_work
from locusd.modelenv import ModelEnv, with_model_env
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    ApprovalAnswer,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalResolved,
    NeedsYou,
    PlanProposal,
    Run,
    RunEvent,
    RunEventKind,
    RunState,
)
from locusd.runner import attention
from locusd.runner.agent_process import AgentProcessError, run_in_child
from locusd.runner.attempt import Attempt, Attempts
from locusd.runner.lifecycle import (
    LIVE,
    Ending,
    LifecycleError,
    after_outcome,
    check,
    worktree_state,
)
from locusd.runner.store import RunStore, now
from locusd.server.peer import Peer
from locusd.settings import Settings

log = logging.getLogger(__name__)

EVENT = "locus/runs/event"
OnEnd = Callable[[Run], Awaitable[None]]
INTERRUPTED = "interrupted: the daemon stopped during the run"
CANCELLED_INTERRUPTED = "cancelled: the daemon stopped before the run had ended"
#: The step a user's cancel records before the run is stopped: what the cloud will hear.
CANCEL_STEP = "cancel"
#: The largest piece of a tool's result copied into an event (the transcript has it all).
EVENT_TEXT_LIMIT = 4000


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
    def __init__(self, store: RunStore, config: Config | Settings, attempts: Attempts) -> None:
        self.store = store
        #: The daemon's settings, read again (if the file changed) at each new run.
        self.settings = config if isinstance(config, Settings) else Settings(config)
        self.attempts = attempts
        self.active: dict[str, _Active] = {}
        self.subscribers: dict[str, set[Peer]] = {}
        self._progress_starts: set[asyncio.Task[None]] = set()
        self.listeners: dict[str, list[Callable[[RunEvent], None]]] = {}
        #: Told of every new run (the daemon tells its clients: ``locus/runs/started``).
        self.on_started: Callable[[Run], None] = lambda run: None
        #: Told when a run needs a person (the daemon tells its clients and the desktop).
        self.on_needs_you: Callable[[NeedsYou], None] = lambda note: None
        #: Told of a run's end inside the transaction that records it, so what must follow
        #: it (a planning request's report: locusd/runner/plan_requests.py) is never lost.
        self.on_ended: Callable[[Run], None] = lambda run: None
        self._approvals = itertools.count(1)

    @property
    def config(self) -> Config:
        return self.settings.current()

    # --- the one write path ------------------------------------------------------------------

    def move(
        self,
        run: Run,
        target: RunState,
        *,
        report: RunReport | None = None,
        patch: str | None = None,
        step: dict[str, Any] | None = None,
        ending: Ending | None = None,
        **fields: Any,
    ) -> Run:
        """Move a run to ``target`` (the lifecycle table must allow it), with ``fields``
        updated; in one transaction, the run's attempt reports what the table says to the
        cloud (``report``: the agent's end; ``patch``: a commit's; ``ending``: why it ended
        failed or cancelled — for a cancel, the user's choice recorded by :meth:`cancel`).
        ``step``: the side effect the run is now in the middle of (recorded before it is done;
        cleared by the next move, but a cancel asked for stays while the run is live)."""
        current = self.get(run.run_id)
        attempt = self.attempts.of_run(run.run_id)
        try:
            check(run.run_id, current.state, target, cloud=attempt is not None)
        except LifecycleError as exc:
            raise LocusError(Code.INVALID_RUN_STATE, str(exc)) from None
        asked = self._cancel_asked(run.run_id)
        if ending is None and target == "cancelled":
            ending = asked
        if step is None and asked is not None and target in LIVE:
            step = {CANCEL_STEP: asked}
        moved = current.model_copy(update={**fields, "state": target})
        with self.store.db.transaction():
            self.store.save(moved)
            self.store.set_step(run.run_id, step)
            if attempt is not None:
                attempt.entered(moved, report, patch, previous=current.state, ending=ending)
            if moved.ended_at is not None and current.ended_at is None:
                self.on_ended(moved)
        changed = bool(report.diff) if report is not None else True
        self._record_worktree_state(moved, changed=changed, cloud=attempt is not None)
        data = {"reason": moved.reason} if moved.reason and target == "failed" else None
        self._emit(run.run_id, "state", target, data)
        note = attention.on_move(moved, current.state)
        if note is not None:
            self.on_needs_you(note)
        return moved

    def answered(self, entry: OutboxEntry, state: EntryState, error: str | None) -> None:
        """The cloud's answer to a status its run's attempt sent (called in the transaction that
        settles the entry): ``verification`` acknowledged makes a committed run ``reported``; a
        report refused for good is said on the run — ``report_refused`` once committed. Entries
        of an earlier attempt of the run (before a resubmit) no longer speak for it."""
        run = self.store.get(entry.run_id) if entry.run_id else None
        attempt = self.attempts.of_run(run.run_id) if run is not None else None
        if run is None or attempt is None or entry.kind != "status":
            return
        if entry.payload.get("claim_token") != attempt.fence.claim_token:
            return
        if state == "sent" and entry.payload.get("status") == "verification":
            if run.state == "committed":
                self.move(run, "reported", cloud_error=None)
        elif state == "dead":
            refused = f"the cloud refused {entry.payload.get('status')!r}: {error}"
            if run.state == "committed":
                self.move(run, "report_refused", cloud_error=refused)
            else:
                self.update(run.run_id, cloud_error=refused)

    def update(self, run_id: str, **fields: Any) -> Run:
        """Change what a run knows (its worktree, the cloud's refusal) without moving it."""
        if "state" in fields:
            raise ValueError("a run's state changes only through Runs.move")
        run = self.get(run_id).model_copy(update=fields)
        self.store.save(run)
        return run

    @staticmethod
    def _record_worktree_state(run: Run, *, changed: bool, cloud: bool) -> None:
        """The worktree's own record (in its git admin dir: no git process needed), which
        pruning and the pool go by; a worktree without Locus metadata is left alone."""
        if not run.worktree:
            return
        try:
            admin = runmeta.admin_dir(Path(run.worktree))
        except (OSError, ValueError):
            return  # gone, or not a linked worktree
        meta = runmeta.read(admin)
        wanted = worktree_state(run.state, changed=changed, cloud=cloud)
        if meta is not None and meta.state != wanted:
            runmeta.write(admin, meta.with_state(wanted))

    # --- lifecycle ------------------------------------------------------------------------

    def recover(self) -> list[Run]:
        """Runs a previous daemon left in the agent's hands: each is found its worktree (by
        its metadata or folder, if the run had not named it yet), then ended as its
        transcript's footer says when the agent had finished, else ``failed: interrupted`` —
        reported either way, its work kept under its ref."""
        recovered = []
        for run in self.store.in_states(LIVE):
            if not run.worktree:
                run = self._find_worktree(run)
            report = self._finished_report(run)
            if report is not None:
                ended = self._end(run, report)
            elif self._cancel_asked(run.run_id) is not None:  # the user's cancel, carried out
                ended = self.move(
                    run,
                    "cancelled",
                    outcome="cancelled",
                    reason=CANCELLED_INTERRUPTED,
                    ended_at=now(),
                )
            else:
                ended = self.move(
                    run, "failed", outcome="failed", reason=INTERRUPTED, ended_at=now()
                )
            self._keep_work(ended)
            recovered.append(ended)
        return recovered

    def _find_worktree(self, run: Run) -> Run:
        """A worktree made for the run before it could be recorded, named in the run."""
        return self._named(run, self._unnamed_worktree(run))

    def _unnamed_worktree(self, run: Run) -> Worktree | None:
        """The worktree its metadata or its folder says was made for the run (git only: may
        run in a thread)."""
        repo = Path(run.repo)
        try:
            return Worktrees(repo, self.config.worktree_dir / repo_key(repo)).of_run(run.run_id)
        except (OSError, WorktreeError) as exc:
            log.warning("run %s: cannot look for its worktree: %s", run.run_id, exc)
            return None

    def _named(self, run: Run, found: Worktree | None) -> Run:
        if found is None:
            return run
        return self.update(
            run.run_id,
            worktree=str(found.path),
            branch=found.branch or None,
            base_commit=found.base_commit,
        )

    def _keep_work(self, run: Run) -> None:
        """A run that ended outside the agent's own end (a crash, a dead agent process) with
        its worktree waiting for review: its work goes under its ref, as a normal end does."""
        if not run.worktree:
            return
        try:
            meta = runmeta.read(runmeta.admin_dir(Path(run.worktree)))
            if meta is not None and meta.state == "review":
                save_work(Path(run.worktree), run.run_id)
        except (OSError, ValueError, WorktreeError) as exc:
            log.warning("run %s: its work stays in %s only: %s", run.run_id, run.worktree, exc)

    def _finished_report(self, run: Run) -> RunReport | None:
        """The run's report from its transcript, if the agent got as far as its footer."""
        path = self.config.state_dir / "runs" / run.run_id / "transcript.jsonl"
        try:
            records = transcript.read(path)
        except (OSError, transcript.TranscriptError):
            return None
        header, footer = records[0], records[-1]
        if not isinstance(header, transcript.Header) or not isinstance(footer, transcript.Footer):
            return None
        if footer.outcome == "cancelled":
            # What an agent process writes when it finds its daemon gone: not the agent's end.
            return None
        ending = {name: getattr(footer, name) for name in transcript.Ending.model_fields}
        return RunReport(
            **ending,
            task_id=run.run_id,
            verify_command=None,
            verify_reason="",
            worktree=header.worktree,
            branch=header.branch,
            base_commit=header.base_commit,
            transcript=str(path),
            warnings=[],
        )

    def start(
        self,
        *,
        repo: Path,
        task: str,
        replay: Path | None = None,
        title: str | None = None,
        task_id: int | None = None,
        attempt: Attempt | None = None,
        on_end: OnEnd | None = None,
        continue_in: Worktree | None = None,
        mode: Mode | None = None,
        model_env: ModelEnv | None = None,
        agent: str | None = None,
        planning: bool = False,
    ) -> Run:
        """Record a new run (``starting``; with an attempt, its ``running`` report in the same
        transaction) and set the agent going; the run goes on after this returns. It runs with
        the settings as they are now, and with ``model_env`` (a client's model variables,
        kept in memory only) over the daemon's own."""
        config = self.settings.refresh()
        run_id = f"{task_id}-{local_task_id()}" if task_id is not None else local_task_id()
        run = Run(
            run_id=run_id,
            task_id=task_id,
            title=title or task.splitlines()[0][:200],
            repo=str(repo),
            state="starting",
            started_at=now(),
            mode=mode,
            agent=agent,
            kind="plan" if planning else "work",
        )
        with self.store.db.transaction():
            self.store.save(run, attempt_id=attempt.id if attempt is not None else None)
            if attempt is not None:
                attempt.entered(run)
        cancel = asyncio.Event()
        if mode is not None or agent is not None:  # the user's --mode / --agent for these runs
            chosen = {"mode": mode, "agent": agent}
            update = {k: v for k, v in chosen.items() if v is not None}
            config = config.model_copy(update={"agent": config.agent.model_copy(update=update)})
        work = self._run(run, task, replay, cancel, on_end, continue_in, config, model_env)
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
        continue_in: Worktree | None,
        config: Config,
        model_env: ModelEnv | None,
    ) -> Run:
        report: RunReport | None = None
        error = ""
        ending: Ending | None = None
        try:
            report = await run_in_child(
                repo=Path(run.repo),
                task=task,
                config=config,
                replay=replay,
                task_id=run.run_id,
                cancel=cancel,
                approver=lambda command, reason: self._approve(run.run_id, command, reason),
                on_event=lambda event: self._agent_event(run.run_id, event),
                on_phase=lambda text: self._emit(run.run_id, "note", text, {"kind": "phase"}),
                on_worktree=lambda worktree: self._worktree(run.run_id, worktree),
                continue_in=continue_in,
                model_env=model_env,
                planning=run.kind == "plan",
            )
        except AgentProcessError as exc:
            log.error("run %s failed: %s", run.run_id, exc)
            error = str(exc)
            # Said only by the agent process's own check of this machine's setup, before the
            # agent did anything (locusd/agent/child.py): a cloud task goes back to the queue.
            local = exc.local and self._setup_fails(run.run_id, config, replay, model_env)
            ending = "local" if local else None
        except Exception as exc:  # a worktree error: the run fails
            log.exception("run %s failed", run.run_id)
            error = str(exc)
        crashpoint("run.finished")
        if report is not None:
            ended = self._end(self.get(run.run_id), report)
        else:
            run = self.get(run.run_id)
            if not run.worktree:  # the agent process died before it could name its worktree
                run = self._named(run, await asyncio.to_thread(self._unnamed_worktree, run))
            ended = self.move(
                run, "failed", outcome="failed", reason=error, ended_at=now(), ending=ending
            )
            await asyncio.to_thread(self._keep_work, ended)
        crashpoint("run.ended")
        self._emit(run.run_id, "completed", ended.state, ended.wire())
        self.active.pop(run.run_id, None)
        self.listeners.pop(run.run_id, None)
        if on_end is not None:
            await on_end(ended)
        return ended

    def _setup_fails(
        self,
        run_id: str,
        config: Config,
        replay: Path | None,
        model_env: ModelEnv | None,
    ) -> bool:
        """Whether a run the agent process says this machine's setup stopped really was: it
        never got to the agent's first turn, and the daemon's own check of the same setup
        fails too — so no line its process wrote can pass a failure off as this machine's."""
        if self.get(run_id).state != "starting":
            return False
        try:
            env = with_model_env(os.environ, model_env or {})
            check_agent(config, replay=replay, env=env)
        except ConfigurationError:
            return True
        return False

    def _end(self, run: Run, report: RunReport) -> Run:
        """The agent's end, recorded with everything the cloud must hear of it."""
        if report.diff:
            self._emit(run.run_id, "diff", report.diff)
        if report.network:
            uses = [use.model_dump(mode="json") for use in report.network]
            self._emit(run.run_id, "network", "", {"uses": uses})
        return self.move(
            run,
            after_outcome(report.outcome, bool(report.diff)),
            report=report,
            outcome=report.outcome,
            reason=report.reason,
            question=report.question,
            summary=report.summary,
            worktree=report.worktree,
            branch=report.branch or None,  # none until a commit is accepted
            base_commit=report.base_commit,
            transcript=report.transcript,
            cost_usd=report.cost_usd,
            ended_at=now(),
            proposals=[
                PlanProposal(number=number, **proposal.model_dump())
                for number, proposal in enumerate(report.proposals, 1)
            ],
        )

    def _worktree(self, run_id: str, worktree: Worktree) -> None:
        """The run's worktree exists: name it in the run before the agent's first edit."""
        crashpoint("run.worktree")
        self.update(
            run_id,
            worktree=str(worktree.path),
            branch=worktree.branch or None,
            base_commit=worktree.base_commit,
        )

    async def wait(self, run_id: str) -> Run:
        active = self.active.get(run_id)
        if active is not None:
            return await asyncio.shield(active.task)
        return self.get(run_id)

    async def cancel(self, run_id: str, *, requeue: bool = False) -> Run:
        """Stop the run. A cloud task is cancelled with it — or, with ``requeue``, given back to
        the queue. The choice is recorded before the run is stopped, so a daemon killed in
        between still carries it out (:meth:`recover`)."""
        run = self.get(run_id)
        active = self.active.get(run_id)
        if active is None:
            raise LocusError(Code.INVALID_RUN_STATE, f"run {run_id} is {run.state}, not running")
        choice: Ending = "requeue" if requeue else "cancel"
        self.store.set_step(run_id, {CANCEL_STEP: choice})
        crashpoint("cancel.requested")
        active.cancel.set()
        return await self.wait(run_id)

    def _cancel_asked(self, run_id: str) -> Ending | None:
        """The user's cancel recorded for the run (``cancel`` or ``requeue``), if any."""
        asked = (self.store.step(run_id) or {}).get(CANCEL_STEP)
        return "requeue" if asked == "requeue" else "cancel" if asked == "cancel" else None

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
            self.move(self.get(run_id), "running")
            crashpoint("run.working")
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
        self.on_needs_you(attention.approval(self.get(run_id), request.approval_id, command))
        asks = {
            asyncio.ensure_future(peer.request("locus/approval", request, ApprovalAnswer)): peer
            for peer in peers
        }
        # A cancel answers it (no): a pending approval never holds up a cancel.
        cancelled = asyncio.ensure_future(
            active.cancel.wait() if active is not None else asyncio.Event().wait()
        )
        decision: ApprovalDecision = "reject"
        answered_by: Peer | None = None
        pending = set(asks)
        try:
            while pending and answered_by is None and not cancelled.done():
                waiting: set[asyncio.Future[Any]] = {*pending, cancelled}
                done = (await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED))[0]
                for ask in [a for a in pending if a in done]:
                    pending.discard(ask)
                    if ask.exception() is None and not cancelled.done():
                        decision, answered_by = ask.result().decision, asks[ask]
                        break
        finally:
            cancelled.cancel()
            for ask in pending:
                ask.cancel()  # the peer is sent $/cancelRequest: its prompt is withdrawn
            resolved = ApprovalResolved(approval_id=request.approval_id, decision=decision)
            for peer in peers:
                if peer is not answered_by:
                    peer.notify("locus/approval/resolved", resolved)
        withdrawn = answered_by is None and active is not None and active.cancel.is_set()
        said = "not run (the run was cancelled)" if withdrawn else decision.replace("_", " ")
        self._emit(run_id, "note", f"{said}: {command}")
        if decision == "allow_always" and active is not None:
            active.allowed.add(command)
        return decision != "reject"
