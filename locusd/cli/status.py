"""``locus status``: the daemon at a glance.

It reads the daemon's answer as it came (the camelCase wire dict of ``DaemonStatus``, see
docs/protocol.md) rather than through the protocol's pydantic models: importing pydantic and
building the models is most of a Python start-up here (docs/benchmarks.md, "CLI start-up"), and
this is the command people and scripts run most. Other commands use the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.output import visible


def auth_line(auth: Mapping[str, Any]) -> str:
    """One line about the login, from an ``AuthStatus`` on the wire (camelCase, None omitted)."""
    if not auth["loggedIn"]:
        return f"not logged in (cloud {auth.get('cloudUrl')}; secrets kept in {auth['store']})"
    return (
        f"logged in to {auth.get('cloudUrl')} as {auth.get('identity')}"
        f" ({auth.get('kind')}; {auth['store']})"
    )


def sandbox_line(sandbox: Mapping[str, Any]) -> str:
    """How the agent's commands are contained, or the warning saying they are not."""
    if not sandbox["contained"]:
        return f"sandbox: NOT CONTAINED — {sandbox.get('warning')}"
    egress = sandbox.get("egress", "open" if sandbox["network"] else "none")
    if egress == "open":
        network = "the whole network (allow_network)"
    elif egress == "proxy":
        hosts = sandbox.get("egress_hosts") or []
        more = f" and {', '.join(hosts)}" if hosts else ""
        network = f"network through the egress proxy: the repository's registries{more}"
    else:
        network = "no network"
    return f"sandbox: bubblewrap, {network}"


def notifications_line(notifications: Mapping[str, Any] | None) -> str:
    """Whether a run that needs you raises a desktop notification, or why not (editors hear
    of it through the protocol either way)."""
    if notifications is None:  # a daemon older than notifications
        return "notifications: none from this daemon (restart it: locus daemon stop)"
    if not notifications["desktop"]:
        return f"notifications: no desktop notifications — {notifications.get('reason')}"
    failed = notifications.get("lastError")
    return f"notifications: desktop, with {notifications.get('program')}" + (
        f" (the last one failed: {failed})" if failed else ""
    )


def _say(line: str) -> None:
    """A plain line (no rich: this command starts fast); it holds cloud URLs, identities and
    errors, whose control characters are shown, not obeyed."""
    click.echo(visible(line))


@click.command()
@json_option
def status(as_json: bool) -> None:
    """The daemon at a glance: version, clients, runs, outbox, login, worker."""

    async def work() -> dict[str, Any]:
        async with daemon() as client:
            answer: dict[str, Any] = await client.call_wire("locus/daemon/status")
            return answer

    result = run(work)

    def human() -> None:
        _say(
            f"locusd {result['version']} (pid {result['pid']}, up {result['uptimeSeconds']:.0f} s)"
        )
        _say(f"socket {result['socket']}; {result['clients']} client(s) connected")
        _say(auth_line(result["auth"]))
        by_state = sorted(result["runs"].items())
        runs = ", ".join(f"{n} {state}" for state, n in by_state) or "none"
        dead = result.get("outboxDead", 0)
        refused = f", {dead} refused by the cloud (see locus runs)" if dead else ""
        _say(f"runs: {runs}; outbox: {result['outboxPending']} pending{refused}")
        worker = result["worker"]
        if worker["running"]:
            _say(f"worker: running, {worker['agents']} agent(s), projects {worker['projects']}")
        else:
            error = worker.get("lastError")
            _say("worker: stopped" + (f" ({error})" if error else ""))
        _say(sandbox_line(result["sandbox"]))
        _say(notifications_line(result.get("notifications")))
        for problem in result.get("config", {}).get("problems", []):
            _say(f"config: {problem}")

    show(result, as_json, human)
