"""Binaries and big files in the VS Code extension, against the REAL daemon: a local run whose
scripted model writes a binary file and a file of more lines than the extension reviews hunk by
hunk. Both show as plain diffs with one Accept / Reject for the whole file (the binary's bytes
never shown as text); deciding them by path through the daemon commits the accepted file only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.editors.vscodebuild import LOCUSD, Built, node_tests
from tests.locusd.agentkit import call
from tests.locusd.cli.test_review_keys import PROPOSED
from tests.support.anthropic_server import AnthropicServer

pytestmark = pytest.mark.timeout(600)

BIG = "".join(f"row {i},{i * i}\n" for i in range(6000))  # more than PLAIN_DIFF_LINES
BINARY = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01"


def test_a_binary_and_a_big_file_are_decided_whole(
    built: Built, machine: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, repo = machine
    script = [
        call("write_file", path="data.csv", content=BIG),
        call("write_file", path="logo.bin", content=BINARY),
        call("write_file", path="stats.py", content=PROPOSED),  # so that the tests pass
        call("finish", summary="Added the data and a logo."),
    ]
    out = tmp_path / "out.json"
    with AnthropicServer(script).in_thread() as model:
        config = Path(env["XDG_CONFIG_HOME"]) / "locus" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n')
        node_env = {**env, "LOCUSD": LOCUSD, "LOCUS_REPO": str(repo), "LOCUS_OUT": str(out)}
        passed, failed, output = node_tests(
            built.where, [str(built.where / "dist-test" / "wholeFiles.e2e.js")], node_env
        )
    assert failed == 0 and passed == 1, output
    seen = json.loads(out.read_text())
    assert seen["decisions"] == {
        "data.csv": {"action": "accept"},
        "logo.bin": {"action": "reject", "comment": "no binaries in this repository"},
        "stats.py": None,  # decided hunk by hunk
    }
    assert seen["undecided"] == 0
    show = ["git", "-C", str(repo), "show"]
    names = subprocess.run([*show, "--name-only", "--format=", seen["commit"]], capture_output=True)
    assert names.stdout.decode().split() == ["data.csv"]
    committed = subprocess.run([*show, f"{seen['commit']}:data.csv"], capture_output=True)
    assert committed.stdout.decode() == BIG
