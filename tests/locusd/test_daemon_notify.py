"""A real ``locusd serve`` tells a person when a run needs them: a desktop notification (the
stand-in notify-send first on its PATH, tests/locusd/notifyprog.py) and ``locus/needsYou`` to
every client on the real socket (pygls's LanguageClient, as an editor) — once per event: an
approval pending, a question, a run awaiting review. Not again for a client that reconnects,
nor after a kill -9 and a restart. The agent's hostile question stays text. Turned off, or with
no notify-send, ``locus status`` says so and why."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from locusd.notifications import BODY_LIMIT, TITLES
from tests.locusd import daemonmachine
from tests.locusd.agentkit import DEMO_TRANSCRIPT, TASK, call
from tests.locusd.daemonmachine import WAIT, Machine, serving
from tests.locusd.server.support import Lsp, lsp_client, on
from tests.support.anthropic_server import AnthropicServer
from tests.support.processes import until

pytestmark = pytest.mark.timeout(180)
machine = daemonmachine.machine
COMMAND = "python3 -c 'print(41 + 1)'"
TEN_KB = "A" * 10_000


def hostile(sentinel: Path) -> str:
    return (
        f"$(rm -rf ~) `touch {sentinel}`; touch {sentinel} | <b>bold</b> & <img src=x>"
        "\x1b]0;title\x07\x1b[2J\u202eevil\r\nsecond line\n\n--help\n" + TEN_KB
    )


@dataclass
class Editor:
    lsp: Lsp
    notes: asyncio.Queue[Any]

    async def next_note(self) -> Any:
        return await asyncio.wait_for(self.notes.get(), WAIT)


@contextlib.asynccontextmanager
async def editor(machine: Machine, *, approves: bool = False) -> AsyncIterator[Editor]:
    """A client on the socket collecting ``locus/needsYou``; ``approves``: answers every
    ``locus/approval`` with allow_once."""
    async with lsp_client(machine.socket) as lsp:
        notes: asyncio.Queue[Any] = asyncio.Queue()

        def heard(params: Any) -> None:
            notes.put_nowait(params)

        def approve(params: Any) -> dict[str, str]:
            return {"decision": "allow_once"}

        on(lsp.client, "locus/needsYou", heard)
        if approves:
            on(lsp.client, "locus/approval", approve)
        await lsp.initialize()
        yield Editor(lsp, notes)


async def start(machine: Machine, watcher: Editor, **params: str) -> str:
    run = await watcher.lsp.call("locus/runs/start", {"repo": str(machine.repo), **params})
    await watcher.lsp.call("locus/runs/subscribe", {"runId": run.runId})
    return str(run.runId)


async def test_one_notification_per_event_to_the_desktop_and_every_client(
    machine: Machine, tmp_path: Path
) -> None:
    sentinel = tmp_path / "pwned"
    question = hostile(sentinel)
    script = [
        call("read_file", path="stats.py"),  # the watcher is subscribed before the command
        call("run_command", command=COMMAND),
        call("ask_user", question=question),
    ]
    async with AnthropicServer(script) as model:
        machine.configure(
            f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n'
            '[agent.policy]\nask = ["python3 *"]\n'
        )
        async with serving(machine) as daemon, editor(machine, approves=True) as watcher:
            async with editor(machine) as bystander:
                asking = await start(machine, watcher, task="check the median")
                approval = await watcher.next_note()
                asked = await watcher.next_note()
                reviewing = await start(machine, watcher, task=TASK, replay=str(DEMO_TRANSCRIPT))
                review = await watcher.next_note()
                # A client that watches no run hears of them all the same.
                seen = [await bystander.next_note() for _ in range(3)]
                assert [n.kind for n in seen] == ["approval", "question", "review"]
                status = await machine.locus("status")
            # A client that (re)connects is not told again.
            async with editor(machine) as again:
                await again.lsp.call("locus/daemon/status")
                assert again.notes.empty()
            await until(lambda: len(machine.program.calls()) == 3, timeout=WAIT)
            daemon.kill()  # kill -9: what was told is not told again by the next daemon
            await daemon.wait()

    assert (approval.kind, approval.runId, approval.text) == ("approval", asking, COMMAND)
    assert approval.approvalId.startswith(f"{asking}/") and approval.repo == str(machine.repo)
    assert (asked.kind, asked.runId, asked.title) == ("question", asking, "check the median")
    assert asked.text == question[:499] + "…"  # the run has it all; a note is short
    assert (review.kind, review.runId) == ("review", reviewing)
    assert getattr(review, "taskId", None) is None  # a local run
    assert "notifications: desktop, with notify-send" in status

    calls = machine.program.calls()
    assert [c["argv"][:3] for c in calls] == [
        ["--app-name=Locus", "--", TITLES["approval"]],
        ["--app-name=Locus", "--", TITLES["question"]],
        ["--app-name=Locus", "--", TITLES["review"]],
    ]
    assert calls[0]["argv"][3] == f"check the median\n{COMMAND}"
    toast = calls[1]["argv"][3]
    first, second, third, fourth, *_ = toast.split("\n")
    assert first == "check the median"
    assert second == (
        f"$(rm -rf ~) `touch {sentinel}`; touch {sentinel} | &lt;b&gt;bold&lt;/b&gt; &amp;"
        " &lt;img src=x&gt;]0;title[2Jevil"
    )
    assert (third, fourth) == ("second line", "--help")
    assert len(toast) < 2 * BODY_LIMIT and toast.endswith("…")
    assert not sentinel.exists() and (machine.home / "keep").read_text() == "still here"
    for made in calls:
        assert "ANTHROPIC_API_KEY" not in made["env"] and made["cwd"] == "/"

    # The next daemon (after the kill -9): the runs already waiting are not news; a new one is.
    async with serving(machine), editor(machine) as watcher:
        third = await start(machine, watcher, task=TASK, replay=str(DEMO_TRANSCRIPT))
        assert (await watcher.next_note()).runId == third
        await until(lambda: len(machine.program.calls()) >= 4, timeout=WAIT)
        runs = (await watcher.lsp.call("locus/runs/list")).runs
        assert sorted(r.state for r in runs) == [
            "awaiting_review",
            "awaiting_review",
            "needs_input",
        ]
    assert len(machine.program.calls()) == 4, "a restart repeated a notification"


async def test_turned_off_the_desktop_hears_nothing_and_status_says_so(machine: Machine) -> None:
    machine.configure("[notifications]\ndesktop = false\n")
    async with serving(machine), editor(machine) as watcher:
        status = await machine.locus("status")
        await start(machine, watcher, task=TASK, replay=str(DEMO_TRANSCRIPT))
        assert (await watcher.next_note()).kind == "review"  # editors still hear of it
    # The daemon has stopped (SIGTERM): it waits for the notifications it raised, if any.
    assert machine.program.calls() == []
    assert "notifications: no desktop notifications — turned off in config.toml" in status
    assert "[notifications] desktop = false" in status


async def test_without_notify_send_status_says_why(machine: Machine) -> None:
    (machine.program.directory / "notify-send").unlink()
    async with serving(machine):
        answer = json.loads(await machine.locus("status", "--json"))
        status = await machine.locus("status")
    assert answer["notifications"]["desktop"] is False
    assert "notify-send is not on the daemon's PATH" in answer["notifications"]["reason"]
    assert "notifications: no desktop notifications — notify-send is not on" in status
