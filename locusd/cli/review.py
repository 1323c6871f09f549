"""``locus review RUN``: a run's changes in the terminal — summary and verification first, then
each file and hunk, coloured — and the decisions: ``--accept-all`` / ``--reject-all``, then
``--commit`` (with ``--integrate merge|rebase|push``) or ``--discard``. ``--json`` prints the
review (or the commit's result) for scripts.
"""

from __future__ import annotations

import click
from rich.syntax import Syntax

from locusd.cli.common import daemon, json_option, out, run, show
from locusd.protocol.messages import (
    CommitParams,
    CommitResult,
    DecideParams,
    DecisionIn,
    ReviewParams,
    ReviewView,
    Run,
)


def _show_review(view: ReviewView) -> None:
    out.print(f"[bold]Review of {view.run_id}[/] (revision {view.revision})")
    if view.summary:
        out.print(f"\n[bold]Summary[/]\n{view.summary}")
    check = view.verification
    if check:
        verdict = "[green]passed[/]" if check.get("passed") else "[red]FAILED[/]"
        out.print(f"\n[bold]Verification[/] `{check.get('command')}` {verdict}")
    for file in view.files:
        decided = f" — {file.decision.action}" if file.decision else ""
        out.print(f"\n[bold]{file.path}[/] ({file.status}){decided}")
        for hunk in file.hunks:
            mark = f"  [{hunk.decision.action}]" if hunk.decision else ""
            body = "\n".join([hunk.header, *hunk.lines])
            out.print(f"[dim]hunk {hunk.id}[/]{mark}")
            out.print(Syntax(body, "diff", word_wrap=True))
    out.print(f"\n{view.undecided} undecided")


@click.command("review")
@click.argument("run_id")
@click.option("--accept-all", is_flag=True, help="accept every change")
@click.option("--reject-all", is_flag=True, help="reject every change")
@click.option("--comment", help="with --reject-all: why (for the agent's next round)")
@click.option("--commit", "do_commit", is_flag=True, help="commit what is accepted")
@click.option(
    "--integrate",
    type=click.Choice(["none", "merge", "rebase", "push"]),
    default="none",
    show_default=True,
    help="with --commit: take the commit to your branch, or push it",
)
@click.option("--discard", is_flag=True, help="throw the run's changes away")
@json_option
def review(
    run_id: str,
    accept_all: bool,
    reject_all: bool,
    comment: str | None,
    do_commit: bool,
    integrate: str,
    discard: bool,
    as_json: bool,
) -> None:
    """Review a run's changes (and decide, commit or discard them)."""
    if accept_all and reject_all:
        raise click.UsageError("--accept-all or --reject-all, not both")
    if discard and (do_commit or accept_all):
        raise click.UsageError("--discard throws everything away: no --commit or --accept-all")

    async def work() -> ReviewView | CommitResult | Run:
        async with daemon() as client:
            ref = ReviewParams(run_id=run_id)
            if discard:
                return await client.call("locus/review/discard", ref, Run)
            view = await client.call("locus/review/get", ref, ReviewView)
            if accept_all or reject_all:
                decision = (
                    DecisionIn(action="accept")
                    if accept_all
                    else DecisionIn(action="reject", comment=comment)
                )
                decisions = {file.path: decision for file in view.files}
                params = DecideParams(run_id=run_id, revision=view.revision, decisions=decisions)
                view = await client.call("locus/review/decide", params, ReviewView)
            if do_commit:
                committed = CommitParams(run_id=run_id, revision=view.revision, integrate=integrate)
                return await client.call("locus/review/commit", committed, CommitResult)
            return view

    result = run(work)

    def human() -> None:
        if isinstance(result, ReviewView):
            _show_review(result)
        elif isinstance(result, CommitResult):
            out.print(f"committed {result.commit[:12]} on {result.branch}")
            if result.message:
                out.print(result.message)
            if result.reported:
                out.print("reported to the cloud (verification)")
        else:
            out.print(f"{result.run_id}: {result.state}")

    show(result, as_json, human)
