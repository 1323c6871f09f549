"""An agent run's commands really run inside the sandbox: through the real runner (run_task,
the real anthropic SDK against the loopback server), a command reports from inside what it
sees of its namespaces and whether it can reach the model server. test_sandbox.py checks the
sandbox on its own; this checks that a run uses it (tests/locusd/cli/test_cli_sandbox.py:
the same through the daemon and the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.locusd.agentkit import anthropic, make_config, make_sample_repo, run
from tests.locusd.sandboxproof import assert_sandboxed, probed, probing_model

pytestmark = pytest.mark.timeout(120)


async def test_a_runs_commands_run_in_namespaces_of_their_own(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    async with probing_model() as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "needs_input", report.reason
    assert report.warnings == [], report.warnings  # no "commands are not sandboxed"
    assert_sandboxed(probed(server))
