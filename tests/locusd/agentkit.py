"""What the agent scenario tests share: the sample repository as a real git repo, a config
that keeps worktrees and state in a temp dir, running one task, and the scripted Anthropic
session that fixes the sample's failing test (also what records the demo transcript:
``python -m tests.locusd.agentkit examples/fix-median.jsonl``)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from locusd.agent.budget import Budget
from locusd.agent.providers import Provider
from locusd.agent.providers.anthropic import AnthropicProvider
from locusd.agent.report import RunReport
from locusd.agent.run import run_task
from locusd.config import AgentConfig, Config
from tests.support.anthropic_server import AnthropicServer, Recorded, Reply, text, tool_use

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample-repo"
TASK = (ROOT / "examples" / "fix-median.task").read_text().strip()
DEMO_TRANSCRIPT = ROOT / "examples" / "fix-median.jsonl"
API_KEY = "sk-ant-test-key"

BUGGY = "    return ordered[middle]\n"
FIXED = (
    "    if len(ordered) % 2 == 0:\n"
    "        return (ordered[middle - 1] + ordered[middle]) / 2\n"
    "    return ordered[middle]\n"
)
#: The sample repository's stats.py, and a proposal with two changes four lines apart (one
#: hunk, split in two) and the median fix (a second hunk): the reviews' usual diff.
BASE = (SAMPLE / "stats.py").read_text()
PROPOSED = (
    BASE.replace('"""Small statistics helpers."""', '"""Statistics helpers."""')
    .replace('"mean of an empty list"', '"mean() of an empty list"')
    .replace(BUGGY, FIXED)
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_sample_repo(where: Path) -> Path:
    """A fresh git repository holding examples/sample-repo (one failing test)."""
    repo = where / "sample-repo"
    shutil.copytree(SAMPLE, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Dev", "-c", "user.email=dev@localhost", "commit", "-q", "-m", "init")
    return repo


def with_identity(checkout: Path) -> Path:
    """A git identity in the repository's config (commits need one; CI machines have none)."""
    git(checkout, "config", "user.name", "Ada Lovelace")
    git(checkout, "config", "user.email", "ada@example.com")
    return checkout


def make_planning_repo(tmp_path: Path, canary: str, remote: str) -> Path:
    """The sample repository with ``engine.py`` holding ``canary`` (code a planning run reads,
    which must never leave the machine) and ``remote`` as its origin."""
    checkout = make_sample_repo(tmp_path)
    (checkout / "engine.py").write_text(f"SECRET_SAUCE = '{canary}'\n")
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "engine")
    git(checkout, "remote", "add", "origin", remote)
    return checkout


def make_config(where: Path, **agent: Any) -> Config:
    budget = agent.pop("budget", {})
    return Config(
        agent=AgentConfig(**agent, budget=Budget(**budget)),
        worktree_dir=where / "worktrees",
        state_dir=where / "state",
        credentials_dir=where / "config",
        cache_dir=where / "cache",
    )


def anthropic(server: AnthropicServer, **options: Any) -> AnthropicProvider:
    options.setdefault("backoff", 0.01)
    return AnthropicProvider(api_key=API_KEY, base_url=server.base_url, **options)


async def run(
    provider: Provider, repo: Path, config: Config, task: str = TASK, **options: Any
) -> RunReport:
    return await run_task(repo=repo, task=task, provider=provider, config=config, **options)


def call(name: str, **arguments: Any) -> Reply:
    """A turn in which the model calls one tool."""
    return Reply([tool_use(name, arguments)], stop_reason="tool_use")


def tool_results(request: Recorded) -> list[dict[str, Any]]:
    """The tool_result blocks of the newest message the agent sent."""
    assert request.body is not None
    return [b for b in request.body["messages"][-1]["content"] if b["type"] == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    """A tool_result's text, whether sent as a string or as text parts."""
    content = block["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def fix_median_session() -> list[Reply]:
    """Read the code, fix it, check, finish — what a good model does on the sample."""
    return [
        Reply(
            [text("Let me look at the code first."), tool_use("read_file", {"path": "stats.py"})],
            stop_reason="tool_use",
        ),
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        call("run_verify"),
        call("finish", summary="median() now averages the two middle values of an even list."),
    ]


async def record_demo(target: Path) -> RunReport:
    """Run the fix-median session against the loopback Anthropic server, keeping the
    transcript at ``target`` (what scripts/agent-demo.sh replays)."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        repo = make_sample_repo(where)
        async with AnthropicServer(fix_median_session()) as server:
            report = await run(anthropic(server), repo, make_config(where), transcript_path=target)
    return report


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.unlink(missing_ok=True)
    done = asyncio.run(record_demo(out))
    print(done.outcome, done.transcript)
