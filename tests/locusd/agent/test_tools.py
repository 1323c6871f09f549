"""The agent's tools, driven only through ``tools.execute`` (the dispatch the loop uses), on a
real git repository: reading, listing, searching, editing and writing files inside the
worktree (and nowhere else), running commands under the policy, verification and the tools
that end a run."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from locusd.agent import tools
from locusd.agent.commands import scrubbed_env
from locusd.agent.messages import ToolUseBlock
from locusd.agent.policy import CommandPolicy
from locusd.agent.tools import ToolResult, Workspace
from locusd.agent.transcript import FollowUp
from locusd.agent.verify import VerifyCommand

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
# A different size from CALC: a same-size rewrite within the second of the last test run would
# leave Python's cached bytecode (keyed on mtime seconds and size) looking fresh.
FIXED_CALC = CALC.replace(
    "def add(a, b):\n    return a - b", "def add(a, b):\n    return b + a  # fixed"
)
TEST_CALC = """\
import unittest

from calc import add, sub


class CalcTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_sub(self):
        self.assertEqual(sub(5, 3), 2)
"""
SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-secret",
    "MY_API_KEY": "my-secret",
    "GITHUB_TOKEN": "ghp-secret",
}
_ids = itertools.count()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small committed project, built once: calc.py has a bug (add subtracts) that
    test_calc.py catches."""
    root = tmp_path_factory.mktemp("template") / "repo"
    files = {
        ".gitignore": "secret.env\nbuild/\n__pycache__/\n",
        "calc.py": CALC,
        "test_calc.py": TEST_CALC,
        "src/pkg/__init__.py": "",
        "src/pkg/util.py": "def helper():\n    return 'needle'\n",
        "docs/notes.md": "a needle in the docs\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    # ignored, never committed
    (root / "secret.env").write_text("API=needle\n")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("needle = 1\n")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """Each test's own copy of the template repository."""
    return Path(shutil.copytree(template, tmp_path / "repo", symlinks=True))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("TOKEN=outside\n")
    return path


@pytest.fixture
def ws(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return Workspace(
        root=repo,
        scratch=tmp_path / "scratch",
        policy=CommandPolicy(),
        env=scrubbed_env(os.environ),
        cancel=asyncio.Event(),
        verify=VerifyCommand(f"{sys.executable} -m unittest -q", "test"),
    )


async def call(ws: Workspace, name: str, args: dict[str, Any] | None = None) -> ToolResult:
    block = ToolUseBlock(id=f"toolu_{next(_ids)}", name=name, input=args or {})
    return await tools.execute(ws, block)


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes (symlinks not followed)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def lines_of(result: ToolResult) -> list[str]:
    # ripgrep would print "./path"; git grep prints "path"
    return [line.removeprefix("./") for line in result.content.splitlines()]


# --- read_file ---------------------------------------------------------------------------------


async def test_read_file_numbers_lines(ws: Workspace) -> None:
    result = await call(ws, "read_file", {"path": "calc.py"})
    assert not result.is_error
    assert result.content.splitlines() == [
        f"{n}\t{line}" for n, line in enumerate(CALC.splitlines(), 1)
    ]


async def test_read_file_ranges(ws: Workspace, repo: Path) -> None:
    result = await call(ws, "read_file", {"path": "calc.py", "start_line": 5, "end_line": 6})
    assert result.content.splitlines() == ["5\tdef sub(a, b):", "6\t    return a - b"]
    (repo / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 31)))
    head = await call(ws, "read_file", {"path": "long.txt", "end_line": 10})
    assert head.content.splitlines()[9] == "10\tline 10"
    assert "11\tline 11" not in head.content
    assert "[lines 1-10 of 30; ask for more with start_line]" in head.content
    tail = await call(ws, "read_file", {"path": "long.txt", "start_line": 29})
    assert tail.content.splitlines() == ["29\tline 29", "30\tline 30"]
    past = await call(ws, "read_file", {"path": "long.txt", "start_line": 31})
    assert past.is_error and "past the end" in past.content and "30 lines" in past.content


async def test_read_file_refuses_binary_and_reports_missing(ws: Workspace, repo: Path) -> None:
    (repo / "blob.bin").write_bytes(b"\x89PNG\r\n\x00\x00\x01binary")
    binary = await call(ws, "read_file", {"path": "blob.bin"})
    assert binary.is_error and "binary" in binary.content and "PNG" not in binary.content
    missing = await call(ws, "read_file", {"path": "nope/missing.py"})
    assert missing.is_error and "nope/missing.py: no such file" in missing.content
    directory = await call(ws, "read_file", {"path": "src"})
    assert directory.is_error


