"""Git runs only through ``locusd/git/`` (the Repository facade and its process layer): a scan of
the rest of ``locusd/`` for an argv that starts with "git" — in a ``subprocess`` call or built
anywhere else — which would run git without Locus's environment and timeouts."""

from __future__ import annotations

import ast
from pathlib import Path

LOCUSD = Path(__file__).resolve().parents[3] / "locusd"
ALLOWED = LOCUSD / "git"
SPAWNERS = {"run", "Popen", "call", "check_call", "check_output", "create_subprocess_exec"}


def _first_word(node: ast.expr) -> object:
    """What a list/tuple display starts with: ``["git", ...]``, ``[*("git", ...), ...]``."""
    if isinstance(node, ast.List | ast.Tuple) and node.elts:
        first = node.elts[0]
        if isinstance(first, ast.Starred):
            return _first_word(first.value)
        if isinstance(first, ast.Constant):
            return first.value
    return None


def _git_argvs(tree: ast.AST) -> list[int]:
    """Lines with a git argv: a display starting with "git", or a process-spawning call whose
    program is the string "git" (``subprocess.run("git ...", shell=True)`` too)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple) and _first_word(node) == "git":
            lines.add(node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            program = node.args[0]
            if (
                name in SPAWNERS
                and isinstance(program, ast.Constant)
                and isinstance(program.value, str)
                and program.value.split()[:1] == ["git"]
            ):
                lines.add(node.lineno)
    return sorted(lines)


def test_the_scan_finds_what_it_looks_for() -> None:
    found = _git_argvs(
        ast.parse(
            "subprocess.run(['git', 'status'])\n"
            "argv = [*('git', 'grep'), '-e', p]\n"
            "subprocess.Popen('git log', shell=True)\n"
            "subprocess.run(['rg', 'x'])\n"
            "names = ['hg', 'git']\n"
        )
    )
    assert found == [1, 2, 3]


def test_nothing_outside_locusd_git_runs_git_itself() -> None:
    offenders = [
        f"{path.relative_to(LOCUSD.parent)}:{line}"
        for path in sorted(LOCUSD.rglob("*.py"))
        if ALLOWED not in path.parents
        for line in _git_argvs(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == [], "run git through locusd.git.repo.Repository instead"
