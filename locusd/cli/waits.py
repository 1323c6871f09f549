"""Why ``locus run`` would wait: the task asked for is not queued (and what moves it there), or
nothing is queued for the checkouts it serves. Said before the worker starts, so a person is
never left watching a spinner that cannot end; ``--no-wait`` turns it into an error.

Only advice: what cannot be asked (a worker-token login sees no project list) says nothing,
and the worker itself decides what it claims."""

from __future__ import annotations

from cloud_api.domain.remotes import InvalidRemote, fingerprint
from locusd.cli.rpc import DaemonClient, DaemonError
from locusd.protocol.messages import (
    ProjectList,
    ProjectResolveParams,
    Task,
    TaskList,
    TaskListParams,
    TaskRef,
)

#: What moves a task in each status (but queued) towards the queue, for the message.
NEXT_STEP = {
    "backlog": "queue it with `locus tasks queue {id}`",
    "failed": "retry it with `locus tasks retry {id}`",
    "cancelled": "retry it with `locus tasks retry {id}`",
    "needs_input": "the agent asked a question: answer it with `locus tasks answer {id} TEXT`",
    "verification": "approve it (`locus tasks approve {id}`) or send it back"
    " (`locus tasks request-changes {id} TEXT`)",
    "awaiting_review": "its change waits for review on the machine that ran it",
    "claimed": "a worker holds it; it comes back only if that worker gives it back",
    "running": "a worker holds it; it comes back only if that worker gives it back",
    "done": "it is done: nothing to run",
}


def _serves(repository: str | None, remotes: list[str]) -> bool:
    """Whether a task for ``repository`` (None: any) can be claimed for these remotes."""
    if repository is None:
        return True
    try:
        return fingerprint(repository) in remotes
    except InvalidRemote:
        return False


async def why_waiting(client: DaemonClient, task_id: int | None, repos: list[str]) -> str | None:
    """Why a worker for ``repos`` would wait for ``task_id`` (or for any task), or None."""
    try:
        resolve = ProjectResolveParams(repos=repos, one=False)
        served = await client.call("locus/projects/resolve", resolve, ProjectList)
        if task_id is not None:
            task = await client.call("locus/tasks/show", TaskRef(task_id=task_id), Task)
            return _task_waits(task, served.remotes)
        if not served.projects:
            return None  # the worker's start says what is missing
        queued: list[Task] = []
        for project in served.projects:
            params = TaskListParams(project_id=project.id, status="queued")
            queued += (await client.call("locus/tasks/list", params, TaskList)).tasks
    except DaemonError:
        return None  # cannot tell: the worker's own answers (or its wait) stand
    if any(_serves(t.repository, served.remotes) for t in queued):
        return None
    names = ", ".join(p.slug for p in served.projects)
    return (
        f"nothing is queued for {', '.join(served.remotes)} (project {names}): create a task"
        " with `locus tasks create --title …`, or queue one from the backlog"
        " (`locus tasks list --status backlog`, then `locus tasks queue N`)"
    )


def _task_waits(task: Task, remotes: list[str]) -> str | None:
    if task.status != "queued":
        step = NEXT_STEP.get(task.status, "it is not queued").format(id=task.id)
        return f"task {task.id} is in {task.status}; {step}"
    if not _serves(task.repository, remotes):
        return (
            f"task {task.id} is for {task.repository}, which these checkouts do not serve"
            f" ({', '.join(remotes) or 'no git remote'}): run from a checkout of it"
            " (or pass locus run --repo PATH)"
        )
    return None
