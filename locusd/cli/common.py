"""What every daemon-backed ``locus`` command shares: connecting (starting the daemon if none
runs), turning daemon errors into messages and exit codes, and printing a result as JSON or for
people.

Exit codes (docs/daemon.md): 0 ok · 1 the work failed · 2 bad usage or configuration · 3 a run
needs input · 4 not logged in (or the login expired) · 5 the daemon or the cloud is unavailable
· 130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from locusd.cli.rpc import DaemonClient, DaemonError, OnNotification, OnRequest
from locusd.protocol.codes import Code
from locusd.server.client import DaemonUnavailable, connect_or_start

if TYPE_CHECKING:  # not at run time: ``locus status`` starts without pydantic or rich
    from rich.console import Console

    from locusd.protocol.base import Wire

T = TypeVar("T")
OK, FAILED, USAGE, NEEDS_INPUT, AUTH, UNAVAILABLE, CANCELLED = 0, 1, 2, 3, 4, 5, 130


def console(*, stderr: bool = False) -> Console:
    """A rich console for ``locus``'s output: lines are never wrapped (a pipe, or a terminal,
    gets them whole: the terminal wraps), nothing is highlighted by guesswork, and colour only
    on a terminal (rich's default). Text from users, the agent or files goes in escaped
    (``rich.markup.escape``) or with ``markup=False``."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


class _Lazy:
    """A console made on first use: importing rich costs ~20 ms that ``locus status`` (which
    prints plain lines) does not pay."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = console(stderr=self._stderr)
        return getattr(self._console, name)


err: Console = _Lazy(stderr=True)  # type: ignore[assignment]  # a Console, made when first used
out: Console = _Lazy()  # type: ignore[assignment]

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


def fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    err.print(f"[red]error:[/] {escape(message)}")  # the message may quote anyone's text
    sys.exit(code)


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
        if isinstance(result, list | dict):
            click.echo(json.dumps(result, indent=2, default=str, ensure_ascii=False))
        else:
            click.echo(result.model_dump_json(by_alias=True, indent=2, exclude_none=True))
    else:
        human()
