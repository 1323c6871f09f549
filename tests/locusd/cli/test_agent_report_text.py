"""``locus agent run``'s report shows text from the agent, the repository and the tests as it
is: a summary, a file name or a test's output that looks like rich markup is printed literally,
never styled, linked or swallowed, and its control characters are shown, never obeyed."""

from __future__ import annotations

from rich.console import Console

from locusd.agent.checkdeps import CheckChange
from locusd.cli.agent import _show
from tests.locusd.cli.test_cli_text import RAW
from tests.locusd.runner.test_upload_scrub import evidence, report

MARKUP = "[bold red]styled[/] [link=https://evil.example]click[/link] [100%] \x1b]8;;x\x07\r"
SHOWN = "[bold red]styled[/] [link=https://evil.example]click[/link] [100%] ^[]8;;x^G^M"


def test_agent_and_repository_text_is_not_markup() -> None:
    check = evidence(f"tests passed {MARKUP}").model_copy(
        update={
            "check_changes": [CheckChange(path=f"conftest[{MARKUP}].py", why=MARKUP)],
            "failure": MARKUP,
        }
    )
    shown = report(
        outcome="unverified",
        reason=MARKUP,
        summary=MARKUP,
        question=MARKUP,
        verification=check,
        warnings=[MARKUP],
        worktree=f"/w/{MARKUP}",
    )
    for terminal in (False, True):  # plain lines, and the panel
        console = Console(record=True, width=400, color_system=None, force_terminal=terminal)
        _show(console, shown)
        text = console.export_text()
        # Every piece is there word for word: summary, reason, question, path, why, failure,
        # output, warning, worktree (the panel's borders aside), control characters shown.
        assert text.count(SHOWN) >= 9, text
        assert not RAW.findall(text.replace("\n", ""))
