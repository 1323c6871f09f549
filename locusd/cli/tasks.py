"""``locus tasks list|show|create|pull``: the cloud's tasks, through the daemon's session
(the moves — queue, cancel, approve… — are :mod:`locusd.cli.taskmoves`)."""

from __future__ import annotations

from pathlib import Path

import click

from cloud_api.domain.priorities import level_of
from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.output import Column, out
from locusd.cli.taskmoves import MOVES
from locusd.cli.taskview import (
    parse_priority,
    parse_title,
    project_option,
    projects,
    show_task,
)
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
@project_option
@click.option("--status", help="only tasks in this status (e.g. queued)")
@json_option
def list_(project: str | None, status: str | None, as_json: bool) -> None:
    """List tasks: of the project named, else of this checkout's project, else of every
    project you can see."""

    async def work() -> TaskList:
        async with daemon() as client:
            found = await projects(client, project, one=project is not None)
            ids: list[int | None] = [p.id for p in found] or [None]
            listed: list[Task] = []
            for project_id in ids:
                params = TaskListParams(project_id=project_id, status=status)
                listed += (await client.call("locus/tasks/list", params, TaskList)).tasks
            return TaskList(tasks=listed)

    result = run(work)

    def human() -> None:
        out.table(
            [
                Column("id", whole=True),
                Column("project"),
                Column("status"),
                Column("title"),
                Column("priority"),
            ],
            ([t.id, t.project_id, t.status, t.title, level_of(t.priority).p] for t in result.tasks),
        )

    show(result, as_json, human)


@tasks.command("show")
@click.argument("task_id", type=int)
@json_option
def show_(task_id: int, as_json: bool) -> None:
    """Show one task."""

    async def work() -> Task:
        async with daemon() as client:
            return await client.call("locus/tasks/show", TaskRef(task_id=task_id), Task)

    show_task(run(work), as_json)


@tasks.command("create")
@project_option
@click.option("--title", required=True)
@click.option("--description", default="")
@click.option("--repository", help="a git remote: only a daemon serving it runs the task")
@click.option(
    "--priority", default="low", show_default=True, help="urgent, high, medium or low (P0…P3)"
)
@click.option("--backlog", is_flag=True, help="put it in the backlog instead of the queue")
@json_option
def create(
    project: str | None,
    title: str,
    description: str,
    repository: str | None,
    priority: str,
    backlog: bool,
    as_json: bool,
) -> None:
    """Create a task (queued, so a worker picks it up)."""
    title = parse_title(title)
    level = parse_priority(priority)

    async def work() -> Task:
        async with daemon() as client:
            (found,) = await projects(client, project)
            params = TaskCreateParams(
                project_id=found.id,
                title=title,
                description=description,
                repository=repository,
                priority=level,
                queued=not backlog,
            )
            return await client.call("locus/tasks/create", params, Task)

    show_task(run(work), as_json)


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


for move in MOVES:
    tasks.add_command(move)
