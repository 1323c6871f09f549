"""The ``locus`` command. Each subcommand is thin: a call to the daemon over its protocol, or,
like ``locus agent run``, a local action that needs no daemon.

Subcommands are imported on first use (see :mod:`locusd.cli.lazy`): ``locus --version`` and
``locus status`` start in a fraction of the time importing them all would take."""

from __future__ import annotations

import click

from locusd import __version__
from locusd.cli.lazy import Lazy, LazyGroup

COMMANDS = {
    "agent": Lazy("locusd.cli.agent:agent", "Run the coding agent locally (no cloud needed)."),
    "audit": Lazy(
        "locusd.cli.session:audit", "What left this machine: every upload the cloud acknowledged."
    ),
    "cancel": Lazy(
        "locusd.cli.runs:cancel_command",
        "Stop a running run here (its command is killed).",
    ),
    "daemon": Lazy(
        "locusd.cli.daemon:daemon_group",
        "The locusd process (one per user; clients start it when needed).",
    ),
    "demo": Lazy(
        "locusd.cli.demo:demo",
        "One task from the cloud to a commit and back, on embedded defaults"
        " (no account, no network; no model key needed).",
    ),
    "graph": Lazy(
        "locusd.cli.graph:graph",
        "The knowledge graph of a repository (metadata only, never file contents).",
    ),
    "login": Lazy("locusd.cli.session:login", "Log the daemon in to a Locus Cloud."),
    "logout": Lazy(
        "locusd.cli.session:logout",
        "Forget the cloud secret (and revoke a user session on the cloud).",
    ),
    "logs": Lazy("locusd.cli.runs:logs_command", "A run's events (what the agent said and did)."),
    "plan": Lazy(
        "locusd.cli.plan:plan",
        "Ask the agent to propose tasks (it reads the code here); accept them into the backlog.",
    ),
    "review": Lazy(
        "locusd.cli.review:review", "Review a run's changes (and decide, commit or discard them)."
    ),
    "run": Lazy(
        "locusd.cli.runs:run_command",
        "Work on the cloud's queued tasks for these repositories, in the foreground.",
    ),
    "runs": Lazy("locusd.cli.runs:runs_command", "Every run the daemon knows, newest last."),
    "status": Lazy(
        "locusd.cli.status:status",
        "The daemon at a glance: version, clients, runs, outbox, login, worker.",
    ),
    "tasks": Lazy("locusd.cli.tasks:tasks", "Tasks in the cloud."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__)
def main() -> None:
    """Locus: local-first coding agents."""
