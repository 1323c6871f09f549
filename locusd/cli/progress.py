"""Live progress of a run in the terminal: a status line (turn, the tool running now) and one
line per finished tool or verification, on stderr so stdout stays clean for ``--json``. Tool
names, commands and notes are the agent's text: printed as data (:mod:`locusd.cli.output`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.text import Text

from locusd.cli.output import text


class Progress:
    """The live status line: phase, turn, the tool running now, tokens and cost so far."""

    def __init__(self, console: Console, status: Status | None, label: str = "") -> None:
        self.console = console
        self.status = status
        self.label = label
        self.turn = 0
        #: While a question is on screen: the lines that wait for its answer.
        self._held: list[Text] | None = None
        self._latest: Text | None = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A question is on screen: the live status line is stopped (it would draw over the
        prompt) and lines wait until it is answered; then they come, and the line goes on."""
        if self._held is not None:  # already paused
            yield
            return
        self._held = []
        if self.status is not None:
            self.status.stop()
        try:
            yield
        finally:
            held, self._held = self._held, None
            for line in held:
                self.console.print(line)
            if self.status is not None:
                if self._latest is not None:
                    self.status.update(self._latest)
                self.status.start()

    def print(self, line: Text) -> None:
        """A line above the status (held while a question is on screen)."""
        if self._held is not None:
            self._held.append(line)
        else:
            self.console.print(line)

    def _update(self, line: Text) -> None:
        self._latest = line
        if self.status is not None and self._held is None:
            self.status.update(line)

    def phase(self, phase: str) -> None:
        self._update(text(phase))

    def show(self, kind: str, said: str, data: dict[str, Any], turn: int) -> None:
        """One event of a run (the agent's own, or a daemon run's ``locus/runs/event``)."""
        if self.status is None:
            return
        prefix = f"{self.label}turn {turn}"
        if kind == "turn":
            self.turn = turn
            self._update(text(f"{prefix}: thinking"))
        elif kind == "tool":
            self._update(text(f"{prefix}: {said} {_brief(data.get('input', {}))}"))
        elif kind == "tool_done":
            mark = ("✗", "red") if data.get("is_error") else ("✓", "green")
            took = f"({data.get('duration', 0):.2f} s)"
            self.print(text(f"  {self.label}", mark, f" {said} {took}"))
        elif kind == "verify":
            verdict = ("passed", "green") if data.get("passed") else ("failed", "red")
            self.print(text(f"  {self.label}verify `{said}` ", verdict))
        elif kind == "note":
            self.print(text(f"  {self.label}", (said, "yellow")))


def _brief(arguments: dict[str, Any]) -> str:
    for key in ("path", "command", "pattern", "summary", "question", "title"):
        if key in arguments:
            return str(arguments[key]).splitlines()[0][:80] if arguments[key] else ""
    return ""
