"""``locus login``, ``locus logout``, ``locus audit``: the daemon's cloud session (``locus
status`` is :mod:`locusd.cli.status`)."""

from __future__ import annotations

import sys

import click

from locusd.cli.common import daemon, json_option, run, show
from locusd.cli.output import Column, out
from locusd.cli.status import auth_line
from locusd.protocol.base import Empty
from locusd.protocol.messages import AuditList, AuthStatus, LoginParams


def _show_auth(status: AuthStatus, as_json: bool) -> None:
    def human() -> None:
        out.say(auth_line(status.wire()))
        if status.warning:
            out.say(("warning:", "yellow"), f" {status.warning}")

    show(status, as_json, human)


@click.command()
@click.option("--cloud", "cloud_url", default="http://127.0.0.1:8420", show_default=True)
@click.option("--email", help="log in as this user (the password is asked for)")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.option("--token", help="a user or worker token instead (e.g. from locus-cloud token create)")
@click.option("--token-stdin", is_flag=True, help="read the token from stdin")
@json_option
def login(
    cloud_url: str,
    email: str | None,
    password_stdin: bool,
    token: str | None,
    token_stdin: bool,
    as_json: bool,
) -> None:
    """Log the daemon in to a Locus Cloud. The secret goes to the OS keyring, or to a 0600
    file (with a warning) where there is none."""
    password = None
    if token_stdin:
        token = sys.stdin.readline().strip()
    elif email and password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif email:
        password = click.prompt("password", hide_input=True)
    if not token and not (email and password):
        raise click.UsageError("locus login needs --email (and a password) or --token")
    params = LoginParams(cloud_url=cloud_url, email=email, password=password, token=token)

    async def work() -> AuthStatus:
        async with daemon() as client:
            return await client.call("locus/auth/login", params, AuthStatus)

    _show_auth(run(work), as_json)


@click.command()
@json_option
def logout(as_json: bool) -> None:
    """Forget the cloud secret (and revoke a user session on the cloud)."""

    async def work() -> AuthStatus:
        async with daemon() as client:
            return await client.call("locus/auth/logout", Empty(), AuthStatus)

    _show_auth(run(work), as_json)


def _task(task_id: int | None) -> int | str:
    return "-" if task_id is None else task_id  # a graph upload is about no task


@click.command()
@json_option
def audit(as_json: bool) -> None:
    """What left this machine: every upload the cloud acknowledged."""

    async def work() -> AuditList:
        async with daemon() as client:
            return await client.call("locus/audit/list", Empty(), AuditList)

    result = run(work)

    def human() -> None:
        columns = ["when", "to", "kind", "task", "bytes", "sha256"]
        out.table(
            [Column(name, whole=name == "when") for name in columns],
            (
                [e.at, e.destination, e.kind, _task(e.task_id), e.bytes, e.sha256]
                for e in result.entries
            ),
        )

    show(result, as_json, human)
