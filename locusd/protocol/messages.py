"""Every message between a client (editor, CLI) and ``locusd``: params and results of the
methods, the notifications, and the daemon → client requests. These models are the contract;
``docs/protocol.md`` and ``docs/protocol.schema.json`` are generated from them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, computed_field

from locusd.agent.policy import Mode
from locusd.modelenv import ModelVar
from locusd.protocol.base import Wire
from locusd.runner.handles import short_id

MODEL_ENV_DOC = (
    "the model variables of the client's environment (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL,"
    " OPENAI_API_KEY, OPENAI_BASE_URL, GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL), used for this"
    " work over the daemon's own; kept in"
    " memory, never logged, stored or uploaded, never seen by the agent's commands"
)


def _agent(of: str) -> Any:
    return Field(
        None,
        min_length=1,
        description=f"the agent of {of}: builtin, claude, codex, gemini or the NAME of an"
        " [agents.NAME] table (default: [agent] agent of the user's config)",
    )


def _model_env() -> Any:
    return Field(default_factory=dict, description=MODEL_ENV_DOC)


def _mode(of: str) -> Any:
    return Field(
        None,
        description=f"permission mode of {of}: ask, auto-edit or full-auto (default: [agent]"
        " mode of the user's config)",
    )


# --- handshake (inside LSP initialize) ---------------------------------------------------


class ClientInfo(Wire):
    name: str = Field(description="e.g. 'locus-cli', 'vscode', 'neovim'")
    version: str | None = None


class LocusInitOptions(Wire):
    """``initializationOptions.locus`` of the client's ``initialize``."""

    protocol_version: str = Field(description="'MAJOR.MINOR'; the major must match the daemon's")
    client: ClientInfo


class LocusCapabilities(Wire):
    """``capabilities.experimental.locus`` of the ``initialize`` result."""

    protocol_version: str
    daemon_version: str
    features: list[str]


# --- auth ----------------------------------------------------------------------------


class AuthStatus(Wire):
    logged_in: bool
    cloud_url: str | None = None
    kind: Literal["user", "worker"] | None = None
    identity: str | None = Field(None, description="the user's email or the worker's name")
    store: str = Field(description="where the secret is kept (keyring backend or file)")
    warning: str | None = Field(None, description="e.g. no usable OS keyring: a 0600 file is used")


class LoginParams(Wire):
    cloud_url: str = Field(description="e.g. http://127.0.0.1:8420")
    email: str | None = Field(None, description="a user login (with password) …")
    password: str | None = None
    token: str | None = Field(None, description="… or a token (user or worker)")


# --- daemon --------------------------------------------------------------------------


class WorkerStatus(Wire):
    running: bool
    agents: int = 0
    once: bool = False
    projects: list[int] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list, description="remote fingerprints")
    last_error: str | None = None


class SandboxStatus(Wire):
    """How the agent's commands are contained on this machine (docs/security.md)."""

    contained: bool = Field(description="commands run in bubblewrap's namespaces")
    network: bool = Field(description="sandboxed commands may use the network (allow_network)")
    egress: Literal["proxy", "none", "open"] = Field(
        "none",
        description="how sandboxed commands reach the network: through the egress proxy (the"
        " [agent.egress] rules), not at all, or the whole network (allow_network)",
    )
    egress_hosts: list[str] = Field(
        default_factory=list, description="the hosts [agent.egress] allow adds (registries aside)"
    )
    warning: str | None = Field(None, description="what is missing and how to fix it")


class NotificationStatus(Wire):
    """Whether a run that needs a person raises a desktop notification here, and if not why."""

    desktop: bool = Field(description="a desktop notification is raised for each locus/needsYou")
    program: str | None = Field(None, description="what raises it: notify-send or osascript")
    reason: str | None = Field(None, description="why there are none, and how to have them")
    last_error: str | None = Field(None, description="the last notification that failed, why")


class ConfigStatus(Wire):
    path: str = Field(
        description="the config file the daemon reads (again at each new run); empty: none"
    )
    problems: list[str] = Field(
        default_factory=list,
        description="why the file as it is now is not (all) in force: a line or key that does"
        " not read (the previous settings are kept, and no run starts until it is fixed), or"
        " settings that apply at the daemon's restart",
    )


