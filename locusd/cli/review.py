"""``locus review RUN``: a run's changes in the terminal — summary and verification first, then
each file and hunk, coloured — and the decisions: ``--accept-all`` / ``--reject-all``, then
``--commit`` (with ``--integrate merge|rebase|push``), ``--discard``, or ``--resubmit`` (a
commit whose report the cloud refused). ``--json`` prints the
review (or the commit's result) for scripts.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.handles import resolved
from locusd.cli.network import network_lines
from locusd.cli.output import diff_lines, out
from locusd.modelenv import model_env
from locusd.protocol.messages import (
    CommitParams,
    CommitResult,
    DecideParams,
    DecisionIn,
    ReviewParams,
    ReviewView,
    Run,
    SendBackParams,
)


def _show_review(view: ReviewView) -> None:
    out.say((f"Review of {view.run_id}", "bold"), f" (revision {view.revision})")
    if view.summary:
        out.say("\n", ("Summary", "bold"), "\n", view.summary)
    check = view.verification
    if check:
        _show_check(check)
    for line in network_lines(view.network):
        out.say(line)
    for file in view.files:
        decided = f" — {file.decision.action}" if file.decision else ""
        out.say("\n", (file.path, "bold"), f" ({file.status}){decided}")
        for hunk in file.hunks:
            mark = f"  [{hunk.decision.action}]" if hunk.decision else ""
            out.say((f"hunk {hunk.id}", "dim"), mark)
            out.say(diff_lines([hunk.header, *hunk.lines]))
    if view.left_out:
        out.say(
            "\n",
            ("Left out of the review:", "yellow"),
            f" {', '.join(view.left_out)} — more than one hard link (it may be a file from"
            " outside the worktree); it cannot be accepted",
        )
    out.say(f"\n{view.undecided} undecided")


def _show_check(check: dict[str, Any]) -> None:
    """The verdict first; a check whose definitions the diff changed is shown as unverifiable,
    above everything else, with what changed: its green proves nothing."""
    changes = check.get("check_changes") or []
    if changes:
        out.say(
            "\n",
            ("UNVERIFIED", "bold red"),
            " the diff changes what the check depends on; its result proves nothing — review"
            " these first:",
        )
        for change in changes:
            out.say("  ", (str(change.get("path")), "red"), f": {change.get('why')}")
    verdict = ("passed", "green") if check.get("passed") else ("FAILED", "red")
    why = f" — {check['failure']}" if check.get("failure") else ""
    out.say("\n", ("Verification", "bold"), f" `{check.get('command')}` ", verdict, why)
    counts = check.get("counts")
    if counts:
        out.say(
            f"  {counts.get('parser')}: {counts.get('passed')} passed, {counts.get('failed')}"
            f" failed, {counts.get('skipped')} skipped"
        )
    if check.get("reason"):
        out.say("  ", (f"chosen because: {check['reason']}", "dim"))


CHOICES = "a accept · r reject · c reject with a comment · e edit · s skip · q quit"


def _ask_each(view: ReviewView) -> dict[str, DecisionIn]:
    """Hunk by hunk, as ``git add -p`` does; structural changes (renames, modes, binaries)
    are asked once per file. Returns the decisions made (skipped ones are left out)."""
    out.say((CHOICES, "dim"))
    decisions: dict[str, DecisionIn] = {}
    targets: list[tuple[str, str, list[str]]] = []
    for file in view.files:
        if file.structural and not file.hunks:
            targets.append((file.path, f"{file.path}: {file.status}", []))
        for hunk in file.hunks:
            targets.append((hunk.id, f"{file.path} {hunk.header}", [hunk.header, *hunk.lines]))
    for key, title, lines in targets:
        out.say("\n", (title, "bold"))
        if lines:
            out.say(diff_lines(lines))
        answer = click.prompt("decide", type=click.Choice(list("arcesq")), show_choices=True)
        if answer == "q":
            break
        if answer == "a":
            decisions[key] = DecisionIn(action="accept")
        elif answer == "r":
            decisions[key] = DecisionIn(action="reject")
        elif answer == "c":
            decisions[key] = DecisionIn(action="reject", comment=click.prompt("comment"))
        elif answer == "e" and lines:
            new_side = [line[1:] for line in lines[1:] if line[:1] in (" ", "+")]
            edited = click.edit("\n".join(new_side) + "\n")
            if edited is not None:
                decisions[key] = DecisionIn(action="edit", lines=edited.rstrip("\n").split("\n"))
    return decisions


@click.command("review")
@click.argument("handle", metavar="[RUN]", required=False)
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
@click.option(
    "--send-back",
    is_flag=True,
    help="give the rejected changes and comments back to the agent for another round",
)
@click.option(
    "--resubmit",
    is_flag=True,
    help="offer a committed run whose report the cloud refused (report_refused) again",
)
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="decide hunk by hunk (default: when the terminal is interactive and nothing else is asked)",
)
@json_option
def review(
    handle: str | None,
    accept_all: bool,
    reject_all: bool,
    comment: str | None,
    do_commit: bool,
    integrate: str,
    discard: bool,
    send_back: bool,
    resubmit: bool,
    interactive: bool | None,
    as_json: bool,
) -> None:
    """Review a run's changes (and decide, commit or discard them). RUN: its id or a prefix, a
    task number (that task's latest run), or 'latest'; without it, the run awaiting review."""
    if interactive is None:
        interactive = sys.stdin.isatty() and not (
            accept_all or reject_all or discard or resubmit or as_json
        )
    if accept_all and reject_all:
        raise click.UsageError("--accept-all or --reject-all, not both")
    if send_back and do_commit:
        raise click.UsageError("--send-back or --commit, not both")
    if discard and (do_commit or accept_all):
        raise click.UsageError("--discard throws everything away: no --commit or --accept-all")

    async def work() -> ReviewView | CommitResult | Run:
        async with daemon() as client:
            run_id = await resolved(client, handle)
            ref = ReviewParams(run_id=run_id)
            if discard:
                return await client.call("locus/review/discard", ref, Run)
            if resubmit:
                return await client.call("locus/review/resubmit", ref, Run)
            view = await client.call("locus/review/get", ref, ReviewView)
            if interactive:
                decisions = await asyncio.to_thread(_ask_each, view)
                if decisions:
                    params = DecideParams(
                        run_id=run_id, revision=view.revision, decisions=decisions
                    )
                    view = await client.call("locus/review/decide", params, ReviewView)
            elif accept_all or reject_all:
                decision = (
                    DecisionIn(action="accept")
                    if accept_all
                    else DecisionIn(action="reject", comment=comment)
                )
                decisions = {file.path: decision for file in view.files}
                params = DecideParams(run_id=run_id, revision=view.revision, decisions=decisions)
                view = await client.call("locus/review/decide", params, ReviewView)
            if send_back:
                again = SendBackParams(run_id=run_id, revision=view.revision, model_env=model_env())
                return await client.call("locus/review/send_back", again, Run)
            if do_commit:
                committed = CommitParams(run_id=run_id, revision=view.revision, integrate=integrate)
                return await client.call("locus/review/commit", committed, CommitResult)
            return view

    result = run(work)

    def human() -> None:
        if isinstance(result, ReviewView):
            _show_review(result)
        elif isinstance(result, CommitResult):
            where = result.branch or "the worktree's detached HEAD (the branch name was taken)"
            out.say(f"committed {result.commit[:12]} on {where}")
            if result.message:
                out.say(result.message)
            if result.report_queued:
                out.say("report queued for the cloud (verification): see locus runs")
        else:
            out.say(f"{result.run_id}: {result.state}")

    show(result, as_json, human)