async def test_read_file_refuses_a_fifo_without_waiting_for_a_writer(
    ws: Workspace, repo: Path
) -> None:
    """A FIFO the agent made would block an open for reading until someone writes: refused at
    once as not a regular file, and the event loop is never held (other work goes on)."""
    os.mkfifo(repo / "pipe")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(tick())
    try:
        result = await asyncio.wait_for(call(ws, "read_file", {"path": "pipe"}), 30)
        edited = await asyncio.wait_for(
            call(ws, "edit_file", {"path": "pipe", "old_string": "a", "new_string": "b"}), 30
        )
    finally:
        ticking.cancel()
    assert result.is_error and "not a regular file" in result.content
    assert edited.is_error and "not a regular file" in edited.content
    assert ticks > 0  # the loop ran while the tools worked in their threads


@pytest.mark.parametrize(
    "path", ["calc\0.py", "\udcffcalc.py", "a/" * 3000, "calc.py\0../../etc/passwd"]
)
@pytest.mark.parametrize("tool", ["read_file", "write_file", "edit_file", "list_files", "search"])
async def test_malformed_paths_are_tool_errors_never_crashes(
    ws: Workspace, repo: Path, tool: str, path: str
) -> None:
    """A NUL, a lone surrogate or an endless path from the model: an error result it can
    correct, for every file tool; nothing is read or written."""
    before = snapshot(repo)
    args: dict[str, Any] = {"path": path}
    if tool == "write_file":
        args["content"] = "x"
    elif tool == "edit_file":
        args.update(old_string="a", new_string="b")
    elif tool == "search":
        args["pattern"] = "def"
    result = await call(ws, tool, args)
    assert result.is_error, result.content
    assert snapshot(repo) == before


async def test_read_file_end_before_start_is_an_error(ws: Workspace) -> None:
    # regression: this used to answer "[empty file]" for a file that is not empty
    result = await call(ws, "read_file", {"path": "calc.py", "start_line": 5, "end_line": 2})
    assert result.is_error and "empty file" not in result.content
    assert "before start_line" in result.content


# --- list_files -----------------------------------------------------------------------------


async def test_list_files_respects_gitignore(ws: Workspace) -> None:
    result = await call(ws, "list_files")
    assert not result.is_error
    assert set(result.content.splitlines()) == {
        ".gitignore",
        "calc.py",
        "test_calc.py",
        "src/pkg/__init__.py",
        "src/pkg/util.py",
        "docs/notes.md",
    }


async def test_list_files_shows_new_files_and_hides_deleted_ones(ws: Workspace, repo: Path) -> None:
    (repo / "src" / "pkg" / "new.py").write_text("x = 1\n")
    (repo / "docs" / "notes.md").unlink()
    listed = (await call(ws, "list_files")).content.splitlines()
    assert "src/pkg/new.py" in listed
    assert "docs/notes.md" not in listed
    assert "calc.py" in listed


async def test_list_files_globs(ws: Workspace) -> None:
    under_src = await call(ws, "list_files", {"pattern": "src/**/*.py"})
    assert under_src.content.splitlines() == ["src/pkg/__init__.py", "src/pkg/util.py"]
    every_py = set((await call(ws, "list_files", {"pattern": "**/*.py"})).content.splitlines())
    assert every_py == {"calc.py", "test_calc.py", "src/pkg/__init__.py", "src/pkg/util.py"}
    top = await call(ws, "list_files", {"pattern": "*.md"})
    assert "no files match" in top.content  # '*' does not cross directories
    none = await call(ws, "list_files", {"pattern": "**/*.rs"})
    assert not none.is_error and none.content == "no files match '**/*.rs'"


async def test_list_files_shows_unusual_names_as_they_are(ws: Workspace, repo: Path) -> None:
    # regression: git quotes such names ("caf\303\251.py") unless -z, and they were dropped
    names = ["café.py", 'say "hi".txt', "tab\tname.txt", "with space.md"]
    for name in names:
        (repo / name).write_text("x = 1\n")
    listed = (await call(ws, "list_files")).content.splitlines()
    assert set(names) <= set(listed)


# --- search ----------------------------------------------------------------------------------


async def test_search_answers_path_line_text_and_skips_ignored_files(ws: Workspace) -> None:
    result = await call(ws, "search", {"pattern": "needle"})
    assert not result.is_error
    assert sorted(lines_of(result)) == [
        "docs/notes.md:1:a needle in the docs",
        "src/pkg/util.py:2:    return 'needle'",
    ]  # secret.env and build/out.py are ignored


