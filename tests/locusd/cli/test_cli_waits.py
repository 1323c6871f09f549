"""Waits that say what they wait for: ``locus run --task N`` on a task that is not queued, and
``locus run --once`` on an empty queue, say why and what moves it (``--no-wait`` fails with that
at once); and the first-day papercuts — a broken ``config.toml``, a cloud URL without its
scheme, a commit while the cloud is down — each say plainly what is the matter."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from locusd.runner.handles import short_id
from tests.conftest import Cloud
from tests.locusd.agentkit import DEMO_TRANSCRIPT, TASK
from tests.locusd.cli.test_cli_text import SGR
from tests.locusd.cliuser import User, cloud_status

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lease_seconds": 600}


async def logged_in(user: User, cloud: Cloud) -> str:
    status = await user.json("login", "--cloud", cloud.url, "--token", cloud.first_start.token)
    assert status["loggedIn"]
    return str((await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["slug"])


async def test_run_says_why_it_waits_and_no_wait_fails_with_it(user: User, cloud: Cloud) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    project = await logged_in(user, cloud)
    repo = ("--repo", str(user.repo))

    # An empty queue: --no-wait fails at once, saying so and what would fill it.
    returned, out, err = await user.locus("run", "--once", "--no-wait", *repo, check=False)
    assert (returned, out) == (1, "")
    assert err == (
        f"error: nothing is queued for git.example.com/acme/sample (project {project}): create"
        " a task with `locus tasks create --title …`, or queue one from the backlog (`locus"
        " tasks list --status backlog`, then `locus tasks queue N`)\n"
    )

    # A task in the backlog: why, and the command that queues it.
    task = await user.json("tasks", "create", "--title", TASK, "--backlog", cwd=user.repo)
    n = task["id"]
    returned, _, err = await user.locus("run", "--task", str(n), "--no-wait", *repo, check=False)
    assert returned == 1
    assert err == f"error: task {n} is in backlog; queue it with `locus tasks queue {n}`\n"

    # Without --no-wait it says so, waits — and takes the task once a person queues it.
    working = await user.start("run", "--task", str(n), *repo, "--json")
    try:
        assert working.stderr is not None
        first = await asyncio.wait_for(working.stderr.readline(), 60)
        assert first.decode() == (
            f"waiting: task {n} is in backlog; queue it with `locus tasks queue {n}`\n"
        )
        assert (await user.json("tasks", "queue", str(n)))["status"] == "queued"
        raw, rest = await asyncio.wait_for(working.communicate(), 120)
    finally:
        if working.returncode is None:
            working.kill()
            await working.wait()
    assert working.returncode == 0, rest.decode()
    (run,) = json.loads(raw)
    assert run["task_id"] == n and run["state"] == "awaiting_review"

    # Its change committed while the cloud is down: the report is queued, not "reported".
    await cloud.runner.cleanup()
    _, out, err = await user.locus("review", run["run_id"], "--accept-all", "--commit")
    assert "report queued for the cloud (verification)" in out, out
    assert "reported" not in out + err
    _, out, _ = await user.locus("runs")
    (row,) = [line.split("\t") for line in out.splitlines()]
    assert row[:3] == [short_id(run["run_id"]), run["run_id"], "committed"], out


async def test_other_states_name_their_next_step(user: User, cloud: Cloud) -> None:
    await logged_in(user, cloud)
    made = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", {"title": "t"})).ok(201)
    n = str(made["id"])
    (await cloud.api.post(f"/tasks/{n}/cancel", {})).ok()
    returned, _, err = await user.locus(
        "run", "--task", n, "--no-wait", "--repo", str(user.repo), check=False
    )
    assert returned == 1
    assert err == f"error: task {n} is in cancelled; retry it with `locus tasks retry {n}`\n"
    # Queued, but for a repository these checkouts do not serve.
    other = {"title": "elsewhere", "repository": "https://git.example.com/acme/other.git"}
    made = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", other)).ok(201)
    (await cloud.api.post(f"/tasks/{made['id']}/queue", {})).ok()
    returned, _, err = await user.locus(
        "run", "--task", str(made["id"]), "--no-wait", "--repo", str(user.repo), check=False
    )
    assert (
        returned == 1 and "which these checkouts do not serve (git.example.com/acme/sample)" in err
    )
    returned, _, err = await user.locus(
        "run", "--once", "--no-wait", "--repo", str(user.repo), check=False
    )
    assert returned == 1 and err.startswith("error: nothing is queued for"), err


async def test_a_broken_config_is_one_clear_error(user: User) -> None:
    """No traceback, and not an older daemon's log lines: the file, the line, the problem."""
    user.config.write_text("[agent\nprovider = 'replay'\n")
    for args in (("status",), ("tasks", "list")):
        returned, _, err = await user.locus(*args, check=False)
        assert returned == 5, err
        assert "Traceback" not in err and 'File "' not in err, err
        assert err.splitlines()[-1] == (
            f"locusd serve: {user.config}: not valid TOML: Expected ']' at the end of a table"
            " declaration (at line 1, column 7)"
        ), err
    user.config.write_text("[daemon]\ncloud_urll = 'http://x'\n")
    returned, _, err = await user.locus("status", check=False)
    assert err.splitlines()[-1] == (
        f"locusd serve: {user.config}: daemon.cloud_urll: Extra inputs are not permitted"
    ), err
    assert "not valid TOML" not in err  # the earlier start's words are not repeated


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("127.0.0.1:8420", "'127.0.0.1:8420' has no scheme: write http://127.0.0.1:8420"),
        ("localhost", "'localhost' has no scheme: write http://localhost"),
        ("ftp://host", "'ftp://host' is not an http:// or https:// URL with a host"),
    ],
)
async def test_a_cloud_url_without_its_scheme_names_the_fix(
    user: User, url: str, problem: str
) -> None:
    returned, _, err = await user.locus("login", "--cloud", url, "--token", "t", check=False)
    assert returned == 2
    assert err.startswith(f"error: the cloud URL {problem}") and len(err.splitlines()) == 1, err


def waits_on_a_terminal(user: User, task_id: int) -> str:
    """``locus run --task N`` on a pseudo-terminal: what it shows while it waits (the line, and
    the spinner's text), until Ctrl-C stops it."""
    child = user.terminal("run", "--task", str(task_id), "--repo", str(user.repo), columns=200)
    child.expect("serving ")  # the worker started after the reason was said
    seen = f"{child.before}{child.after}"
    child.expect("⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏")  # the spinner, with its text after it
    child.expect("locus tasks queue")
    seen += f"{child.before}{child.after}"
    child.sendintr()
    seen += child.read()
    child.close()
    return SGR.sub("", seen).replace("\r\n", "\n")


async def test_the_wait_is_said_on_a_terminal_too(user: User, cloud: Cloud) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    await logged_in(user, cloud)
    task = await user.json("tasks", "create", "--title", TASK, "--backlog", cwd=user.repo)
    n = task["id"]
    shown = await asyncio.to_thread(waits_on_a_terminal, user, n)
    said = f"waiting: task {n} is in backlog; queue it with `locus tasks queue {n}`"
    assert f"{said}\n" in shown, shown  # its own whole line, not wrapped
    assert shown.count(said) >= 2, shown  # and on the spinner while it waits
    assert await cloud_status(cloud, n) == "backlog"  # waiting took nothing
