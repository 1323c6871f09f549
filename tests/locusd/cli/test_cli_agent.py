"""``locus agent run`` as a user runs it: the installed console script in a subprocess, with
its own config file, against a real git repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.locusd.agentkit import DEMO_TRANSCRIPT, FIXED, TASK, fix_median_session, make_sample_repo
from tests.support.anthropic_server import AnthropicServer

LOCUS = shutil.which("locus", path=str(Path(sys.executable).parent)) or "locus"
pytestmark = pytest.mark.timeout(120)


def locus(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text(
            f'worktree_dir = "{tmp_path / "worktrees"}"\nstate_dir = "{tmp_path / "state"}"\n'
            f'cache_dir = "{tmp_path / "cache"}"\n'
        )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    # A narrow COLUMNS: piped output is never wrapped to it (nor drawn in a panel).
    narrow = {"COLUMNS": "30"}
    return subprocess.run(
        [LOCUS, *args],
        env={**base, "LOCUS_CONFIG": str(config), **narrow, **(env or {})},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.stdout, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_the_demo_replay_fixes_the_sample_from_a_clean_checkout(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    done = locus(
        tmp_path, "agent", "run", "--repo", str(repo), "--task", TASK,
        "--replay", str(DEMO_TRANSCRIPT), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = report(done)
    assert result["outcome"] == "completed"
    assert result["verification"]["passed"] is True
    assert result["verification"]["command"] == "python3 -m unittest -q"
    assert "+        return (ordered[middle - 1] + ordered[middle]) / 2" in result["diff"]
    assert FIXED in (Path(result["worktree"]) / "stats.py").read_text()
    assert result["summary"]
    assert Path(result["transcript"]).is_relative_to(tmp_path / "state")


def test_the_human_report_shows_outcome_verification_and_diff(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    done = locus(
        tmp_path, "agent", "run", "--repo", str(repo), "--task", TASK,
        "--replay", str(DEMO_TRANSCRIPT),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for expected in ("completed", "Verification", "passed", "diff --git a/stats.py", "cost"):
        assert expected in done.stdout


def test_anthropic_through_the_base_url_environment(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    server = AnthropicServer(fix_median_session())
    with server.in_thread():
        done = locus(
            tmp_path, "agent", "run", "--repo", str(repo), "--task", TASK, "--json",
            env={"ANTHROPIC_API_KEY": "sk-ant-cli", "ANTHROPIC_BASE_URL": server.base_url},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = report(done)
    assert result["outcome"] == "completed"
    assert result["cost_known"] is True and result["cost_usd"] > 0
    assert len(server.requests) == 4
    assert {r.api_key for r in server.requests} == {"sk-ant-cli"}


def test_a_missing_api_key_names_the_three_ways(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    done = locus(tmp_path, "agent", "run", "--repo", str(repo), "--task", TASK)
    assert done.returncode == 2
    for way in (
        "ANTHROPIC_API_KEY",
        "locus agent run --provider openai --base-url",
        "locus agent run --replay",
    ):
        assert way in done.stderr
    # Its lines whole, "[agent]" included (text, never markup).
    line = '     replay = "FILE.jsonl" in [agent]; for one run: locus agent run --replay FILE.jsonl'
    assert line in done.stderr.splitlines()
    assert list((tmp_path / "worktrees").glob("*")) == []  # nothing was started


def test_a_bad_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[agent.budget]\nmax_turns = -1\n")
    done = locus(tmp_path, "agent", "run", "--task", TASK, "--replay", str(DEMO_TRANSCRIPT))
    assert done.returncode == 2
    assert "agent.budget.max_turns" in done.stderr


def test_not_a_git_repository_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    done = locus(
        tmp_path, "agent", "run", "--repo", str(plain), "--task", TASK,
        "--replay", str(DEMO_TRANSCRIPT),
    )  # fmt: skip
    assert done.returncode == 2
    # One line, whole, however long the path and whatever COLUMNS says.
    assert (
        f"error: {plain} is not inside a git repository: point Locus at a clone"
        " (or run git init there)"
    ) in done.stderr.splitlines()


def test_schema_describes_every_record(tmp_path: Path) -> None:
    done = locus(tmp_path, "agent", "schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {
        *("header", "request", "response", "tool_call", "tool_result"),
        *("verification", "note", "egress", "acp", "model_call", "footer"),
    }
