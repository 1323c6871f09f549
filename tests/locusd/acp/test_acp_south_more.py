"""Codex and Gemini CLI as a run's agent: the REAL pinned adapters (tests/support/acp_agents.py)
started by the ``codex`` and ``gemini`` presets, inside the run's sandbox with its model-only
network, against the loopback Responses and Gemini servers. Each fixes the sample repository's
failing test with its own edit tool; the runner's own verification decides."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.external import presets
from locusd.agent.providers import ConfigurationError
from locusd.agent.report import RunReport
from locusd.agent.run import run_task
from locusd.agent.transcript import AcpRecord, read
from locusd.config import AgentConfig, Config, ExternalAgentConfig
from tests.locusd import daemonmachine
from tests.locusd.agentkit import BUGGY, FIXED, TASK, make_config, make_sample_repo
from tests.locusd.cli.test_cli_agent import locus
from tests.locusd.daemonmachine import Machine, serving
from tests.locusd.test_daemon_notify import editor
from tests.support import gemini_server, responses_server
from tests.support.acp_agents import installed
from tests.support.scripted import Json

machine = daemonmachine.machine
KEY = "sk-dummy-not-a-real-key"
#: A model Codex knows: it then declares its apply_patch tool.
CODEX_MODEL = "gpt-5.3-codex"
SUMMARY = "median() now averages the two middle values of an even list."
PATCH = (
    "*** Begin Patch\n*** Update File: stats.py\n@@\n"
    + "".join(f"-{line}\n" for line in BUGGY.splitlines())
    + "".join(f"+{line}\n" for line in FIXED.splitlines())
    + "*** End Patch\n"
)


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """Where the run's state (and so ``CODEX_HOME``) lives: outside the temp dir, as
    ``~/.local/state/locus`` is (Codex refuses to put its helpers under a temp dir)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locus-tests"
    cache.mkdir(parents=True, exist_ok=True)
    place = Path(tempfile.mkdtemp(prefix="runs-", dir=cache))
    try:
        yield place
    finally:
        shutil.rmtree(place, ignore_errors=True)


def preset_config(where: Path, state: Path, agent: str, program: Path, **options: Any) -> Config:
    config = make_config(where, agent=agent, **options)
    agents = {agent: ExternalAgentConfig(command=[str(program)])}
    return config.model_copy(update={"state_dir": state, "agents": agents})


def answered(items: list[Any], kind: str) -> bool:
    return any(isinstance(i, dict) and kind in (i.get("type"), *i) for i in items)


def codex_script(body: Json) -> responses_server.ResponsesItem:
    """Patch stats.py, then end the turn with the summary."""
    if answered(body["input"], "custom_tool_call_output"):
        return responses_server.Reply([responses_server.message(SUMMARY)])
    return responses_server.Reply([responses_server.custom_tool_call("apply_patch", PATCH)])


def gemini_script(body: Json) -> gemini_server.GeminiItem:
    """Answer the router, then ``replace`` the buggy line, then the summary."""
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":  # its model router
        routed = {"complexity_reasoning": "one small fix", "complexity_score": 1}
        return gemini_server.Reply([gemini_server.text(json.dumps(routed))])
    parts = [p for c in body["contents"] for p in c.get("parts", [])]
    if answered(parts, "functionResponse"):
        return gemini_server.Reply([gemini_server.text(SUMMARY)])
    edit = {
        "file_path": "stats.py",
        "instruction": "Average the two middle values of an even-length list.",
        "old_string": BUGGY,
        "new_string": FIXED,
    }
    return gemini_server.Reply([gemini_server.function_call("replace", edit)])


def fixed_and_verified(report: RunReport) -> None:
    assert report.outcome == "completed", (report.reason, report.warnings)
    assert report.verification is not None and report.verification.passed
    assert "(ordered[middle - 1] + ordered[middle]) / 2" in report.diff
    assert report.summary == SUMMARY
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    methods = [r.message.get("method") for r in records if r.direction == "to_agent"]
    assert {"initialize", "session/new", "session/prompt"} <= set(methods)


def stderr_of(report: RunReport) -> str:
    return (Path(report.transcript).parent / "agent-stderr.log").read_text(errors="replace")


