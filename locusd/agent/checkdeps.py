"""Whether a run's diff touches what its check depends on: build and test definitions, test
configuration, the files the verify command names, deleted, renamed-away or removed tests, and
newly added skip markers. Pure: the caller hands in the diff and the two versions of a file.

Why: the verify command runs in the worktree, so an agent that edits the Makefile's ``test``
target to ``echo OK``, skips the failing test or deletes it can make any check pass. Such a
run's green proves nothing; the runner ends it ``unverified`` and the review says why
(docs/agent.md, "Verification").
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict

from locusd.review import DiffParseError, FileDiff, parse


class CheckChange(BaseModel):
    """One thing in the diff the check depends on, and why it matters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    why: str


#: File names (globs, matched against the name alone) whose any change changes the check.
DEFINITIONS: dict[str, str] = {
    "Makefile": "a build/test definition",
    "makefile": "a build/test definition",
    "GNUmakefile": "a build/test definition",
    "*.mk": "a build/test definition",
    "Justfile": "a build/test definition",
    "justfile": "a build/test definition",
    "Taskfile.y*ml": "a build/test definition",
    "Rakefile": "a build/test definition",
    "noxfile.py": "a build/test definition",
    "tox.ini": "test configuration",
    "pytest.ini": "test configuration",
    "conftest.py": "test configuration (pytest conftest)",
    "sitecustomize.py": "Python start-up code",
    "usercustomize.py": "Python start-up code",
    "*.pth": "Python start-up code",
    "Cargo.toml": "a build/test definition (Cargo)",
    "build.rs": "a build script (cargo runs it)",
    "go.mod": "a build/test definition (Go module)",
    "go.work": "a build/test definition (Go workspace)",
    "jest.config.*": "test configuration (jest)",
    "vitest.config.*": "test configuration (vitest)",
    "vitest.workspace.*": "test configuration (vitest)",
    "vite.config.*": "test configuration (vitest reads it)",
    ".mocharc*": "test configuration (mocha)",
    "karma.conf.*": "test configuration (karma)",
    ".npmrc": "npm configuration (script shell)",
    ".yarnrc*": "yarn configuration",
    ".locus.toml": "Locus's repository configuration (the verify command)",
    "Jenkinsfile": "CI configuration",
    ".gitlab-ci.yml": "CI configuration",
    ".travis.yml": "CI configuration",
    "azure-pipelines.yml": "CI configuration",
}
#: Directories whose files are all runner or CI configuration.
DEFINITION_DIRS: dict[str, str] = {
    ".github/workflows": "CI configuration",
    ".circleci": "CI configuration",
    ".cargo": "Cargo configuration (a test runner can be set there)",
}

#: Files where only some sections matter: the name, and the parts compared between versions.
_PYPROJECT_KEYS = ("pytest", "tox", "hatch", "coverage", "nox", "poe")
_SETUP_CFG_SECTIONS = re.compile(r"^(tool:pytest|pytest|coverage:.*|tox:.*|testenv.*)$")
_PACKAGE_KEYS = ("scripts", "jest", "mocha", "ava", "tap", "c8", "nyc", "vitest")

SKIP_MARKERS = re.compile(
    r"pytest\.mark\.(?:skip|skipif|xfail)\b|pytest\.(?:skip|xfail|importorskip)\s*\("
    r"|unittest\.(?:skip|skipIf|skipUnless|expectedFailure)\b"
    r"|@(?:skip|skipIf|skipUnless|expectedFailure)\b|\bskipTest\s*\(|\bSkipTest\b"
    r"|\bt\.Skip(?:Now|f)?\s*\(|#\[\s*ignore\b"
    r"|\b(?:it|test|describe|suite|context)\.(?:skip|only|todo)\b"
    r"|\b(?:xit|xdescribe|xtest|fit|fdescribe)\s*\("
    r"|__test__\s*=\s*False|\bcollect_ignore"
)
_TEST_DEFS = re.compile(
    r"^\s*(?:async\s+)?def\s+(test\w*)"
    r"|^\s*func\s+(Test\w*)\s*\("
    r"|^\s*(?:it|test)\s*\(\s*['\"`]([^'\"`]*)"
    r"|^\s*#\[(test|tokio::test)\]"
)


def is_test_file(path: str) -> bool:
    """A file test runners collect by its name or place (Python, Go, Rust, JS/TS)."""
    pure = PurePosixPath(path)
    name, parts = pure.name, pure.parts[:-1]
    if name.endswith(".py"):
        return name.startswith("test_") or name.endswith("_test.py") or "tests" in parts
    if name.endswith("_test.go"):
        return True
    if name.endswith(".rs"):
        return "tests" in parts
    if re.search(r"\.(?:test|spec)\.[cm]?[jt]sx?$", name):
        return True
    return "__tests__" in parts and bool(re.search(r"\.[cm]?[jt]sx?$", name))


