"""The daemon as a cloud worker: claim tasks for the repositories it serves and start each as a
run with its :class:`~locusd.runner.attempt.Attempt` (the one claim → begin path, also taken by
``locus/tasks/pull`` and by a send-back's next round), keep the lease alive from the daemon (not
the agent's process), and obey the cloud's cancellations.

What the cloud hears about a run — ``running``, its log lines, its end, a commit's
``verification`` — is not decided here: the run's attempt reports it, through the durable
outbox, as the lifecycle table says (``locusd/runner/lifecycle.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cloud_api.schemas.plans import PlanClaimOut
from cloud_api.schemas.workers import ClaimOut, Fence, HeartbeatOut, SignalsOut
from locusd import __version__
from locusd.agent.policy import Mode
from locusd.crashpoints import crashpoint
from locusd.git.repo import Repository, RepositoryError
from locusd.git.worktrees import Worktree
from locusd.graph.upload import GraphPublisher
from locusd.modelenv import ModelEnv
from locusd.protocol.messages import Run, RunEvent, WorkerStatus
from locusd.runner.attempt import Attempt, Attempts
from locusd.runner.plan_requests import PlanRequests
from locusd.runner.runs import Runs

log = logging.getLogger(__name__)
T = TypeVar("T")

CLAIM_WAIT = 25.0  # seconds a claim long-polls (the cloud caps it at 30)
UNREADABLE_CONFIG = "its Locus config does not read (said by locus status there)"


class WorkerApi(Protocol):
    """What the worker needs of the cloud (implemented by the cloud client)."""

    async def register(
        self, *, host: str, capacity: int, repositories: list[str], version: str
    ) -> Any: ...

    async def claim(
        self,
        wait_seconds: float = 0,
        *,
        task_id: int | None = None,
        exclude: list[int] | None = None,
    ) -> ClaimOut | None: ...

    async def heartbeat(self, task_id: int, fence: Fence) -> HeartbeatOut: ...

    async def claim_plan(self, wait_seconds: float = 0) -> PlanClaimOut | None: ...

    async def signals(self, wait: float = 0, after: int = 0) -> SignalsOut: ...


def _log_line(event: RunEvent) -> str | None:
    """What the cloud's log says of a run's event: what happened, in Locus's words — never text
    the agent wrote (a command line, a path or a pattern can carry code as well as a file)."""
    if event.kind == "tool":
        return f"tool {event.text}"  # the tool's name only
    if event.kind == "verify":
        verdict = "passed" if event.data.get("passed") else "failed"
        if event.data.get("check_changes"):
            verdict = "unverified (the diff changes the check's definitions)"
        return f"verify `{event.text}` {verdict} (exit {event.data.get('exit_code')})"
    if event.kind == "state" and event.text == "cancelled":
        return None  # the task's own status says it (and a cancelled task takes no more logs)
    if event.kind == "state" or (event.kind == "note" and event.data.get("kind") == "phase"):
        return f"{event.kind}: {event.text}"
    return None


def _at_head(run: Run) -> Worktree | None:
    """The run's worktree at its head (what was committed and reported, on the run's branch
    once one was committed), if the worktree still exists."""
    if not run.worktree or not Path(run.worktree).is_dir():
        return None
    try:
        head = Repository(Path(run.worktree)).resolve("HEAD")
    except RepositoryError:
        return None
    return Worktree(Path(run.worktree), run.branch or "", head) if head else None


class Worker:
    def __init__(
        self,
        runs: Runs,
        api: WorkerApi,
        *,
        served: dict[str, Path],
        remotes: list[str],
        project_id: int | None = None,
        auto_commit: Callable[[Run], Awaitable[None]] | None = None,
        model_env: ModelEnv | None = None,
        unready: Callable[[], str | None] = lambda: None,
        graph: GraphPublisher | None = None,
        plans: PlanRequests | None = None,
    ) -> None:
        self.project_id = project_id
        #: Keeps the project's graph current while this worker runs (None: not uploaded).
        self.graph = graph
        #: Where the planning requests this worker claims are run (None: it claims none).
        self.plans = plans
        #: The model variables of the client that started this worker, for its runs.
        self.model_env: ModelEnv = dict(model_env or {})
        #: Why no task should be claimed now (the user's config does not read), if so.
        self.unready = unready
        #: Called after a run ends awaiting review, for repositories whose owner chose
        #: unattended commits (it commits everything, and the commit is reported).
        self.auto_commit = auto_commit
        self.runs = runs
        self.attempts: Attempts = runs.attempts
        self.api = api
        self.served = served  # remote fingerprint → checkout
        self.remotes = remotes  # the same remotes' fingerprints, for registering
        self.held: dict[str, Attempt] = {}  # run id → its attempt, while the run is live
        #: Tasks this worker's user gave back (``locus cancel --requeue``): its loop passes
        #: over them, so they go to another worker (until this daemon restarts).
        self.given_back: set[int] = set()
        #: The permission mode ``locus run --mode`` chose for its runs (None: the config's).
        self.mode: Mode | None = None
        #: The agent ``locus run --agent`` chose for its runs (None: the config's).
        self.agent: str | None = None
        self.status = WorkerStatus(running=False)

    async def run(
        self, *, agents: int, once: bool, stop: asyncio.Event, task_id: int | None = None
    ) -> None:
        """Claim and run tasks until ``stop`` is set (or after one task with ``once``; only
        ``task_id`` when given)."""
        self.status = WorkerStatus(running=True, agents=agents, once=once)
        await self.register(agents)
        slots = asyncio.Semaphore(agents)
        running: set[asyncio.Task[Run]] = set()
        if self.graph is not None:
            # Enqueued before the first claim: the cloud can then weigh this worker's first
            # task against the graph (conflict-aware dispatch), and it leaves before any report.
            await self.graph.look()
        listening = asyncio.create_task(self._signals(stop))
        publishing = asyncio.create_task(self.graph.run(stop)) if self.graph else None
        planning = asyncio.create_task(self._plan_requests(stop)) if not once else None
        try:
            while not stop.is_set():
                await slots.acquire()
                if stop.is_set():  # set while waiting for the slot (a run's end may set it):
                    slots.release()  # no claim may leave now, or the cloud would hand a task
                    break  # to a worker that is stopping
                claim = await self._claim(stop, task_id)
                if claim is None:
                    slots.release()
                    continue
                task = asyncio.create_task(self._work(claim, stop))
                running.add(task)

                def finished(done: asyncio.Task[Run]) -> None:
                    running.discard(done)
                    slots.release()

                task.add_done_callback(finished)
                if once:
                    await task
                    break
        finally:
            self.status = self.status.model_copy(update={"running": False})
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            for helper in (listening, publishing, planning):
                if helper is not None:
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper

    async def register(self, capacity: int) -> None:
        await self.api.register(
            host=socket.gethostname(),
            capacity=capacity,
            repositories=self.remotes,
            version=__version__,
        )

    async def _claim(self, stop: asyncio.Event, task_id: int | None) -> ClaimOut | None:
        if not await self._ready(stop):
            return None
        exclude = sorted(self.given_back)[-100:]  # the cloud takes up to 100
        return await self._polled(
            "claim", self.api.claim(CLAIM_WAIT, task_id=task_id, exclude=exclude), stop
        )

    async def _ready(self, stop: asyncio.Event) -> bool:
        """Whether to claim now; if not, say why in the status and wait a little."""
        problem = self.unready()
        if problem is None:
            return True
        self.status = self.status.model_copy(update={"last_error": f"not claiming: {problem}"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)
        return False

    async def _polled(self, what: str, call: Awaitable[T], stop: asyncio.Event) -> T | None:
        """A long-poll's answer, or None once ``stop`` is set first or the cloud failed (then
        said in the status, after a pause before the next try)."""
        claiming = asyncio.ensure_future(call)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({claiming, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not claiming.done():
            claiming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await claiming
            return None
        try:
            return claiming.result()
        except Exception as exc:  # the cloud is down: say so, back off, try again
            self.status = self.status.model_copy(update={"last_error": str(exc)})
            log.warning("%s failed: %s", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)
            return None

    async def _plan_requests(self, stop: asyncio.Event) -> None:
        """The project's planning requests, one at a time, each run as ``locus plan`` runs
        (locusd/runner/plan_requests.py). Only a worker serving one checkout takes them: a
        request names no repository, so with several there is no telling which to read."""
        if self.plans is None or self.project_id is None or len(self.served) != 1:
            return
        (checkout,) = self.served.values()
        while not stop.is_set():
            if not await self._ready(stop):
                continue
            claim = await self._polled("plan claim", self.api.claim_plan(CLAIM_WAIT), stop)
            if claim is None:
                continue
            try:
                run = self.plans.start(claim, checkout, self.project_id, self.model_env)
            except Exception as exc:  # not started: its lease runs out, another worker takes it
                log.exception("planning request %s not started", claim.plan.id)
                self.status = self.status.model_copy(update={"last_error": str(exc)})
                continue
            await self.runs.wait(run.run_id)

    def _checkout(self, claim: ClaimOut) -> Path | None:
        if claim.task.repository is not None:
            return self.served.get(claim.task.repository)
        return next(iter(self.served.values())) if len(self.served) == 1 else None

    async def _work(self, claim: ClaimOut, stop: asyncio.Event) -> Run:
        run = await self.begin(claim)
        attempt = self.held.get(run.run_id)
        ended = await self.runs.wait(run.run_id)
        if attempt is not None and attempt.given_back_by_user:
            self.given_back.add(attempt.task_id)
        if attempt is not None and attempt.local_problem is not None:
            # Given back for a problem of this machine: every task would meet it, so stop
            # claiming (and say why) rather than take the queue's tasks one by one.
            problem = f"stopped: this machine cannot run the agent: {attempt.local_problem}"
            self.status = self.status.model_copy(update={"last_error": problem})
            log.warning("%s", problem)
            stop.set()
        return ended

    async def begin(
        self,
        claim: ClaimOut,
        *,
        attempt: Attempt | None = None,
        prompt: str | None = None,
        continue_in: Worktree | None = None,
    ) -> Run:
        """Start the run of a claimed task — its attempt recorded with the run, in one
        transaction — or, given the ``attempt`` and ``continue_in``, its next round after a
        review; its lease is kept until the run ends."""
        crashpoint("run.claimed")
        task = claim.task
        if attempt is None and (problem := self.unready()) is not None:
            # Claimed in a long-poll that began before the config broke: no run on settings
            # the user has changed away from. The cloud hears no local detail (paths).
            with self.runs.store.db.transaction():
                self.attempts.claimed(claim, Path(".")).given_back(UNREADABLE_CONFIG)
            raise LookupError(problem)
        checkout = self._checkout(claim)
        if checkout is None:
            reason = f"this worker serves {sorted(self.served)}, not {task.repository!r}"
            with self.runs.store.db.transaction():
                self.attempts.claimed(claim, Path(".")).declined(reason)
            raise LookupError(reason)
        if prompt is None:
            prompt = task.title + (f"\n\n{task.description}" if task.description else "")
            if task.feedback:
                # Requeued with feedback (changes requested, or a question answered): the next
                # attempt continues from the previous one's branch, when its worktree is here.
                previous = self._previous_run(task.id)
                if previous is not None:
                    continue_in = await asyncio.to_thread(_at_head, previous)
                where = "its work is in this worktree" if continue_in else "it is not here"
                prompt += (
                    f"\n\nFeedback on a previous attempt at this task ({where}):\n{task.feedback}"
                )
        return self.launch(claim, checkout, prompt, attempt=attempt, continue_in=continue_in)

    def launch(
        self,
        claim: ClaimOut,
        checkout: Path,
        prompt: str,
        *,
        attempt: Attempt | None = None,
        continue_in: Worktree | None = None,
    ) -> Run:
        """Record the run with its attempt (a new one for a fresh claim) in one transaction,
        start it, and keep the lease alive while it runs. Synchronous, so that a caller can
        make it part of its own transaction (a send-back revises the old run with it)."""
        with self.runs.store.db.transaction():
            if attempt is None:
                attempt = self.attempts.claimed(claim, checkout)
            run = self.runs.start(
                repo=checkout,
                task=prompt,
                title=claim.task.title,
                task_id=claim.task.id,
                attempt=attempt,
                on_end=self._ended,
                continue_in=continue_in,
                mode=self.mode,
                agent=self.agent,
                model_env=self.model_env,
            )
        if not self.runs.store.db.in_transaction:  # else the caller's point follows its commit
            crashpoint("run.recorded")
        self.held[run.run_id] = attempt
        self.runs.listen(run.run_id, self._log)
        held = attempt
        attempt.keep_alive(
            self.api, lambda: self.cancel_run(run.run_id, held, "cancelled in the cloud")
        )
        return run

    def _previous_run(self, task_id: int) -> Run | None:
        """This daemon's last run of the task."""
        return next((r for r in reversed(self.runs.store.all()) if r.task_id == task_id), None)

    async def _signals(self, stop: asyncio.Event) -> None:
        """Cancellations as they happen (a long-poll), so a cancel in the cloud reaches the
        agent's command in about a second rather than at the next heartbeat."""
        cursor = 0
        while not stop.is_set():
            try:
                answer = await self.api.signals(wait=CLAIM_WAIT, after=cursor)
            except Exception as exc:  # the cloud is away: heartbeats still carry cancels
                log.warning("signals failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)
                continue
            cursor = answer.cursor
            for signal in answer.cancellations:
                for run_id, attempt in list(self.held.items()):
                    if attempt.task_id == signal.task_id:
                        await self.cancel_run(run_id, attempt, "cancelled in the cloud")

    async def cancel_run(self, run_id: str, attempt: Attempt, why: str) -> None:
        """The cloud cancelled the task: stop the run (the cloud needs no word about it)."""
        attempt.cancelled_by_cloud = True
        with contextlib.suppress(Exception):
            await self.runs.cancel(run_id)
        log.info("run %s: %s", run_id, why)

    # --- the run's progress and end ---------------------------------------------------------

    def _log(self, event: RunEvent) -> None:
        """The run's progress as log lines for the cloud — what happened, never the code it
        happened to: tool names with their one-line target (a path, a command), verification
        verdicts, states and notes. The agent's prose and command output can quote any file,
        so they stay on this machine (in the transcript and ``locus logs``)."""
        attempt = self.held.get(event.run_id)
        line = _log_line(event)
        if attempt is not None and line is not None:
            attempt.log(event.run_id, line)

    async def _ended(self, run: Run) -> None:
        """The run is over (its end was reported with it): let the lease go, and commit
        unattended where the user chose that."""
        attempt = self.held.pop(run.run_id, None)
        if attempt is not None:
            attempt.release()
        if run.state == "awaiting_review" and self.auto_commit is not None:
            await self.auto_commit(run)
