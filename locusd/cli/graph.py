"""``locus graph show``: exactly what the knowledge graph would send to the cloud.

It runs in the CLI, not through the daemon: it reads only the user's own checkout and the
index state in the state dir, needs no login and no cloud, and works with no daemon running —
the daemon builds its uploads with the same function (:mod:`locusd.graph.snapshot`), so what
is shown is what would be sent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from locusd import config as user_config
from locusd.cli.common import USAGE, json_option
from locusd.cli.output import fail, out
from locusd.git.cli import GitFailed, TimedOut
from locusd.git.repo import RepositoryError
from locusd.graph.payload import summary_lines
from locusd.graph.snapshot import snapshot
from locusd.graph.upload import wire_body
from locusd.privacy import Scrubber


@click.group()
def graph() -> None:
    """The knowledge graph of a repository (metadata only, never file contents)."""


@graph.command("show")
@click.argument("repo", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--dry-run", is_flag=True, help="leave the saved index state as it is (read only)")
@json_option
def show(repo: Path, dry_run: bool, as_json: bool) -> None:
    """Print exactly what would leave the machine for REPO (default: here); --json prints
    the exact request body."""
    try:
        state_dir = user_config.load().state_dir
        shot = snapshot(repo, state_dir, save=not dry_run)
    except (user_config.ConfigError, RepositoryError) as exc:
        fail(str(exc), USAGE)
    except (GitFailed, TimedOut) as exc:
        fail(f"git could not list {repo}: {exc}", USAGE)
    indexed, payload = shot.indexed, shot.payload
    if as_json:  # the bytes that would be sent, as is
        scrub = Scrubber.for_checkout(repo, dict(os.environ))
        sys.stdout.buffer.write(wire_body(payload, scrub) + b"\n")
        return
    out.say(f"repository {repo.resolve()} at {indexed.head or '(no commit yet)'}")
    for line in summary_lines(payload):
        out.say(line)
    for skipped in indexed.structure.skipped:
        out.say(("skipped", "yellow"), f" {skipped.path}: {skipped.reason}")
