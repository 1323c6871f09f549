"""What the ``locus tasks`` commands share: how a task is printed, how a person names a
project (number, slug, or the checkout they are in) and a priority (Urgent … Low, P0 … P3)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import click
from pydantic import TypeAdapter, ValidationError

from cloud_api.domain.priorities import LEVELS, level_of
from cloud_api.schemas.tasks import Priority, Title
from locusd.cli.common import show
from locusd.cli.output import out
from locusd.cli.rpc import DaemonClient
from locusd.protocol.messages import Project, ProjectList, ProjectResolveParams, Task

T = TypeVar("T")
PRIORITY: TypeAdapter[int] = TypeAdapter(Priority)
TITLE: TypeAdapter[str] = TypeAdapter(Title)

project_option = click.option(
    "--project",
    metavar="SLUG|ID",
    help="the project's slug or number (default: the project listing this checkout's remote)",
)


def priority_label(priority: int) -> str:
    level = level_of(priority)
    return f"{level.p} {level.name}"


def checked(adapter: TypeAdapter[T], value: object, option: str) -> T:
    """``value`` as the cloud's own field type takes it, or a usage error naming ``option``
    and what the cloud accepts (before anything is sent)."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        problem = "; ".join(error["msg"] for error in exc.errors(include_url=False))
        raise click.BadParameter(problem, param_hint=option) from None


def parse_priority(value: str) -> int:
    """``urgent``/``high``/``medium``/``low``, ``P0``…``P3`` (any case) or an integer."""
    wanted = value.strip().casefold()
    for level in LEVELS:
        if wanted in (level.key, level.name.casefold(), level.p.casefold()):
            return level.value
    try:
        number = int(wanted)
    except ValueError:
        names = ", ".join(f"{level.key} ({level.p})" for level in LEVELS)
        raise click.BadParameter(
            f"{value!r} is not a priority: use {names} or a number", param_hint="--priority"
        ) from None
    return checked(PRIORITY, number, "--priority")


def parse_title(value: str) -> str:
    return checked(TITLE, value, "--title")


def show_task(task: Task, as_json: bool) -> None:
    def human() -> None:
        out.say(
            (f"#{task.id}", "bold"), f" {task.title}  ({task.status}, project {task.project_id})"
        )
        out.say(f"priority {priority_label(task.priority)}")
        if task.repository:
            out.say(f"repository {task.repository}")
        if task.reason:
            what = "question" if task.status == "needs_input" else "reason"
            out.say((f"{what}:", "bold"), " ", task.reason)
        if task.description:
            out.say(task.description)

    show(task, as_json, human)


async def projects(client: DaemonClient, name: str | None, *, one: bool = True) -> list[Project]:
    """The project ``name`` designates, or without one the projects listing the current
    checkout's remote (with ``one``, exactly one: the daemon says how to choose)."""
    params = ProjectResolveParams(project=name, repos=[str(Path.cwd().resolve())], one=one)
    return (await client.call("locus/projects/resolve", params, ProjectList)).projects
