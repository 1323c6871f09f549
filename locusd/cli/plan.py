"""``locus plan "goal"``: a planning run in the daemon (the agent reads the checkout, changes
nothing, proposes tasks), then the person accepts or skips each proposal; the accepted ones
become backlog tasks in the checkout's cloud project. ``locus plan --accept 1,3 RUN`` accepts
later (or again: an accepted proposal is never created twice)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from locusd.cli.common import CANCELLED, FAILED, daemon, json_option, run, show
from locusd.cli.handles import resolved
from locusd.cli.output import err, fail, out, print_json
from locusd.cli.rpc import DaemonClient
from locusd.modelenv import model_env
from locusd.protocol.messages import (
    PlanAccepted,
    PlanAcceptParams,
    PlanProposal,
    PlanShowParams,
    PlanStartParams,
    Run,
    RunCancelParams,
)


def parse_numbers(value: str, run: Run) -> list[int]:
    """``1,3`` (or ``all``) as proposal numbers of ``run``, or a usage error naming --accept."""
    if value.strip().casefold() == "all":
        return [p.number for p in run.proposals]
    try:
        numbers = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        numbers = []
    if not numbers:
        raise click.BadParameter(
            f"{value!r}: give proposal numbers separated by commas (e.g. 1,3) or all",
            param_hint="--accept",
        )
    return numbers


def show_proposal(proposal: PlanProposal) -> None:
    """One proposal, its text as data (control characters shown, never obeyed)."""
    created = f"  (task #{proposal.task_id})" if proposal.task_id is not None else ""
    out.say((f"{proposal.number}.", "bold"), " ", proposal.title, created)
    if proposal.description:
        out.say(proposal.description)
    if proposal.likely_files:
        out.say(("likely files:", "bold"), " ", ", ".join(proposal.likely_files))
    out.say("")


def ask(run: Run) -> list[int]:
    """Accept or skip each proposal at the terminal (Enter: skip)."""
    return [
        p.number
        for p in run.proposals
        if p.task_id is None and click.confirm(f"accept {p.number}?", default=False, err=True)
    ]


def show_accepted(accepted: PlanAccepted, as_json: bool) -> None:
    def human() -> None:
        for task in accepted.created:
            out.say((f"#{task.id}", "bold"), f" {task.title}  ({task.status})")

    show(accepted, as_json, human)


async def _accept(
    client: DaemonClient, run: Run, numbers: list[int], project: str | None
) -> PlanAccepted:
    params = PlanAcceptParams(run_id=run.run_id, numbers=numbers, project=project)
    return await client.call("locus/plan/accept", params, PlanAccepted)


@click.command("plan")
@click.argument("goal", metavar="GOAL|RUN")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="the checkout to plan in (default: the current directory)",
)
@click.option(
    "--accept",
    "accept",
    metavar="N,N…|all",
    help="accept these proposals of the planning run RUN (instead of starting one)",
)
@click.option("--yes", is_flag=True, help="accept every proposal without asking")
@click.option("--project", metavar="SLUG|ID", help="the project (default: the checkout's)")
@json_option
def plan(
    goal: str,
    repo: Path | None,
    accept: str | None,
    yes: bool,
    project: str | None,
    as_json: bool,
) -> None:
    """Ask the agent to propose tasks (it reads the code here); accept them into the backlog.

    The agent reads the checkout for GOAL and changes nothing; you accept or skip each
    proposal, and the accepted ones become backlog tasks of the checkout's project. Only
    their text leaves this machine. With --json the proposals are printed and none is
    accepted unless --yes (or later: locus plan --accept 1,3 RUN)."""
    if accept is not None:
        _accept_later(goal, accept, project, as_json)
        return
    if not goal.strip():
        raise click.BadParameter("is empty: say what the tasks should achieve", param_hint="GOAL")
    checkout = (repo or Path.cwd()).resolve()
    params = PlanStartParams(repo=str(checkout), goal=goal, model_env=model_env())

    async def planned() -> Run | None:
        async with daemon() as client:
            started = await client.call("locus/plan/start", params, Run)
            err.say(f"planning run {started.short_id} started: the agent reads {checkout}")
            # Ctrl-C stops the run too (as locus run's do), rather than leave it going.
            interrupted = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)
            show = PlanShowParams(run_id=started.run_id, wait=True)
            waiting = asyncio.ensure_future(client.call("locus/plan/show", show, Run))
            stopping = asyncio.ensure_future(interrupted.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if waiting.done():
                return waiting.result()
            await client.call("locus/runs/cancel", RunCancelParams(run_id=started.run_id), Run)
            await waiting  # the run's end (cancelled): the call is answered, not abandoned
            return None

    ended = run(planned)
    if ended is None:
        fail("interrupted: the planning run was cancelled", CANCELLED)
    if not ended.proposals:
        fail(
            f"planning run {ended.short_id} ended {ended.state}: {ended.reason or 'no proposals'}",
            FAILED,
        )
    if as_json and not yes:
        print_json(ended)
        return
    if not as_json:
        for proposal in ended.proposals:
            show_proposal(proposal)
    if yes:
        numbers = [p.number for p in ended.proposals]
    elif sys.stdin.isatty():
        numbers = ask(ended)
    else:
        numbers = []
    if not numbers:
        err.say(f"nothing accepted; later: locus plan --accept 1,3 {ended.short_id}")
        return

    async def accepted() -> PlanAccepted:
        async with daemon() as client:
            return await _accept(client, ended, numbers, project)

    show_accepted(run(accepted), as_json)


def _accept_later(handle: str, value: str, project: str | None, as_json: bool) -> None:
    async def work() -> PlanAccepted:
        async with daemon() as client:
            run_id = await resolved(client, handle)
            found = await client.call("locus/plan/show", PlanShowParams(run_id=run_id), Run)
            return await _accept(client, found, parse_numbers(value, found), project)

    show_accepted(run(work), as_json)
