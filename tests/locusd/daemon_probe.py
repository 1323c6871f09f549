"""A daemon core in a fresh process (``python -m tests.locusd.daemon_probe DIR REPO BASE_URL``):
one run against the Anthropic API at BASE_URL, then a JSON line saying how it ended, which
model SDKs the daemon's process imported, and its memory. The test process cannot say what the
daemon imports: the tests import the SDKs themselves. (It imports no test helper that does.)"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from locusd.config import AgentConfig, Config
from locusd.daemon import Daemon
from locusd.protocol.messages import RunStartParams
from tests.locusd.peers import Client

SDKS = ("anthropic", "openai")


def memory() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in kB."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


async def probe(where: Path, repo: Path, base_url: str) -> dict[str, object]:
    config = Config(
        agent=AgentConfig(provider="anthropic", base_url=base_url),
        worktree_dir=where / "worktrees",
        state_dir=where / "state",
        credentials_dir=where / "config",
        cache_dir=where / "cache",
    )
    daemon = Daemon(config)
    try:
        run = await daemon.runs_start(RunStartParams(repo=str(repo), task="check"), Client())
        done = await daemon.runs.wait(run.run_id)
    finally:
        await daemon.close()
    imported = sorted({name.split(".")[0] for name in sys.modules} & set(SDKS))
    return {"state": done.state, "reason": done.reason, "sdks": imported, **memory()}


if __name__ == "__main__":
    where, repo, base_url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(probe(where, repo, base_url))))
