"""``locus review RUN``: a run's changes — the summary, the check and the changed files first —
then, in a terminal, hunk by hunk with ``git add -p``'s keys (:mod:`locusd.cli.review_keys`),
a recap and "Commit now?"; or the decisions as flags: ``--accept-all`` / ``--reject-all``,
then ``--commit`` (``-m``, ``--integrate merge|rebase|push``), ``--discard``, or
``--resubmit`` (a commit whose report the cloud refused). ``--json`` prints the review (or
the commit's result) for scripts.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.handles import resolved
from locusd.cli.network import network_lines
from locusd.cli.output import Column, cell, diff_lines, out
from locusd.cli.review_keys import run as ask_each
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


def _show_start(view: ReviewView) -> None:
    """What comes before the first hunk: the run, the agent's summary, the check's verdict,
    what its commands reached, and the changed files with their line counts."""
    out.say((f"Review of {view.run_id}", "bold"), f" (revision {view.revision})")
    if view.summary:
        out.say("\n", ("Summary", "bold"), "\n", view.summary)
    check = view.verification
    if check:
        _show_check(check)
    for line in network_lines(view.network):
        out.say(line)
    if view.left_out:
        out.say(
            "\n",
            ("Left out of the review:", "yellow"),
            f" {', '.join(map(cell, view.left_out))} — more than one hard link (it may be a file"
            " from outside the worktree); it cannot be accepted",
        )
    out.say("\n", ("Changed files", "bold"))
    rows = []
    for file in view.files:
        lines = [line for hunk in file.hunks for line in hunk.lines]
        added = sum(line.startswith("+") for line in lines)
        removed = sum(line.startswith("-") for line in lines)
        rows.append((file.status, file.path, f"+{added}", f"-{removed}"))
    out.table([Column("status"), Column("file", whole=True), Column("+"), Column("-")], rows)


def _show_review(view: ReviewView) -> None:
    """The whole review, for reading (``--no-interactive``, a pipe)."""
    _show_start(view)
    for file in view.files:
        decided = f" — {file.decision.action}" if file.decision else ""
        out.say("\n", (cell(file.path), "bold"), f" ({file.status}){decided}")
        for hunk in file.hunks:
            mark = f"  [{hunk.decision.action}]" if hunk.decision else ""
            out.say((f"hunk {hunk.id}", "dim"), mark)
            out.say(diff_lines([hunk.header, *hunk.lines]))
    out.say(f"\n{view.undecided} undecided")


def _recap(view: ReviewView, partly: list[str]) -> None:
    """After the keys: what was decided, file by file, and what stays undecided."""
    out.say("\n", ("Recap", "bold"))
    rows = []
    for file in view.files:
        actions = [(h.decision or file.decision) for h in file.hunks] or [file.decision]
        named = [d.action if d else "undecided" for d in actions]
        counts = [named.count(a) for a in ("accept", "edit", "reject", "undecided")]
        rows.append((file.path, *(f"{n} {w}" for n, w in zip(counts, _WORDS, strict=True))))
    columns = [Column("file", whole=True), *(Column(w) for w in _WORDS)]
    out.table(columns, rows)
    for hunk in partly:
        out.say(("partly decided, so left undecided: ", "yellow"), hunk)
    if view.undecided:
        out.say(
            f"{view.undecided} undecided: they stay in the worktree, uncommitted;"
            f" locus review {view.run_id} decides them later"
        )


_WORDS = ("accepted", "edited", "rejected", "undecided")


def _offer_commit(view: ReviewView, message: str | None) -> str | None:
    """``commit now?``: the message to commit with, or ``None`` (not now)."""
    if view.commit_message is None:
        out.say("Nothing is accepted: there is nothing to commit.")
        return None
    text = message or view.commit_message
    while True:
        out.say("\n", ("Commit message:", "bold"))
        out.say(text.rstrip("\n"))
        try:
            answer = click.prompt(
                "Commit now? [y,n,e (edit the message)]",
                default="",
                show_default=False,
                prompt_suffix=" ",
            )
        except click.Abort:
            return None
        if answer == "y":
            return text
        if answer == "n" or not answer:
            out.say(f"Not committed: locus review {view.run_id} --commit commits it later.")
            return None
        if answer == "e":
            edited = click.edit(text, extension=".txt", require_save=False)
            text = edited if edited is not None and edited.strip() else text


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


@click.command("review")
@click.argument("handle", metavar="[RUN]", required=False)
@click.option("--accept-all", is_flag=True, help="accept every change")
@click.option("--reject-all", is_flag=True, help="reject every change")
@click.option("--comment", help="with --reject-all: why (for the agent's next round)")
@click.option("--commit", "do_commit", is_flag=True, help="commit what is accepted")
@click.option(
    "-m",
    "--message",
    help="the commit message (default: built from what was accepted; the Locus-Task trailer"
    " is added)",
)
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
    message: str | None,
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
    if message is not None and not message.strip():
        raise click.BadParameter(
            "the commit message is empty: write one, or leave out -m", param_hint="-m/--message"
        )
    if message is not None and not (do_commit or interactive):
        raise click.UsageError("-m/--message goes with --commit")
    if discard and (do_commit or accept_all):
        raise click.UsageError("--discard throws everything away: no --commit or --accept-all")

    async def work() -> ReviewView | CommitResult | Run | None:
        async with daemon() as client:
            run_id = await resolved(client, handle)
            ref = ReviewParams(run_id=run_id)
            if discard:
                return await client.call("locus/review/discard", ref, Run)
            if resubmit:
                return await client.call("locus/review/resubmit", ref, Run)
            view = await client.call("locus/review/get", ref, ReviewView)
            text, commit_now = message, do_commit
            if interactive:
                _show_start(view)
                session = await asyncio.to_thread(ask_each, view)
                decisions, partly = session.decisions(view)
                if decisions:
                    params = DecideParams(
                        run_id=run_id, revision=view.revision, decisions=decisions
                    )
                    view = await client.call("locus/review/decide", params, ReviewView)
                _recap(view, partly)
                if not (do_commit or send_back):
                    text = await asyncio.to_thread(_offer_commit, view, message)
                    if text is None:
                        return None
                    commit_now = True
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
            if commit_now:
                committed = CommitParams(
                    run_id=run_id, revision=view.revision, integrate=integrate, message=text
                )
                return await client.call("locus/review/commit", committed, CommitResult)
            return None if interactive else view

    result = run(work)

    if result is None:  # the session said it all
        return

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
