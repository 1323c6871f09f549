"""What a planning request's report holds: the proposals' text only; a run without proposals
is reported in Locus's words, never its local reason (a path, an error of this machine)."""

from __future__ import annotations

from cloud_api.schemas.plans import PlanReport
from cloud_api.schemas.workers import Fence
from locusd.protocol.messages import PlanProposal, Run
from locusd.runner.plan_requests import report_of

FENCE = Fence(attempt=2, claim_token="tok")


def run(**fields: object) -> Run:
    base = {"run_id": "r1", "title": "plan", "repo": "/home/ada/secret-repo", "started_at": "x"}
    return Run.model_validate({**base, "kind": "plan", **fields})


def test_a_report_holds_the_proposals_text_and_the_fence() -> None:
    proposal = PlanProposal(number=1, title="T", description="D", likely_files=["a.py"])
    body = report_of(run(state="completed", proposals=[proposal]), FENCE)
    assert body == {
        "attempt": 2,
        "claim_token": "tok",
        "proposals": [{"title": "T", "description": "D", "likely_files": ["a.py"]}],
    }
    PlanReport.model_validate(body)  # what the cloud accepts


def test_a_run_without_proposals_says_so_without_its_local_reason() -> None:
    local = "/home/ada/secret-repo: ANTHROPIC_API_KEY missing"
    body = report_of(run(state="failed", reason=local), FENCE)
    assert body["proposals"] == [] and "failed" in body["reason"]
    assert "/home/ada" not in str(body) and "ANTHROPIC" not in str(body)
