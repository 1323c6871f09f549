"""Which moves of a run need a person (locusd/runner/attention.py), over every move the
lifecycle table allows: only entering ``needs_input`` or ``awaiting_review`` from the agent's
hands — never a commit undone by recovery, which leaves the run waiting as it already was."""

from __future__ import annotations

from locusd.protocol.messages import Run, RunState
from locusd.runner import attention
from locusd.runner.lifecycle import LIVE, TABLE

QUESTION = "Which rounding?\n" + "x" * 1000


def run_in(state: RunState) -> Run:
    return Run(
        run_id="3-local-1",
        task_id=3,
        title="Rounding",
        repo="/src/app",
        state=state,
        question=QUESTION,
        summary="Rounds half to even.",
        started_at="2026-12-05T10:00:00",
    )


def test_only_the_agent_stopping_for_a_person_is_news() -> None:
    told = {
        (source, target): note.kind
        for source, row in TABLE.items()
        for target in row.to
        if (note := attention.on_move(run_in(target), source)) is not None
    }
    assert told == {
        (source, target): attention.WAITING[target]
        for source in LIVE
        for target in ("needs_input", "awaiting_review")
    }
    assert ("committing", "awaiting_review") in {
        (s, t) for s, row in TABLE.items() for t in row.to
    }, "the move the LIVE rule is for still exists"


def test_the_note_carries_the_question_or_summary_cut_short() -> None:
    asked = attention.on_move(run_in("needs_input"), "running")
    assert asked is not None and asked.task_id == 3 and asked.repo == "/src/app"
    assert asked.text == QUESTION[: attention.TEXT_LIMIT - 1] + "…"
    review = attention.waiting(run_in("awaiting_review"))
    assert review is not None and review.text == "Rounds half to even."
    approval = attention.approval(run_in("running"), "3-local-1/2", "make deploy")
    assert (approval.kind, approval.approval_id, approval.text) == (
        "approval", "3-local-1/2", "make deploy",
    )  # fmt: skip
