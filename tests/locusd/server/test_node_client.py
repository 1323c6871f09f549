"""vscode-jsonrpc (the VS Code extension's transport) against the real socket, unchanged:
initialize, methods, an error, a notification, a daemon → client request, shutdown + exit.
Fails, saying why, where node/npm are missing (scripts/test.sh installs them) or npm cannot
fetch the package."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.errors import Code
from tests.locusd.server.support import TIMEOUT, running_server
from tests.support.programs import required

pytestmark = pytest.mark.timeout(120)
HERE = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    required("node", "nodejs")
    npm = required("npm", "npm")
    prefix = tmp_path_factory.mktemp("node")
    for name in ("package.json", "client.js"):
        shutil.copy(HERE / name, prefix / name)
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=prefix,
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        pytest.fail(
            f"npm install vscode-jsonrpc failed (offline? a registry it cannot reach?): {exc}\n"
            + stderr.decode(errors="replace"),
            pytrace=False,
        )
    yield prefix / "client.js"


async def test_vscode_jsonrpc_client(node_client: Path) -> None:
    async with running_server() as (_server, core, path):
        process = await asyncio.create_subprocess_exec(
            "node",
            str(node_client),
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0, err.decode()
        seen = json.loads(out)
        assert seen["experimental"]["locus"]["protocolVersion"] == PROTOCOL_VERSION
        assert seen["clients"] == 1
        assert seen["error"]["code"] == Code.RUN_NOT_FOUND
        assert seen["error"]["data"] == {"kind": "run_not_found", "retryable": False}
        assert seen["title"] == "démo ✓ — non-ASCII on purpose"
        assert seen["event"]["text"] == "héllo ✓"
        assert seen["outcome"] == "reject"
        await asyncio.wait_for(core.disconnected_event.wait(), TIMEOUT)
        assert [peer.client.name for peer in core.gone if peer.client] == ["vscode-jsonrpc"]
