"""The cost budget of a run with the REAL Claude Code adapter. Two counts, the larger wins:
its ``usage_update`` carries the cost (USD) it reckons, once per prompt — when its turn ends;
the run's model gateway prices each model call as it passes (the model's price, or the
user's). A spent ``max_cost_usd`` ends the run ``budget_exhausted``, before the runner's
verification sends the agent another turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.agent.transcript import AcpRecord, ModelCallRecord, read
from tests.locusd.acp import test_acp_south
from tests.locusd.acp.test_acp_south import claude_run, fix_median

model_env = test_acp_south.model_env


@pytest.mark.usefixtures("model_env")
async def test_a_spent_cost_budget_ends_a_claude_run_when_its_turn_ends(tmp_path: Path) -> None:
    """Priced at 0 by the user, the metered calls cost nothing: the agent's own report, which
    is more, is what spends the budget — at the end of its turn."""
    free = {"price_input_per_mtok": 0.0, "price_output_per_mtok": 0.0}
    report, _ = await claude_run(tmp_path, fix_median(), budget={"max_cost_usd": 1e-9}, **free)
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


@pytest.mark.usefixtures("model_env")
async def test_the_metered_cost_ends_a_claude_run_at_the_call_that_spends_it(
    tmp_path: Path,
) -> None:
    """The model's own price (the model the server answered with), applied to the usage the
    server sent: the first call spends the budget, so no further call reaches the server."""
    script = fix_median()
    report, _ = await claude_run(tmp_path, script, budget={"max_cost_usd": 1e-9})
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max cost" in report.reason
    (served,) = [r for r in read(Path(report.transcript)) if isinstance(r, ModelCallRecord)
                 and r.refused is None]  # fmt: skip
    assert served.cost_usd is not None and served.cost_usd > 0
    assert len(script.bodies) == 1 and report.cost_usd >= served.cost_usd
    assert report.diff == ""  # its first step was a Read: nothing edited
