"""Privacy proof for the index (issue 19, point 7): canaries in file contents, identifiers, a
manifest's non-dependency fields, ignored files and commit message bodies never reach the
bytes that would be uploaded, nor the index state kept on disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from locusd.graph.index import index_checkout
from locusd.graph.payload import build_payload
from tests.locusd.cliuser import LOCUS
from tests.locusd.git.test_worktrees import identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config

CANARIES = {
    "content": "CANARY_CONTENT_51c0",
    "identifier": "CANARY_FUNCTION_9a2b",
    "manifest": "CANARY_MANIFEST_0e77",
    "script": "CANARY_SCRIPT_3f18",
    "group": "CANARY_GROUP_c4d2",
    "ignored": "CANARY_IGNORED_77aa",
    "commit": "CANARY_COMMIT_BODY_e5f1",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "secret").mkdir()
    (repo / "src" / "pkg" / "core.py").write_text(
        f"def {CANARIES['identifier']}():\n    return '{CANARIES['content']}'\n"
    )
    (repo / "pyproject.toml").write_text(
        f'[project]\nname = "{CANARIES["manifest"]}"\ndescription = "{CANARIES["manifest"]}"\n'
        f'version = "1.0"\ndependencies = ["requests>=2 ; extra == \'{CANARIES["manifest"]}\'"]\n'
        f'[project.optional-dependencies]\n{CANARIES["group"]} = ["rich"]\n'
        f'[project.urls]\nHome = "https://{CANARIES["manifest"]}.example"\n'
        f'[tool.pytest.ini_options]\naddopts = "-k {CANARIES["manifest"]}"\n'
    )
    (repo / "package.json").write_text(
        json.dumps(
            {
                "name": CANARIES["manifest"],
                "dependencies": {"left-pad": CANARIES["manifest"]},
                "scripts": {"test": CANARIES["script"], CANARIES["script"]: "x"},
                "config": {"token": CANARIES["manifest"]},
            }
        )
    )
    (repo / "Makefile").write_text(f"test:\n\techo {CANARIES['script']}\n")
    (repo / "secret" / f"{CANARIES['ignored']}.py").write_text(CANARIES["ignored"])
    (repo / "secret" / "package.json").write_text(
        json.dumps({"dependencies": {CANARIES["ignored"].lower(): "1"}})
    )
    (repo / ".locusignore").write_text("secret/\n")
    sh(repo.parent, "git", "init", "-q", "-b", "main", str(repo))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "subject", "-m", f"body {CANARIES['commit']}")
    return repo


def assert_no_canary(data: bytes, where: str) -> None:
    text = data.decode("utf-8", "replace").lower()
    leaked = [name for name, canary in CANARIES.items() if canary.lower() in text]
    assert leaked == [], f"{where} carries the {leaked} canaries"


def test_no_canary_in_the_payload_or_the_state(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    indexed = index_checkout(repo, state)
    payload = build_payload(indexed.structure)
    assert_no_canary(payload.body, "the upload body")
    for file in state.rglob("*"):
        if file.is_file():
            assert_no_canary(file.read_bytes(), str(file))
    # What is there is what the index is for: the metadata.
    body = payload.body.decode()
    for expected in ("src/pkg/core.py", "python:requests", "python:rich", "npm:left-pad",
                     "npm test", "make test", "pytest"):  # fmt: skip
        assert expected in body


def test_no_canary_in_what_locus_graph_show_prints(repo: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUS")}
    env |= {"XDG_STATE_HOME": str(tmp_path / "xdg-state"), "XDG_CONFIG_HOME": str(tmp_path)}
    for flags in (["--json"], []):
        done = subprocess.run(
            [LOCUS, "graph", "show", str(repo), *flags],
            env=env, capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        assert_no_canary(done.stdout + done.stderr, f"locus graph show {flags}")
