"""The repository's verify command — the runner runs it itself when the model says it is done;
the model's word never marks a run green.

The command comes from ``.locus.toml`` (``verify = "…"``) or is detected from the files at the
top of the worktree, first match wins, and the evidence says which and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from locusd.agent.commands import CommandResult
from locusd.agent.transcript import Evidence
from locusd.repo_config import RepoConfig


@dataclass(frozen=True)
class VerifyCommand:
    command: str
    reason: str


def _npm_test(root: Path) -> bool:
    try:
        scripts = json.loads((root / "package.json").read_text(encoding="utf-8")).get("scripts")
    except (OSError, ValueError, AttributeError):
        return False
    test = scripts.get("test", "") if isinstance(scripts, dict) else ""
    return bool(test) and "no test specified" not in test


def _makefile_has_test(root: Path) -> bool:
    for name in ("Makefile", "makefile", "GNUmakefile"):
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            return any(line.startswith("test:") for line in text.splitlines())
    return False


def _mentions_pytest(root: Path) -> bool:
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    for name in ("pyproject.toml", "setup.cfg", "tox.ini"):
        path = root / name
        if path.is_file() and "pytest" in path.read_text(encoding="utf-8", errors="replace"):
            return True
    return False


def _has_python_tests(root: Path) -> bool:
    return any(root.glob("test_*.py")) or any(root.glob("tests/test_*.py"))


def detect(root: Path, config: RepoConfig) -> VerifyCommand | None:
    if config.verify:
        return VerifyCommand(config.verify, "from .locus.toml (verify)")
    if _mentions_pytest(root):
        return VerifyCommand("python3 -m pytest -q", "detected: the project configures pytest")
    if _npm_test(root):
        return VerifyCommand("npm test", "detected: package.json has a test script")
    if (root / "Cargo.toml").is_file():
        return VerifyCommand("cargo test", "detected: Cargo.toml")
    if (root / "go.mod").is_file():
        return VerifyCommand("go test ./...", "detected: go.mod")
    if _makefile_has_test(root):
        return VerifyCommand("make test", "detected: the Makefile has a test target")
    if _has_python_tests(root):
        return VerifyCommand(
            "python3 -m unittest discover -q",
            "detected: test_*.py files and no pytest configuration",
        )
    return None


def evidence(verify: VerifyCommand, result: CommandResult, tail: int = 4000) -> Evidence:
    output = result.output_path.read_text(encoding="utf-8", errors="replace")
    return Evidence(
        command=verify.command,
        reason=verify.reason,
        exit_code=result.exit_code,
        duration=round(result.duration, 3),
        output_tail=output[-tail:],
        passed=result.exit_code == 0,
        timed_out=result.timed_out,
    )