async def test_search_uses_extended_regexps_and_finds_new_files(ws: Workspace, repo: Path) -> None:
    (repo / "extra.py").write_text("# nothing\ndef add_more(x):\n    pass\n")
    result = await call(ws, "search", {"pattern": r"^def (add|sub)\("})
    assert sorted(lines_of(result)) == ["calc.py:1:def add(a, b):", "calc.py:5:def sub(a, b):"]
    new = await call(ws, "search", {"pattern": "add_mo+re"})
    assert lines_of(new) == ["extra.py:2:def add_more(x):"]


async def test_search_filters_by_glob_and_path(ws: Workspace) -> None:
    py_only = await call(ws, "search", {"pattern": "needle", "glob": "*.py"})
    assert lines_of(py_only) == ["src/pkg/util.py:2:    return 'needle'"]
    in_docs = await call(ws, "search", {"pattern": "needle", "path": "docs"})
    assert lines_of(in_docs) == ["docs/notes.md:1:a needle in the docs"]
    both = await call(ws, "search", {"pattern": "needle", "path": "src", "glob": "*.md"})
    assert "no matches" in both.content


async def test_search_without_matches_says_so(ws: Workspace) -> None:
    result = await call(ws, "search", {"pattern": "no-such-text-anywhere"})
    assert not result.is_error and result.content == "no matches for 'no-such-text-anywhere'"


async def test_search_shows_non_ascii_names_as_they_are(ws: Workspace, repo: Path) -> None:
    # regression: git grep quoted it as "caf\303\251.py", a path the model cannot open
    (repo / "café.py").write_text("needle_here = 1\n")
    assert lines_of(await call(ws, "search", {"pattern": "needle_here"})) == [
        "café.py:1:needle_here = 1"
    ]


# Regression: git grep C-quoted names holding a quote, a backslash or a control character.
async def test_search_shows_names_with_quotes_as_they_are(ws: Workspace, repo: Path) -> None:
    (repo / 'say "hi".txt').write_text("needle_here = 1\n")
    assert lines_of(await call(ws, "search", {"pattern": "needle_here"})) == [
        'say "hi".txt:1:needle_here = 1'
    ]


# --- edit_file -------------------------------------------------------------------------------


async def test_edit_file_replaces_a_unique_string(ws: Workspace, repo: Path) -> None:
    result = await call(
        ws,
        "edit_file",
        {
            "path": "calc.py",
            "old_string": "def add(a, b):\n    return a - b",
            "new_string": "def add(a, b):\n    return a + b",
        },
    )
    assert not result.is_error and result.content == "edited calc.py: 1 replacement"
    assert (repo / "calc.py").read_text() == (
        "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
    )


async def test_edit_file_refuses_an_ambiguous_string(ws: Workspace, repo: Path) -> None:
    result = await call(
        ws, "edit_file", {"path": "calc.py", "old_string": "return a - b", "new_string": "x"}
    )
    assert result.is_error and "2 times" in result.content and "replace_all" in result.content
    assert (repo / "calc.py").read_text() == CALC


async def test_edit_file_miss_names_the_closest_text(ws: Workspace, repo: Path) -> None:
    result = await call(
        ws,
        "edit_file",
        {"path": "calc.py", "old_string": "def sub(a,b):", "new_string": "def minus(a, b):"},
    )
    assert result.is_error and "not found" in result.content
    assert "closest text is at line 5:\ndef sub(a, b):" in result.content
    assert (repo / "calc.py").read_text() == CALC


async def test_edit_file_replace_all(ws: Workspace, repo: Path) -> None:
    result = await call(
        ws,
        "edit_file",
        {
            "path": "calc.py",
            "old_string": "a - b",
            "new_string": "b - a",
            "replace_all": True,
        },
    )
    assert not result.is_error and result.content == "edited calc.py: 2 replacements"
    assert (repo / "calc.py").read_text() == CALC.replace("a - b", "b - a")


async def test_edit_file_missing_file(ws: Workspace) -> None:
    result = await call(ws, "edit_file", {"path": "gone.py", "old_string": "a", "new_string": "b"})
    assert result.is_error and "gone.py: no such file" in result.content


async def test_edit_file_keeps_the_executable_bit(ws: Workspace, repo: Path) -> None:
    script = repo / "run.sh"
    script.write_text("#!/bin/sh\necho old\n")
    script.chmod(0o755)
    result = await call(
        ws, "edit_file", {"path": "run.sh", "old_string": "echo old", "new_string": "echo new"}
    )
    assert not result.is_error and script.read_text() == "#!/bin/sh\necho new\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


# --- write_file -------------------------------------------------------------------------------


