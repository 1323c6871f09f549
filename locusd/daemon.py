"""The daemon core: one per user, shared by every connected client. It answers the protocol's
methods (one coroutine per method, bound by ``@handles("locus/runs/start")``, so grepping a
method's name finds its code) by delegating to the parts that do the work — the runs and their
lifecycle, the attempts at cloud tasks, the reviews, the cloud session, the worker.

The server (``locusd/server``) owns sockets, framing and pygls; this module owns no IO of its
own beyond what those parts do, so it reads as the list of what the daemon can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from cloud_api.domain.states import UserAction
from cloud_api.schemas.tasks import TaskOut
from locusd import __version__
from locusd.agent import sandbox
from locusd.agent.external.presets import BUILTIN, agent_problem
from locusd.agent.providers import ConfigurationError
from locusd.agent.providers.select import check_agent
from locusd.agent.sandbox import containment
from locusd.cloud.credentials import CredentialStore
from locusd.cloud.errors import InvalidRequest
from locusd.cloud.outbox import Backoff, Outbox, OutboxEntry
from locusd.cloud.uploads import Uploads
from locusd.config import Config, config_path
from locusd.config import load as load_config
from locusd.crashpoints import crashpoint
from locusd.git.remotes import remotes
from locusd.graph.upload import GraphPublisher
from locusd.localdb import Database
from locusd.modelenv import ModelEnv, with_model_env
from locusd.notifications import Notifier
from locusd.notifications import find as find_desktop
from locusd.privacy import AuditLog, Scrubber
from locusd.projects import by_name, by_remotes, project
from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.base import Empty
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    AuditList,
    AuditRecord,
    AuthStatus,
    CommitParams,
    CommitResult,
    ConfigStatus,
    ContentParams,
    DaemonStatus,
    DecideParams,
    DecisionIn,
    FileContent,
    LocusCapabilities,
    LoginParams,
    LogsParams,
    NeedsYou,
    PlanAccepted,
    PlanAcceptParams,
    PlanShowParams,
    PlanStartParams,
    ProjectList,
    ProjectResolveParams,
    ReviewParams,
    ReviewView,
    Run,
    RunCancelParams,
    RunEvents,
    RunHandle,
    RunList,
    RunRef,
    RunStartParams,
    SandboxStatus,
    SendBackParams,
    Task,
    TaskActParams,
    TaskComment,
    TaskCommentParams,
    TaskCreateParams,
    TaskEditParams,
    TaskList,
    TaskListParams,
    TaskPullParams,
    TaskRef,
    WorkerStartParams,
    WorkerStatus,
)
from locusd.runner import attention
from locusd.runner.attempt import Attempt, Attempts
from locusd.runner.handles import HandleError, pending_review, resolve
from locusd.runner.plan_requests import PlanRequests
from locusd.runner.plans import Plans
from locusd.runner.reviews import Reviews
from locusd.runner.runs import Runs
from locusd.runner.store import RunStore
from locusd.runner.worker import Worker
from locusd.server.handlers import handles
from locusd.server.peer import Peer
from locusd.session import CloudSession, mapped
from locusd.settings import Settings

FEATURES = ["auth", "tasks", "worker", "runs", "approvals", "progress"]
log = logging.getLogger(__name__)


class Daemon:
    """The facade: each protocol method is a few lines that hand the work to the parts."""

    def __init__(
        self, config: Config, *, socket_path: Path | None = None, config_file: Path | None = None
    ) -> None:
        #: The user's settings, read again from ``config_file`` when it changes.
        self.settings = Settings(config, config_file)
        #: The secret-named model variables clients gave (memory only), scrubbed like the
        #: daemon's own environment from everything uploaded.
        self.given: set[tuple[str, str]] = set()
        self.socket_path = socket_path
        self.started = time.monotonic()
        state = config.state_dir
        self.db = Database(state / "locusd.sqlite")
        self.store = RunStore(self.db)
        self.outbox = Outbox(self.db, backoff=Backoff(cap=config.daemon.outbox_retry_cap))
        self.outbox.adopt(state / "outbox.sqlite")  # an older daemon's separate file
        self.audit = AuditLog(self.db)
        self.audit.adopt(state / "audit.jsonl")
        self.uploads = Uploads(
            self.outbox, self.audit, self._scrubber, lambda: self.session.cloud_url
        )
        self.attempts = Attempts(self.store, self.uploads, self._shares_proposed)
        self.attempts.adopt_legacy()
        self.runs = Runs(self.store, self.settings, self.attempts)
        self.uploads.on_settled = self.runs.answered  # the run hears the cloud's answer
        self.runs.on_started = self._started
        self.plan_requests = PlanRequests(self.runs, self.uploads)  # the dashboard's plans
        self.notifier = Notifier(find_desktop())
        self.runs.on_needs_you = self._needs_you
        self.reviews = Reviews(self.runs)
        self.peers: set[Peer] = set()
        self.stopping = asyncio.Event()
        self.session = CloudSession(
            CredentialStore(config.credentials_dir), state, config.daemon.cloud_url
        )
        self.plans = Plans(self.runs, self.session, self._fingerprints)
        self._drainer: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._worker_stop = asyncio.Event()
        self.workers: list[Worker] = []
        self._pulled: list[Worker] = []
        self.containment = containment(config.agent)
        self._contained_for = config.agent
        if self.containment.warning:
            log.warning("the agent's commands are not contained: %s", self.containment.warning)
        # What a previous daemon left half-done is finished or undone before anything else.
        self.recovered = self.runs.recover() + self.reviews.recover()
        if config.agent.sandbox:  # said once at start, and again in each run's warnings
            contained = sandbox.probe(network=config.agent.allow_network)
            if contained.warning:
                log.warning("agent commands are not sandboxed: %s", contained.warning)
        # From start-up (``locusd serve`` builds the core in its event loop): what was kept is
        # sent without waiting for a client. A core built outside a loop starts it on use.
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            self._ensure_drainer()
            self.notifier.release()

    @property
    def config(self) -> Config:
        return self.settings.current()

    def _unready(self) -> str | None:
        """Why no new work may start now: the config file, as it is now, does not read."""
        self.settings.refresh()
        return self.settings.error

    def _ready(
        self, model_env: ModelEnv, replay: Path | None = None, agent: str | None = None
    ) -> None:
        """Refuse new work, saying why, when the settings or the model cannot run it: the
        config file read again (if it changed) and the model checked in the environment the
        run will have (the daemon's, with the client's model variables): the built-in
        provider, or what the run's ACP agent (``agent``: a client's ``--agent``) needs."""
        problem = self._unready()
        if problem is not None:
            raise LocusError(Code.INVALID_ARGUMENT, problem)
        self.given.update(model_env.items())
        env = with_model_env(os.environ, model_env)
        config = self.config
        if agent is not None and agent_problem(agent, config.agents) is None:
            chosen = config.agent.model_copy(update={"agent": agent})
            config = config.model_copy(update={"agent": chosen})
        try:
            check_agent(config, replay=replay, env=env)
        except ConfigurationError as exc:
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None

    def _keep(self, worker: Worker) -> None:
        """Hold a worker made for one pulled task, so its heartbeats live until the run ends;
        the ones whose runs have ended are let go now (the list does not grow forever)."""
        self._pulled = [w for w in self._pulled if w.held] + [worker]

    def _ensure_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(
                self.outbox.drain_forever(self._send, self.stopping)
            )

    async def _send(self, entry: OutboxEntry) -> None:
        project = entry.project_id  # a write about no task (the graph) names its project
        if entry.task_id is not None:
            of = (
                self.store.project_of_plan if entry.kind == "plan_report" else self.store.project_of
            )
            project = of(entry.task_id)
        if project is None:
            raise InvalidRequest(f"no project known for task {entry.task_id}")
        await self.session.send(entry, project)

    # --- Core: connections ----------------------------------------------------------------

    def capabilities(self) -> LocusCapabilities:
        return LocusCapabilities(
            protocol_version=PROTOCOL_VERSION, daemon_version=__version__, features=FEATURES
        )

    def _shares_proposed(self, checkout: Path) -> bool:
        """Whether the user chose to send this checkout's proposed diffs before acceptance."""
        chosen = self.config.daemon.share_proposed_diffs
        return checkout.resolve() in {path.resolve() for path in chosen}

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
            self._tell(attention.waiting(run))

    def _scrubber(self, checkout: Path) -> Scrubber:
        given = {f"{name}#{n}": value for n, (name, value) in enumerate(sorted(self.given))}
        return Scrubber.for_checkout(checkout, {**os.environ, **given})

    def _started(self, run: Run) -> None:
        for peer in list(self.peers):
            peer.notify("locus/runs/started", run)

    def _needs_you(self, note: NeedsYou) -> None:
        """A run needs a person: every client hears it, and the desktop (unless turned off).
        A run of a checkout in ``daemon.auto_commit`` is committed, not reviewed: said only if
        that fails (:meth:`_auto_commit`)."""
        unattended = note.kind == "review" and note.task_id is not None
        if not (unattended and self._auto_commits(Path(note.repo))):
            self._tell(note)

    def _tell(self, note: NeedsYou | None) -> None:
        if note is None:
            return
        for peer in list(self.peers):
            peer.notify("locus/needsYou", note)
        if self.config.notifications.desktop:
            self.notifier.raise_(note)

    def connected(self, peer: Peer) -> None:
        self.peers.add(peer)
        self._ensure_drainer()
        self.notifier.release()

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
        await self.notifier.settle()
        await self.session.close()
        self.db.close()

    # --- daemon ----------------------------------------------------------------------------

    @handles("locus/daemon/status")
    async def daemon_status(self, params: Empty, peer: Peer) -> DaemonStatus:
        self.settings.refresh()
        if self.config.agent != self._contained_for:  # the sandbox settings may have changed
            self._contained_for = self.config.agent
            self.containment = await asyncio.to_thread(containment, self._contained_for)
        return DaemonStatus(
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            pid=os.getpid(),
            uptime_seconds=round(time.monotonic() - self.started, 3),
            socket=str(self.socket_path or ""),
            clients=len(self.peers),
            runs=self.runs.counts(),
            outbox_pending=self.outbox.pending_count(),
            outbox_dead=self.outbox.dead_count(),
            auth=self.session.status(),
            worker=self._worker_status(),
            sandbox=SandboxStatus(
                contained=self.containment.sandbox is not None,
                network=self.config.agent.allow_network,
                egress=(
                    "open"
                    if self.config.agent.allow_network
                    else "proxy"
                    if self.config.agent.egress.proxy
                    else "none"
                ),
                egress_hosts=self.config.agent.egress.allow,
                warning=self.containment.warning,
            ),
            notifications=self.notifier.status(self.config.notifications.desktop),
            config=ConfigStatus(
                path=str(self.settings.path or ""), problems=self.settings.problems()
            ),
        )

    # --- auth ------------------------------------------------------------------------------

    @handles("locus/auth/status")
    async def auth_status(self, params: Empty, peer: Peer) -> AuthStatus:
        return self.session.status()

    @handles("locus/auth/login")
    async def auth_login(self, params: LoginParams, peer: Peer) -> AuthStatus:
        status = await self.session.login(params)
        self._ensure_drainer()
        return status

    @handles("locus/auth/logout")
    async def auth_logout(self, params: Empty, peer: Peer) -> AuthStatus:
        return await self.session.logout()

    # --- tasks -----------------------------------------------------------------------------

    @handles("locus/tasks/list")
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

    @handles("locus/tasks/show")
    async def tasks_show(self, params: TaskRef, peer: Peer) -> Task:
        async with self.session.client() as client:
            return _task(await mapped(client.task(params.task_id)))

    @handles("locus/tasks/create")
    async def tasks_create(self, params: TaskCreateParams, peer: Peer) -> Task:
        async with self.session.client() as client:
            created = await mapped(
                client.create_task(
                    params.project_id,
                    params.title,
                    params.description,
                    params.repository,
                    params.priority,
                    queued=params.queued,
                )
            )
        return _task(created)

    @handles("locus/tasks/act")
    async def tasks_act(self, params: TaskActParams, peer: Peer) -> Task:
        action = UserAction(params.action)
        needed = {UserAction.REQUEST_CHANGES: "feedback", UserAction.ANSWER: "answer"}
        if action in needed and not (params.text or "").strip():
            raise LocusError(Code.INVALID_ARGUMENT, f"{action} needs the {needed[action]} (text)")
        move = f"{action} task {params.task_id}"
        async with self.session.client() as client:
            return _task(await mapped(client.act(params.task_id, action, params.text), move=move))

    @handles("locus/tasks/comment")
    async def tasks_comment(self, params: TaskCommentParams, peer: Peer) -> TaskComment:
        async with self.session.client() as client:
            event = await mapped(client.comment(params.task_id, params.body))
        return TaskComment(id=event.id, task_id=event.task_id, body=params.body)

    @handles("locus/tasks/edit")
    async def tasks_edit(self, params: TaskEditParams, peer: Peer) -> Task:
        fields = params.model_dump(exclude={"task_id"}, exclude_none=True)
        if not fields:
            raise LocusError(
                Code.INVALID_ARGUMENT, "nothing to change: give a title, description or priority"
            )
        async with self.session.client() as client:
            return _task(await mapped(client.update_task(params.task_id, **fields)))

    @handles("locus/projects/resolve")
    async def projects_resolve(self, params: ProjectResolveParams, peer: Peer) -> ProjectList:
        async with self.session.client() as client:
            listed = await mapped(client.projects())
        if params.project is not None:
            return ProjectList(projects=[project(by_name(listed, params.project))])
        served = await asyncio.to_thread(self._fingerprints, params.repos)
        found = by_remotes(listed, served, one=params.one)
        return ProjectList(projects=[project(p) for p in found], remotes=sorted(served))

    def _fingerprints(self, repos: list[str]) -> set[str]:
        """The remotes of these checkouts; of daemon.repositories' when none has one."""
        for checkouts in ([Path(r) for r in repos], self.config.daemon.repositories):
            found = {fp for checkout in checkouts for fp in remotes(checkout)}
            if found:
                return found
        return set()

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

    async def _make_workers(self, repos: list[str], model_env: ModelEnv) -> list[Worker]:
        """One worker per cloud project that lists a remote of these checkouts."""
        checkouts = [Path(r) for r in repos] or list(self.config.daemon.repositories)
        if not checkouts:
            raise LocusError(
                Code.INVALID_ARGUMENT,
                "no repositories to serve: run from a checkout (locus run --repo PATH) or set"
                " daemon.repositories in the config",
            )
        served: dict[str, Path] = {}  # fingerprint → checkout
        for checkout in checkouts:
            for found in await asyncio.to_thread(remotes, checkout):
                served[found] = checkout
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
            projects = {creds.project_id: next(iter(served.values()))}
        else:
            async with self.session.client() as client:
                listed = await mapped(client.projects())
            # Each project with the first checkout (in the order given) it lists a remote of.
            projects = {
                p.id: next(path for remote, path in served.items() if remote in p.remotes)
                for p in listed
                if set(p.remotes) & set(served)
            }
            if not projects:
                raise LocusError(
                    Code.INVALID_ARGUMENT,
                    f"none of your projects lists these repositories ({', '.join(served)}):"
                    " add the remote to the project",
                )
        self._ready(model_env)
        self._ensure_drainer()
        return [
            Worker(
                self.runs,
                await self.session.worker_client(project),
                served=served,
                # Fingerprints, not the URLs: a remote's URL can carry a credential
                # (https://user:token@host/…), which must not leave with the registration.
                remotes=list(served),
                project_id=project,
                auto_commit=self._auto_commit,
                model_env=model_env,
                unready=self._unready,
                graph=(
                    GraphPublisher(self.uploads, self.config.state_dir, project, checkout)
                    if self.config.daemon.upload_graph
                    else None
                ),
                plans=self.plan_requests,
            )
            for project, checkout in projects.items()
        ]

    @handles("locus/worker/start")
    async def worker_start(self, params: WorkerStartParams, peer: Peer) -> WorkerStatus:
        if self._worker is not None and not self._worker.done():
            raise LocusError(Code.INVALID_RUN_STATE, "the worker is already running")
        self.workers = await self._make_workers(params.repos, params.model_env)
        self._known_agent(params.agent)
        for worker in self.workers:
            worker.mode = params.mode
            worker.agent = params.agent
        self._worker_stop = asyncio.Event()
        stop = self._worker_stop
        self._worker = asyncio.create_task(self._work(params, stop))
        return self._worker_status().model_copy(
            update={"running": True, "agents": params.agents, "once": params.once}
        )

    @handles("locus/tasks/pull")
    async def tasks_pull(self, params: TaskPullParams, peer: Peer) -> Run:
        """Claim one task now (the named one, or the next) and start its run; the answer
        comes at once, the run goes on (follow it with runs/subscribe)."""
        for worker in await self._make_workers(params.repos, params.model_env):
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

    @handles("locus/worker/stop")
    async def worker_stop(self, params: Empty, peer: Peer) -> WorkerStatus:
        self._worker_stop.set()
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
        return self._worker_status()

    @handles("locus/audit/list")
    async def audit_list(self, params: Empty, peer: Peer) -> AuditList:
        records = [AuditRecord.model_validate(e.model_dump()) for e in self.audit.entries()]
        return AuditList(entries=records)

    @handles("locus/daemon/shutdown")
    async def daemon_shutdown(self, params: Empty, peer: Peer) -> Empty:
        await self.shutdown_requested()
        return Empty()

    # --- runs ------------------------------------------------------------------------------

    @handles("locus/runs/start")
    async def runs_start(self, params: RunStartParams, peer: Peer) -> Run:
        repo = Path(params.repo)
        if not repo.is_absolute() or not await asyncio.to_thread(repo.is_dir):
            raise LocusError(
                Code.INVALID_ARGUMENT, f"repo {params.repo!r}: give the absolute path of a checkout"
            )
        replay = Path(params.replay) if params.replay else None
        self._known_agent(params.agent)
        self._ready(params.model_env, replay, params.agent)
        return self.runs.start(
            repo=repo,
            task=params.task,
            replay=replay,
            mode=params.mode,
            model_env=params.model_env,
            agent=params.agent,
        )

    # --- planning ----------------------------------------------------------------------------

    @handles("locus/plan/start")
    async def plan_start(self, params: PlanStartParams, peer: Peer) -> Run:
        repo = Path(params.repo)
        if not repo.is_absolute() or not await asyncio.to_thread(repo.is_dir):
            raise LocusError(
                Code.INVALID_ARGUMENT, f"repo {params.repo!r}: give the absolute path of a checkout"
            )
        replay = Path(params.replay) if params.replay else None
        # Always the built-in loop: only its tool set can be held read-only.
        self._ready(params.model_env, replay, BUILTIN)
        return self.runs.start(
            repo=repo,
            task=params.goal,
            replay=replay,
            model_env=params.model_env,
            agent=BUILTIN,
            planning=True,
        )

    @handles("locus/plan/show")
    async def plan_show(self, params: PlanShowParams, peer: Peer) -> Run:
        run = self.runs.get(params.run_id)
        if run.kind != "plan":
            raise LocusError(
                Code.INVALID_ARGUMENT, f"run {run.run_id} is not a planning run (locus plan)"
            )
        return await self.runs.wait(run.run_id) if params.wait else run

    @handles("locus/plan/accept")
    async def plan_accept(self, params: PlanAcceptParams, peer: Peer) -> PlanAccepted:
        run, created = await self.plans.accept(params.run_id, params.numbers, params.project)
        return PlanAccepted(run=run, created=[_task(t) for t in created])

    def _known_agent(self, agent: str | None) -> None:
        """A client's ``--agent`` names one the user's config knows, or the call fails."""
        problem = None if agent is None else agent_problem(agent, self.settings.refresh().agents)
        if problem is not None:
            raise LocusError(Code.INVALID_ARGUMENT, f"--agent: {problem}")

    # --- review ----------------------------------------------------------------------------

    @handles("locus/review/get")
    async def review_get(self, params: ReviewParams, peer: Peer) -> ReviewView:
        return await self.reviews.get(params.run_id)

    @handles("locus/review/content")
    async def review_content(self, params: ContentParams, peer: Peer) -> FileContent:
        return await self.reviews.content(params.run_id, params.path)

    @handles("locus/review/decide")
    async def review_decide(self, params: DecideParams, peer: Peer) -> ReviewView:
        view = await self.reviews.decide(params.run_id, params.revision, params.decisions)
        self._ensure_drainer()  # a cloud task's timeline hears the decisions
        return view

    @handles("locus/review/commit")
    async def review_commit(self, params: CommitParams, peer: Peer) -> CommitResult:
        result = await self.reviews.commit(
            params.run_id, params.revision, params.integrate, params.message
        )
        self._ensure_drainer()
        return result

    @handles("locus/review/send_back")
    async def review_send_back(self, params: SendBackParams, peer: Peer) -> Run:
        old, prompt, worktree = await self.reviews.send_back(params.run_id, params.revision)
        self._known_agent(old.agent)  # still in the user's config
        self._ready(params.model_env, agent=old.agent)
        attempt = self.attempts.of_run(old.run_id)
        # A cloud task: the same attempt goes back to running (with a fresh lease).
        worker = None if attempt is None else await self._worker_for(attempt, params.model_env)
        if worker is not None:  # the next round runs as the first did (--mode, --agent)
            worker.mode, worker.agent = old.mode, old.agent
        # The old run is revised and the next round recorded together: a kill between the two
        # leaves either the old run reviewable or the new one interrupted, never neither.
        with self.db.transaction():
            self.runs.move(old, "revised")
            if worker is None or attempt is None:
                run = self.runs.start(
                    repo=Path(old.repo),
                    task=prompt,
                    title=old.title,
                    continue_in=worktree,
                    model_env=params.model_env,
                    mode=old.mode,
                    agent=old.agent,
                )
            else:
                record = attempt.record
                run = worker.launch(
                    record.claim,
                    Path(record.checkout),
                    prompt,
                    attempt=attempt,
                    continue_in=worktree,
                )
        crashpoint("send_back.recorded")
        return run

    async def _worker_for(self, attempt: Attempt, model_env: ModelEnv) -> Worker:
        """A worker for a later round of an attempt this daemon made (its project's token,
        its checkout), kept while the round runs."""
        record = attempt.record
        served = {record.claim.task.repository or "": Path(record.checkout)}
        worker = Worker(
            self.runs,
            await self.session.worker_client(record.project_id),
            served=served,
            remotes=[],
            project_id=record.project_id,
            auto_commit=self._auto_commit,
            model_env=model_env,
        )
        self._keep(worker)
        return worker

    @handles("locus/review/resubmit")
    async def review_resubmit(self, params: ReviewParams, peer: Peer) -> Run:
        """Offer a committed run whose report the cloud refused again: claim its task anew
        (it must be queued: the cloud re-queues a task whose claim went stale) and report the
        commit under the new claim, from running to verification."""
        run = self.runs.get(params.run_id)
        old = self.attempts.of_run(run.run_id)
        if run.state != "report_refused" or old is None:
            raise LocusError(
                Code.INVALID_RUN_STATE,
                f"run {run.run_id} is {run.state}: only a run whose report the cloud refused"
                " (report_refused) can be offered again",
            )
        api = await self.session.worker_client(old.record.project_id)
        claim = await mapped(api.claim(0, task_id=old.task_id))
        if claim is None:
            raise LocusError(
                Code.INVALID_RUN_STATE,
                f"task {old.task_id} is not queued in the cloud (another worker holds it, or it"
                " failed or was cancelled): retry it there, then offer the run again",
            )
        patch = await asyncio.to_thread(self.reviews.committed_patch, run)
        with self.db.transaction():
            attempt = self.attempts.claimed(claim, Path(old.record.checkout))
            self.store.save(run, attempt_id=attempt.id)
            return self.runs.move(run, "committed", patch=patch, cloud_error=None)

    @handles("locus/review/discard")
    async def review_discard(self, params: ReviewParams, peer: Peer) -> Run:
        return await self.reviews.discard(params.run_id)

    @handles("locus/runs/list")
    async def runs_list(self, params: Empty, peer: Peer) -> RunList:
        return RunList(runs=self.store.all())

    @handles("locus/runs/show")
    async def runs_show(self, params: RunRef, peer: Peer) -> Run:
        return self.runs.get(params.run_id)

    @handles("locus/runs/resolve")
    async def runs_resolve(self, params: RunHandle, peer: Peer) -> Run:
        runs = self.store.all()
        try:
            if params.handle is None:
                return self.runs.get(pending_review(runs))
            return self.runs.get(resolve(params.handle, runs))
        except HandleError as exc:
            raise LocusError(Code.RUN_NOT_FOUND, str(exc)) from None

    @handles("locus/runs/subscribe")
    async def runs_subscribe(self, params: RunRef, peer: Peer) -> RunEvents:
        return RunEvents(run_id=params.run_id, events=self.runs.subscribe(params.run_id, peer))

    @handles("locus/runs/unsubscribe")
    async def runs_unsubscribe(self, params: RunRef, peer: Peer) -> Empty:
        self.runs.unsubscribe(params.run_id, peer)
        return Empty()

    @handles("locus/runs/cancel")
    async def runs_cancel(self, params: RunCancelParams, peer: Peer) -> Run:
        return await self.runs.cancel(params.run_id, requeue=params.requeue)

    @handles("locus/runs/logs")
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
        reason=task.status_reason,
    )


def create_core(config: Config | None = None, *, socket_path: Path | None = None) -> Daemon:
    """The daemon core for ``locusd serve``, from the user's configuration (read again when
    the file changes)."""
    if config is not None:
        return Daemon(config, socket_path=socket_path)
    return Daemon(load_config(), socket_path=socket_path, config_file=config_path())
