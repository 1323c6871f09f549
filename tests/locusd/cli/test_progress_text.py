"""The live progress lines show what the agent and the network wrote as text: a refused host,
a command or a tool's name that looks like markup is printed as it is, never styled or eaten,
and its control characters are shown, never sent to the terminal."""

from __future__ import annotations

from rich.console import Console

from locusd.cli.progress import Progress
from tests.locusd.cli.test_cli_text import RAW


def test_agent_text_in_progress_is_printed_as_text() -> None:
    console = Console(record=True, width=200, force_terminal=False)
    progress = Progress(console, console.status("working"))  # (never started: no live view)
    hostile = "[bold]x[/] [link=https://evil.example]click[/link]"
    progress.show("note", f"network: refused {hostile}:80", {"kind": "egress"}, 1)
    progress.show("tool_done", hostile, {"duration": 0.5}, 1)
    progress.show("verify", hostile, {"passed": True}, 1)
    shown = console.export_text()
    assert shown.count(hostile) == 3, shown


def test_control_characters_in_progress_are_shown_not_sent() -> None:
    console = Console(record=True, width=200, force_terminal=True)
    progress = Progress(console, console.status("working"))
    hostile = "run\x1b]52;c;cHduZWQ=\x07\r\x1b[2J"
    progress.show("tool_done", hostile, {"duration": 0.5}, 1)
    progress.show("note", hostile, {}, 1)
    progress.show("verify", hostile, {"passed": False}, 1)
    shown = console.export_text()  # the text, rich's own styles left out
    assert shown.count("run^[]52;c;cHduZWQ=^G^M^[[2J") == 3, shown
    assert not RAW.findall(shown.replace("\n", ""))