async def test_write_file_creates_nested_directories(ws: Workspace, repo: Path) -> None:
    result = await call(
        ws, "write_file", {"path": "new/deep/dir/mod.py", "content": "VALUE = 'é'\n"}
    )
    assert not result.is_error and "new/deep/dir/mod.py" in result.content
    assert "13 bytes" in result.content  # UTF-8 bytes, not characters
    assert (repo / "new" / "deep" / "dir" / "mod.py").read_text() == "VALUE = 'é'\n"
    assert os.listdir(repo / "new" / "deep" / "dir") == ["mod.py"]  # no temporary left over


async def test_write_file_replaces_atomically(ws: Workspace, repo: Path) -> None:
    with (repo / "calc.py").open() as before:
        result = await call(ws, "write_file", {"path": "calc.py", "content": "replaced\n"})
        assert not result.is_error
        # a new file was renamed over the old one: a reader of the old one sees it whole
        assert before.read() == CALC
    assert (repo / "calc.py").read_text() == "replaced\n"
    assert not [p for p in os.listdir(repo) if ".locus-" in p]


# --- confinement through the tools -------------------------------------------------------------


def escape_calls(outside: Path) -> list[tuple[str, dict[str, Any]]]:
    secret = str(outside / "secret.txt")
    calls: list[tuple[str, dict[str, Any]]] = []
    for path in ("../outside/secret.txt", "src/../../outside/secret.txt", secret, "link.txt"):
        calls += [
            ("read_file", {"path": path}),
            ("edit_file", {"path": path, "old_string": "outside", "new_string": "PWNED"}),
        ]
    for path in ("../outside/secret.txt", secret, "linkdir/secret.txt", "linkdir/new.txt"):
        calls.append(("write_file", {"path": path, "content": "PWNED\n"}))
    for path in (".git/config", "./.git/config", ".git/hooks/pre-commit"):
        calls += [
            ("read_file", {"path": path}),
            ("edit_file", {"path": path, "old_string": "[core]", "new_string": "PWNED"}),
            ("write_file", {"path": path, "content": "PWNED\n"}),
        ]
    calls += [
        ("list_files", {"pattern": "../outside/*"}),
        ("list_files", {"pattern": ".git/**"}),
        ("search", {"pattern": "TOKEN", "path": "../outside"}),
        ("search", {"pattern": "core", "path": ".git"}),
        ("search", {"pattern": "TOKEN", "path": secret}),
    ]
    return calls


async def test_paths_that_leave_the_worktree_are_errors(
    ws: Workspace, repo: Path, outside: Path
) -> None:
    (repo / "link.txt").symlink_to(outside / "secret.txt")
    (repo / "linkdir").symlink_to(outside)
    before_outside, before_git = snapshot(outside), snapshot(repo / ".git")
    for name, args in escape_calls(outside):
        result = await call(ws, name, args)
        assert result.is_error, (name, args, result.content)
        assert "TOKEN=outside" not in result.content and "[core]" not in result.content
    assert snapshot(outside) == before_outside
    assert snapshot(repo / ".git") == before_git
    assert not (outside / "new.txt").exists()


async def test_writing_to_a_symlink_replaces_the_link_not_its_target(
    ws: Workspace, repo: Path, outside: Path
) -> None:
    (repo / "link.txt").symlink_to(outside / "secret.txt")
    result = await call(ws, "write_file", {"path": "link.txt", "content": "mine\n"})
    assert not result.is_error
    assert (outside / "secret.txt").read_text() == "TOKEN=outside\n"
    assert not (repo / "link.txt").is_symlink() and (repo / "link.txt").read_text() == "mine\n"


CANARY = "TOKEN=outside"


def canary_seen(result: ToolResult) -> bool:
    return CANARY in result.content


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("read_file", {"path": "link.txt"}),
        ("edit_file", {"path": "link.txt", "old_string": "TOKEN", "new_string": "X"}),
        ("search", {"pattern": "TOKEN", "path": "link.txt"}),
        ("search", {"pattern": "TOKEN", "path": "linkdir"}),
        ("search", {"pattern": "TOKEN", "path": "linkdir/secret.txt"}),
        ("read_file", {"path": "linkdir/secret.txt"}),
        ("search", {"pattern": "root:", "path": "procroot/etc/passwd"}),
        ("search", {"pattern": "root:", "path": "proc/self/root/etc/passwd"}),
        ("read_file", {"path": "proc/self/root/etc/passwd"}),
        ("read_file", {"path": "proc/self/cwd/calc.py"}),
    ],
)
async def test_a_symlink_named_by_a_tool_is_refused_never_followed(
    ws: Workspace, repo: Path, outside: Path, name: str, args: dict[str, Any]
) -> None:
    (repo / "link.txt").symlink_to(outside / "secret.txt")
    (repo / "linkdir").symlink_to(outside)
    (repo / "proc").symlink_to("/proc")
    (repo / "procroot").symlink_to("/proc/self/root")
    result = await call(ws, name, args)
    assert result.is_error, result.content
    assert "symlink" in result.content
    assert not canary_seen(result) and "root:" not in result.content
    assert (outside / "secret.txt").read_text() == CANARY + "\n"


