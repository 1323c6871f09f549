"""Live progress of a run in the terminal: a status line (turn, the tool running now) and one
line per finished tool or verification, on stderr so stdout stays clean for ``--json``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status


class Progress:
    """The live status line: phase, turn, the tool running now, tokens and cost so far."""

    def __init__(self, console: Console, status: Status | None, label: str = "") -> None:
        self.console = console
        self.status = status
        self.label = label
        self.turn = 0

    def phase(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def show(self, kind: str, text: str, data: dict[str, Any], turn: int) -> None:
        """One event of a run (the agent's own, or a daemon run's ``locus/runs/event``)."""
        if self.status is None:
            return
        prefix = f"{self.label}turn {turn}"
        if kind == "turn":
            self.turn = turn
            self.status.update(f"{prefix}: thinking")
        elif kind == "tool":
            self.status.update(f"{prefix}: {escape(text)} {escape(_brief(data.get('input', {})))}")
        elif kind == "tool_done":
            mark = "[red]✗[/]" if data.get("is_error") else "[green]✓[/]"
            took = f"({data.get('duration', 0):.2f} s)"
            self.console.print(f"  {self.label}{mark} {escape(text)} {took}")
        elif kind == "verify":
            verdict = "[green]passed[/]" if data.get("passed") else "[red]failed[/]"
            self.console.print(f"  {self.label}verify `{escape(text)}` {verdict}")
        elif kind == "note":
            self.console.print(f"  {self.label}[yellow]{escape(text)}[/]")


def _brief(arguments: dict[str, Any]) -> str:
    for key in ("path", "command", "pattern", "summary", "question", "title"):
        if key in arguments:
            return str(arguments[key]).splitlines()[0][:80] if arguments[key] else ""
    return ""
