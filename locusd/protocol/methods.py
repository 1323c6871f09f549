"""The method table: each JSON-RPC method's name, params model, result model and what it does.
The core marks a handler per entry (``@handles``, see :mod:`locusd.server.handlers`);
``docs/protocol.md`` is generated from it."""

from __future__ import annotations

from dataclasses import dataclass

from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol import messages as m
from locusd.protocol.base import Empty, Wire

__all__ = ["METHODS", "NOTIFICATIONS", "PROTOCOL_VERSION", "SERVER_REQUESTS", "Method"]


@dataclass(frozen=True)
class Method:
    name: str
    params: type[Wire]
    result: type[Wire]
    doc: str


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("locus/auth/status", Empty, m.AuthStatus, "Who the daemon is logged in as."),
        Method(
            "locus/auth/login",
            m.LoginParams,
            m.AuthStatus,
            "Log in to a cloud with an email and password, or a token; the secret goes to the"
            " OS keyring (or a 0600 file, with a warning, where there is none).",
        ),
        Method("locus/auth/logout", Empty, m.AuthStatus, "Forget the cloud secret."),
        Method("locus/daemon/status", Empty, m.DaemonStatus, "The daemon's state at a glance."),
        Method("locus/daemon/shutdown", Empty, Empty, "Stop the daemon (runs are cancelled)."),
        Method(
            "locus/audit/list",
            Empty,
            m.AuditList,
            "Every upload to the cloud: when, to where, what kind, size, sha256.",
        ),
        Method("locus/tasks/list", m.TaskListParams, m.TaskList, "Tasks from the cloud."),
        Method("locus/tasks/show", m.TaskRef, m.Task, "One task."),
        Method("locus/tasks/create", m.TaskCreateParams, m.Task, "Create a queued task."),
        Method(
            "locus/tasks/act",
            m.TaskActParams,
            m.Task,
            "Move a task as a person does on the dashboard: queue, cancel, retry, approve,"
            " request-changes (with feedback) or answer (the agent's question); a move its"
            " status does not allow is refused (invalid_task_state) with what applies.",
        ),
        Method(
            "locus/tasks/comment", m.TaskCommentParams, m.TaskComment, "Comment on the timeline."
        ),
        Method(
            "locus/tasks/edit",
            m.TaskEditParams,
            m.Task,
            "Change a task's title, description or priority (not its status).",
        ),
        Method(
            "locus/projects/resolve",
            m.ProjectResolveParams,
            m.ProjectList,
            "The project a number or slug names, or, without one, the projects that list the"
            " checkouts' remotes; an unknown or ambiguous name is refused with the fix.",
        ),
        Method(
            "locus/tasks/pull",
            m.TaskPullParams,
            m.Run,
            "Claim one task now (named, or the next for these repositories) and start its run.",
        ),
        Method(
            "locus/worker/start",
            m.WorkerStartParams,
            m.WorkerStatus,
            "Claim tasks for the repositories this daemon serves and run them.",
        ),
        Method("locus/worker/stop", Empty, m.WorkerStatus, "Stop claiming (runs go on)."),
        Method("locus/runs/start", m.RunStartParams, m.Run, "Start a local run (no cloud)."),
        Method("locus/runs/list", Empty, m.RunList, "Every run the daemon knows."),
        Method(
            "locus/plan/start",
            m.PlanStartParams,
            m.Run,
            "Start a planning run: the agent reads the checkout (read-only) and proposes tasks.",
        ),
        Method(
            "locus/plan/show",
            m.PlanShowParams,
            m.Run,
            "A planning run with its proposals (with wait: once it has ended).",
        ),
        Method(
            "locus/plan/accept",
            m.PlanAcceptParams,
            m.PlanAccepted,
            "Create the chosen proposals as backlog tasks in the checkout's project (again:"
            " no duplicate).",
        ),
        Method("locus/runs/show", m.RunRef, m.Run, "One run."),
        Method(
            "locus/runs/resolve",
            m.RunHandle,
            m.Run,
            "The run a handle names (a short id, a prefix, a task number, latest), or"
            " run_not_found saying why none or which several.",
        ),
        Method(
            "locus/runs/subscribe",
            m.RunRef,
            m.RunEvents,
            "Receive the run's events as locus/runs/event notifications; returns those so far.",
        ),
        Method("locus/runs/unsubscribe", m.RunRef, Empty, "Stop receiving the run's events."),
        Method(
            "locus/runs/cancel",
            m.RunCancelParams,
            m.Run,
            "Cancel a run (its command is killed); its cloud task is cancelled, or given back"
            " with requeue.",
        ),
        Method("locus/runs/logs", m.LogsParams, m.RunEvents, "The run's events after a seq."),
    )
}

METHODS.update(
    (method.name, method)
    for method in (
        Method(
            "locus/review/get",
            m.ReviewParams,
            m.ReviewView,
            "A run's diff as files and hunks, with the decisions so far, summary and evidence.",
        ),
        Method(
            "locus/review/content",
            m.ContentParams,
            m.FileContent,
            "A file's base and proposed text (for side-by-side views).",
        ),
        Method(
            "locus/review/decide",
            m.DecideParams,
            m.ReviewView,
            "Accept, reject (with a comment) or edit hunks or whole files; a stale revision is"
            " refused (review_stale).",
        ),
        Method(
            "locus/review/commit",
            m.CommitParams,
            m.CommitResult,
            "Commit the accepted changes on the task branch (the user's identity, a Locus-Task"
            " trailer), optionally merge/rebase/push, and report a cloud task (verification).",
        ),
        Method(
            "locus/review/send_back",
            m.SendBackParams,
            m.Run,
            "Send the rejected changes, with their comments, back to the agent: a new run"
            " continues in the same worktree (a new revision follows).",
        ),
        Method(
            "locus/review/resubmit",
            m.ReviewParams,
            m.Run,
            "Offer a committed run whose report the cloud refused (report_refused) again: the"
            " task, queued again, is claimed anew and the commit reported under the new claim.",
        ),
        Method(
            "locus/review/discard",
            m.ReviewParams,
            m.Run,
            "Throw the run's changes away (the worktree goes back to the pool).",
        ),
    )
)

NOTIFICATIONS: dict[str, tuple[type[Wire], str]] = {
    "locus/runs/event": (m.RunEvent, "An event of a run the client subscribed to."),
    "locus/runs/started": (m.Run, "A run started (the worker claimed a task, or a client)."),
    "locus/approval/resolved": (m.ApprovalResolved, "An approval was answered (maybe elsewhere)."),
    "locus/needsYou": (
        m.NeedsYou,
        "A run needs a person: an approval, a question or a review (to every client, once).",
    ),
}

#: Requests the daemon sends to clients: name → (params, result, doc).
SERVER_REQUESTS: dict[str, tuple[type[Wire], type[Wire], str]] = {
    "locus/approval": (
        m.ApprovalRequest,
        m.ApprovalAnswer,
        "May the agent run this command? Sent to every subscriber of the run; the first"
        " answer wins.",
    ),
}
