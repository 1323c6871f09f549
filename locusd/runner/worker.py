"""The daemon as a cloud worker: claim tasks for the repositories it serves, run each as an agent
run, keep its lease alive from the daemon (not the agent's process), obey cancellation, and
report through the durable outbox (status, log chunks, the diff) so a cloud outage loses and
duplicates nothing.

Reported states: ``running`` when the run starts; at the end ``awaiting_review`` (changes to
review locally), ``needs_input`` (with the question) or ``failed`` (with the reason); a run
cancelled from the cloud needs no report, one cancelled here is given back (``queued``). The
diff is uploaded as an artifact; everything uploaded is scrubbed (locusd/privacy.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cloud_api.schemas.workers import ClaimOut, Fence, HeartbeatOut, SignalsOut
from locusd import __version__
from locusd.agent.run import RunReport
from locusd.cloud.writes import (
    LogStream,
    artifact_body,
    fence_of,
    follow_up_body,
    log_body,
    status_body,
    usage_of,
)
from locusd.git.cli import Git
from locusd.git.worktrees import Worktree
from locusd.privacy import Scrubber
from locusd.protocol.messages import Run, RunEvent, WorkerStatus
from locusd.runner.runs import Runs

log = logging.getLogger(__name__)

CLAIM_WAIT = 25.0  # seconds a claim long-polls (the cloud caps it at 30)


class WorkerApi(Protocol):
    """What the worker needs of the cloud (implemented by the cloud client)."""

    async def register(
        self, *, host: str, capacity: int, repositories: list[str], version: str
    ) -> Any: ...

    async def claim(
        self, wait_seconds: float = 0, *, task_id: int | None = None
    ) -> ClaimOut | None: ...

    async def heartbeat(self, task_id: int, fence: Fence) -> HeartbeatOut: ...

    async def signals(self, wait: float = 0, after: int = 0) -> SignalsOut: ...


class Outbox(Protocol):
    def enqueue(self, kind: str, task_id: int | None, payload: Mapping[str, Any]) -> int: ...


@dataclass
class _Held:
    """A task this daemon holds: its fence, and the log chunks numbered for it."""

    claim: ClaimOut
    scrub: Scrubber
    log_seq: int = 0
    heartbeat: asyncio.Task[None] | None = None

    @property
    def fence(self) -> Fence:
        return fence_of(self.claim)


def _log_line(event: RunEvent) -> str | None:
    if event.kind == "tool":
        target = next(
            (str(event.data.get("input", {}).get(k, "")) for k in ("path", "command", "pattern")
             if k in event.data.get("input", {})),
            "",
        )  # fmt: skip
        return f"{event.text} {target.splitlines()[0][:200] if target else ''}".rstrip()
    if event.kind == "verify":
        verdict = "passed" if event.data.get("passed") else "failed"
        return f"verify `{event.text}` {verdict} (exit {event.data.get('exit_code')})"
    if event.kind in ("state", "note"):
        return f"{event.kind}: {event.text}"
    return None


def _at_head(run: Run) -> Worktree | None:
    """The run's worktree at its branch's head (what was committed and reported), if the
    worktree still exists."""
    if not run.worktree or not run.branch or not Path(run.worktree).is_dir():
        return None
    head = Git("git").run(Path(run.worktree), "rev-parse", "HEAD", timeout=30).stdout.strip()
    return Worktree(Path(run.worktree), run.branch, head) if head else None


class Worker:
    def __init__(
        self,
        runs: Runs,
        api: WorkerApi,
        outbox: Outbox,
        *,
        served: dict[str, Path],
        remotes: list[str],
        scrubber: Callable[[Path], Scrubber],
        project_id: int | None = None,
        auto_commit: Callable[[Run], Awaitable[None]] | None = None,
    ) -> None:
        self.project_id = project_id
        #: Called after a run awaiting review was reported, for repositories whose owner
        #: chose unattended commits (it commits everything and reports verification).
        self.auto_commit = auto_commit
        self.runs = runs
        self.api = api
        self.outbox = outbox
        self.served = served  # remote fingerprint → checkout
        self.remotes = remotes  # the same remotes as URLs, for registering
        self.scrubber = scrubber  # per checkout: its .locusignore and patterns
        self.held: dict[str, _Held] = {}  # run id → held task
        self.cancelled_by_cloud: set[str] = set()
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
        listening = asyncio.create_task(self._signals(stop))
        try:
            while not stop.is_set():
                await slots.acquire()
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
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def register(self, capacity: int) -> None:
        await self.api.register(
            host=socket.gethostname(),
            capacity=capacity,
            repositories=self.remotes,
            version=__version__,
        )

    async def _claim(self, stop: asyncio.Event, task_id: int | None) -> ClaimOut | None:
        claiming = asyncio.ensure_future(self.api.claim(CLAIM_WAIT, task_id=task_id))
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
            log.warning("claim failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)
            return None

    def _checkout(self, claim: ClaimOut) -> Path | None:
        if claim.task.repository is not None:
            return self.served.get(claim.task.repository)
        return next(iter(self.served.values())) if len(self.served) == 1 else None

    async def _work(self, claim: ClaimOut, stop: asyncio.Event) -> Run:
        run = await self.begin(claim)
        return await self.runs.wait(run.run_id)

    async def begin(
        self, claim: ClaimOut, *, prompt: str | None = None, continue_in: Worktree | None = None
    ) -> Run:
        """Start the run of a claimed task (or, with ``continue_in``, its next round after a
        review); its lease is kept until the run ends."""
        task = claim.task
        checkout = self._checkout(claim)
        if checkout is None:
            reason = f"this worker serves {sorted(self.served)}, not {task.repository!r}"
            failed = status_body(fence_of(claim), "failed", reason=reason)
            self.outbox.enqueue("status", task.id, failed)
            raise LookupError(reason)
        held = _Held(claim, self.scrubber(checkout))
        self.outbox.enqueue("status", task.id, status_body(held.fence, "running"))
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
        run = await self.runs.start(
            repo=checkout,
            task=prompt,
            title=task.title,
            task_id=task.id,
            cloud={
                "task_id": task.id,
                "project_id": task.project_id,
                "attempt": claim.attempt,
                "claim_token": claim.claim_token,
                "claim": claim.model_dump(mode="json"),  # for a later round after review
            },
            on_end=self._report,
            continue_in=continue_in,
        )
        self.held[run.run_id] = held
        self.runs.listen(run.run_id, self._log)
        held.heartbeat = asyncio.create_task(self._heartbeat(run.run_id, claim))
        return run

    def _previous_run(self, task_id: int) -> Run | None:
        """This daemon's last run of the task."""
        return next((r for r in reversed(self.runs.store.all()) if r.task_id == task_id), None)

    async def _heartbeat(self, run_id: str, claim: ClaimOut) -> None:
        """Keep the lease from the daemon; a ``cancel`` in the reply stops the run."""
        every = max(1.0, claim.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            try:
                beat = await self.api.heartbeat(claim.task.id, fence_of(claim))
            except Exception as exc:  # a missed beat is fine; the lease has slack
                log.warning("heartbeat for task %s failed: %s", claim.task.id, exc)
                continue
            if beat.cancel:
                await self.cancel_run(run_id, "cancelled in the cloud")
                return

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
                for run_id, held in list(self.held.items()):
                    if held.claim.task.id == signal.task_id:
                        await self.cancel_run(run_id, "cancelled in the cloud")

    async def cancel_run(self, run_id: str, why: str) -> None:
        self.cancelled_by_cloud.add(run_id)
        with contextlib.suppress(Exception):
            await self.runs.cancel(run_id)
        log.info("run %s: %s", run_id, why)

    # --- reporting (all through the outbox) ----------------------------------------------------

    def _log(self, event: RunEvent) -> None:
        """The run's progress as log lines for the cloud — what happened, never the code it
        happened to: tool names with their one-line target (a path, a command), verification
        verdicts, states and notes. The agent's prose and command output can quote any file,
        so they stay on this machine (in the transcript and ``locus logs``)."""
        held = self.held.get(event.run_id)
        if held is None:
            return
        line = _log_line(event)
        if line is not None:
            self._chunk(held, line, "system")

    def _chunk(self, held: _Held, text: str, stream: LogStream) -> None:
        held.log_seq += 1
        body = log_body(held.fence, held.log_seq, held.scrub.text(text), stream)
        self.outbox.enqueue("log", held.claim.task.id, body)

    async def _report(self, run: Run, report: RunReport | None) -> None:
        held = self.held.pop(run.run_id, None)
        if held is None:
            return
        if held.heartbeat is not None:
            held.heartbeat.cancel()  # the run is over: the lease is no longer ours to keep
        task_id, fence = held.claim.task.id, held.fence
        if report is not None:
            for follow_up in report.follow_ups:
                body = follow_up_body(
                    held.scrub.text(follow_up.title),
                    held.scrub.text(follow_up.description),
                    task_id,
                )
                self.outbox.enqueue("follow_up", task_id, body)
            if report.diff:
                patch = artifact_body(fence, "patch", held.scrub.patch(report.diff), "text/x-diff")
                self.outbox.enqueue("artifact", task_id, patch)
            if report.verification is not None:
                evidence = held.scrub.text(report.verification.model_dump_json())
                body = artifact_body(fence, "evidence", evidence, "application/json")
                self.outbox.enqueue("artifact", task_id, body)
        usage = None if report is None else usage_of(report)
        if run.state == "awaiting_review":
            summary = held.scrub.text(run.summary or "")
            body = status_body(fence, "awaiting_review", summary=summary, usage=usage)
        elif run.state == "needs_input":
            question = held.scrub.text(run.question or "")
            body = status_body(fence, "needs_input", question=question, usage=usage)
        elif run.state == "cancelled":
            if run.run_id in self.cancelled_by_cloud:
                return  # the cloud knows: it asked
            # Cancelled here (Ctrl-C, locus cancel, the daemon stopping): give the task back.
            reason = "cancelled on this machine; given back"
            body = status_body(fence, "queued", reason=reason, usage=usage)
        elif run.state == "completed":
            reason = "the agent finished without changes"
            body = status_body(fence, "failed", reason=reason, usage=usage)
        else:
            reason = held.scrub.text(run.reason or run.state)
            body = status_body(fence, "failed", reason=reason, usage=usage)
        self.outbox.enqueue("status", task_id, body)
        if run.state == "awaiting_review" and self.auto_commit is not None:
            await self.auto_commit(run)