async def test_codex_fixes_the_sample_and_the_runner_verifies(
    tmp_path: Path, outside_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    repo = make_sample_repo(tmp_path)
    async with responses_server.ResponsesServer(codex_script) as server:
        config = preset_config(
            tmp_path, outside_tmp, "codex", installed().codex,
            base_url=f"{server.base_url}/v1", model=CODEX_MODEL,
        )  # fmt: skip
        report = await run_task(repo=repo, task=TASK, provider=None, config=config)
        port = int(server.base_url.rsplit(":", 1)[1])
    fixed_and_verified(report)
    # Codex spoke the Responses API to the endpoint, with the key the daemon holds.
    assert {(r.path, r.auth_style, r.api_key) for r in server.requests} == {
        ("/v1/responses", "bearer", KEY)
    }
    assert server.requests[0].body["model"] == CODEX_MODEL
    # Its CODEX_HOME (in the run's state, outside the temp dir) took its helper binaries.
    assert "Refusing to create helper binaries" not in stderr_of(report)
    assert {(u.host, u.port) for u in report.network if u.allowed} == {("127.0.0.1", port)}


async def test_gemini_fixes_the_sample_and_the_runner_verifies(
    tmp_path: Path, outside_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    repo = make_sample_repo(tmp_path)
    async with gemini_server.GeminiServer(gemini_script) as server:
        config = preset_config(
            tmp_path, outside_tmp, "gemini", installed().gemini, base_url=server.base_url
        )
        report = await run_task(repo=repo, task=TASK, provider=None, config=config)
        port = int(server.base_url.rsplit(":", 1)[1])
    fixed_and_verified(report)
    assert {(r.auth_style, r.api_key) for r in server.requests} == {("x-goog-api-key", KEY)}
    # Locus offered fs writes only: Gemini reads for itself (it cannot create a file when
    # its client serves reads), and asked before its edit, which Locus allowed once.
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    (init,) = [r for r in records if r.message.get("method") == "initialize"]
    fs = init.message["params"]["clientCapabilities"]["fs"]
    assert not fs.get("readTextFile") and fs["writeTextFile"] is True
    asked = {r.message.get("method") for r in records if r.direction == "from_agent"}
    # It asked before its edit, and wrote through Locus's confined fs/write_text_file.
    assert {"session/request_permission", "fs/write_text_file"} <= asked, asked
    assert "fs/read_text_file" not in asked
    assert {(u.host, u.port) for u in report.network if u.allowed} == {("127.0.0.1", port)}


def test_presets_check_their_key_and_endpoint_without_a_provider(tmp_path: Path) -> None:
    """An external agent needs no ``[agent] provider`` settings: what its preset needs is
    checked instead, each error naming the key and the fix."""
    env = {"PATH": str(tmp_path)}
    for name, key in (("codex", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")):
        with pytest.raises(ConfigurationError) as no_key:
            presets.check(AgentConfig(agent=name), {}, env)
        assert f"export {key}=" in str(no_key.value)
    config = AgentConfig(agent="gemini", base_url="ftp://model.example")
    with pytest.raises(ConfigurationError) as bad_url:
        presets.check(config, {}, {**env, "GEMINI_API_KEY": KEY})
    assert "[agent] base_url" in str(bad_url.value)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("agent", ["codex", "gemini"])
async def test_a_daemon_run_ends_awaiting_review_with_no_provider_configured(
    machine: Machine, outside_tmp: Path, agent: str
) -> None:
    """Through the real daemon, which has no model settings at all (no ``[agent] provider``,
    no ANTHROPIC_API_KEY): ``locus/runs/start`` with ``agent`` and the key in the client's
    ``modelEnv``. The daemon checks what the preset needs, its agent process starts the
    adapter, and the run waits for review with the runner's verification passed."""
    del machine.env["ANTHROPIC_API_KEY"]
    machine.env["XDG_STATE_HOME"] = str(outside_tmp)  # CODEX_HOME outside the temp dir
    program = installed().codex if agent == "codex" else installed().gemini
    key = "OPENAI_API_KEY" if agent == "codex" else "GEMINI_API_KEY"
    server: Any = (
        responses_server.ResponsesServer(codex_script)
        if agent == "codex"
        else gemini_server.GeminiServer(gemini_script)
    )
    async with server as model:
        base_url = f"{model.base_url}/v1" if agent == "codex" else model.base_url
        machine.configure(
            f'[agent]\nbase_url = "{base_url}"\nmodel = "{CODEX_MODEL if agent == "codex" else "gemini-2.5-pro"}"\n'
            f'[agents.{agent}]\ncommand = ["{program}"]\n'
        )
        async with serving(machine), editor(machine) as watcher:
            params = {"repo": str(machine.repo), "task": TASK, "agent": agent}
            with pytest.raises(Exception, match=key):  # no key: the preset's, named
                await watcher.lsp.call("locus/runs/start", params)
            started = await watcher.lsp.call("locus/runs/start", {**params, "modelEnv": {key: KEY}})
            await watcher.lsp.call("locus/runs/subscribe", {"runId": started.runId})
            note = await watcher.next_note()
            assert (note.kind, note.runId) == ("review", started.runId)
            shown = await watcher.lsp.call("locus/runs/show", {"runId": started.runId})
            review = await watcher.lsp.call("locus/review/get", {"runId": started.runId})
        assert {r.api_key for r in model.requests} == {KEY}
    assert (shown.state, shown.outcome) == ("awaiting_review", "completed")
    assert review.verification.passed is True  # the runner's own, after the agent's turn
    assert review.summary == SUMMARY
    (changed,) = review.files
    assert changed.path == "stats.py"


async def test_a_codex_patch_outside_the_worktree_is_refused(
    tmp_path: Path, outside_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codex asks before each patch (its ``read-only`` mode); Locus refuses one that leaves
    the worktree, and nothing is written there."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    escape = tmp_path / "escape.txt"
    patch = f"*** Begin Patch\n*** Add File: {escape}\n+planted\n*** End Patch\n"

    def script(body: Json) -> responses_server.ResponsesItem:
        if answered(body["input"], "custom_tool_call_output"):
            return responses_server.Reply([responses_server.message("done")])
        return responses_server.Reply([responses_server.custom_tool_call("apply_patch", patch)])

    repo = make_sample_repo(tmp_path)
    async with responses_server.ResponsesServer(script) as server:
        config = preset_config(
            tmp_path, outside_tmp, "codex", installed().codex,
            base_url=f"{server.base_url}/v1", model=CODEX_MODEL,
        )  # fmt: skip
        report = await run_task(repo=repo, task=TASK, provider=None, config=config)
    assert not escape.exists()
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    answers = [
        r.message["result"]["outcome"]
        for r in records
        if r.direction == "to_agent" and "outcome" in r.message.get("result", {})
    ]
    kinds = {
        option["optionId"]: option["kind"]
        for r in records
        if r.message.get("method") == "session/request_permission"
        for option in r.message["params"]["options"]
    }
    assert answers and all(kinds[a["optionId"]] == "reject_once" for a in answers), answers
    # Codex ends its whole turn on a reject: the run fails saying what was refused (it is not
    # the user's cancel).
    assert report.outcome == "failed", (report.reason, report.warnings)
    assert report.reason is not None and "when Locus refused" in report.reason
    assert "outside the run's worktree" in report.reason


def test_locus_agent_run_with_a_preset_asks_for_its_key_not_a_provider(tmp_path: Path) -> None:
    """``locus agent run --agent gemini`` with no model settings: the error names the
    preset's key and how to give it, not the built-in providers' setup; exit 2."""
    repo = make_sample_repo(tmp_path)
    program = installed().gemini
    (tmp_path / "config.toml").write_text(
        f'state_dir = "{tmp_path / "state"}"\n[agents.gemini]\ncommand = ["{program}"]\n'
    )
    args = ("agent", "run", "--repo", str(repo), "--task", "t", "--agent", "gemini")
    done = locus(tmp_path, *args, env={"GEMINI_API_KEY": ""})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "export GEMINI_API_KEY=" in done.stderr
    assert "No model is configured" not in done.stderr


async def test_codex_runs_its_commands_unasked_in_its_own_read_only_sandbox(
    tmp_path: Path, outside_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinned, for docs/acp.md: Codex runs a shell command itself without asking Locus (so
    Locus's command policy never sees it), inside its own sandbox nested in Locus's — in its
    ``read-only`` mode the command can write neither the worktree nor ``/tmp``."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    outputs: list[str] = []
    command = "touch made-by-codex.txt; echo hi > /tmp/codex-probe; echo ran"

    def script(body: Json) -> responses_server.ResponsesItem:
        if answered(body["input"], "function_call_output"):
            outputs.extend(
                str(i["output"]) for i in body["input"] if i["type"] == "function_call_output"
            )
            return responses_server.Reply([responses_server.message("done")])
        call = responses_server.function_call("exec_command", {"cmd": command})
        return responses_server.Reply([call])

    repo = make_sample_repo(tmp_path)
    async with responses_server.ResponsesServer(script) as server:
        config = preset_config(
            tmp_path, outside_tmp, "codex", installed().codex,
            base_url=f"{server.base_url}/v1", model=CODEX_MODEL,
        )  # fmt: skip
        report = await run_task(repo=repo, task=TASK, provider=None, config=config)
    said = outputs[0]
    assert "ran" in said and said.count("Read-only file system") == 2, said
    assert "made-by-codex.txt" not in report.diff
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    assert not [r for r in records if r.message.get("method") == "session/request_permission"]
