"""Permission modes from the user's side of ``locus agent run``: ``--mode`` and ``[agent] mode``
decide what "ask" means, a repository's ``.locus.toml`` cannot (it is told so), a bad mode is a
clear error; and on a real pseudo-terminal, Ctrl-C at the approval question answers it (no)
and cancels the run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.locusd.agentkit import call, git, make_sample_repo, result_text, tool_results
from tests.locusd.cli.test_cli_agent import LOCUS, locus, report
from tests.support.anthropic_server import AnthropicServer

pytestmark = pytest.mark.timeout(120)

#: A command the user's policy below asks about.
ASKED = "echo made > made.txt"
KEY = {"ANTHROPIC_API_KEY": "sk-ant-modes"}
SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def configure(tmp_path: Path, server: AnthropicServer, agent: str = "") -> None:
    (tmp_path / "config.toml").write_text(
        f'worktree_dir = "{tmp_path / "worktrees"}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'cache_dir = "{tmp_path / "cache"}"\n\n'
        f'[agent]\nbase_url = "{server.base_url}"\n{agent}\n'
        '[agent.policy]\nask = ["echo *"]\n'
    )


def session() -> list[Any]:
    return [call("run_command", command=ASKED), call("ask_user", question="done?")]


def first_result(server: AnthropicServer) -> dict[str, Any]:
    (result,) = tool_results(server.requests[1])
    return result


def agent_run(tmp_path: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return locus(
        tmp_path, "agent", "run", "--repo", str(repo), "--task", "t", "--json", *args, env=KEY
    )


@pytest.mark.parametrize("how", ["--mode", "config"])
def test_full_auto_runs_what_would_be_asked(tmp_path: Path, how: str) -> None:
    repo = make_sample_repo(tmp_path)
    server = AnthropicServer(session())
    with server.in_thread():
        configure(tmp_path, server, 'mode = "full-auto"' if how == "config" else "")
        done = agent_run(tmp_path, repo, *(["--mode", "full-auto"] if how == "--mode" else []))
    assert report(done)["outcome"] == "needs_input", done.stderr
    ran = first_result(server)
    assert ran["is_error"] is False and "exit code 0" in result_text(ran)


def test_full_auto_without_the_sandbox_asks_as_mode_ask_does(tmp_path: Path) -> None:
    """Unconfined, a command runs with the user's own rights: full-auto does not apply."""
    repo = make_sample_repo(tmp_path)
    server = AnthropicServer(session())
    with server.in_thread():
        configure(tmp_path, server, "sandbox = false")
        done = agent_run(tmp_path, repo, "--mode", "full-auto")
    denied = first_result(server)
    assert denied["is_error"] is True and "only in the sandbox" in result_text(denied)
    warned = "\n".join(report(done)["warnings"])
    assert "mode full-auto runs commands unasked only in the sandbox, which is off" in warned


def test_without_a_mode_an_unattended_run_denies_what_would_be_asked(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    server = AnthropicServer(session())
    with server.in_thread():
        configure(tmp_path, server)
        done = agent_run(tmp_path, repo, "--mode", "auto-edit")  # echo is no file command
    assert report(done)["outcome"] == "needs_input", done.stderr
    denied = first_result(server)
    assert denied["is_error"] is True and "unattended" in result_text(denied)


def test_a_repository_cannot_set_the_mode(tmp_path: Path) -> None:
    """The agent can write .locus.toml; were it read, the agent would pick its own mode."""
    repo = make_sample_repo(tmp_path)
    (repo / ".locus.toml").write_text(
        'mode = "full-auto"\n\n[agent]\nmode = "full-auto"\n\n[agent.policy]\nallow = ["*"]\n'
    )
    git(repo, "add", ".locus.toml")
    git(repo, "commit", "-q", "-m", "grant myself everything")
    server = AnthropicServer(session())
    with server.in_thread():
        configure(tmp_path, server)
        done = agent_run(tmp_path, repo)
    result = report(done)
    denied = first_result(server)
    assert denied["is_error"] is True and "unattended" in result_text(denied)
    warned = "\n".join(result["warnings"])
    assert ".locus.toml sets 'mode': ignored" in warned
    assert ".locus.toml sets 'agent' (agent.mode, agent.policy): ignored" in warned
    assert "[agent] mode in config.toml" in warned and "--mode" in warned


def test_a_bad_mode_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    server = AnthropicServer(session())
    with server.in_thread():
        configure(tmp_path, server, 'mode = "yolo"')
    done = agent_run(tmp_path, repo)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "agent.mode" in done.stderr and "full-auto" in done.stderr, done.stderr
    flag = agent_run(tmp_path, repo, "--mode", "yolo")
    assert flag.returncode == 2 and "'yolo' is not one of 'ask', 'auto-edit', 'full-auto'" in (
        flag.stderr
    )
    assert len(server.requests) == 0


def test_ctrl_c_at_the_question_answers_no_and_cancels_the_run(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    server = AnthropicServer(session())
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "COLUMNS"))}
    env = {**base, **KEY, "LOCUS_CONFIG": str(tmp_path / "config.toml"), "TERM": "xterm"}
    with server.in_thread():
        configure(tmp_path, server)
        child = pexpect.spawn(
            LOCUS,
            ["agent", "run", "--repo", str(repo), "--task", "t"],
            env=env,
            dimensions=(40, 200),
            encoding="utf-8",
            timeout=90,
        )
        child.expect(r"allow it\? \[y/N\]: ")
        asked = SGR.sub("", f"{child.before}{child.after}")
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
    assert f"the agent wants to run {ASKED}" in asked
    assert child.exitstatus == 130, child.before
    rest = SGR.sub("", str(child.before))
    assert "no: the question was withdrawn" in rest and "cancelled" in rest, rest
    assert len(server.requests) == 1  # the command never ran, the model was not asked again
    assert not list((tmp_path / "worktrees").rglob("made.txt"))


def test_the_mode_flag_is_documented_on_both_commands(tmp_path: Path) -> None:
    for command in (["agent", "run"], ["run"]):
        done = subprocess.run(
            [LOCUS, *command, "--help"], capture_output=True, text=True, check=True
        )
        assert "--mode [ask|auto-edit|full-auto]" in done.stdout, done.stdout
    assert shutil.which(sys.executable)
