"""Every ``locus`` command answers ``-h`` (as ``--help``) and has ``--json``, as ``gh``'s do."""

from __future__ import annotations

import subprocess
from typing import Any

import click

from locusd.cli import main
from tests.locusd.cliuser import LOCUS


def test_every_command_takes_dash_h_and_json() -> None:
    """``-h`` is ``--help`` everywhere, and every command (not group) has ``--json``."""

    def commands(group: click.Group, path: tuple[str, ...]) -> Any:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                yield from commands(command, (*path, name))
            else:
                yield (*path, name), command

    found = dict(commands(main, ()))
    assert ("demo",) in found and ("daemon", "logs") in found
    lacking = [" ".join(p) for p, c in found.items() if "--json" not in _options(c)]
    assert lacking == []
    for path in [(), ("agent",), ("tasks",), ("daemon",), *found]:
        done = subprocess.run(
            [LOCUS, *path, "-h"], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0 and done.stdout.startswith("Usage: locus"), (path, done)


def _options(command: Any) -> set[str]:
    return {name for param in command.params for name in getattr(param, "opts", [])}
