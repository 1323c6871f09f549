"""``locus daemon start|stop|status|logs|install|uninstall``: the daemon process itself."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import click

from locusd.cli.common import OK, UNAVAILABLE, daemon, json_option, run, show
from locusd.cli.output import fail, out, visible
from locusd.protocol.base import Empty
from locusd.protocol.messages import DaemonStatus
from locusd.server.client import LOG_NAME
from locusd.server.paths import socket_path, state_dir
from locusd.service import ServiceError, install, uninstall
from locusd.service.install import InstallResult


@click.group("daemon")
def daemon_group() -> None:
    """The locusd process (one per user; clients start it when needed)."""


def _status(start: bool) -> DaemonStatus:
    async def work() -> DaemonStatus:
        async with daemon(start=start) as client:
            return await client.call("locus/daemon/status", Empty(), DaemonStatus)

    return run(work)


@daemon_group.command()
@json_option
def start(as_json: bool) -> None:
    """Start the daemon in the background (if it is not running)."""
    result = _status(start=True)
    show(result, as_json, lambda: out.say(f"locusd running (pid {result.pid}) on {result.socket}"))


@daemon_group.command()
@json_option
def status(as_json: bool) -> None:
    """Whether the daemon runs, and its state (never starts it)."""
    if not socket_path().exists():
        show({"running": False}, as_json, lambda: out.say("locusd is not running"))
        sys.exit(UNAVAILABLE)
    result = _status(start=False)
    show(result, as_json, lambda: out.say(f"locusd running (pid {result.pid}) on {result.socket}"))


@daemon_group.command()
@json_option
def stop(as_json: bool) -> None:
    """Stop the daemon (its runs are cancelled; cloud tasks go back to the queue)."""
    if not socket_path().exists():
        show({"stopped": False}, as_json, lambda: out.say("locusd is not running"))
        return

    async def work() -> None:
        async with daemon(start=False) as client:
            await client.call("locus/daemon/shutdown", Empty(), Empty)

    run(work)
    show({"stopped": True}, as_json, lambda: out.say("locusd stopped"))


@daemon_group.command()
@json_option
def restart(as_json: bool) -> None:
    """Stop the daemon and start a new one (its runs are cancelled; cloud tasks go back to
    the queue): for the settings that apply only at a start, such as state_dir."""
    if socket_path().exists():
        pid = _status(start=False).pid

        async def work() -> None:
            async with daemon(start=False) as client:
                await client.call("locus/daemon/shutdown", Empty(), Empty)

        run(work)
        _until_gone(pid)
    result = _status(start=True)
    show(
        result, as_json, lambda: out.say(f"locusd restarted (pid {result.pid}) on {result.socket}")
    )


def _until_gone(pid: int, timeout: float = 60.0) -> None:
    """Until the stopped daemon's process has ended (its runs cancelled), or say it has not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    fail(
        f"locusd (pid {pid}) did not stop within {timeout:g} s: see locus daemon logs", UNAVAILABLE
    )


@daemon_group.command()
@click.option("--lines", "-n", default=200, show_default=True)
@json_option
def logs(lines: int, as_json: bool) -> None:
    """The daemon's log (the file of a daemon that a client started)."""
    path = state_dir() / LOG_NAME
    if not path.exists():
        fail(
            f"no log at {path}: a daemon run by systemd logs to the journal"
            " (journalctl --user -u locusd)",
            UNAVAILABLE,
        )
    last = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    # The log quotes the agent and the cloud: their control characters are shown, not obeyed.
    show({"path": str(path), "lines": last}, as_json, lambda: click.echo(visible("\n".join(last))))


def _report(result: InstallResult, as_json: bool) -> None:
    def human() -> None:
        out.say(result.message)
        for command in result.pending:
            out.say("  run: " + subprocess.list2cmdline(command))

    show(dataclasses.asdict(result), as_json, human)
    sys.exit(OK if result.ok else UNAVAILABLE)


@daemon_group.command("install")
@json_option
def install_command(as_json: bool) -> None:
    """Run the daemon as a service: a systemd user unit (Linux) or a LaunchAgent (macOS)."""
    try:
        _report(install(), as_json)
    except ServiceError as exc:
        fail(str(exc), UNAVAILABLE)


@daemon_group.command("uninstall")
@json_option
def uninstall_command(as_json: bool) -> None:
    """Remove the service (the daemon can still be started by clients)."""
    try:
        _report(uninstall(), as_json)
    except ServiceError as exc:
        fail(str(exc), UNAVAILABLE)
