"""Prints the kill-point suite's table of points and outcomes at the end of the run."""

from __future__ import annotations

from _pytest.terminal import TerminalReporter

from tests.locusd.killpoints.table import OUTCOMES


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not OUTCOMES:
        return
    terminalreporter.section("kill points: the daemon SIGKILLed at each, then restarted")
    width = max(len(point) for point, _ in OUTCOMES)
    for point, outcome in OUTCOMES:
        terminalreporter.write_line(f"{point:<{width}}  {outcome}")
