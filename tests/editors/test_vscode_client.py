"""The VS Code extension: built and packaged as a .vsix from the committed lockfile, its UI glue
tested under Node with a small ``vscode`` API mock, and its protocol client (src/client.ts)
driven against the REAL daemon (``locusd --stdio`` starts it) with a local run whose scripted
model asks for an approval and then proposes changes: handshake, a protocol mismatch, the
approval answered by one client while another's prompt closes, tree data, review content
byte-identical to git's, a stale decision refused and re-fetched, send back and the next
round, a commit; the extension activated on the API mock; a reconnect after the daemon stops.

The agent names a file like HTML and markdown and a command link: the trees keep it as text."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.editors.vscodebuild import LOCUSD, ROOT, Built, node_tests
from tests.locusd.agentkit import call
from tests.locusd.cli.test_review_keys import BASE, PROPOSED
from tests.locusd.cliuser import LOCUS
from tests.support.anthropic_server import AnthropicServer, Reply

pytestmark = pytest.mark.timeout(600)

ASKED = "echo approved > approved.txt"
HOSTILE = "<img src=x onerror=alert(1)> [run](command:workbench.action.quit) $(zap).md"


def test_the_vsix_holds_the_bundled_extension_and_its_readme(built: Built) -> None:
    assert built.vsix.is_file()
    names = set(zipfile.ZipFile(built.vsix).namelist())
    assert {"extension/package.json", "extension/dist/extension.js", "extension/readme.md"} <= {
        n.lower() if n.lower().endswith("readme.md") else n for n in names
    }, names
    assert not any("/node_modules/" in n or n.endswith(".ts") for n in names), names
    manifest = json.loads(zipfile.ZipFile(built.vsix).read("extension/package.json"))
    settings = manifest["contributes"]["configuration"]["properties"]
    assert {"locus.daemonPath", "locus.socket"} <= set(settings)


#: Node modules the bundle may load: the daemon is reached over a Unix socket (net) or a child
#: process (locusd --stdio); nothing else. An HTTP client here would be a download or telemetry.
ALLOWED_MODULES = {"vscode", "net", "node:net", "node:child_process", "node:fs", "fs", "os"}
ALLOWED_MODULES |= {"path", "node:path", "util", "crypto"}


def test_the_bundle_has_no_way_to_the_network_but_the_daemon(built: Built) -> None:
    """No telemetry, nothing downloaded at run time: checked on what ships (the bundle with
    vscode-jsonrpc inlined), not on our sources only."""
    bundle = (built.where / "dist" / "extension.js").read_text()
    loaded = set(re.findall(r"""require\(["']([^"']+)["']\)""", bundle))
    assert loaded and loaded <= ALLOWED_MODULES, loaded - ALLOWED_MODULES
    assert not re.search(r"https?://", bundle)
    assert not re.search(
        r"(?<![\w$.])fetch\(|XMLHttpRequest|WebSocket|navigator\.sendBeacon", bundle
    )


def test_ui_glue_with_a_vscode_mock(built: Built) -> None:
    files = sorted(str(p) for p in (built.where / "dist-test").glob("*.test.js"))
    assert files
    passed, failed, output = node_tests(built.where, files, dict(os.environ))
    assert failed == 0 and passed > 0, output


def test_the_wire_types_follow_the_schema_and_the_build_fails_when_they_drift(
    built: Built, tmp_path: Path
) -> None:
    """The types are generated from docs/protocol.schema.json at build time; a field the client
    uses that the daemon's schema no longer has fails the type check, naming it."""
    schema = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    review = schema["$defs"]["ReviewView"]
    del review["properties"]["revision"]
    review["required"].remove("revision")
    drifted = tmp_path / "schema.json"
    drifted.write_text(json.dumps(schema))
    where = tmp_path / "vscode"
    shutil.copytree(
        built.where, where, symlinks=True, ignore=shutil.ignore_patterns("dist", "dist-test")
    )
    env = {**os.environ, "LOCUS_PROTOCOL_SCHEMA": str(drifted)}
    subprocess.run(["node", "scripts/gen-types.mjs"], cwd=where, env=env, check=True)
    done = subprocess.run(
        ["node", "node_modules/typescript/bin/tsc", "--noEmit", "-p", "."],
        cwd=where,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "Property 'revision' does not exist on type 'ReviewView'" in done.stdout, done.stdout


def gated_script(gate: Path) -> Any:
    """The model waits until the Node client watches the run (it writes ``gate``), so the
    approval request cannot go out before anyone listens."""
    turns = [
        call("run_command", command=ASKED),
        call("write_file", path="stats.py", content=PROPOSED),
        call("write_file", path=HOSTILE, content="<b>not bold</b>\n"),
        call("finish", summary="Fixed median; wrote a file with an odd name."),
        call("finish", summary="Kept the rest as it was."),  # the round after send back
    ]

    def script(_request: Any) -> Reply:
        if turns and turns[0].content[0]["input"] == {"command": ASKED}:
            for _ in range(1200):
                if gate.exists():
                    break
                time.sleep(0.05)
        return turns.pop(0)

    return script


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def test_the_client_module_against_the_real_daemon(
    built: Built, machine: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, repo = machine
    gate, out = tmp_path / "gate", tmp_path / "out.json"
    with AnthropicServer(gated_script(gate)).in_thread() as model:
        config = Path(env["XDG_CONFIG_HOME"]) / "locus" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(
            f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n\n'
            '[agent.policy]\nask = ["echo *"]\n'
        )
        node_env = {
            **env,
            "LOCUSD": LOCUSD,
            "LOCUS_REPO": str(repo),
            "LOCUS_GATE": str(gate),
            "LOCUS_OUT": str(out),
        }
        passed, failed, output = node_tests(
            built.where, [str(built.where / "dist-test" / "daemon.e2e.js")], node_env
        )
    assert failed == 0 and passed == 11, output
    seen = json.loads(out.read_text())

    assert seen["approval"]["command"] == ASKED
    assert f"allow once: {ASKED}" in seen["notes"]  # answered once, by one client

    # The tree keeps the agent's file name as text, in order, with one node per hunk.
    (stats,) = [f for f in seen["tree"]["children"] if f["path"] == "stats.py"]
    assert len(stats["children"]) == 2
    assert HOSTILE in [f["label"] for f in seen["tree"]["children"]]

    # Content byte-identical to git's base and to the worktree's proposed file.
    worktree = Path(
        json.loads(
            subprocess.run(
                [LOCUS, "runs", "--json"], env=env, capture_output=True, check=True
            ).stdout
        )["runs"][0]["worktree"]
    )
    for path, content in seen["contents"].items():
        base = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True)
        expected_base = base.stdout.decode() if base.returncode == 0 else None
        assert content.get("base") == expected_base, path
        assert content.get("proposed") == (worktree / path).read_bytes().decode(), path
    assert seen["contents"]["stats.py"]["base"] == BASE

    # The commit holds the accepted hunk only, with the message given.
    commit = seen["commit"]
    message = git(repo, "log", "-1", "--format=%B", commit).decode()
    assert message.startswith("Accept one hunk from the editor")
    assert git(repo, "show", "--format=%an", "-s", commit).decode().strip() == "Ada Lovelace"
    files = (
        git(repo, "show", "--name-only", "-z", "--format=", commit)
        .decode()
        .strip("\n\0")
        .split("\0")
    )
    assert sorted(files) == sorted([HOSTILE, "stats.py"]), files  # not late.txt (rejected)
    assert git(repo, "show", f"{commit}:stats.py").decode() != PROPOSED  # one hunk of two
