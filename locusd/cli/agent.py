"""``locus agent …``: run the agent on a local repository, without any cloud or daemon.

Progress goes to stderr (a live status line with rich), the result to stdout: a readable report,
or with ``--json`` the :class:`~locusd.agent.run.RunReport` as JSON for scripts.

Exit codes: 0 completed, 1 failed or budget exhausted, 2 bad usage or configuration,
3 needs input (the model asked a question), 130 cancelled.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import click
from rich.console import Console

from locusd import config as user_config
from locusd.agent import transcript
from locusd.agent.external.presets import agent_problem
from locusd.agent.policy import Mode
from locusd.agent.providers import ConfigurationError
from locusd.agent.providers.select import provider_for
from locusd.agent.report import Approver, RunReport
from locusd.agent.run import run_task
from locusd.cli.asking import Asker, Withdrawn, agent_option, mode_option, question
from locusd.cli.common import USAGE, json_option
from locusd.cli.network import network_lines
from locusd.cli.output import block, diff_lines, err, fail, out, print_json_line, text
from locusd.cli.progress import Progress
from locusd.git.worktrees import WorktreeError, run_ref
from locusd.repo_config import RepoConfigError

EXIT_CODES = {
    "completed": 0,
    "unverified": 2,
    "failed": 1,
    "budget_exhausted": 1,
    "needs_input": 3,
    "cancelled": 130,
}


@click.group()
def agent() -> None:
    """Run the coding agent locally (no cloud needed)."""


YES_NO = {"y": True, "yes": True, "n": False, "no": False}


def _approver(asker: Asker) -> Approver:
    """Asks at the terminal; a cancelled run (Ctrl-C) withdraws the question: a no."""

    async def approve(command: str, reason: str) -> bool:
        shown = question("the agent", command, reason)
        try:
            return await asker.ask(command, shown, "allow it? [y/N]: ", YES_NO, default=False)
        except Withdrawn:
            return False

    return approve


def _show(console: Console, report: RunReport) -> None:
    """The report: our words styled around the text of the agent, the repository and the
    tests, which is printed as it is (never read as markup, its control characters shown)."""
    colour = {"completed": "green", "needs_input": "yellow", "unverified": "yellow"}.get(
        report.outcome, "red"
    )
    lines = [
        text((report.outcome, f"bold {colour}"), f": {report.reason}" if report.reason else "")
    ]
    if report.summary:
        lines.append(text("\n", ("Summary", "bold"), "\n", report.summary))
    if report.question:
        lines.append(text("\n", ("Question", "bold"), "\n", report.question))
    for follow_up in report.follow_ups:
        lines.append(text(f"follow-up: {follow_up.title}"))
    check = report.verification
    if check is not None:
        verdict = "passed" if check.passed else "FAILED"
        lines.extend(
            text(("UNVERIFIED", "bold red"), f" {c.path}: {c.why}") for c in check.check_changes
        )
        counted = check.counts
        tally = (
            f"; {counted.parser}: {counted.passed} passed, {counted.failed} failed,"
            f" {counted.skipped} skipped"
            if counted
            else ""
        )
        why = f" — {check.failure}" if check.failure else ""
        lines.append(
            text(
                "\n",
                ("Verification", "bold"),
                f" `{check.command}` {verdict}{why} (exit {check.exit_code},"
                f" {check.duration:.1f} s{tally}; {check.reason})\n{check.output_tail[-800:]}",
            )
        )
    else:
        lines.append(text("\n", ("Verification", "bold"), f" {report.verify_reason}"))
    network = network_lines([use.model_dump() for use in report.network])
    if network:
        lines.append(text())
        lines.extend(network)
    cost = f"${report.cost_usd:.4f}" if report.cost_known else "unknown (model not priced)"
    lines.append(
        text(
            f"\n{report.turns} turns, {report.usage.total_tokens} tokens"
            f" ({report.usage.cache_read_tokens} from cache), cost {cost}, {report.duration:.1f} s"
        )
    )
    kept = f"its work kept under {run_ref(report.task_id)}" if report.diff else "no changes"
    where = f"branch {report.branch}" if report.branch else kept
    lines.append(text(f"worktree {report.worktree} ({where})"))
    lines.append(text(f"transcript {report.transcript}"))
    lines.extend(text(("warning:", "yellow"), f" {warning}") for warning in report.warnings)
    block(console, f"locus agent run {report.task_id}", lines)
    console.print(diff_lines(report.diff.splitlines()) if report.diff else text("(no changes)"))


@agent.command("run")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="the git checkout to work on (it is never modified: the run gets its own worktree)",
)
@click.option("--task", required=True, help="what the agent should do")
@click.option("--provider", type=click.Choice(["anthropic", "openai", "replay"]))
@click.option("--model", help="model name (default: the provider's)")
@click.option("--base-url", help="API base URL, e.g. http://127.0.0.1:11434/v1 for Ollama")
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a transcript to play back instead of calling a model (implies --provider replay)",
)
@click.option(
    "--transcript",
    "transcript_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write this run's transcript (default: the state directory)",
)
@click.option("--base", default="HEAD", show_default=True, help="commit to start from")
@click.option("--max-turns", type=click.IntRange(min=1), help="budget: model calls")
@click.option("--max-cost", type=click.FloatRange(min=0, min_open=True), help="budget: USD")
@click.option("--max-wall-seconds", type=click.FloatRange(min=0, min_open=True), help="budget")
@click.option(
    "--unattended", is_flag=True, help="never ask: commands the policy marks 'ask' are denied"
)
@mode_option
@agent_option
@json_option
def run(
    repo: Path,
    task: str,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    replay: Path | None,
    transcript_path: Path | None,
    base: str,
    max_turns: int | None,
    max_cost: float | None,
    max_wall_seconds: float | None,
    unattended: bool,
    mode: Mode | None,
    agent: str | None,
    as_json: bool,
) -> None:
    """Run the agent on TASK in a new worktree of REPO and show the diff, the summary, the
    verification evidence and the cost."""
    try:
        config = user_config.load()
    except user_config.ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    agent_config = config.agent.model_copy(
        update={
            k: v
            for k, v in {
                "provider": provider,
                "model": model,
                "base_url": base_url,
                "mode": mode,
                "agent": agent,
            }.items()
            if v is not None
        }
    )
    budget_update = {
        k: v
        for k, v in {
            "max_turns": max_turns,
            "max_cost_usd": max_cost,
            "max_wall_seconds": max_wall_seconds,
        }.items()
        if v is not None
    }
    agent_config.budget = agent_config.budget.model_copy(update=budget_update)
    config = config.model_copy(update={"agent": agent_config})
    problem = agent_problem(agent_config.agent, config.agents)
    if problem is not None:
        raise click.UsageError(f"--agent: {problem}")
    try:
        chosen = provider_for(config, replay=replay)
    except ConfigurationError as exc:
        fail(str(exc), USAGE)

    interactive = sys.stdin.isatty() and err.terminal and not unattended and not as_json
    status = err.console.status("starting") if err.terminal else None
    progress = Progress(err.console, status)

    async def main() -> RunReport:
        cancel = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, cancel.set)
        return await run_task(
            repo=repo,
            task=task,
            provider=chosen,
            config=config,
            transcript_path=transcript_path,
            base=base,
            cancel=cancel,
            approver=_approver(Asker(err.console, progress)) if interactive else None,
            on_event=lambda e: progress.show(e.kind, e.text, e.data, e.turn),
            on_phase=progress.phase,
        )

    try:
        if status is not None:
            with status:
                report = asyncio.run(main())
        else:
            report = asyncio.run(main())
    except (WorktreeError, RepoConfigError, ConfigurationError) as exc:
        fail(str(exc), USAGE)
    if as_json:
        print_json_line(report.model_dump_json(indent=2))
    else:
        _show(out.console, report)
    sys.exit(EXIT_CODES[report.outcome])


@agent.command("schema")
@json_option
def schema(as_json: bool) -> None:
    """Print the JSON Schema of the transcript format (one record per line)."""
    click.echo(json.dumps(transcript.json_schema(), indent=2))
