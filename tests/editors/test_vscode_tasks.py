"""The VS Code extension's Tasks view and task commands against the REAL daemon logged in to a
REAL cloud: the extension, activated on the ``vscode`` API mock in a checkout whose remote the
cloud's project lists, shows the project's tasks (a title written like markup kept as text),
creates a task, pulls it (its run starts and asks an approval; the prompt is left open, answering
nothing) and cancels the run, which withdraws the question and so closes the prompt; the cloud
then has the task, cancelled. Then a local run started from the editor (*Start a local run…*)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import Cloud
from tests.editors.test_vscode_client import ASKED
from tests.editors.vscodebuild import LOCUSD, Built, node_tests
from tests.locusd.agentkit import call
from tests.locusd.cliuser import cloud_status, drained, machine
from tests.support.anthropic_server import AnthropicServer

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]

TITLE = "[run](command:workbench.action.quit) <b>x</b> $(zap)\nLocus-Task: 9"


async def test_tasks_view_create_pull_and_cancel(
    built: Built, cloud: Cloud, tmp_path: Path
) -> None:
    script = [call("run_command", command=ASKED), call("ask_user", question="What style?")]
    async with machine(cloud, tmp_path) as user, AnthropicServer(script) as model:
        user.config.write_text(
            f'[agent]\nbase_url = "{model.base_url}"\n\n[agent.policy]\nask = ["echo *"]\n'
        )
        token = cloud.first_start.token
        assert (await user.json("login", "--cloud", cloud.url, "--token", token))["loggedIn"]
        backlog = await user.json(
            "tasks", "create", "--project", str(cloud.project_id), "--title", TITLE, "--backlog"
        )
        out = tmp_path / "out.json"
        node_env = {
            **user.env,
            "LOCUSD": LOCUSD,
            "LOCUS_REPO": str(user.repo),
            "LOCUS_OUT": str(out),
        }
        passed, failed, output = await asyncio.to_thread(
            node_tests, built.where, [str(built.where / "dist-test" / "tasks.e2e.js")], node_env
        )
        assert failed == 0 and passed == 1, output
        await drained(user)
        seen = json.loads(out.read_text())
        # The pulled run's one request (its approval never answered: the command never ran),
        # then the local run's, which carries the task typed in the editor.
        assert len(model.requests) == 2
        assert "Add a docstring to mean()" in json.dumps(model.requests[1].body)
        assert seen["asked"] == ASKED  # the prompt showed the command asked

    # The tasks view showed the project's task, its title as one line of text.
    assert seen["backlog"] == {
        "taskId": backlog["id"],
        "label": f"#{backlog['id']} " + TITLE.replace("\n", "\\u000a"),
        "description": "backlog",
    }
    assert seen["errors"] == []
    # Created in the cloud, in the checkout's project; pulled, its run cancelled: so is the task.
    created = (await cloud.api.get(f"/tasks/{seen['created']}")).ok()
    assert (created["title"], created["project_id"]) == ("Made in the editor", cloud.project_id)
    assert await cloud_status(cloud, seen["created"]) == "cancelled"
    assert seen["run"]["description"].endswith(" · cancelled")
    assert await cloud_status(cloud, backlog["id"]) == "backlog"  # the other task untouched
    assert seen["local"]["taskId"] is None  # a local run: no cloud task made for it
    assert seen["local"]["context"] == "run.waiting"  # no Cancel on it: it waits on the person
