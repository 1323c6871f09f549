"""``locus tasks queue|cancel|retry|approve|request-changes|answer|comment|edit``: what a person
does to a task on the dashboard, from the terminal. Each is one protocol call; the cloud's state
table decides, and a move it refuses says from which status to which, and what applies."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import get_args

import click

from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.output import out
from locusd.cli.taskview import parse_priority, parse_title, show_task
from locusd.protocol.messages import (
    Task,
    TaskActionName,
    TaskActParams,
    TaskComment,
    TaskCommentParams,
    TaskEditParams,
)

#: What each move is for (its help), and the name of its text when it needs one.
HELP: dict[str, tuple[str, str | None]] = {
    "queue": ("Queue a backlog task, so a worker picks it up.", None),
    "cancel": ("Cancel a task (a worker running it is told at once).", None),
    "retry": ("Queue a failed or cancelled task again.", None),
    "approve": ("Approve a task in verification: it is done.", None),
    "request-changes": (
        "Send a task in verification back to the queue, with FEEDBACK for the next attempt.",
        "FEEDBACK",
    ),
    "answer": (
        "Answer the question the agent asked (a task that needs input); it is queued again.",
        "ANSWER",
    ),
}


def _text(value: str | None, what: str) -> str:
    """The text argument; ``-`` reads it from stdin. Empty is refused, naming the fix."""
    if value == "-":
        value = sys.stdin.read()
    if value is None or not value.strip():
        raise click.UsageError(f"give the {what} as an argument (or - to read it from stdin)")
    if len(value) > 100_000:
        raise click.UsageError(f"the {what} is longer than 100000 characters")
    return value


def _moved(task: Task, as_json: bool) -> None:
    show(task, as_json, lambda: out.say((f"#{task.id}", "bold"), f" {task.status}  ", task.title))


def _move(action: TaskActionName) -> click.Command:
    summary, needs = HELP[action]

    # Moves with a text get no --comment, and the others no text: each default is None.
    def move(
        task_id: int, as_json: bool, text: str | None = None, comment: str | None = None
    ) -> None:
        said = _text(text, needs.lower()) if needs else comment
        if not needs and said is not None:
            said = _text(said, "comment")
        params = TaskActParams(task_id=task_id, action=action, text=said)

        async def work() -> Task:
            async with daemon() as client:
                return await client.call("locus/tasks/act", params, Task)

        _moved(run(work), as_json)

    command: Callable[..., None] = json_option(move)
    if needs:
        command = click.argument("text", metavar=needs, required=False)(command)
    else:
        command = click.option("--comment", help="a note for the task's timeline")(command)
    command = click.argument("task_id", metavar="TASK", type=int)(command)
    return click.command(action, help=summary)(command)


@click.command("comment")
@click.argument("task_id", metavar="TASK", type=int)
@click.argument("body", metavar="TEXT", required=False)
@json_option
def comment(task_id: int, body: str | None, as_json: bool) -> None:
    """Add a comment to a task's timeline (TEXT, or - to read it from stdin)."""
    params = TaskCommentParams(task_id=task_id, body=_text(body, "comment"))

    async def work() -> TaskComment:
        async with daemon() as client:
            return await client.call("locus/tasks/comment", params, TaskComment)

    said = run(work)
    show(said, as_json, lambda: out.say(f"commented on #{said.task_id}"))


@click.command("edit")
@click.argument("task_id", metavar="TASK", type=int)
@click.option("--title")
@click.option("--description", help="the new description (- reads it from stdin)")
@click.option("--priority", help="urgent, high, medium or low (P0…P3), or a number")
@json_option
def edit(
    task_id: int,
    title: str | None,
    description: str | None,
    priority: str | None,
    as_json: bool,
) -> None:
    """Change a task's title, description or priority (its status: the moves above)."""
    title = parse_title(title) if title is not None else None
    if description == "-":
        description = sys.stdin.read()
    level = parse_priority(priority) if priority is not None else None
    if title is None and description is None and level is None:
        raise click.UsageError(
            "nothing to change: give locus tasks edit --title, --description or --priority"
        )
    params = TaskEditParams(task_id=task_id, title=title, description=description, priority=level)

    async def work() -> Task:
        async with daemon() as client:
            return await client.call("locus/tasks/edit", params, Task)

    show_task(run(work), as_json)


MOVES: list[click.Command] = [*(_move(a) for a in get_args(TaskActionName)), comment, edit]
