"""Text is data: a task title, the agent's words, a file it wrote and its summary that look like
rich markup, or carry terminal control sequences (ESC, OSC 8 links, OSC 52 clipboard writes,
BEL, carriage return, backspace, a bidi override), come out of every ``locus`` command that
prints them literally — piped, and on a real pseudo-terminal — with their control characters
shown (``^[``), never sent raw to the terminal. Piped, lists are tab-separated rows with whole
ids; on a narrow terminal, tables fit its width."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from rich.cells import cell_len

from tests.conftest import Cloud
from tests.locusd.agentkit import BUGGY, FIXED, call
from tests.locusd.cliuser import User
from tests.support.anthropic_server import AnthropicServer, Reply, text

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]

MARKUP = "[/b] [/] [red]x[/red] [link=file:///etc/passwd]x[/link] [agent]"
CONTROLS = (
    "\x1b[2J\x1b]8;;http://evil.example/\x07osc8\x1b]8;;\x07"
    " \x1b]52;c;cHduZWQ=\x07 bell\x07 back\rspace\x08 \u202egnp.exe"
)
HOSTILE = f"{MARKUP} {CONTROLS}"
#: How it is shown: the markup as it is, each control character as cat -v (or <U+…>) shows it.
SHOWN = (
    f"{MARKUP} ^[[2J^[]8;;http://evil.example/^Gosc8^[]8;;^G"
    " ^[]52;c;cHduZWQ=^G bell^G back^Mspace^H <U+202E>gnp.exe"
)
#: What a terminal would act on. On the pseudo-terminal, rich's own colours (SGR) are removed
#: first, and the terminal's CR LF line ends read as LF.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def assert_inert(shown: str) -> None:
    """Nothing in ``shown`` drives a terminal."""
    assert not RAW.findall(shown), repr(shown)


async def piped(user: User, *args: str, code: int = 0) -> tuple[str, str]:
    returned, out, err = await user.locus(*args, check=False)
    assert returned == code, err
    assert_inert(out)
    assert_inert(err)
    assert "─" not in out and "│" not in out  # no box drawing for programs
    return out, err


def on_a_terminal(
    user: User, *args: str, columns: int = 250, code: int = 0, answers: tuple[str, ...] = ()
) -> str:
    """``locus ARGS`` on a pseudo-terminal ``columns`` wide, answering each ``decide`` prompt
    with the next of ``answers``: what the terminal received, rich's colours taken out;
    asserted inert."""
    child = user.terminal(*args, columns=columns)
    received = ""
    for answer in answers:
        child.expect(r"Accept this \w+ \[.*\]\?")
        received += f"{child.before}{child.after}"
        child.sendline(answer)
    received += child.read()
    child.close()
    assert child.exitstatus == code, received
    shown = SGR.sub("", received).replace("\r\n", "\n")
    assert_inert(shown)
    return shown


async def terminal(
    user: User, *args: str, columns: int = 250, code: int = 0, answers: tuple[str, ...] = ()
) -> str:
    return await asyncio.to_thread(
        on_a_terminal, user, *args, columns=columns, code=code, answers=answers
    )


def hostile_session() -> list[Reply]:
    """The model fixes the bug, says and writes hostile text, and sums it up with it."""
    return [
        Reply([text(HOSTILE), *call("read_file", path="stats.py").content], stop_reason="tool_use"),
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        call("write_file", path="notes/[red]x[/red].md", content=f"{HOSTILE}\n"),
        call("run_verify"),
        call("finish", summary=HOSTILE),
    ]


async def test_hostile_text_comes_out_literally_piped_and_on_a_terminal(
    user: User, cloud: Cloud
) -> None:
    async with AnthropicServer(hostile_session()) as model:
        user.agent(provider="anthropic", base_url=model.base_url)  # before the daemon starts
        login = await user.json("login", "--cloud", cloud.url, "--token", cloud.first_start.token)
        assert login["loggedIn"]
        task = await user.json(
            "tasks", "create", "--project", str(cloud.project_id), "--title", HOSTILE,
            "--description", HOSTILE,
        )  # fmt: skip
        assert task["title"] == HOSTILE  # the cloud keeps what it is given; printing is ours
        _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review", err
    run_id = run["run_id"]

    # Lists, piped: one tab-separated row per item, the id whole, the text on its row.
    out, _ = await piped(user, "tasks", "list")
    (row,) = [line.split("\t") for line in out.splitlines()]
    assert row[0] == str(task["id"]) and row[3] == SHOWN, out
    out, _ = await piped(user, "runs")
    (row,) = [line.split("\t") for line in out.splitlines()]
    assert row[0] == run["short_id"] and row[1] == run_id and row[4] == SHOWN, out
    out, _ = await piped(user, "audit")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows and all(len(r) == 6 and re.fullmatch("[0-9a-f]{64}", r[5]) for r in rows), out

    # Everything else that prints it, piped: literally, on whole lines.
    out, _ = await piped(user, "tasks", "show", str(task["id"]), "--json")
    assert json.loads(out)["title"] == HOSTILE  # JSON: the data unchanged, escaped (inert)
    out, _ = await piped(user, "logs", run_id, "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert HOSTILE in "".join(e["text"] for e in events if e["kind"] == "text")
    out, _ = await piped(user, "tasks", "show", str(task["id"]))
    assert f"#{task['id']} {SHOWN}" in out and SHOWN in out.splitlines(), out
    out, _ = await piped(user, "logs", run_id)
    assert SHOWN in out, out  # the agent's words (streamed text, joined as it came)
    out, _ = await piped(user, "review", run_id, "--no-interactive")
    lines = out.splitlines()
    assert SHOWN in lines  # the summary
    assert f"+{SHOWN}" in lines  # the hunk of the file it wrote
    assert "notes/[red]x[/red].md (added)" in lines, out  # its path
    _, err = await piped(user, "logs", HOSTILE, code=1)
    assert err.startswith("error: no run matches '[/b] [/] [red]x[/red]"), err  # errors too
    _, err = await piped(user, "cancel", HOSTILE, code=1)
    assert "[link=file:///etc/passwd]x[/link]" in err and len(err.splitlines()) == 1, err

    # The same on a terminal: coloured, tables drawn, the text still as it is.
    shown = await terminal(user, "tasks", "list")
    assert SHOWN in shown and "─" in shown, shown
    shown = await terminal(user, "runs")
    assert run_id in shown and SHOWN in shown, shown
    shown = await terminal(user, "tasks", "show", str(task["id"]))
    assert SHOWN in shown
    shown = await terminal(user, "logs", run_id)
    assert SHOWN in shown
    shown = await terminal(user, "review", run_id, "--no-interactive")
    assert SHOWN in shown.splitlines() and f"+{SHOWN}" in shown.splitlines(), shown
    # Hunk by hunk, as a person reviews: the agent's file is shown as it is before the prompt.
    shown = await terminal(user, "review", run_id, answers=("q",))
    assert shown.index(f"+{SHOWN}") < shown.index("Accept this"), shown
    shown = await terminal(user, "logs", HOSTILE, code=1)
    assert "error: no run matches '[/b] [/] [red]x[/red]" in shown

    # A narrow terminal: every table fits, ids whole (the long text folds onto more lines).
    for args in (("tasks", "list"), ("runs",), ("audit",)):
        shown = await terminal(user, *args, columns=60)
        assert all(cell_len(line) <= 60 for line in shown.splitlines()), shown
    assert run_id in await terminal(user, "runs", columns=60)
