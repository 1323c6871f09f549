"""Live progress of a run in the terminal: a status line (turn, the tool running now) and one
line per finished tool or verification, on stderr so stdout stays clean for ``--json``. Tool
names, commands and notes are the agent's text: printed as data (:mod:`locusd.cli.output`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.status import Status

from locusd.cli.output import text


class Progress:
    """The live status line: phase, turn, the tool running now, tokens and cost so far."""

    def __init__(self, console: Console, status: Status | None, label: str = "") -> None:
        self.console = console
        self.status = status
        self.label = label
        self.turn = 0

    def phase(self, phase: str) -> None:
        if self.status is not None:
            self.status.update(text(phase))

    def show(self, kind: str, said: str, data: dict[str, Any], turn: int) -> None:
        """One event of a run (the agent's own, or a daemon run's ``locus/runs/event``)."""
        if self.status is None:
            return
        prefix = f"{self.label}turn {turn}"
        if kind == "turn":
            self.turn = turn
            self.status.update(text(f"{prefix}: thinking"))
        elif kind == "tool":
            self.status.update(text(f"{prefix}: {said} {_brief(data.get('input', {}))}"))
        elif kind == "tool_done":
            mark = ("✗", "red") if data.get("is_error") else ("✓", "green")
            took = f"({data.get('duration', 0):.2f} s)"
            self.console.print(text(f"  {self.label}", mark, f" {said} {took}"))
        elif kind == "verify":
            verdict = ("passed", "green") if data.get("passed") else ("failed", "red")
            self.console.print(text(f"  {self.label}verify `{said}` ", verdict))
        elif kind == "note":
            self.console.print(text(f"  {self.label}", (said, "yellow")))


def _brief(arguments: dict[str, Any]) -> str:
    for key in ("path", "command", "pattern", "summary", "question", "title"):
        if key in arguments:
            return str(arguments[key]).splitlines()[0][:80] if arguments[key] else ""
    return ""
