"""The daemon core: one per user, shared by every connected client. It answers the protocol's
methods (one coroutine per method, named after it: ``locus/runs/start`` → ``runs_start``) by
delegating to the parts that do the work — the run manager, the cloud session, the worker.

The server (``locusd/server``) owns sockets, framing and pygls; this module owns no IO of its
own beyond what those parts do, so it reads as the list of what the daemon can do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from cloud_api.schemas.tasks import TaskOut
from cloud_api.schemas.workers import ClaimOut, Fence
from locusd import __version__
from locusd.agent.providers import ConfigurationError
from locusd.agent.providers.select import check_provider
from locusd.cloud.credentials import CredentialStore
from locusd.cloud.errors import InvalidRequest
from locusd.cloud.outbox import Backoff, Outbox, OutboxEntry
from locusd.cloud.writes import status_body
from locusd.config import Config
from locusd.config import load as load_config
from locusd.git.remotes import remotes
from locusd.privacy import AuditLog, Scrubber
from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.base import Empty
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    AuditList,
    AuditRecord,
    AuthStatus,
    CommitParams,
    CommitResult,
    ContentParams,
    DaemonStatus,
    DecideParams,
    DecisionIn,
    FileContent,
    LocusCapabilities,
    LoginParams,
    LogsParams,
    ReviewParams,
    ReviewView,
    Run,
    RunEvents,
    RunList,
    RunRef,
    RunStartParams,
    SendBackParams,
    Task,
    TaskCreateParams,
    TaskList,
    TaskListParams,
    TaskPullParams,
    TaskRef,
    WorkerStartParams,
    WorkerStatus,
)
from locusd.runner.reviews import Reviews
from locusd.runner.runs import Runs
from locusd.runner.store import RunStore
from locusd.runner.worker import Worker
from locusd.server.peer import Peer
from locusd.session import CloudSession, mapped

FEATURES = ["auth", "tasks", "worker", "runs", "approvals", "progress"]
log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, *, socket_path: Path | None = None) -> None:
        self.config = config
        self.socket_path = socket_path
        self.started = time.monotonic()
        self.store = RunStore(config.state_dir / "locusd.sqlite")
        self.runs = Runs(self.store, config)
        self.runs.on_started = self._started
        self.peers: set[Peer] = set()
        self.stopping = asyncio.Event()
        self.session = CloudSession(
            CredentialStore(config.credentials_dir), config.state_dir, config.daemon.cloud_url
        )
        self.outbox = Outbox(
            config.state_dir / "outbox.sqlite",
            backoff=Backoff(cap=config.daemon.outbox_retry_cap),
        )
        self.audit = AuditLog(config.state_dir / "audit.jsonl")
        self._drainer: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._worker_stop = asyncio.Event()
        self.workers: list[Worker] = []
        self._pulled: list[Worker] = []
        self.reviews = Reviews(self.runs, config, self.outbox, self._scrubber)
        self.recovered = self.runs.recover()
        self._report_recovered()

    def _keep(self, worker: Worker) -> None:
        """Hold a worker made for one pulled task, so its heartbeats live until the run ends;
        the ones whose runs have ended are let go now (the list does not grow forever)."""
        self._pulled = [w for w in self._pulled if w.held] + [worker]

    def _report_recovered(self) -> None:
        """Cloud tasks whose run a crash interrupted: say so to the cloud (if the lease
        already ran out, the cloud refuses it as stale and the entry is dropped)."""
        for run in self.recovered:
            cloud = self.store.cloud(run.run_id)
            if run.task_id is None or cloud is None:
                continue
            fence = Fence(attempt=cloud["attempt"], claim_token=cloud["claim_token"])
            body = status_body(fence, "failed", reason=run.reason)
            self.outbox.enqueue("status", run.task_id, body)

    def _ensure_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(
                self.outbox.drain_forever(self._send, self.stopping)
            )

    async def _send(self, entry: OutboxEntry) -> None:
        project = self.store.project_of(entry.task_id) if entry.task_id is not None else None
        if project is None:
            raise InvalidRequest(f"no project known for task {entry.task_id}")
        await self.session.send(entry, project)
        # Acknowledged by the cloud: it has left the machine. Say so, for `locus audit`.
        self.audit.record(self.session.cloud_url, entry.kind, entry.task_id, entry.payload)

    # --- Core: connections ----------------------------------------------------------------

    def capabilities(self) -> LocusCapabilities:
        return LocusCapabilities(
            protocol_version=PROTOCOL_VERSION, daemon_version=__version__, features=FEATURES
        )

    def _auto_commits(self, repo: Path) -> bool:
        return repo.resolve() in {path.resolve() for path in self.config.daemon.auto_commit}

    async def _auto_commit(self, run: Run) -> None:
        """Unattended mode, for the checkouts the user listed in ``daemon.auto_commit``:
        accept everything, commit, report. Anything that goes wrong leaves the run awaiting
        review, as if the mode were off."""
        if not await asyncio.to_thread(self._auto_commits, Path(run.repo)):
            return
        try:
            view = await self.reviews.get(run.run_id)
            everything = {file.path: DecisionIn(action="accept") for file in view.files}
            await self.reviews.decide(run.run_id, view.revision, everything)
            await self.reviews.commit(run.run_id, view.revision, "none")
        except LocusError as exc:
            log.warning("auto-commit of %s failed, left for review: %s", run.run_id, exc)

    @staticmethod
    def _scrubber(checkout: Path) -> Scrubber:
        return Scrubber.for_checkout(checkout, os.environ)

    def _started(self, run: Run) -> None:
        for peer in list(self.peers):
            peer.notify("locus/runs/started", run)

    def connected(self, peer: Peer) -> None:
        self.peers.add(peer)
        self._ensure_drainer()

    def disconnected(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self.runs.drop_peer(peer)

    async def shutdown_requested(self) -> None:
        self.stopping.set()

    async def close(self) -> None:
        self.stopping.set()
        self._worker_stop.set()
        await self.runs.stop_all()
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        await self.session.close()
        self.outbox.close()
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
            outbox_pending=self.outbox.pending_count(),
            auth=self.session.status(),
            worker=self._worker_status(),
        )

    # --- auth ------------------------------------------------------------------------------

    async def auth_status(self, params: Empty, peer: Peer) -> AuthStatus:
        return self.session.status()

    async def auth_login(self, params: LoginParams, peer: Peer) -> AuthStatus:
        status = await self.session.login(params)
        self._ensure_drainer()
        return status

    async def auth_logout(self, params: Empty, peer: Peer) -> AuthStatus:
        return await self.session.logout()

    # --- tasks -----------------------------------------------------------------------------

    async def tasks_list(self, params: TaskListParams, peer: Peer) -> TaskList:
        async with self.session.client() as client:
            if params.project_id is not None:
                projects = [params.project_id]
            else:
                projects = [p.id for p in await mapped(client.projects())]
            found: list[Task] = []
            for project in projects:
                tasks = await mapped(client.tasks(project, params.status))  # type: ignore[arg-type]
                found.extend(_task(t) for t in tasks)
        return TaskList(tasks=found)

    async def tasks_show(self, params: TaskRef, peer: Peer) -> Task:
        async with self.session.client() as client:
            return _task(await mapped(client.task(params.task_id)))

    async def tasks_create(self, params: TaskCreateParams, peer: Peer) -> Task:
        async with self.session.client() as client:
            created = await mapped(
                client.create_task(
                    params.project_id,
                    params.title,
                    params.description,
                    params.repository,
                    queued=params.queued,
                )
            )
        return _task(created)

    # --- worker ----------------------------------------------------------------------------

    def _worker_status(self) -> WorkerStatus:
        running = self._worker is not None and not self._worker.done()
        if not self.workers:
            return WorkerStatus(running=running)
        first = self.workers[0].status
        return first.model_copy(
            update={
                "running": running,
                "projects": [w.project_id for w in self.workers],
                "repositories": sorted(self.workers[0].served),
            }
        )

    async def _make_workers(self, repos: list[str]) -> list[Worker]:
        """One worker per cloud project that lists a remote of these checkouts."""
        checkouts = [Path(r) for r in repos] or list(self.config.daemon.repositories)
        if not checkouts:
            raise LocusError(
                Code.INVALID_ARGUMENT,
                "no repositories to serve: run from a checkout (locus run --repo PATH) or set"
                " daemon.repositories in the config",
            )
        served: dict[str, Path] = {}  # fingerprint → checkout
        urls: list[str] = []  # as git knows them: the cloud fingerprints them itself
        for checkout in checkouts:
            for found, url in (await asyncio.to_thread(remotes, checkout)).items():
                served[found] = checkout
                urls.append(url)
        if not served:
            raise LocusError(
                Code.INVALID_ARGUMENT,
                f"{', '.join(map(str, checkouts))}: no git remote, so no cloud project can match"
                " (git remote add origin URL)",
            )
        creds = self.session.credentials()
        if creds is None:
            raise LocusError(Code.AUTH_REQUIRED, "not logged in: locus login")
        if creds.kind == "worker" and creds.project_id is not None:
            projects = [creds.project_id]
        else:
            async with self.session.client() as client:
                listed = await mapped(client.projects())
            projects = [p.id for p in listed if set(p.remotes) & set(served)]
            if not projects:
                raise LocusError(
                    Code.INVALID_ARGUMENT,
                    f"none of your projects lists these repositories ({', '.join(served)}):"
                    " add the remote to the project",
                )
        try:
            check_provider(self.config.agent)
        except ConfigurationError as exc:
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None
        self._ensure_drainer()
        return [
            Worker(
                self.runs,
                await self.session.worker_client(project),
                self.outbox,
                served=served,
                remotes=urls,
                scrubber=self._scrubber,
                project_id=project,
                auto_commit=self._auto_commit,
            )
            for project in projects
        ]

    async def worker_start(self, params: WorkerStartParams, peer: Peer) -> WorkerStatus:
        if self._worker is not None and not self._worker.done():
            raise LocusError(Code.INVALID_RUN_STATE, "the worker is already running")
        self.workers = await self._make_workers(params.repos)
        self._worker_stop = asyncio.Event()
        stop = self._worker_stop
        self._worker = asyncio.create_task(self._work(params, stop))
        return self._worker_status().model_copy(
            update={"running": True, "agents": params.agents, "once": params.once}
        )

    async def tasks_pull(self, params: TaskPullParams, peer: Peer) -> Run:
        """Claim one task now (the named one, or the next) and start its run; the answer
        comes at once, the run goes on (follow it with runs/subscribe)."""
        for worker in await self._make_workers(params.repos):
            await mapped(worker.register(1))
            claim = await mapped(worker.api.claim(0, task_id=params.task_id))
            if claim is not None:
                self._keep(worker)
                return await worker.begin(claim)
        what = f"task {params.task_id} is not queued" if params.task_id else "nothing is queued"
        raise LocusError(Code.TASK_NOT_FOUND, f"{what} for these repositories")

    async def _work(self, params: WorkerStartParams, stop: asyncio.Event) -> None:
        once = params.once or params.task_id is not None

        async def one(worker: Worker) -> None:
            try:
                await worker.run(agents=params.agents, once=once, stop=stop, task_id=params.task_id)
            except Exception as exc:
                log.exception("worker for project %s stopped", worker.project_id)
                worker.status = worker.status.model_copy(update={"last_error": str(exc)})
            if once:
                stop.set()

        await asyncio.gather(*(one(worker) for worker in self.workers))

    async def worker_done(self) -> None:
        """Until the worker has stopped (with ``once``: after its task)."""
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)

    async def worker_stop(self, params: Empty, peer: Peer) -> WorkerStatus:
        self._worker_stop.set()
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
        return self._worker_status()

    async def audit_list(self, params: Empty, peer: Peer) -> AuditList:
        records = [AuditRecord.model_validate(e.model_dump()) for e in self.audit.entries()]
        return AuditList(entries=records)

    async def daemon_shutdown(self, params: Empty, peer: Peer) -> Empty:
        await self.shutdown_requested()
        return Empty()

    # --- runs ------------------------------------------------------------------------------

    async def runs_start(self, params: RunStartParams, peer: Peer) -> Run:
        repo = Path(params.repo)
        if not repo.is_absolute() or not await asyncio.to_thread(repo.is_dir):
            raise LocusError(
                Code.INVALID_ARGUMENT, f"repo {params.repo!r}: give the absolute path of a checkout"
            )
        replay = Path(params.replay) if params.replay else None
        try:
            check_provider(self.config.agent, replay=replay)
        except ConfigurationError as exc:
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None
        return await self.runs.start(repo=repo, task=params.task, replay=replay)

    # --- review ----------------------------------------------------------------------------

    async def review_get(self, params: ReviewParams, peer: Peer) -> ReviewView:
        return await self.reviews.get(params.run_id)

    async def review_content(self, params: ContentParams, peer: Peer) -> FileContent:
        return await self.reviews.content(params.run_id, params.path)

    async def review_decide(self, params: DecideParams, peer: Peer) -> ReviewView:
        return await self.reviews.decide(params.run_id, params.revision, params.decisions)

    async def review_commit(self, params: CommitParams, peer: Peer) -> CommitResult:
        result = await self.reviews.commit(params.run_id, params.revision, params.integrate)
        self._ensure_drainer()
        return result

    async def review_send_back(self, params: SendBackParams, peer: Peer) -> Run:
        old, prompt, worktree = await self.reviews.send_back(params.run_id, params.revision)
        try:
            check_provider(self.config.agent)
        except ConfigurationError as exc:
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None
        cloud = self.store.cloud(old.run_id)
        if old.task_id is None or cloud is None:
            return await self.runs.start(
                repo=Path(old.repo),
                task=prompt,
                title=old.title,
                continue_in=worktree,
            )
        # A cloud task: the worker takes it back to running (with a fresh lease) and reports
        # the new round's end as it did the first.
        workers = [
            w for w in await self._make_workers([old.repo]) if w.project_id == cloud["project_id"]
        ]
        if not workers:
            raise LocusError(Code.INVALID_ARGUMENT, "this checkout no longer serves the task")
        if "claim" not in cloud:
            raise LocusError(Code.INVALID_RUN_STATE, "this run's claim was not kept: retry it")
        claim = ClaimOut.model_validate(cloud["claim"])
        self._keep(workers[0])
        return await workers[0].begin(claim, prompt=prompt, continue_in=worktree)

    async def review_discard(self, params: ReviewParams, peer: Peer) -> Run:
        return await self.reviews.discard(params.run_id)

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


def _task(task: TaskOut) -> Task:
    return Task(
        id=task.id,
        project_id=task.project_id,
        title=task.title,
        description=task.description,
        status=task.status,
        repository=task.repository,
        priority=task.priority,
    )


def create_core(config: Config | None = None, *, socket_path: Path | None = None) -> Daemon:
    """The daemon core for ``locusd serve``, from the user's configuration."""
    return Daemon(config or load_config(), socket_path=socket_path)