class DaemonStatus(Wire):
    version: str
    protocol_version: str
    pid: int
    uptime_seconds: float
    socket: str
    clients: int
    runs: dict[str, int] = Field(description="number of runs per state")
    outbox_pending: int
    outbox_dead: int = Field(
        0, description="writes the cloud refused for good (their runs say why: cloudError)"
    )
    auth: AuthStatus
    worker: WorkerStatus
    sandbox: SandboxStatus
    notifications: NotificationStatus = Field(
        default_factory=lambda: NotificationStatus(desktop=False)
    )
    config: ConfigStatus = Field(default_factory=lambda: ConfigStatus(path=""))


# --- tasks (the cloud's, through the daemon's session) -------------------------------------


class Task(Wire):
    id: int
    project_id: int
    title: str
    description: str = ""
    status: str
    repository: str | None = None
    priority: int = 0
    reason: str | None = Field(
        None, description="why it is in its status: the agent's question, a failure's cause"
    )


class TaskList(Wire):
    tasks: list[Task]


class TaskListParams(Wire):
    project_id: int | None = Field(None, description="default: every project the user can see")
    status: str | None = None


class TaskRef(Wire):
    task_id: int


class TaskPullParams(Wire):
    task_id: int | None = Field(None, description="this task (it must be queued), else the next")
    repos: list[str] = Field(
        default_factory=list, description="checkouts to serve (absolute paths; default: config)"
    )
    model_env: dict[ModelVar, str] = _model_env()


class TaskCreateParams(Wire):
    project_id: int
    queued: bool = Field(True, description="straight into the queue (else the backlog)")
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    repository: str | None = Field(None, description="a git remote; the task runs only there")
    priority: int = Field(0, description="higher is claimed first; P0 Urgent is 300")


TaskActionName = Literal["queue", "cancel", "retry", "approve", "request-changes", "answer"]


class TaskActParams(Wire):
    """A person's move of a task, as on the dashboard (the cloud's state table decides)."""

    task_id: int
    action: TaskActionName
    text: str | None = Field(
        None,
        max_length=100_000,
        description="the feedback (request-changes) or the answer (answer), both required;"
        " else an optional comment for the timeline",
    )


class TaskCommentParams(Wire):
    task_id: int
    body: str = Field(min_length=1, max_length=100_000)


class TaskComment(Wire):
    id: int = Field(description="the timeline event's id")
    task_id: int
    body: str


class TaskEditParams(Wire):
    """Only the fields given change; the status never (use locus/tasks/act)."""

    task_id: int
    title: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = None
    priority: int | None = Field(None, description="higher is claimed first; P0 Urgent is 300")


# --- projects --------------------------------------------------------------------------


class Project(Wire):
    id: int
    slug: str
    name: str
    remotes: list[str] = Field(default_factory=list, description="remote fingerprints")


class ProjectResolveParams(Wire):
    project: str | None = Field(
        None, description="a project's number or slug; without one, the checkouts' remotes say"
    )
    repos: list[str] = Field(
        default_factory=list,
        description="checkouts (absolute paths) whose remotes name the project when no project"
        " is given; none that is a checkout with a remote: daemon.repositories",
    )
    one: bool = Field(True, description="exactly one project, else an error that names the fix")


class ProjectList(Wire):
    projects: list[Project]
    remotes: list[str] = Field(
        default_factory=list, description="the checkouts' remote fingerprints that were matched"
    )


# --- runs ----------------------------------------------------------------------------

#: A run's states; what each means, where it may go and what the cloud hears of it is the
#: table in ``locusd/runner/lifecycle.py`` (shown in docs/daemon.md).
RunState = Literal[
    "starting",
    "running",
    "awaiting_review",
    "needs_input",
    "completed",
    "failed",
    "cancelled",
    "committing",
    "committed",
    "reported",
    "report_refused",
    "discarded",
    "revised",
]


class PlanProposal(Wire):
    """One task a planning run proposes: text for a person to accept or skip. Only an
    accepted one's title and description ever reach the cloud."""

    number: int = Field(
        ge=1, description="its place in the run's list (what locus plan --accept names)"
    )
    title: str
    description: str = ""
    likely_files: list[str] = Field(default_factory=list)
    task_id: int | None = Field(None, description="the cloud task made of it, once accepted")


