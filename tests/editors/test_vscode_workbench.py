"""The extension in a real VS Code workbench: code-server (tests/editors/codeserver.py) with the
built .vsix installed, driven by Playwright with Debian's Chromium, against the real daemon
whose run of a real cloud task awaits review. A person opens the repository, sees the run in
the Locus view, opens the file's diff, accepts one hunk and rejects the other with a comment
(the CodeLens over each hunk), commits from the command palette; then the commit holds the
accepted hunk only and the cloud task is in verification with the review on its timeline.
A second test: approvals in the workbench, with another client watching the same run.

With ``LOCUS_TEST_ARTIFACTS`` set, the test saves the screenshots docs/editors.md shows:
``LOCUS_TEST_ARTIFACTS=docs/screenshots pytest tests/editors/test_vscode_workbench.py``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from cloud_api.dashboard.timeline import Names, describe
from cloud_api.schemas.tasks import EventOut
from locusd.cli.rpc import DaemonClient
from locusd.server.paths import socket_path
from tests.cloud_api.dashboard.conftest import TIMEOUT_MS, chromium_path, launched
from tests.conftest import Cloud
from tests.editors.codeserver import installed
from tests.editors.vscodebuild import Built, build
from tests.locusd.agentkit import call
from tests.locusd.cli.test_review_keys import BASE, PROPOSED
from tests.locusd.cliuser import (
    LOCUS,
    User,
    awaiting_review,
    cloud_status,
    drained,
    login_and_queue,
    machine,
)
from tests.support.anthropic_server import AnthropicItem, AnthropicServer, Reply
from tests.support.client import timeline
from tests.support.scripted import Script
from tests.support.shortpath import short_tmp

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]

LOCUSD = str(Path(LOCUS).parent / "locusd")
WAIT_MS = 60_000  # the workbench's first load compiles a lot of JavaScript on a busy machine
LISTENING = re.compile(r"HTTP server listening on (http://127\.0\.0\.1:\d+/)")
COMMENT = "Keep the old docstring: the module is still small."
SETTINGS = {
    "locus.daemonPath": LOCUSD,
    "telemetry.telemetryLevel": "off",
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "diffEditor.renderSideBySide": True,
    "window.restoreWindows": "none",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("vscode-build"))


@pytest.fixture(scope="module")
def entry() -> Path:
    """code-server, installed before the test's event loop runs (a first install takes a
    minute, which would stall the cloud that shares the loop)."""
    return installed()


@pytest.fixture
def patient() -> Iterator[None]:
    """Assertions wait as long as the workbench may take here, and as before after the test."""
    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
async def user(cloud: Cloud, tmp_path: Path) -> AsyncIterator[User]:
    async with machine(cloud, tmp_path) as found:
        yield found


@asynccontextmanager
async def code_server(
    entry: Path, built: Built, env: dict[str, str], folder: Path, home: Path
) -> AsyncIterator[str]:
    """code-server on a loopback port, no auth, its own user data and extensions in ``home``,
    the .vsix installed; the daemon it reaches is the one of ``env``. Yields the folder's URL
    once the server listens. (Subprocesses without blocking: the cloud shares this loop.)"""
    dirs = [
        f"--user-data-dir={home / 'data'}",
        f"--extensions-dir={home / 'extensions'}",
        f"--config={home / 'config.yaml'}",
    ]
    settings = home / "data" / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(SETTINGS))
    install = await asyncio.create_subprocess_exec(
        "node", str(entry), *dirs, f"--install-extension={built.vsix}", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    said = (await install.communicate())[0].decode()
    assert "was successfully installed" in said, said
    logged = home / "code-server.log"
    with logged.open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            "node", str(entry), *dirs, "--auth=none", "--bind-addr=127.0.0.1:0",
            "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
            "--disable-getting-started-override", "--disable-file-downloads",
            "--ignore-last-opened",
            env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with asyncio.timeout(WAIT_MS / 1000):
            while not (found := LISTENING.search(logged.read_text())):
                assert server.returncode is None, logged.read_text()
                await asyncio.sleep(0.1)
        yield f"{found.group(1)}?folder={folder}"
    finally:
        if server.returncode is None:
            server.terminate()
        await server.wait()
        print(logged.read_text())  # shown when the test fails


@asynccontextmanager
async def workbench(entry: Path, built: Built, user: User) -> AsyncIterator[Page]:
    """The user's checkout open in code-server in Chromium, the Locus view shown. Short paths:
    code-server's session socket goes in its user data dir, Chromium's in its tmp."""
    with short_tmp() as browser_tmp, short_tmp() as home:
        async with (
            code_server(entry, built, user.env, user.repo, home) as url,
            launched(chromium_path(), browser_tmp) as browser,
        ):
            context = await browser.new_context(viewport={"width": 1440, "height": 900})
            context.set_default_timeout(WAIT_MS)
            page = await context.new_page()
            await page.goto(url)
            await expect(page.locator(".monaco-workbench")).to_be_visible()
            await page.locator(".activitybar [aria-label^='Locus']").first.click()
            try:
                yield page
            finally:
                await context.close()


def session() -> list[Reply]:
    return [
        call("write_file", path="stats.py", content=PROPOSED),
        call("run_verify"),
        call("finish", summary="Fixed median; reworded the docstring."),
    ]


async def shoot(page: Page, name: str) -> None:
    where = os.environ.get("LOCUS_TEST_ARTIFACTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(where) / name))


async def palette(page: Page, command: str) -> None:
    """Run a command by its title from the command palette, as a person would."""
    await page.keyboard.press("F1")
    box = page.locator(".quick-input-widget input")
    await expect(box).to_be_visible()
    await box.fill(f">{command}")
    await page.locator(".quick-input-list .monaco-list-row", has_text=command).first.click()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


async def test_review_a_cloud_task_in_the_vscode_workbench(
    entry: Path, built: Built, user: User, cloud: Cloud, patient: None
) -> None:
    task, _ = await awaiting_review(user, cloud, session(), "Fix median")

    async with workbench(entry, built, user) as page:
        # The Locus view: the run awaiting review, its file, the file's diff.
        reviews = page.locator(".pane", has=page.locator(".pane-header", has_text="Reviews"))
        file_row = reviews.locator(".monaco-list-row", has_text="stats.py")
        await expect(file_row).to_be_visible()
        await file_row.click()
        diff = page.locator(".monaco-diff-editor")
        await expect(diff).to_be_visible()
        lenses = diff.locator(".codelens-decoration")
        await expect(lenses.first).to_be_visible()
        await shoot(page, "vscode-review.png")

        # Accept the first hunk, reject the second with a comment.
        await lenses.nth(0).get_by_role("button", name="Accept").click()
        await expect(lenses.nth(0)).to_contain_text("accepted")
        await lenses.nth(1).get_by_role("button", name="Reject…").click()
        box = page.locator(".quick-input-widget input")
        await expect(box).to_be_visible()
        await box.fill(COMMENT)
        await box.press("Enter")
        await expect(lenses.nth(1)).to_contain_text("rejected")
        # The tree says the same, hunk by hunk.
        await file_row.locator(".monaco-tl-twistie").click()
        for decision in ("accept", "reject"):
            hunk = reviews.locator(".monaco-list-row", has_text=f"· {decision}")
            await expect(hunk).to_be_visible()
        await shoot(page, "vscode-decided.png")

        # Commit from the command palette, the message as the daemon proposes it.
        await palette(page, "Locus: Commit accepted changes")
        await expect(box).to_be_visible()
        await box.press("Enter")
        note = page.locator(".notifications-toasts", has_text="Locus: committed")
        await expect(note).to_be_visible()
        toast = await note.inner_text()

    commit = toast.split("Locus: committed ")[1].split()[0]
    assert git(user.repo, "rev-parse", "--verify", f"{commit}^{{commit}}").strip()
    files = git(user.repo, "diff-tree", "--no-commit-id", "--name-only", "-r", commit).split()
    assert files == ["stats.py"]
    committed = git(user.repo, "show", f"{commit}:stats.py")
    # The accepted hunk (the docstring and mean()'s message) only; not the median fix.
    assert committed == BASE.replace(
        '"""Small statistics helpers."""', '"""Statistics helpers."""'
    ).replace('"mean of an empty list"', '"mean() of an empty list"')
    trailers = git(user.repo, "log", "-1", "--format=%(trailers:key=Locus-Task,valueonly)", commit)
    assert trailers.split() == [str(task["id"])]

    await drained(user)
    assert await cloud_status(cloud, task["id"]) == "verification"
    events = await timeline(cloud.api, task["id"])
    # One review event per decision sent: the accepted hunk, then the rejected one and its
    # comment, in words.
    names = Names({}, {}, {})
    said = [
        "".join(text for text, _ in describe(EventOut.model_validate(event), names))
        for event in events
        if event["kind"] == "review"
    ]
    assert len(said) == 2, said
    assert "stats.py 1 accepted" in said[0], said
    assert "stats.py 1 rejected" in said[1] and COMMENT in said[1], said


ASKS = [f"echo {word} > {word}.txt" for word in ("first", "second", "third")]
TITLE = "Tidy $(zap) <b>logs</b>"


def asking_session(gate: threading.Event) -> Script[AnthropicItem]:
    """Three commands the policy asks about, the median fix, the checks, then finish. The model
    waits before the first until the test opens ``gate`` (both clients watch the run by then)."""
    turns = [*(call("run_command", command=command) for command in ASKS)]
    turns += [
        call("write_file", path="stats.py", content=PROPOSED),
        call("run_verify"),
        call("finish", summary="Tidied."),
    ]

    def script(_request: object) -> AnthropicItem:
        assert gate.wait(120), "the test never opened the gate"
        return turns.pop(0)

    return script


class OtherClient:
    """A second client of the daemon (a terminal, another editor): it watches the run, keeps
    its notes, and answers the approvals the test tells it to (``allow``); the others it
    leaves unanswered until the daemon withdraws them."""

    def __init__(self) -> None:
        self.started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.notes: list[str] = []
        self.asked: list[str] = []
        self.allow: dict[str, asyncio.Event] = {command: asyncio.Event() for command in ASKS}
        self.done = asyncio.Event()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if method == "locus/runs/started" and not self.started.done():
            self.started.set_result(params["runId"])
        if method == "locus/runs/event" and params["kind"] == "note":
            self.notes.append(params["text"])

    async def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "locus/approval", method
        self.asked.append(params["command"])
        await asyncio.wait(
            [asyncio.ensure_future(e.wait()) for e in (self.allow[params["command"]], self.done)],
            return_when=asyncio.FIRST_COMPLETED,
        )
        return {"decision": "allow_once"}


async def test_approvals_in_the_vscode_workbench(
    entry: Path, built: Built, user: User, cloud: Cloud, patient: None
) -> None:
    """The approval prompt in the workbench: it shows the agent's text as text; it closes when
    another client answers first; clicking *Allow once* answers; Escape answers nothing."""
    gate = threading.Event()
    with AnthropicServer(asking_session(gate)).in_thread() as model:
        user.config.write_text(
            f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n\n'
            '[agent.policy]\nask = ["echo *"]\n'
        )
        await login_and_queue(user, cloud, TITLE)
        other = OtherClient()
        reader, writer = await asyncio.open_unix_connection(str(socket_path(user.env)))
        async with DaemonClient(
            reader, writer, on_notification=other.notify, on_request=other.answer
        ) as daemon:
            try:
                await _approve_in_the_workbench(entry, built, user, other, daemon, gate)
            finally:
                other.done.set()
                gate.set()

    # Each question went to both clients; the daemon took the first answer of each.
    assert other.asked == ASKS
    assert [note for note in other.notes if note.endswith(".txt")] == [
        f"allow once: {command}" for command in ASKS
    ]  # the third too: Escape in the workbench sent nothing (no "reject" came first)


async def _approve_in_the_workbench(
    entry: Path, built: Built, user: User, other: OtherClient, daemon: DaemonClient,
    gate: threading.Event,
) -> None:  # fmt: skip
    async with workbench(entry, built, user) as page:
        tasks = page.locator(".pane", has=page.locator(".pane-header", has_text="Tasks"))
        await expect(tasks.locator(".monaco-list-row", has_text=TITLE)).to_be_visible()

        # Pull the task: its run starts; both clients watch it; then the agent asks.
        await palette(page, "Locus: Pull a task and start its run")
        run_id = await asyncio.wait_for(other.started, WAIT_MS / 1000)
        await daemon.call_wire("locus/runs/subscribe", {"runId": run_id})
        runs = page.locator(".pane", has=page.locator(".pane-header", has_text="Runs"))
        await expect(runs.locator(".monaco-list-row", has_text=TITLE)).to_be_visible()
        gate.set()

        prompt = page.locator(".quick-input-widget")
        rows = prompt.locator(".monaco-list-row")
        # 1. Answered by the other client first: the workbench's prompt closes by itself.
        await expect(rows.filter(has_text=ASKS[0])).to_be_visible()
        await expect(prompt).to_contain_text(f"run: {TITLE}")  # $(zap) as text, no icon
        await expect(prompt.locator(".codicon-zap")).to_have_count(0)
        await shoot(page, "vscode-approval.png")
        other.allow[ASKS[0]].set()
        await expect(prompt).to_be_hidden()

        # 2. Answered here: Allow once (the other client leaves it open).
        await expect(rows.filter(has_text=ASKS[1])).to_be_visible()
        await rows.filter(has_text="Allow once").click()
        await expect(prompt).to_be_hidden()

        # 3. Escape here answers nothing; the other client's answer is the one taken.
        await expect(rows.filter(has_text=ASKS[2])).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(prompt).to_be_hidden()
        other.allow[ASKS[2]].set()
        for _ in range(600):
            run = await daemon.call_wire("locus/runs/show", {"runId": run_id})
            if run["state"] not in ("starting", "running"):
                break
            await asyncio.sleep(0.1)
        assert run["state"] == "awaiting_review", (run.get("reason"), other.notes)
