"""The repository's verify command — the runner runs it itself when the model says it is done;
the model's word never marks a run green.

What runs is decided from the run's **base commit** (read with git, never from the worktree the
agent edits): ``verify = "…"`` in its ``.locus.toml``, else what its files show, first match
wins, and the evidence says which and why. The command still runs in the worktree, so after it
ran the runner checks the diff for changes to what the check depends on (:mod:`checkdeps`) and
reads the runner's own counts from its output (:mod:`testcounts`): a check is *passed* only when
it exited 0, its runner counted no failures and at least one test, and the diff left its
definitions alone (docs/agent.md, "Verification").
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

from locusd.agent import testcounts
from locusd.agent.checkdeps import CheckChange, inspect
from locusd.agent.commands import CommandResult
from locusd.agent.transcript import Evidence
from locusd.git.cli import GitFailed, TimedOut
from locusd.git.diffs import diff_against
from locusd.git.repo import Repository, RepositoryError
from locusd.repo_config import FILENAME

#: How many test files detection reads to tell pytest-style tests from unittest ones.
MAX_SNIFFED = 50
_PYTEST_STYLE = re.compile(r"^(?:async\s+)?def test|^import pytest|^from pytest\b", re.M)


@dataclass(frozen=True)
class VerifyCommand:
    command: str
    reason: str


class BaseFiles:
    """The files of the run's base commit, read with git: what the agent cannot edit."""

    def __init__(self, repo: Repository, commit: str) -> None:
        self.repo, self.commit = repo, commit

    @cached_property
    def paths(self) -> frozenset[str]:
        return frozenset(self.repo.paths_at(self.commit))

    def read(self, path: str) -> str | None:
        return self.repo.text_at(self.commit, path) if path in self.paths else None


def _npm_test(files: BaseFiles) -> bool:
    try:
        scripts = json.loads(files.read("package.json") or "").get("scripts")
    except (ValueError, AttributeError):
        return False
    test = scripts.get("test", "") if isinstance(scripts, dict) else ""
    return bool(test) and isinstance(test, str) and "no test specified" not in test


def _makefile_has_test(files: BaseFiles) -> bool:
    for name in ("Makefile", "makefile", "GNUmakefile"):
        text = files.read(name)
        if text is not None:
            return any(line.startswith("test:") for line in text.splitlines())
    return False


def _pytest_configured(files: BaseFiles) -> str | None:
    """Why pytest, from configuration or dependencies (None: nothing says so)."""
    if "pytest.ini" in files.paths or "conftest.py" in files.paths:
        return "the project configures pytest (pytest.ini / conftest.py)"
    for name in ("pyproject.toml", "setup.cfg", "tox.ini"):
        if "pytest" in (files.read(name) or ""):
            return f"{name} names pytest (configuration or dependency)"
    for name in sorted(p for p in files.paths if re.fullmatch(r"requirements[^/]*\.txt", p)):
        if re.search(r"^\s*pytest\b", files.read(name) or "", re.M):
            return f"pytest is a dependency ({name})"
    return None


def _python_tests(files: BaseFiles) -> list[str]:
    return sorted(
        p
        for p in files.paths
        if PurePosixPath(p).match("test_*.py")
        and (PurePosixPath(p).parent in (PurePosixPath("."), PurePosixPath("tests")))
    )


def _pytest_style(files: BaseFiles, tests: list[str]) -> str | None:
    """The first test file written for pytest: module-level ``def test…`` or ``import pytest``
    (a unittest runner would find 0 tests in it)."""
    for path in tests[:MAX_SNIFFED]:
        if _PYTEST_STYLE.search(files.read(path) or ""):
            return path
    return None


def _locus_toml_verify(files: BaseFiles) -> str | None:
    text = files.read(FILENAME)
    if text is None:
        return None
    try:
        verify = tomllib.loads(text).get("verify")
    except tomllib.TOMLDecodeError:
        return None
    return verify if isinstance(verify, str) and verify.strip() else None


def detect(files: BaseFiles) -> VerifyCommand | None:
    """The check for a run, from its base commit's files."""
    configured = _locus_toml_verify(files)
    if configured:
        return VerifyCommand(configured, f"from {FILENAME} at the base commit (verify)")
    why = _pytest_configured(files)
    if why:
        return VerifyCommand("python3 -m pytest -q", f"detected pytest: {why}")
    if _npm_test(files):
        return VerifyCommand("npm test", "detected: package.json has a test script")
    if "Cargo.toml" in files.paths:
        return VerifyCommand("cargo test", "detected: Cargo.toml")
    if "go.mod" in files.paths:
        return VerifyCommand("go test ./...", "detected: go.mod")
    if _makefile_has_test(files):
        return VerifyCommand("make test", "detected: the Makefile has a test target")
    tests = _python_tests(files)
    if not tests:
        return None
    styled = _pytest_style(files, tests)
    if styled:
        return VerifyCommand(
            "python3 -m pytest -q",
            f"detected pytest: {styled} has pytest-style tests (def test_… outside a TestCase)",
        )
    return VerifyCommand(
        "python3 -m unittest discover -q",
        "detected unittest: test_*.py files with unittest.TestCase tests and no pytest",
    )


def detect_at(worktree: Path, base_commit: str) -> VerifyCommand | None:
    return detect(BaseFiles(Repository(worktree), base_commit))


def check_changes(
    worktree: Path, base_commit: str, command: str, read_new: Callable[[str], str | None]
) -> list[CheckChange]:
    """What the run's diff changes of what the check depends on. A diff that cannot be read
    is itself such a change: nothing can be ruled out."""
    try:
        repo = Repository(worktree)
        diff = diff_against(worktree, base_commit)
    except (GitFailed, TimedOut, RepositoryError, OSError, ValueError) as exc:
        return [CheckChange(path="(the diff)", why=f"cannot be read: {exc}"[:500])]
    return inspect(diff, command, lambda path: repo.text_at(base_commit, path), read_new)


def evidence(
    verify: VerifyCommand,
    result: CommandResult,
    changes: list[CheckChange],
    tail: int = 4000,
) -> Evidence:
    output = result.output_path.read_text(encoding="utf-8", errors="replace")
    counts = testcounts.parse(output)
    failure = (
        "the check was cancelled before it finished"  # whatever it printed or exited with
        if result.cancelled
        else testcounts.judge(
            result.exit_code, result.timed_out, counts, testcounts.expected(verify.command)
        )
    )
    return Evidence(
        command=verify.command,
        reason=verify.reason,
        exit_code=result.exit_code,
        duration=round(result.duration, 3),
        output_tail=output[-tail:],
        passed=failure is None and not changes,
        timed_out=result.timed_out,
        counts=counts,
        failure=failure,
        check_changes=changes,
    )