class Run(Wire):
    run_id: str
    task_id: int | None = Field(None, description="the cloud task, or None for a local run")
    title: str
    repo: str
    state: RunState
    outcome: str | None = None
    reason: str | None = None
    question: str | None = None
    summary: str | None = None
    worktree: str | None = None
    branch: str | None = Field(
        None,
        description="the branch holding the accepted commit; none before a commit (the run's"
        " worktree has a detached HEAD, its work kept under `refs/locus/runs/<run-id>`)",
    )
    base_commit: str | None = None
    commit: str | None = Field(None, description="the commit of the accepted change, once made")
    transcript: str | None = None
    cost_usd: float = 0.0
    started_at: str
    ended_at: str | None = None
    cloud_error: str | None = Field(
        None, description="the cloud refused a report about this run, and why (it was not sent)"
    )
    mode: Mode | None = Field(
        None,
        description="the permission mode chosen for this run (`locus run --mode`), kept for"
        " its next rounds; None: the user's config decides",
    )
    agent: str | None = Field(
        None,
        description="the agent chosen for this run (`locus run --agent`), kept for its"
        " next rounds; None: the user's config decides",
    )
    kind: Literal["work", "plan"] = Field(
        "work", description="plan: a planning run (locus plan), read-only, ending in proposals"
    )
    proposals: list[PlanProposal] = Field(
        default_factory=list, description="a planning run's proposed tasks, once it has ended"
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="seven letters derived from the run id, stable, for people to type"
        " (any handle: locus/runs/resolve)"
    )
    @property
    def short_id(self) -> str:
        return short_id(self.run_id)


class RunList(Wire):
    runs: list[Run]


class RunRef(Wire):
    run_id: str


class RunHandle(Wire):
    """What a person typed to name a run."""

    handle: str | None = Field(
        None,
        description="the run id or its short id, a unique prefix of either, 'latest' or '@'"
        " (the run started last), or a task number (that task's latest run); none: the one"
        " run awaiting review",
    )


class RunCancelParams(RunRef):
    requeue: bool = Field(
        False,
        description="a cloud task goes back to the queue instead of being cancelled with the run",
    )


class RunStartParams(Wire):
    """A local run (no cloud task): like ``locus agent run``, owned by the daemon."""

    repo: str = Field(description="absolute path of a git checkout")
    task: str = Field(min_length=1, description="what the agent should do")
    replay: str | None = Field(None, description="a transcript to replay instead of a model")
    mode: Mode | None = _mode("the run")
    agent: str | None = _agent("the run")
    model_env: dict[ModelVar, str] = _model_env()


class PlanStartParams(Wire):
    """A planning run in a checkout: the built-in agent reads it and proposes tasks."""

    repo: str = Field(description="absolute path of a git checkout")
    goal: str = Field(min_length=1, max_length=8000, description="what the tasks should achieve")
    replay: str | None = Field(None, description="a transcript to replay instead of a model")
    model_env: dict[ModelVar, str] = _model_env()


class PlanShowParams(RunRef):
    wait: bool = Field(False, description="answer once the run has ended")


class PlanAcceptParams(RunRef):
    numbers: list[int] = Field(
        min_length=1, description="the proposals to create as tasks (their numbers, from 1)"
    )
    project: str | None = Field(
        None, description="the project's slug or number (default: the one of the checkout)"
    )


class PlanAccepted(Wire):
    run: Run
    created: list[Task] = Field(description="the accepted proposals' tasks, in the backlog")


class WorkerStartParams(Wire):
    agents: int = Field(1, ge=1, le=16, description="runs at once")
    once: bool = Field(False, description="stop after one task")
    task_id: int | None = Field(None, description="only this task (implies once)")
    repos: list[str] = Field(
        default_factory=list, description="checkouts to serve (absolute paths; default: config)"
    )
    mode: Mode | None = _mode("the runs it starts")
    agent: str | None = _agent("the runs it starts")
    model_env: dict[ModelVar, str] = _model_env()


RunEventKind = Literal[
    "state",
    "turn",
    "text",
    "tool",
    "tool_done",
    "output",
    "verify",
    "note",
    "diff",
    "network",
    "completed",
]


class RunEvent(Wire):
    """Notification ``locus/runs/event`` to the run's subscribers; also what ``runs/logs``
    returns. ``seq`` counts from 1 per run, so a client can resume without gaps."""

    run_id: str
    seq: int
    kind: RunEventKind
    text: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class LogsParams(Wire):
    run_id: str
    after: int = Field(0, ge=0, description="only events with seq > after")


class RunEvents(Wire):
    run_id: str
    events: list[RunEvent]


# --- review ------------------------------------------------------------------------------

ReviewAction = Literal["accept", "reject", "edit"]


class DecisionIn(Wire):
    action: ReviewAction
    comment: str | None = Field(None, description="with reject: why (goes back to the agent)")
    lines: list[str] | None = Field(None, description="with edit: the hunk's new side, as edited")


class HunkView(Wire):
    id: str = Field(description="stable: the same change keeps its id across revisions")
    header: str
    lines: list[str] = Field(description="the hunk's body as in a unified diff (' ', '-', '+')")
    decision: DecisionIn | None = None


