"""One attempt at a cloud task — one claim, from the claim to the cloud's last word about it —
and the one place that decides what the cloud hears about it.

An :class:`Attempt` holds the claim and its fence, the log numbering (kept in the database, so
it never repeats across a crash) and the heartbeat. Everything an attempt uploads goes through
one of its methods, each named after what the cloud is told (started, log, ended, verified,
resubmitted); they decide *what* is said — until the user accepts, the size of the proposed
change, not the change — and hand it to :class:`~locusd.cloud.uploads.Uploads`, which scrubs
and audits every upload whoever makes it.

Which of those a state change calls is not decided here but read from the lifecycle table
(:func:`locusd.runner.lifecycle.cloud_status`) by :meth:`Attempt.entered`, which the runs' one
write path calls inside the transaction that saves the new state: the state and its report
commit together or not at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from cloud_api.schemas.workers import ClaimOut, Fence, HeartbeatOut, ReviewedFile
from locusd.agent.report import RunReport
from locusd.cloud.uploads import JSON, PATCH, Uploads
from locusd.cloud.writes import (
    WriteKind,
    artifact_body,
    fence_of,
    follow_up_body,
    log_body,
    review_body,
    status_body,
    usage_of,
)
from locusd.git.diffs import diffstat
from locusd.protocol.messages import Run, RunState
from locusd.review.recap import FileTally
from locusd.runner.lifecycle import CloudStatus, Ending, cloud_status
from locusd.runner.store import RunStore

log = logging.getLogger(__name__)

GIVEN_BACK = "cancelled on this machine; given back"
CANCELLED_HERE = "cancelled by its user on the worker's machine (locus cancel)"
#: Before the reason a problem of the worker's machine gave: the team's task did not fail.
LOCAL_PROBLEM = "given back: the worker's machine cannot run the agent"
NO_CHANGES = "the agent finished without changes"
DISCARDED = "the reviewer discarded the proposed change"


class AttemptRecord(BaseModel):
    """What is kept of an attempt: the claim as the cloud gave it, and where it runs."""

    task_id: int
    project_id: int
    checkout: str
    claim: ClaimOut

    @property
    def fence(self) -> Fence:
        return fence_of(self.claim)


class Beats(Protocol):
    async def heartbeat(self, task_id: int, fence: Fence) -> HeartbeatOut: ...


class Attempt:
    def __init__(
        self,
        attempt_id: int,
        record: AttemptRecord,
        store: RunStore,
        uploads: Uploads,
        share_proposed: bool = False,
    ) -> None:
        self.id = attempt_id
        self.record = record
        self.store = store
        self.uploads = uploads
        #: The user chose to share this checkout's proposed diffs (daemon.share_proposed_diffs).
        self.share_proposed = share_proposed
        #: The cloud asked for the cancel: it needs no word about it.
        self.cancelled_by_cloud = False
        #: The run was given back for a problem of this machine (its reason): the worker stops
        #: claiming rather than take task after task it cannot run.
        self.local_problem: str | None = None
        #: The user gave the task back (``locus cancel --requeue``): the worker's loop passes
        #: over it rather than take it again at once.
        self.given_back_by_user = False
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def task_id(self) -> int:
        return self.record.task_id

    @property
    def fence(self) -> Fence:
        return self.record.fence

    def _send(self, kind: WriteKind, body: dict[str, Any], run_id: str | None) -> None:
        checkout = Path(self.record.checkout)
        self.uploads.enqueue(kind, self.task_id, body, checkout=checkout, run_id=run_id)

    # --- what the cloud hears ---------------------------------------------------------------

    def entered(
        self,
        run: Run,
        report: RunReport | None = None,
        patch: str | None = None,
        previous: RunState | None = None,
        ending: Ending | None = None,
    ) -> None:
        """``run`` has just entered its state (in the caller's transaction), for ``ending``: tell
        the cloud what the lifecycle table says for it. Committed again after a refusal, under
        a new claim, the attempt goes the whole way from ``running`` (:meth:`resubmitted`)."""
        if self.cancelled_by_cloud:
            ending = "cloud"
        status = cloud_status(run.state, previous=previous, ending=ending)
        if status == "queued" and ending == "local":
            # Its first line: the how-to that may follow is for the user at this machine.
            self.local_problem = (run.reason or run.state).splitlines()[0].rstrip(":")
        if status == "queued" and ending == "requeue":
            self.given_back_by_user = True
        if status is None:
            return
        if status == "running":
            self.started(run)
        elif status == "verification" and previous == "report_refused":
            self.resubmitted(run, patch or "")
        elif status == "verification":
            self.verified(run, patch or "")
        else:
            self.ended(run, status, report)

    def started(self, run: Run) -> None:
        self._send("status", status_body(self.fence, "running"), run.run_id)

    def log(self, run_id: str, line: str) -> None:
        """One line of what happened (never the code it happened to: see worker._log_line);
        its number and its entry commit together, so a crash leaves neither a gap nor a
        repeat."""
        with self.store.db.transaction():
            seq = self.store.next_log_seq(self.id)
            self._send("log", log_body(self.fence, seq, line, "system"), run_id)

    def ended(self, run: Run, status: CloudStatus, report: RunReport | None) -> None:
        """The agent's end: its follow-ups, the diff and the evidence, then the status."""
        if report is not None:
            for follow_up in report.follow_ups:
                body = follow_up_body(follow_up.title, follow_up.description, self.task_id)
                self._send("follow_up", body, run.run_id)
            if report.diff and self.share_proposed:
                self._patch(run, report.diff)
            elif report.diff:
                # Until the user accepts, the proposed code stays here: the cloud hears how big
                # the change is, and the check's verdict without its output (which quotes code).
                stat = diffstat(report.diff)
                held = json.dumps({"heldLocally": True, **asdict(stat)})
                self._send("artifact", artifact_body(self.fence, "summary", held, JSON), run.run_id)
            if report.verification is not None:
                verification = report.verification
                if report.diff and not self.share_proposed:
                    verification = verification.model_copy(update={"output_tail": ""})
                evidence = verification.model_dump_json()
                self._send(
                    "artifact", artifact_body(self.fence, "evidence", evidence, JSON), run.run_id
                )
        usage = None if report is None else usage_of(report)
        if status == "awaiting_review":
            body = status_body(self.fence, status, summary=run.summary or "", usage=usage)
        elif status == "needs_input":
            body = status_body(self.fence, status, question=run.question or "", usage=usage)
        elif status == "queued" and run.state == "failed":
            given_back = f"{LOCAL_PROBLEM}: {self.local_problem}"
            body = status_body(self.fence, status, reason=given_back, usage=usage)
        elif status == "queued":
            body = status_body(self.fence, status, reason=GIVEN_BACK, usage=usage)
        elif status == "cancelled":
            body = status_body(self.fence, status, reason=CANCELLED_HERE, usage=usage)
        else:
            reason = {"completed": NO_CHANGES, "discarded": DISCARDED}.get(run.state)
            reason = reason or run.reason or run.state
            body = status_body(self.fence, status, reason=reason, usage=usage)
        self._send("status", body, run.run_id)

    def verified(self, run: Run, patch: str) -> None:
        """The accepted change, committed: the patch as it was committed, then verification."""
        self._patch(run, patch)
        summary = run.summary or run.title
        self._send("status", status_body(self.fence, "verification", summary=summary), run.run_id)

    def resubmitted(self, run: Run, patch: str) -> None:
        """A committed run offered again under this (new) claim, after the cloud refused the
        old one's report: the attempt goes the whole way in one go."""
        self.started(run)
        self._patch(run, patch)
        summary = run.summary or run.title
        for status in ("awaiting_review", "verification"):
            self._send("status", status_body(self.fence, status, summary=summary), run.run_id)

    def reviewed(self, run: Run, files: list[FileTally]) -> None:
        """A person's decisions on the change (in the caller's transaction, with the
        decisions themselves): for the task's timeline — paths, counts and the comments,
        never the code."""
        if files:
            shown = [
                ReviewedFile.model_construct(
                    path=f.path,
                    accepted=f.accepted,
                    rejected=f.rejected,
                    edited=f.edited,
                    comments=list(f.comments),
                )
                for f in files
            ]
            self._send("review", review_body(self.fence, shown), run.run_id)

    def declined(self, reason: str) -> None:
        """A claim this daemon cannot work on (no checkout for its repository): no run."""
        self._send("status", status_body(self.fence, "failed", reason=reason), None)

    def given_back(self, reason: str) -> None:
        """A claim this machine cannot work on now (its own problem, found before any run):
        back to the queue for another worker, with why."""
        body = status_body(self.fence, "queued", reason=f"{LOCAL_PROBLEM}: {reason}")
        self._send("status", body, None)

    def _patch(self, run: Run, patch: str) -> None:
        self._send("artifact", artifact_body(self.fence, "patch", patch, PATCH), run.run_id)

    # --- the lease --------------------------------------------------------------------------

    def keep_alive(self, api: Beats, on_cancel: Callable[[], Awaitable[None]]) -> None:
        """Heartbeat the lease from the daemon (not the agent's process) until :meth:`release`;
        a ``cancel`` in a reply calls ``on_cancel``."""
        self.release()
        self._heartbeat = asyncio.create_task(self._beat(api, on_cancel))

    def release(self) -> None:
        """The run is over: the lease is no longer ours to keep."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    async def _beat(self, api: Beats, on_cancel: Callable[[], Awaitable[None]]) -> None:
        every = max(1.0, self.record.claim.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            try:
                beat = await api.heartbeat(self.task_id, self.fence)
            except Exception as exc:  # a missed beat is fine; the lease has slack
                log.warning("heartbeat for task %s failed: %s", self.task_id, exc)
                continue
            if beat.cancel:
                self.cancelled_by_cloud = True
                self._heartbeat = None
                await on_cancel()
                return


class Attempts:
    """The attempts this daemon has made: created at a claim, found again by run."""

    def __init__(
        self,
        store: RunStore,
        uploads: Uploads,
        shares: Callable[[Path], bool] = lambda checkout: False,
    ) -> None:
        self.store = store
        self.uploads = uploads
        self.shares = shares
        self._loaded: dict[int, Attempt] = {}  # one object per attempt, for its runtime state

    def claimed(self, claim: ClaimOut, checkout: Path) -> Attempt:
        """Record a claim (call inside the transaction that records its run)."""
        record = AttemptRecord(
            task_id=claim.task.id,
            project_id=claim.task.project_id,
            checkout=str(checkout),
            claim=claim,
        )
        attempt_id = self.store.add_attempt(
            record.task_id, record.project_id, record.model_dump_json()
        )
        return self._load(attempt_id, record)

    def get(self, attempt_id: int) -> Attempt | None:
        if attempt_id in self._loaded:
            return self._loaded[attempt_id]
        found = self.store.attempt(attempt_id)
        if found is None:
            return None
        return self._load(attempt_id, AttemptRecord.model_validate_json(found[0]))

    def of_run(self, run_id: str) -> Attempt | None:
        attempt_id = self.store.attempt_id(run_id)
        return None if attempt_id is None else self.get(attempt_id)

    def _load(self, attempt_id: int, record: AttemptRecord) -> Attempt:
        checkout = Path(record.checkout)
        attempt = Attempt(
            attempt_id,
            record,
            self.store,
            self.uploads,
            share_proposed=self.shares(checkout),
        )
        self._loaded[attempt_id] = attempt
        return attempt

    def adopt_legacy(self) -> None:
        """Runs recorded before attempts existed kept their claim in a JSON column: make each
        an attempt, so their later reports (a commit's verification) still go out."""
        for run_id, cloud in self.store.legacy_cloud():
            run = self.store.get(run_id)
            if run is None or "claim" not in cloud:
                continue
            claim = ClaimOut.model_validate(cloud["claim"])
            with self.store.db.transaction():
                attempt = self.claimed(claim, Path(run.repo))
                self.store.save(run, attempt_id=attempt.id)
