"""The docs name only files that exist: every repository path written as code in README.md or
docs/*.md (inline or in a fenced block), every relative Markdown link there, and every
``docs/<page>.md`` the code points at. Otherwise a moved or deleted file leaves the docs
describing something that is not there, and nobody notices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Top-level folders of the repository: a path in code that starts with one is taken as ours.
TOP = ("locusd", "cloud_api", "tests", "bench", "scripts", "docs", "examples", ".ci")
SOURCES = ("locusd", "cloud_api", "bench", "scripts")

_CODE = re.compile(r"^```[^\n]*\n(.*?)^```|`([^`\n]+)`", re.S | re.M)
_PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(map(re.escape, TOP))})/[^\s`'\"()\[\],;|]*)")
#: ``<run-id>``, ``{task_id}``, ``…``: any one path component.
_PLACEHOLDER = re.compile(r"<[^<>/]*>|\{[^{}/]*\}|…|\.\.\.")
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_PAGE_REF = re.compile(r"(?<![\w./-])docs/[\w.-]+\.(?:md|json)")


def paths_in(text: str) -> Iterator[tuple[int, str]]:
    """(line, path) for each repository path in the text's code, as written."""
    for code in _CODE.finditer(text):
        span = code.group(1) if code.group(1) is not None else code.group(2)
        start = code.start(1) if code.group(1) is not None else code.start(2)
        for found in _PATH.finditer(span):
            line = text.count("\n", 0, start + found.start()) + 1
            yield line, found.group(1)


def exists(path: str, root: Path = ROOT) -> bool:
    """Whether ``path`` names something in ``root``; a glob or placeholder must match one."""
    path = path.split("::", 1)[0].rstrip(".:")  # a pytest node id; the end of a sentence
    pattern = _PLACEHOLDER.sub("*", path).rstrip("/")
    if any(c in pattern for c in "*?["):
        return next(root.glob(pattern), None) is not None
    return (root / pattern).exists()


def missing_in(page: Path, root: Path = ROOT) -> list[str]:
    text = page.read_text(encoding="utf-8")
    name = page.relative_to(root) if page.is_relative_to(root) else page
    gone = [f"{name}:{line}: {path}" for line, path in paths_in(text) if not exists(path, root)]
    for link in _LINK.finditer(text):
        target = link.group(1)
        external = "://" in target or target.startswith("mailto:")
        if not external and not (page.parent / target).exists():
            line = text.count("\n", 0, link.start()) + 1
            gone.append(f"{name}:{line}: link {target}")
    return gone


def test_the_extractor_finds_paths_inline_in_blocks_and_behind_commands() -> None:
    text = (
        "Run `pytest tests/locusd/test_x.py::test_y` or see `locusd/daemon.py`.\n"
        "Not a path: src/app.py, `my/tests/a.py`, tests/prose.py.\n"
        "```bash\n.venv/bin/python -m bench.claims  # writes docs/benchmarks.md\n```\n"
    )
    assert list(paths_in(text)) == [
        (1, "tests/locusd/test_x.py::test_y"),
        (1, "locusd/daemon.py"),
        (4, "docs/benchmarks.md"),
    ]


def test_globs_and_placeholders_must_match_something(tmp_path: Path) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").touch()
    assert exists("tests/unit/test_a.py::test_b.", tmp_path)
    assert exists("tests/unit/", tmp_path)
    assert exists("tests/*/test_*.py", tmp_path)
    assert exists("tests/<suite>/test_a.py", tmp_path)
    assert exists("tests/{suite}/…", tmp_path)
    assert not exists("tests/e2e", tmp_path)
    assert not exists("tests/<suite>/test_z.py", tmp_path)


def test_a_page_naming_a_missing_path_or_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("x")
    page = tmp_path / "docs" / "page.md"
    page.write_text("See `tests/e2e/` and [here](here.md), [gone](gone.md#top).\n")
    assert missing_in(page, tmp_path) == [
        "docs/page.md:1: tests/e2e/",
        "docs/page.md:1: link gone.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_name_only_paths_that_exist(page: Path) -> None:
    assert missing_in(page) == [], "fix or remove these references"


def test_the_code_points_only_at_docs_pages_that_exist() -> None:
    gone = [
        f"{source.relative_to(ROOT)}: {ref}"
        for top in SOURCES
        for source in sorted((ROOT / top).rglob("*.py"))
        for ref in sorted(set(_PAGE_REF.findall(source.read_text(encoding="utf-8"))))
        if not (ROOT / ref).exists()
    ]
    assert gone == [], "a docstring or comment points at a docs page that does not exist"
