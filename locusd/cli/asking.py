"""Approval questions at the terminal (``locus run``, ``locus agent run``).

Why not ``rich.prompt`` in a thread: a thread blocked in ``input()`` cannot be stopped, so a
Ctrl-C, a ``locus cancel`` or an answer given in another client left the question (and the
process's exit) waiting for Enter. Here the answer is read from the terminal by the event loop:
withdrawing the question (:meth:`Asker.withdraw`, or cancelling the task that asks) ends it at
once, as a no. While a question is on screen the live display is paused (:meth:`Progress.paused`)
so the two do not draw over each other. The command and the reason are the agent's and the
policy's text: printed as data (:mod:`locusd.cli.output`), never as markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
from collections.abc import Mapping
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from locusd.agent.policy import MODES
from locusd.cli.output import text
from locusd.cli.progress import Progress

T = TypeVar("T")

#: ``--mode`` of ``locus run`` and ``locus agent run`` (the user's; never the repository's).
mode_option = click.option(
    "--mode",
    type=click.Choice(MODES),
    help="permission mode: ask (ask before commands the policy marks ask), auto-edit (also"
    " run file commands inside the sandboxed worktree without asking), full-auto (run every"
    " command no deny pattern stops, in the sandbox only). Default: [agent] mode in config.toml",
)


agent_option = click.option(
    "--agent",
    metavar="NAME",
    help="the agent that works on the task: builtin (Locus's own loop), claude, codex, gemini"
    " (ACP agents, run in the sandbox) or the NAME of an [agents.NAME] table in config.toml."
    " Default: [agent] agent in config.toml",
)


class Withdrawn(Exception):
    """The question was withdrawn before it was answered (Ctrl-C, a cancel, another client)."""


def question(who: str, command: str, reason: str) -> Text:
    """``who wants to run `command``` and, on its own line, why the policy asks."""
    return text((f"{who} wants to run", "bold yellow"), " ", command, ("\n  why: ", "dim"), reason)


async def _line(fd: int) -> str | None:
    """One line typed at the terminal (its canonical mode gives whole lines); None at EOF."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    def ready() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not got.done():
            got.set_result(data)

    loop.add_reader(fd, ready)
    try:
        data = await got
    finally:
        loop.remove_reader(fd)
    return data.decode(errors="replace") if data else None


class Asker:
    """Asks one question at a time on ``console`` (stderr), reading the answer from stdin."""

    def __init__(self, console: Console, progress: Progress, fd: int | None = None) -> None:
        self.console = console
        self.progress = progress
        self.fd = fd  # the terminal the answer is read from (None: stdin)
        self._one_at_a_time = asyncio.Lock()
        self._withdrawn: dict[str, asyncio.Future[str]] = {}

    def withdraw(self, key: str | None, why: str) -> None:
        """Withdraw the question ``key`` (every question when None), showing ``why`` (what
        became of it); :meth:`ask` raises :class:`Withdrawn`."""
        for asked, future in list(self._withdrawn.items()):
            if (key is None or asked == key) and not future.done():
                future.set_result(why)

    async def ask(
        self, key: str, shown: Text, prompt: str, choices: Mapping[str, T], default: T
    ) -> T:
        """``shown``, then ``prompt`` until one of ``choices`` (or Enter: ``default``) is
        typed; EOF is the default. Raises :class:`Withdrawn` when withdrawn first."""
        withdrawn: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._withdrawn[key] = withdrawn
        try:
            async with self._one_at_a_time:
                if withdrawn.done():
                    raise Withdrawn(withdrawn.result())
                with self.progress.paused():
                    return await self._answer(withdrawn, shown, prompt, choices, default)
        finally:
            self._withdrawn.pop(key, None)

    async def _answer(
        self,
        withdrawn: asyncio.Future[str],
        shown: Text,
        prompt: str,
        choices: Mapping[str, T],
        default: T,
    ) -> T:
        fd = sys.stdin.fileno() if self.fd is None else self.fd
        with contextlib.suppress(termios.error, OSError):
            termios.tcflush(fd, termios.TCIFLUSH)  # a key pressed before the question is no answer
        self.console.print(shown)
        while True:
            self.console.print(text((prompt, "bold")), end="")
            reading = asyncio.ensure_future(_line(fd))
            waiting: set[asyncio.Future[Any]] = {reading, withdrawn}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                self.console.print(text(("\nno: the question was withdrawn", "yellow")))
                raise
            finally:
                if not reading.done():
                    reading.cancel()
            if withdrawn.done():
                self.console.print(text("\n", (withdrawn.result(), "yellow")))
                raise Withdrawn(withdrawn.result())
            line = reading.result()
            if line is None:
                self.console.print(text("\nno: end of input"))
                return default
            answer = line.strip().lower()
            if not answer:
                return default
            if answer in choices:
                return choices[answer]
            self.console.print(text(f"answer {' or '.join(sorted({k[0] for k in choices}))}"))
