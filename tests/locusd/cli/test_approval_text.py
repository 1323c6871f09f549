"""The terminal's approval question shows the agent's command and the policy's reason as they
are: a command that looks like rich markup is neither styled nor a crash, and the reason's
``[agent] containers`` (and the Docker warning) is not swallowed as a tag."""

from __future__ import annotations

from rich.console import Console

from locusd.agent.policy import CONTAINER_WARNING, CommandPolicy, decide
from locusd.cli.asking import question


def test_the_command_and_the_reason_are_printed_word_for_word() -> None:
    command = "docker run --rm x echo '[/]' [bold]"
    ruling = decide(CommandPolicy(), command, unattended=False)
    assert ruling.verdict == "ask" and ruling.containers
    reason = f"{ruling.reason}. Warning: {CONTAINER_WARNING}"
    console = Console(record=True, width=1000, color_system=None)
    console.print(question("the agent", command, reason))
    text = console.export_text()
    assert "[agent] containers = 'ask'" in text and "root-equivalent" in text
    assert command in text and "the agent wants to run" in text
    assert f"why: {ruling.reason}" in text
