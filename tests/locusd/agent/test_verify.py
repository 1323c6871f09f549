"""Which verify command a repository gets: .locus.toml first, then what its files say — as the
base commit holds them (git), never the worktree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from locusd.agent.verify import VerifyCommand, detect_at

NPM_DEFAULT_TEST = 'echo "Error: no test specified" && exit 1'


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def commit(root: Path) -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "x", "--allow-empty")


def detected(root: Path) -> VerifyCommand | None:
    """What the committed files say (everything in ``root`` is committed first)."""
    commit(root)
    return detect_at(root, "HEAD")


@pytest.mark.parametrize(
    ("files", "command", "source"),
    [
        (
            {"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"},
            "python3 -m pytest -q",
            "pytest",
        ),
        ({"pytest.ini": "[pytest]\n"}, "python3 -m pytest -q", "pytest"),
        ({"conftest.py": ""}, "python3 -m pytest -q", "pytest"),
        ({"setup.cfg": "[tool:pytest]\ntestpaths = tests\n"}, "python3 -m pytest -q", "pytest"),
        (
            {"package.json": json.dumps({"name": "x", "scripts": {"test": "vitest run"}})},
            "npm test",
            "package.json",
        ),
        ({"Cargo.toml": "[package]\nname = 'x'\n"}, "cargo test", "Cargo.toml"),
        ({"go.mod": "module example.com/x\n"}, "go test ./...", "go.mod"),
        ({"Makefile": "build:\n\tcc x.c\n\ntest: build\n\t./x\n"}, "make test", "Makefile"),
        ({"test_calc.py": "import unittest\n"}, "python3 -m unittest discover -q", "test_*.py"),
        (
            {"tests/test_calc.py": "import unittest\n"},
            "python3 -m unittest discover -q",
            "test_*.py",
        ),
    ],
)
def test_detects_the_projects_test_command(
    tmp_path: Path, files: dict[str, str], command: str, source: str
) -> None:
    found = detected(make(tmp_path, files))
    assert found is not None and found.command == command
    assert source in found.reason


def test_locus_toml_wins_over_everything(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".locus.toml": 'verify = "make check"\n',
            "pytest.ini": "[pytest]\n",
            "package.json": json.dumps({"scripts": {"test": "jest"}}),
            "Cargo.toml": "",
            "Makefile": "test:\n\ttrue\n",
        },
    )
    assert detected(tmp_path) == VerifyCommand(
        "make check", "from .locus.toml at the base commit (verify)"
    )


def test_npm_default_test_script_is_ignored(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": json.dumps({"scripts": {"test": NPM_DEFAULT_TEST}})})
    assert detected(tmp_path) is None
    (tmp_path / "go.mod").write_text("module x\n")
    found = detected(tmp_path)
    assert found is not None and found.command == "go test ./..."


@pytest.mark.parametrize(
    "package_json",
    ["{not json", json.dumps({"scripts": "test"}), json.dumps(["a"]), json.dumps({"scripts": {}})],
)
def test_broken_or_testless_package_json_is_not_a_test_command(
    tmp_path: Path, package_json: str
) -> None:
    make(tmp_path, {"package.json": package_json})
    assert detected(tmp_path) is None


def test_first_match_wins_in_order(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "test_x.py": "",
            "Makefile": "test:\n\ttrue\n",
            "go.mod": "module x\n",
            "Cargo.toml": "",
            "package.json": json.dumps({"scripts": {"test": "jest"}}),
        },
    )
    order = [
        ("package.json", "npm test"),
        ("Cargo.toml", "cargo test"),
        ("go.mod", "go test ./..."),
        ("Makefile", "make test"),
        ("test_x.py", "python3 -m unittest discover -q"),
    ]
    (tmp_path / "conftest.py").write_text("")
    found = detected(tmp_path)
    assert found is not None and found.command == "python3 -m pytest -q"
    (tmp_path / "conftest.py").unlink()
    for name, command in order:
        found = detected(tmp_path)
        assert found is not None and found.command == command, name
        (tmp_path / name).unlink()
    assert detected(tmp_path) is None


def test_python_without_pytest_or_tests_is_nothing(tmp_path: Path) -> None:
    make(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n", "app.py": "", "src/test_a.py": ""})
    assert detected(tmp_path) is None


def test_makefile_without_a_test_target(tmp_path: Path) -> None:
    make(tmp_path, {"Makefile": "build:\n\tcc x.c\n# test: not a target\n"})
    assert detected(tmp_path) is None


def test_nothing_to_run(tmp_path: Path) -> None:
    make(tmp_path, {"README.md": "# x\n", "docs/test_notes.py": ""})
    assert detected(tmp_path) is None


def test_every_reason_names_its_source(tmp_path: Path) -> None:
    cases = {
        ".locus.toml": {".locus.toml": 'verify = "true"\n'},
        "pytest": {"pytest.ini": ""},
        "package.json": {"package.json": json.dumps({"scripts": {"test": "jest"}})},
        "Cargo.toml": {"Cargo.toml": ""},
        "go.mod": {"go.mod": ""},
        "Makefile": {"Makefile": "test:\n"},
        "test_*.py": {"test_a.py": ""},
    }
    for source, files in cases.items():
        found = detected(make(tmp_path / source.replace("*", "star"), files))
        assert found is not None and found.reason.strip() and source in found.reason, source


def test_the_worktrees_own_edits_choose_nothing(tmp_path: Path) -> None:
    """Detection reads the base commit: files the agent writes or edits are not looked at."""
    make(tmp_path, {"Makefile": "test:\n\tpython3 -m pytest\n"})
    commit(tmp_path)
    make(tmp_path, {".locus.toml": 'verify = "true"\n', "pytest.ini": "[pytest]\n"})
    (tmp_path / "Makefile").write_text("build:\n")
    assert detect_at(tmp_path, "HEAD") == VerifyCommand(
        "make test", "detected: the Makefile has a test target"
    )


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ({"test_a.py": "def test_a():\n    assert 1\n"}, "test_a.py has pytest-style tests"),
        (
            {"tests/test_a.py": "import pytest\n\nclass TestA:\n    pass\n"},
            "tests/test_a.py has pytest-style tests",
        ),
        (
            {"requirements-dev.txt": "pytest>=8\n", "test_a.py": "import unittest\n"},
            "pytest is a dependency (requirements-dev.txt)",
        ),
        (
            {"pyproject.toml": "[project]\noptional-dependencies = {t = ['pytest']}\n"},
            "pyproject.toml names pytest",
        ),
    ],
)
def test_pytest_style_tests_or_a_pytest_dependency_pick_pytest(
    tmp_path: Path, files: dict[str, str], why: str
) -> None:
    found = detected(make(tmp_path, files))
    assert found is not None and found.command == "python3 -m pytest -q"
    assert why in found.reason


def test_unittest_testcases_without_pytest_stay_unittest(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "test_a.py": "import unittest\n\nclass T(unittest.TestCase):\n"
            "    def test_a(self):\n        pass\n"
        },
    )
    found = detected(tmp_path)
    assert found is not None and found.command == "python3 -m unittest discover -q"
    assert "unittest.TestCase" in found.reason
