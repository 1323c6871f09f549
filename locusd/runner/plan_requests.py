"""Planning requests from the cloud (``locus plan`` asked on the dashboard): a worker that
claims one runs the same planning run as ``locus plan`` (the built-in loop, read-only tools;
the goal is the person's text, data to the model as any task's), and reports back only the
proposals' titles, descriptions and likely file paths — never a line of the code, the
transcript or a local error (a run without proposals is reported in Locus's own words).

The claim is recorded with the run in one transaction, and the report is enqueued in the
outbox in the transaction that records the run's end (:attr:`Runs.on_ended`), scrubbed like
every upload: a kill -9 after the run loses nothing, and the outbox sends it when it can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloud_api.schemas.plans import PlanClaimOut, ProposalIn
from cloud_api.schemas.workers import Fence
from locusd.agent.external.presets import BUILTIN
from locusd.cloud.uploads import Uploads
from locusd.cloud.writes import plan_report_body
from locusd.modelenv import ModelEnv
from locusd.protocol.messages import Run
from locusd.runner.runs import Runs


def report_of(run: Run, fence: Fence) -> dict[str, Any]:
    """The report of an ended planning run: its proposals' text only, or why it has none."""
    proposals = [
        ProposalIn.model_construct(
            title=p.title, description=p.description, likely_files=list(p.likely_files)
        )
        for p in run.proposals
    ]
    reason = None
    if not proposals:
        reason = f"the planning run ended {run.state} without proposals (locus runs on the worker)"
    return plan_report_body(fence, proposals, reason)


class PlanRequests:
    """The daemon's side of planning requests: start a claimed one's run, report its end."""

    def __init__(self, runs: Runs, uploads: Uploads) -> None:
        self.runs = runs
        self.uploads = uploads
        runs.on_ended = self.ended

    def start(
        self, claim: PlanClaimOut, checkout: Path, project_id: int, model_env: ModelEnv
    ) -> Run:
        """The planning run of a claimed request, recorded with its claim."""
        fence = Fence(attempt=claim.attempt, claim_token=claim.claim_token)
        with self.runs.store.db.transaction():
            run = self.runs.start(
                repo=checkout,
                task=claim.plan.goal,
                title=f"plan request {claim.plan.id}",
                model_env=model_env,
                agent=BUILTIN,  # only the built-in loop's tool set can be held read-only
                planning=True,
            )
            self.runs.store.add_plan_claim(
                run.run_id, claim.plan.id, project_id, fence.model_dump_json()
            )
        return run

    def ended(self, run: Run) -> None:
        """In the transaction recording ``run``'s end: its report, if it was for a request."""
        held = self.runs.store.plan_claim(run.run_id)
        if held is None:
            return
        plan_id, fence = held
        body = report_of(run, Fence.model_validate(json.loads(fence)))
        self.uploads.enqueue(
            "plan_report", plan_id, body, checkout=Path(run.repo), run_id=run.run_id
        )
