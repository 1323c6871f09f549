"""Approval questions as a user meets them, on a real pseudo-terminal: ``locus run`` with a real
daemon, a real cloud and a scripted model that asks to run a command the user's policy marks
"ask". The question is visible (the live display stops while it waits, and shows the command
as it is), and answering it is never the only way out: ``locus cancel`` from another terminal
and Ctrl-C at the prompt both answer it (no) and stop the run there and then."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pexpect
import pytest

from tests.conftest import Cloud
from tests.locusd.agentkit import call, result_text, tool_results
from tests.locusd.cliuser import User, cloud_status, drained, login_and_queue
from tests.support.anthropic_server import AnthropicServer

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]

#: What the model asks to run: markup-looking text, which must be shown as it is.
ASKED = "echo '[red]approved[/red]' > approved.txt"
SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = r"allow\? \[y\]es once, \[a\]lways in this run, \[N\]o: "


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lease_seconds": 600}  # nothing goes back to the queue by itself


def asking_config(user: User, model: AnthropicServer) -> None:
    """The user's policy asks before any echo (before the daemon starts)."""
    user.config.write_text(
        f'[agent]\nbase_url = "{model.base_url}"\n\n[agent.policy]\nask = ["echo *"]\n'
    )


async def prompted(
    user: User, cloud: Cloud, model: AnthropicServer
) -> tuple[pexpect.spawn[str], str]:
    """``locus run --once`` on a terminal, up to the approval question: the process, and what
    the terminal showed (escape sequences taken out)."""
    asking_config(user, model)
    await login_and_queue(user, cloud)
    child = user.terminal("run", "--once", "--repo", str(user.repo))
    await asyncio.to_thread(child.expect, PROMPT)
    return child, SGR.sub("", f"{child.before}{child.after}")


async def ended(child: pexpect.spawn[str]) -> tuple[int | None, str]:
    await asyncio.to_thread(child.expect, pexpect.EOF)
    child.close()
    return child.exitstatus, SGR.sub("", str(child.before))


async def test_the_question_is_visible_and_the_display_waits_for_the_answer(
    user: User, cloud: Cloud
) -> None:
    script = [call("run_command", command=ASKED), call("ask_user", question="done?")]
    async with AnthropicServer(script) as model:
        child, shown = await prompted(user, cloud, model)
        lines = shown.replace("\r\n", "\n").split("\n")
        assert any(line.endswith(f"wants to run {ASKED}") for line in lines), shown
        assert (
            "why: 'echo [red]approved[/red] > approved.txt' matches the ask pattern 'echo *'"
            in shown
        )
        # The live status line is stopped: nothing is drawn over the question while it waits.
        with pytest.raises(pexpect.TIMEOUT):
            await asyncio.to_thread(child.read_nonblocking, 4096, 2)
        child.sendline("y")
        code, rest = await ended(child)
    assert code == 3, rest  # the model then asked a question: needs input
    (ran,) = tool_results(model.requests[1])
    assert ran["is_error"] is False and "exit code 0" in result_text(ran)


@pytest.mark.parametrize("how", ["locus cancel", "Ctrl-C"])
async def test_cancel_and_ctrl_c_answer_the_question_and_stop_the_run(
    user: User, cloud: Cloud, how: str
) -> None:
    script = [call("run_command", command=ASKED), call("ask_user", question="never asked")]
    async with AnthropicServer(script) as model:
        child, _ = await prompted(user, cloud, model)
        (run,) = (await user.json("runs"))["runs"]
        if how == "Ctrl-C":
            child.sendintr()
        else:
            cancelled = await user.json("cancel", run["runId"])
            assert cancelled["state"] == "cancelled"
        code, rest = await ended(child)
        await drained(user)
    assert code == 130, rest
    said = "no: Ctrl-C" if how == "Ctrl-C" else "no: withdrawn by the daemon (reject)"
    assert said in rest, rest
    assert len(model.requests) == 1  # the command never ran, the model was not asked again
    (after,) = (await user.json("runs"))["runs"]
    assert after["state"] == "cancelled"
    notes = [e["text"] for e in await user_events(user, run["runId"]) if e["kind"] == "note"]
    assert f"not run (the run was cancelled): {ASKED}" in notes
    # locus cancel cancels the task; Ctrl-C gives it back to the queue (as it does elsewhere).
    expected = "cancelled" if how == "locus cancel" else "queued"
    assert await cloud_status(cloud, after["taskId"]) == expected


async def user_events(user: User, run_id: str) -> list[dict[str, Any]]:
    _, out, _ = await user.locus("logs", run_id, "--json")
    return [json.loads(line) for line in out.splitlines()]


async def test_locus_run_mode_full_auto_asks_no_one(user: User, cloud: Cloud) -> None:
    """``--mode`` reaches the daemon's runs: piped (no one to ask), the echo the policy asks
    about runs without a question in full-auto."""
    script = [call("run_command", command=ASKED), call("ask_user", question="done?")]
    async with AnthropicServer(script) as model:
        asking_config(user, model)
        await login_and_queue(user, cloud)
        code, _, err = await user.locus(
            "run", "--once", "--repo", str(user.repo), "--mode", "full-auto", check=False
        )
    assert code == 3, err
    assert "wants to run" not in err
    (ran,) = tool_results(model.requests[1])
    assert ran["is_error"] is False and "exit code 0" in result_text(ran)
