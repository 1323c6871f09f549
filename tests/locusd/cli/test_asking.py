"""The approval question's own rules, on a real pseudo-terminal (``os.openpty``): one question
at a time, a question withdrawn while it waits its turn is never shown, the live lines wait for
the answer, a key pressed before the question is no answer, anything but the choices asks
again, and end of input is the default."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator

import pytest
from rich.console import Console

from locusd.cli.asking import Asker, Withdrawn, question
from locusd.cli.output import text
from locusd.cli.progress import Progress

pytestmark = pytest.mark.timeout(30)
CHOICES = {"y": "yes", "a": "always", "n": "no"}


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (what the user types into, what the question reads)."""
    user, terminal = os.openpty()
    yield user, terminal
    os.close(user)
    os.close(terminal)


def asker(terminal: int) -> tuple[Asker, io.StringIO]:
    shown = io.StringIO()
    console = Console(file=shown, width=200, color_system=None, markup=False)
    return Asker(console, Progress(console, None), fd=terminal), shown


async def shown_line(shown: io.StringIO, line: str) -> None:
    while line not in shown.getvalue():
        await asyncio.sleep(0.01)


async def test_one_question_at_a_time_and_a_withdrawn_one_is_never_shown(
    pty: tuple[int, int],
) -> None:
    user, terminal = pty
    asking, shown = asker(terminal)
    first = asyncio.ensure_future(
        asking.ask("1", question("run A", "make [b]x", "why"), "? ", CHOICES, "no")
    )
    second = asyncio.ensure_future(asking.ask("2", text("second"), "? ", CHOICES, "no"))
    await shown_line(shown, "run A wants to run make [b]x")
    asking.withdraw("2", "no: withdrawn by the daemon (reject)")
    os.write(user, b"maybe\n")  # not a choice: asked again
    await shown_line(shown, "answer a or n or y")
    os.write(user, b"A\n")
    assert await first == "always"
    with pytest.raises(Withdrawn):
        await second
    assert "second" not in shown.getvalue()


async def test_lines_wait_for_the_answer_and_a_key_typed_before_is_no_answer(
    pty: tuple[int, int],
) -> None:
    user, terminal = pty
    asking, shown = asker(terminal)
    os.write(user, b"y\n")  # typed before any question: flushed, not taken
    asked = asyncio.ensure_future(asking.ask("1", text("Q"), "? ", CHOICES, "no"))
    await shown_line(shown, "Q")
    asking.progress.print(text("a line from another run"))
    assert "a line from another run" not in shown.getvalue()
    os.write(user, b"\n")  # Enter: the default
    assert await asked == "no"
    assert shown.getvalue().index("a line from another run") > shown.getvalue().index("Q")


async def test_withdrawn_or_cancelled_while_shown(pty: tuple[int, int]) -> None:
    _, terminal = pty
    asking, shown = asker(terminal)
    asked = asyncio.ensure_future(asking.ask("1", text("Q1"), "? ", CHOICES, "no"))
    await shown_line(shown, "Q1")
    asking.withdraw(None, "no: Ctrl-C")
    with pytest.raises(Withdrawn):
        await asked
    assert shown.getvalue().endswith("no: Ctrl-C\n")
    cancelled = asyncio.ensure_future(asking.ask("2", text("Q2"), "? ", CHOICES, "no"))
    await shown_line(shown, "Q2")
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert shown.getvalue().endswith("no: the question was withdrawn\n")


async def test_end_of_input_is_the_default(pty: tuple[int, int]) -> None:
    user, terminal = pty
    asking, shown = asker(terminal)
    asked = asyncio.ensure_future(asking.ask("1", text("Q"), "? ", CHOICES, "no"))
    await shown_line(shown, "Q")
    os.write(user, b"\x04")  # Ctrl-D at the start of a line: end of input
    assert await asked == "no"
    assert "no: end of input" in shown.getvalue()