async def test_search_skips_symlinks_in_the_tree_and_says_so(
    ws: Workspace, repo: Path, outside: Path
) -> None:
    """A symlink committed in the repository, one left untracked, one to a directory and one
    to /proc: the whole-tree search reads none of them and names them."""
    (repo / "committed.txt").symlink_to(outside / "secret.txt")
    git(repo, "add", "committed.txt")
    git(repo, "commit", "-q", "-m", "a link")
    (repo / "src" / "untracked.txt").symlink_to(outside / "secret.txt")
    (repo / "src" / "outdir").symlink_to(outside)
    (repo / "passwd").symlink_to("/proc/self/root/etc/passwd")
    (outside / "needle.txt").write_text("needle outside\n")
    result = await call(ws, "search", {"pattern": "TOKEN|needle|root:"})
    assert not result.is_error, result.content
    assert not canary_seen(result) and "needle outside" not in result.content
    assert "root:" not in result.content.split("[not searched")[0]
    assert "src/pkg/util.py:2:" in result.content  # the real files are still searched
    notes = result.content.split("[not searched", 1)[1]
    for name in ("committed.txt", "src/untracked.txt", "passwd"):
        assert name in notes and "symlink" in notes


async def test_search_never_waits_on_a_fifo(ws: Workspace, repo: Path) -> None:
    """A FIFO named as the path is refused at once (no writer needed); in the tree, skipped."""
    os.mkfifo(repo / "pipe")
    named = await asyncio.wait_for(call(ws, "search", {"pattern": "x", "path": "pipe"}), 30)
    assert named.is_error and "not a regular file" in named.content
    whole = await asyncio.wait_for(call(ws, "search", {"pattern": "needle"}), 30)
    assert "src/pkg/util.py:2:" in whole.content


async def test_a_tracked_directory_swapped_for_a_symlink_is_not_searched(
    ws: Workspace, repo: Path, outside: Path
) -> None:
    """git still lists the index's src/pkg/util.py; the directory is now a symlink out."""
    (outside / "util.py").write_text(CANARY + " needle\n")
    shutil.rmtree(repo / "src" / "pkg")
    (repo / "src" / "pkg").symlink_to(outside)
    result = await call(ws, "search", {"pattern": "needle"})
    assert not canary_seen(result), result.content
    assert "docs/notes.md:1:" in result.content
    assert "src/pkg/util.py: is or goes through a symlink" in result.content or (
        "src/pkg/util.py: goes through a symlink" in result.content
    )
    for args in ({"path": "src/pkg"}, {"path": "src/pkg/util.py"}):
        refused = await call(ws, "search", {"pattern": "needle", **args})
        assert refused.is_error and not canary_seen(refused), refused.content


@pytest.mark.parametrize("tracked", [False, True], ids=["untracked", "committed"])
async def test_a_hard_link_to_an_outside_file_is_refused_by_every_file_tool(
    ws: Workspace, repo: Path, outside: Path, tracked: bool
) -> None:
    os.link(outside / "secret.txt", repo / "linked.txt")
    if tracked:
        git(repo, "add", "linked.txt")
        git(repo, "commit", "-q", "-m", "a hard link")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("read_file", {"path": "linked.txt"}),
        ("edit_file", {"path": "linked.txt", "old_string": "TOKEN", "new_string": "PWNED"}),
        ("write_file", {"path": "linked.txt", "content": "PWNED\n"}),
        ("search", {"pattern": "TOKEN", "path": "linked.txt"}),
    ]
    for name, args in calls:
        result = await call(ws, name, args)
        assert result.is_error and "hard link" in result.content, (name, result.content)
        assert not canary_seen(result)
    whole = await call(ws, "search", {"pattern": "TOKEN"})
    assert not canary_seen(whole) and "linked.txt: has 2 hard links" in whole.content
    assert (outside / "secret.txt").read_text() == CANARY + "\n"


