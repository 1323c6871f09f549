"""``locus tasks list|show|create``: the cloud's tasks, through the daemon's session."""

from __future__ import annotations

from pathlib import Path

import click

from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.output import Column, out
from locusd.modelenv import model_env
from locusd.protocol.messages import (
    Run,
    Task,
    TaskCreateParams,
    TaskList,
    TaskListParams,
    TaskPullParams,
    TaskRef,
)


@click.group()
def tasks() -> None:
    """Tasks in the cloud."""


@tasks.command("list")
@click.option("--project", "project_id", type=int, help="default: every project you can see")
@click.option("--status", help="only tasks in this status (e.g. queued)")
@json_option
def list_(project_id: int | None, status: str | None, as_json: bool) -> None:
    """List tasks."""

    async def work() -> TaskList:
        async with daemon() as client:
            params = TaskListParams(project_id=project_id, status=status)
            return await client.call("locus/tasks/list", params, TaskList)

    result = run(work)

    def human() -> None:
        out.table(
            [Column("id", whole=True), Column("project"), Column("status"), Column("title")],
            ([t.id, t.project_id, t.status, t.title] for t in result.tasks),
        )

    show(result, as_json, human)


def _show_task(task: Task, as_json: bool) -> None:
    def human() -> None:
        out.say(
            (f"#{task.id}", "bold"), f" {task.title}  ({task.status}, project {task.project_id})"
        )
        if task.repository:
            out.say(f"repository {task.repository}")
        if task.description:
            out.say(task.description)

    show(task, as_json, human)


@tasks.command("show")
@click.argument("task_id", type=int)
@json_option
def show_(task_id: int, as_json: bool) -> None:
    """Show one task."""

    async def work() -> Task:
        async with daemon() as client:
            return await client.call("locus/tasks/show", TaskRef(task_id=task_id), Task)

    _show_task(run(work), as_json)


@tasks.command("create")
@click.option("--project", "project_id", type=int, required=True)
@click.option("--title", required=True)
@click.option("--description", default="")
@click.option("--repository", help="a git remote: only a daemon serving it runs the task")
@click.option("--backlog", is_flag=True, help="put it in the backlog instead of the queue")
@json_option
def create(
    project_id: int,
    title: str,
    description: str,
    repository: str | None,
    backlog: bool,
    as_json: bool,
) -> None:
    """Create a task (queued, so a worker picks it up)."""
    params = TaskCreateParams(
        project_id=project_id,
        title=title,
        description=description,
        repository=repository,
        queued=not backlog,
    )

    async def work() -> Task:
        async with daemon() as client:
            return await client.call("locus/tasks/create", params, Task)

    _show_task(run(work), as_json)


@tasks.command("pull")
@click.argument("task_id", type=int, required=False)
@click.option(
    "--repo",
    "repos",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="a checkout to serve (repeatable; default: the current directory)",
)
@json_option
def pull(task_id: int | None, repos: tuple[Path, ...], as_json: bool) -> None:
    """Claim a task now (TASK_ID, or the next one) and start its run in the daemon; follow it
    with locus logs RUN -f."""
    params = TaskPullParams(
        task_id=task_id,
        repos=[str(p.resolve()) for p in (repos or (Path.cwd(),))],
        model_env=model_env(),  # this shell's model settings, for this run
    )

    async def work() -> Run:
        async with daemon() as client:
            return await client.call("locus/tasks/pull", params, Run)

    run_ = run(work)
    show(run_, as_json, lambda: out.say(f"started {run_.run_id} for task #{run_.task_id}"))
