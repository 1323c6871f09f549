"""The ``locus`` command. Each subcommand is thin: a call to the daemon over its protocol, or,
like ``locus agent run``, a local action that needs no daemon."""

from __future__ import annotations

import click

from locusd.cli.agent import agent


@click.group()
@click.version_option(package_name="locus")
def main() -> None:
    """Locus: local-first coding agents."""


main.add_command(agent)