async def test_search_in_a_directory_reached_through_a_symlinked_parent_is_refused(
    ws: Workspace, repo: Path, outside: Path
) -> None:
    (outside / "sub").mkdir()
    (outside / "sub" / "key").write_text(CANARY)
    (repo / "linkdir").symlink_to(outside)
    for args in ({"path": "linkdir/sub"}, {"path": "linkdir/sub", "glob": "*"}):
        result = await call(ws, "search", {"pattern": "TOKEN", **args})
        assert result.is_error and "symlink" in result.content
        assert not canary_seen(result)
    listed = await call(ws, "list_files", {"pattern": "linkdir/**"})
    assert "key" not in listed.content
    everything = await call(ws, "list_files", {"pattern": "**"})
    assert "linkdir  [symlink: not followed]" in everything.content.splitlines()
    assert "key" not in everything.content


async def test_search_patterns_are_linear_time_and_bad_ones_are_errors(
    ws: Workspace, repo: Path
) -> None:
    """RE2: a pattern that makes a backtracking engine take exponential time returns at once
    (the test would hang, not fail, without it); one RE2 cannot parse is an error result."""
    (repo / "long.txt").write_text("a" * 100_000 + "!\n")
    slow = await call(ws, "search", {"pattern": "(a+)+$"})
    assert not slow.is_error and slow.content == "no matches for '(a+)+$'"
    for pattern in ("(unclosed", r"(a)\1", "(?=look)"):
        bad = await call(ws, "search", {"pattern": pattern})
        assert bad.is_error and "invalid pattern" in bad.content, bad.content
    huge = await call(ws, "search", {"pattern": "a" * 100_000})
    assert huge.is_error and "pattern" in huge.content and "4096" in huge.content, huge.content


async def test_search_never_reads_outside_under_a_rename_race(
    ws: Workspace, repo: Path, outside: Path
) -> None:
    """Another process keeps swapping a file with a symlink out (renameat2 RENAME_EXCHANGE)
    while the model searches: the swap is seen, the outside file never is."""
    (repo / "swap.txt").write_text("inside needle\n")
    (repo / "other.txt").symlink_to(outside / "secret.txt")
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(repo / "swap.txt"), str(repo / "other.txt")]
    )
    seen = {"inside": 0, "skipped": 0}
    try:
        for _ in range(200):
            result = await call(ws, "search", {"pattern": "TOKEN|inside needle", "glob": "*.txt"})
            assert not canary_seen(result), result.content
            seen["inside"] += "inside needle" in result.content
            seen["skipped"] += "[not searched" in result.content
    finally:
        swapper.kill()
        swapper.wait()
    assert seen["inside"] and seen["skipped"], seen


SWAPPER = """
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
a, b = (p.encode() for p in sys.argv[1:3])
while True:
    libc.renameat2(-100, a, -100, b, 2)
"""


# --- run_command -------------------------------------------------------------------------------


async def test_run_command_reports_the_exit_code(ws: Workspace) -> None:
    ok = await call(ws, "run_command", {"command": "echo hello && pwd"})
    assert not ok.is_error and ok.exit_code == 0
    assert ok.content.splitlines() == ["[exit code 0]", "hello", str(ws.root)]
    bad = await call(ws, "run_command", {"command": "echo oops >&2; exit 3"})
    assert bad.is_error and bad.exit_code == 3
    assert bad.content.splitlines() == ["[exit code 3]", "oops"]


async def test_run_command_keeps_long_output_for_the_transcript(ws: Workspace) -> None:
    result = await call(ws, "run_command", {"command": "seq 1 20000"})
    assert not result.is_error and "bytes cut" in result.content
    assert result.full_output is not None and result.full_output.count("\n") == 20000
    short = await call(ws, "run_command", {"command": "echo short"})
    assert short.full_output is None


async def test_run_command_sees_no_secrets(ws: Workspace) -> None:
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-secret"  # they are in our environment
    result = await call(
        ws, "run_command", {"command": 'echo "[$ANTHROPIC_API_KEY][$MY_API_KEY][$GITHUB_TOKEN]"'}
    )
    assert result.content.splitlines() == ["[exit code 0]", "[][][]"]
    env = await call(ws, "run_command", {"command": "env"})
    assert "PATH=" in env.content
    assert not any(value in env.content for value in SECRETS.values())


async def test_run_command_denied_by_policy_does_not_run(ws: Workspace, repo: Path) -> None:
    result = await call(ws, "run_command", {"command": "touch pushed.txt && git push origin main"})
    assert result.is_error and result.exit_code is None
    assert "not run" in result.content and "git push*" in result.content
    assert not (repo / "pushed.txt").exists()


