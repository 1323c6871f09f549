"""What every daemon-backed ``locus`` command shares: connecting (starting the daemon if none
runs), turning daemon errors into messages and exit codes, and printing a result as JSON or for
people (through :mod:`locusd.cli.output`).

Exit codes (docs/daemon.md): 0 ok · 1 the work failed · 2 bad usage or configuration · 3 a run
needs input · 4 not logged in (or the login expired) · 5 the daemon or the cloud is unavailable
· 130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from locusd.cli.output import fail, print_json
from locusd.cli.rpc import DaemonClient, DaemonError, OnNotification, OnRequest
from locusd.protocol.codes import Code
from locusd.server.client import DaemonUnavailable, connect_or_start

if TYPE_CHECKING:  # not at run time: ``locus status`` starts without pydantic
    from locusd.protocol.base import Wire

T = TypeVar("T")
OK, FAILED, USAGE, NEEDS_INPUT, AUTH, UNAVAILABLE, CANCELLED = 0, 1, 2, 3, 4, 5, 130

json_option = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")


@asynccontextmanager
async def daemon(
    *,
    start: bool = True,
    on_notification: OnNotification | None = None,
    on_request: OnRequest | None = None,
) -> AsyncIterator[DaemonClient]:
    reader, writer = await connect_or_start(start=start)
    async with DaemonClient(
        reader, writer, on_notification=on_notification, on_request=on_request
    ) as client:
        yield client


def exit_code(error: DaemonError) -> int:
    if error.auth_required:
        return AUTH
    if error.code == Code.CLOUD_UNAVAILABLE:
        return UNAVAILABLE
    if error.code in (-32602, Code.INVALID_ARGUMENT, Code.UNSUPPORTED_PROTOCOL):
        return USAGE
    return FAILED


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's coroutine; daemon and connection errors become a message and an exit
    code (never a traceback)."""
    try:
        return asyncio.run(work())
    except DaemonError as exc:
        hint = " (log in with: locus login)" if exc.auth_required else ""
        fail(f"{exc.message}{hint}", exit_code(exc))
    except DaemonUnavailable as exc:
        fail(str(exc), UNAVAILABLE)
    except ConnectionError as exc:
        fail(f"{exc} (see: locus daemon logs)", UNAVAILABLE)
    except KeyboardInterrupt:
        fail("interrupted", CANCELLED)


def show(
    result: Wire | list[Any] | dict[str, Any], as_json: bool, human: Callable[[], None]
) -> None:
    if as_json:
        print_json(result)
    else:
        human()
