"""The ``locus`` command. Each subcommand is thin: a call to the daemon over its protocol, or,
like ``locus agent run``, a local action that needs no daemon."""

from __future__ import annotations

import click

from locusd.cli.agent import agent
from locusd.cli.daemon import daemon_group
from locusd.cli.demo import demo
from locusd.cli.review import review
from locusd.cli.runs import cancel_command, logs_command, run_command, runs_command
from locusd.cli.session import audit, login, logout, status
from locusd.cli.tasks import tasks


@click.group()
@click.version_option(package_name="locus")
def main() -> None:
    """Locus: local-first coding agents."""


for command in (login, logout, status, audit, tasks, review, run_command, runs_command, logs_command,
                cancel_command, daemon_group, agent, demo):  # fmt: skip
    main.add_command(command)