async def test_run_command_needing_approval_is_denied_when_unattended(
    ws: Workspace, repo: Path
) -> None:
    assert ws.unattended
    result = await call(ws, "run_command", {"command": "touch asked.txt; git commit -m wip"})
    assert result.is_error and "unattended" in result.content and "git commit*" in result.content
    assert not (repo / "asked.txt").exists()


async def test_run_command_asks_the_approver(ws: Workspace, repo: Path) -> None:
    asked: list[tuple[str, str]] = []
    answer = False

    async def approver(command: str, reason: str) -> bool:
        asked.append((command, reason))
        return answer

    ws.approver = approver
    command = "touch approved.txt && git commit -q --allow-empty -m wip"
    declined = await call(ws, "run_command", {"command": command})
    assert declined.is_error and "declined" in declined.content
    assert not (repo / "approved.txt").exists()
    assert len(asked) == 1 and asked[0][0] == command and "git commit*" in asked[0][1]

    answer = True
    approved = await call(ws, "run_command", {"command": command})
    assert not approved.is_error and approved.exit_code == 0, approved.content
    assert (repo / "approved.txt").exists()
    assert git(repo, "log", "-1", "--format=%s").strip() == "wip"
    assert len(asked) == 2

    plain = await call(ws, "run_command", {"command": "echo no question"})
    assert not plain.is_error and len(asked) == 2  # allowed commands are not asked about


async def test_a_cancel_withdraws_a_pending_approval(ws: Workspace, repo: Path) -> None:
    """Nobody answers (the user is away): cancelling the run answers no, withdraws the
    question (the approver is cancelled) and the command never runs."""
    asking = asyncio.Event()
    withdrawn: list[bool] = []

    async def away(command: str, reason: str) -> bool:
        asking.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            withdrawn.append(True)
            raise
        return True

    ws.approver = away
    command = "touch approved.txt && git commit -q --allow-empty -m wip"
    running = asyncio.ensure_future(call(ws, "run_command", {"command": command}))
    await asking.wait()
    ws.cancel.set()
    declined = await running
    assert declined.is_error and withdrawn == [True]
    assert not (repo / "approved.txt").exists()
    # Once cancelled, nobody is asked at all.
    again = await call(ws, "run_command", {"command": command})
    assert again.is_error and withdrawn == [True]


async def test_run_command_timeout_kills_a_hanging_command(ws: Workspace) -> None:
    started = time.monotonic()
    result = await call(ws, "run_command", {"command": "sleep 30", "timeout": 0.5})
    assert time.monotonic() - started < 20
    assert result.is_error and result.exit_code is None
    assert "ran over its timeout" in result.content


async def test_workspace_command_timeout_caps_the_models_timeout(ws: Workspace) -> None:
    ws.command_timeout = 0.5
    started = time.monotonic()
    result = await call(ws, "run_command", {"command": "sleep 30", "timeout": 1800})
    assert time.monotonic() - started < 20 and "ran over its timeout" in result.content


# --- verification and the end of a run -------------------------------------------------------


async def fix_calc(ws: Workspace) -> None:
    result = await call(ws, "write_file", {"path": "calc.py", "content": FIXED_CALC})
    assert not result.is_error


async def test_run_verify_fails_then_passes(ws: Workspace) -> None:
    failing = await call(ws, "run_verify")
    assert failing.is_error and failing.exit_code == 1
    assert "FAILED" in failing.content and "test_add" in failing.content
    await fix_calc(ws)
    passing = await call(ws, "run_verify")
    assert not passing.is_error and passing.exit_code == 0 and "passed" in passing.content
    assert [e.passed for e in ws.verifications] == [False, True]
    assert ws.verifications[0].reason == "test"


async def test_run_verify_without_a_command(ws: Workspace) -> None:
    ws.verify = None
    result = await call(ws, "run_verify")
    assert not result.is_error and "no verify command" in result.content
    assert ws.verifications == []


async def test_finish_completes_when_verify_passes(ws: Workspace) -> None:
    await fix_calc(ws)
    result = await call(ws, "finish", {"summary": "fixed add"})
    assert result.stop is not None and not result.is_error
    assert result.stop.outcome == "completed" and result.stop.summary == "fixed add"
    assert ws.verify_failures == 0 and len(ws.verifications) == 1


async def test_finish_without_a_verify_command_completes(ws: Workspace) -> None:
    ws.verify = None
    result = await call(ws, "finish", {"summary": "done"})
    assert result.stop is not None and result.stop.outcome == "completed"