class FileView(Wire):
    path: str
    old_path: str | None = None
    status: str = Field(description="added, deleted, modified, renamed, mode_changed, binary")
    binary: bool = False
    structural: bool = Field(
        False, description="a rename, mode change or binary change: decided for the whole file"
    )
    hunks: list[HunkView]
    decision: DecisionIn | None = None


class ReviewView(Wire):
    run_id: str
    revision: str = Field(description="send it back with decide/commit; any change bumps it")
    summary: str | None = None
    verification: dict[str, Any] | None = None
    files: list[FileView]
    undecided: int = Field(description="hunks and structural files without a decision")
    left_out: list[str] = Field(
        default_factory=list,
        description="changed files not in the review: more than one hard link (their content"
        " may be a file from outside the worktree)",
    )
    network: list[dict[str, Any]] = Field(
        default_factory=list,
        description="what the run's commands reached through the egress proxy and what it"
        " refused, per host: host, port, allowed, connections, sent, received (bytes), reason",
    )
    commit_message: str | None = Field(
        None,
        description="the message a commit now would get, built from what is accepted (null"
        " while nothing is): the agent's summary only when everything was accepted as proposed",
    )


class ReviewParams(Wire):
    run_id: str


class ContentParams(Wire):
    run_id: str
    path: str


class FileContent(Wire):
    path: str
    base: str | None = Field(description="at the run's base commit (null: the file is new)")
    proposed: str | None = Field(description="in the run's worktree (null: deleted)")


class DecideParams(Wire):
    run_id: str
    revision: str
    decisions: dict[str, DecisionIn] = Field(description="by hunk id, or by file path")


class SendBackParams(Wire):
    run_id: str
    revision: str
    model_env: dict[ModelVar, str] = _model_env()


class CommitParams(Wire):
    run_id: str
    revision: str
    integrate: Literal["none", "merge", "rebase", "push"] = Field(
        "none",
        description="after committing on the task branch: merge into / rebase onto"
        " the checkout's branch, or push the task branch",
    )
    message: str | None = Field(
        None,
        description="the commit message (the task's Locus-Task trailer is added if missing);"
        " default: the review's commitMessage",
    )


class CommitResult(Wire):
    run_id: str
    commit: str
    branch: str | None = Field(
        description="the branch made for the commit (`locus/<run-id>-<slug>`); null when its"
        " name was taken meanwhile: the commit is then on the worktree's detached HEAD"
    )
    integrated: bool | None = Field(None, description="null when integrate is none")
    conflicts: list[str] = Field(default_factory=list)
    message: str = ""
    report_queued: bool = Field(
        description="a cloud task: its report (verification) is queued; the run becomes"
        " `reported` once the cloud acknowledges it"
    )


# --- what left the machine --------------------------------------------------------------------


class AuditRecord(Wire):
    """One upload the cloud acknowledged."""

    at: str
    destination: str
    kind: str = Field(description="status, log, artifact, follow_up, review or graph")
    task_id: int | None = Field(None, description="the task it was about; none for a graph")
    bytes: int
    sha256: str = Field(description="of the JSON body as sent")


class AuditList(Wire):
    entries: list[AuditRecord]


# --- approvals (daemon → client) ---------------------------------------------------------

ApprovalDecision = Literal["allow_once", "allow_always", "reject"]


class ApprovalRequest(Wire):
    """Request ``locus/approval`` sent to every subscriber of the run; the first answer wins."""

    approval_id: str
    run_id: str
    command: str
    reason: str


class ApprovalAnswer(Wire):
    decision: ApprovalDecision


class ApprovalResolved(Wire):
    """Notification ``locus/approval/resolved``: tells the other subscribers it was settled."""

    approval_id: str
    decision: ApprovalDecision


# --- a person is needed (daemon → every client) --------------------------------------------

NeedsYouKind = Literal["approval", "question", "review"]


class NeedsYou(Wire):
    """Notification ``locus/needsYou`` to every connected client, once per event: a command
    waits for an approval, the agent asked a question (the run is ``needs_input``), or a run
    awaits review. Texts come from the agent and the task: data, to be shown as text."""

    run_id: str
    kind: NeedsYouKind
    task_id: int | None = Field(None, description="the cloud task, or None for a local run")
    title: str = Field(description="the run's title")
    repo: str = Field(description="the checkout the run works on (to match a workspace)")
    text: str = Field(
        "", description="the command to approve, the question or the summary (cut short)"
    )
    approval_id: str | None = Field(None, description="with approval: the pending request")