def _definition(path: str) -> str | None:
    name = PurePosixPath(path).name
    for pattern, why in DEFINITIONS.items():
        if fnmatch(name, pattern):
            return why
    for folder, why in DEFINITION_DIRS.items():
        if path.startswith(folder + "/"):
            return why
    return None


def _named_by(command: str) -> set[str]:
    """Paths a verify command names (``./scripts/test.sh``, ``tests/run.py``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return {str(PurePosixPath(w.removeprefix("./"))) for w in words if "/" in w or "." in w}


Reader = Callable[[str], str | None]


def _sections(path: str, text: str | None) -> Any:
    """The parts of a mixed file the check depends on (raises ValueError when unreadable)."""
    if text is None:
        return None
    name = PurePosixPath(path).name
    if name == "pyproject.toml":
        tool = tomllib.loads(text).get("tool", {})
        return {key: tool.get(key) for key in _PYPROJECT_KEYS} if isinstance(tool, dict) else tool
    if name == "setup.cfg":
        parser = configparser.RawConfigParser()
        parser.read_string(text)
        return {s: dict(parser[s]) for s in parser.sections() if _SETUP_CFG_SECTIONS.match(s)}
    data = json.loads(text)
    return {key: data.get(key) for key in _PACKAGE_KEYS} if isinstance(data, dict) else data


_MIXED = {"pyproject.toml": "its test sections", "setup.cfg": "its test sections"}


def _mixed(path: str, base: Reader, new: Reader) -> str | None:
    name = PurePosixPath(path).name
    if name not in ("pyproject.toml", "setup.cfg", "package.json"):
        return None
    what = "its scripts or test configuration" if name == "package.json" else _MIXED[name]
    try:
        before, after = _sections(path, base(path)), _sections(path, new(path))
    except (ValueError, configparser.Error, RecursionError):
        return f"{what} cannot be read any more"
    return f"{what} changed" if before != after else None


def _lines(file: FileDiff, sign: str) -> list[str]:
    return [line[1:] for hunk in file.hunks for line in hunk.lines if line.startswith(sign)]


def _skips(file: FileDiff) -> int:
    def markers(sign: str) -> Counter[str]:
        return Counter(
            m.group(0) for line in _lines(file, sign) for m in SKIP_MARKERS.finditer(line)
        )

    return sum((markers("+") - markers("-")).values())


def _test_names(lines: list[str]) -> Counter[str]:
    names: Counter[str] = Counter()
    for line in lines:
        match = _TEST_DEFS.match(line)
        if match:
            names[next(g for g in match.groups() if g is not None)] += 1
    return names


def _file_changes(
    file: FileDiff, command_paths: set[str], base: Reader, new: Reader
) -> Iterator[str]:
    paths = {file.path} | ({file.old_path} if file.old_path else set())
    for path in sorted(paths):
        why = _definition(path)
        if why:
            yield why
        if path in command_paths:
            yield "the verify command names it"
    if file.status == "deleted" and is_test_file(file.path):
        yield "a test file is deleted"
    renamed_away = file.old_path and is_test_file(file.old_path) and not is_test_file(file.path)
    if file.status == "renamed" and renamed_away:
        yield "a test file is renamed so the runner no longer collects it"
    mixed = _mixed(file.path, base, new) if file.status != "deleted" else None
    if mixed:
        yield mixed
    skips = _skips(file)
    if skips:
        yield f"adds {skips} skip/xfail/only marker{'s' if skips > 1 else ''}"
    if is_test_file(file.old_path or file.path):
        gone = _test_names(_lines(file, "-")) - _test_names(_lines(file, "+"))
        if gone:
            yield "removes tests: " + ", ".join(sorted(gone))


def inspect(diff: str, verify_command: str, base: Reader, new: Reader) -> list[CheckChange]:
    """What in ``diff`` the check depends on. ``base``/``new`` read a file's text at the base
    commit / in the worktree (None: not there). A diff that cannot be parsed counts as
    touching everything: nothing in it can be ruled out."""
    try:
        files = parse(diff).files
    except DiffParseError as exc:
        return [CheckChange(path="(the diff)", why=f"cannot be parsed: {exc}")]
    named = _named_by(verify_command)
    found: list[CheckChange] = []
    for file in files:
        reasons = list(dict.fromkeys(_file_changes(file, named, base, new)))
        if reasons:
            found.append(CheckChange(path=file.path, why="; ".join(reasons)))
    return found