async def test_finish_with_failing_verify_continues_then_fails(ws: Workspace) -> None:
    assert ws.max_verify_rounds == 3
    first = await call(ws, "finish", {"summary": "s"})
    assert first.is_error and first.stop is None
    assert "not done" in first.content and "test_add" in first.content
    assert "2 rounds left" in first.content
    second = await call(ws, "finish", {"summary": "s"})
    assert second.is_error and second.stop is None and "1 round left" in second.content
    third = await call(ws, "finish", {"summary": "s"})
    assert third.is_error and third.stop is not None
    assert third.stop.outcome == "failed" and third.stop.summary == "s"
    assert third.stop.reason == "verification still fails after 3 rounds"
    assert len(ws.verifications) == 3


async def test_finish_after_a_fix_completes(ws: Workspace) -> None:
    first = await call(ws, "finish", {"summary": "s"})
    assert first.stop is None and first.is_error
    await fix_calc(ws)
    second = await call(ws, "finish", {"summary": "s"})
    assert second.stop is not None and second.stop.outcome == "completed"


async def test_ask_user_stops_for_input(ws: Workspace) -> None:
    result = await call(ws, "ask_user", {"question": "Which database?"})
    assert result.stop is not None and result.stop.outcome == "needs_input"
    assert result.stop.question == "Which database?"


async def test_create_follow_up_is_recorded(ws: Workspace) -> None:
    result = await call(
        ws, "create_follow_up", {"title": "Refactor sub", "description": "it is odd"}
    )
    assert not result.is_error and result.stop is None and "Refactor sub" in result.content
    await call(ws, "create_follow_up", {"title": "Docs"})
    assert ws.follow_ups == [
        FollowUp(title="Refactor sub", description="it is odd"),
        FollowUp(title="Docs", description=""),
    ]
    empty = await call(ws, "create_follow_up", {"title": ""})
    assert empty.is_error and "title" in empty.content and len(ws.follow_ups) == 2


# --- dispatch errors ---------------------------------------------------------------------------


async def test_unknown_tool(ws: Workspace) -> None:
    result = await call(ws, "delete_everything", {"path": "."})
    assert result.is_error and "'delete_everything'" in result.content
    assert all(name in result.content for name in tools.WORK_TOOLS)


async def test_a_work_run_is_not_offered_the_planning_tool(ws: Workspace) -> None:
    import locusd.agent.planning  # noqa: F401  (registers propose_tasks)

    assert "propose_tasks" not in {spec.name for spec in tools.specs()}
    result = await call(ws, "propose_tasks", {"proposals": [{"title": "t"}]})
    assert result.is_error and result.stop is None and "no tool 'propose_tasks'" in result.content


@pytest.mark.parametrize(
    ("name", "args", "field", "problem"),
    [
        ("read_file", {}, "path", "Field required"),
        ("edit_file", {"path": "calc.py", "old_string": "a"}, "new_string", "Field required"),
        ("read_file", {"path": "calc.py", "start_line": "abc"}, "start_line", "valid integer"),
        ("read_file", {"path": "calc.py", "start_line": 0}, "start_line", "greater than"),
        ("run_command", {"command": ["ls"]}, "command", "valid string"),
        ("run_command", {"command": "ls", "timeout": 0}, "timeout", "greater than"),
        ("read_file", {"path": "calc.py", "bogus": 1}, "bogus", "Extra inputs"),
        ("run_verify", {"anything": True}, "anything", "Extra inputs"),
    ],
)
async def test_invalid_input_names_the_field(
    ws: Workspace, name: str, args: dict[str, Any], field: str, problem: str
) -> None:
    result = await call(ws, name, args)
    assert result.is_error and result.stop is None
    assert f"invalid input for {name}: {field}:" in result.content
    assert problem in result.content


async def test_invalid_json_arguments(ws: Workspace, repo: Path) -> None:
    result = await call(ws, "write_file", {"__invalid_json__": '{"path": "x.py", "content'})
    assert result.is_error and "not valid JSON" in result.content and "write_file" in result.content
    assert '{"path": "x.py", "content' in result.content
    assert not (repo / "x.py").exists()


def test_specs_describe_every_tool() -> None:
    names = [s.name for s in tools.specs()]
    assert names == [name for name in tools.TOOLS if name in tools.WORK_TOOLS]
    specs = tools.specs(frozenset(tools.TOOLS))  # the planning run's propose_tasks too
    assert set(names) >= {
        *("read_file", "list_files", "search", "edit_file", "write_file", "run_command"),
        *("run_verify", "finish", "ask_user", "create_follow_up"),
    }
    for spec in specs:
        schema = spec.input_schema
        assert spec.description
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert isinstance(schema["properties"], dict)
        for prop, definition in schema["properties"].items():
            assert definition.get("description"), (spec.name, prop)
        for required in schema.get("required", []):
            assert required in schema["properties"]
