"""The cost budget of a run with the REAL Claude Code adapter: its ``usage_update`` carries
the cost (USD), once per prompt — when its turn ends. A spent ``max_cost_usd`` ends the run
``budget_exhausted`` there, before the runner's verification sends the agent another turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.agent.transcript import AcpRecord, read
from tests.locusd.acp import test_acp_south
from tests.locusd.acp.test_acp_south import claude_run, fix_median

model_env = test_acp_south.model_env


@pytest.mark.usefixtures("model_env")
async def test_a_spent_cost_budget_ends_a_claude_run_when_its_turn_ends(tmp_path: Path) -> None:
    report, _ = await claude_run(tmp_path, fix_median(), budget={"max_cost_usd": 1e-9})
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max cost" in report.reason
    assert report.verification is None  # no verify round: the budget ended the run first
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    costs = [
        r.message["params"]["update"]["cost"]
        for r in records
        if r.message.get("method") == "session/update"
        and r.message["params"]["update"].get("sessionUpdate") == "usage_update"
    ]
    assert len(costs) == 1 and costs[0]["currency"] == "USD" and costs[0]["amount"] > 0, costs
    prompts = [r for r in records if r.message.get("method") == "session/prompt"]
    assert len(prompts) == 1  # the agent got no second turn
