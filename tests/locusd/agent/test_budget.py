"""Run limits (turns, tokens, cost) and the stuck detector."""

from __future__ import annotations

from typing import Any

import pytest

from locusd.agent.budget import Budget, StuckDetector, exhausted
from locusd.agent.messages import Usage

BUDGET = Budget(max_turns=10, max_tokens=1000, max_cost_usd=2.0)


def tokens(total: int) -> Usage:
    """``total`` tokens spread over every kind, so each one has to count."""
    return Usage(input_tokens=total - 3, output_tokens=1, cache_read_tokens=1, cache_write_tokens=1)


def test_nothing_is_exhausted_below_every_limit() -> None:
    assert exhausted(BUDGET, turns=9, usage=tokens(999), cost=1.99) is None
    assert exhausted(BUDGET, turns=0, usage=Usage(), cost=0.0) is None


def test_turns_run_out_at_the_limit() -> None:
    assert exhausted(BUDGET, turns=9, usage=Usage(), cost=0.0) is None
    reason = exhausted(BUDGET, turns=10, usage=Usage(), cost=0.0)
    assert reason is not None and "turns" in reason and "10 of 10" in reason
    assert exhausted(BUDGET, turns=11, usage=Usage(), cost=0.0) is not None


def test_tokens_run_out_at_the_limit_counting_cached_and_output_tokens() -> None:
    assert exhausted(BUDGET, turns=0, usage=tokens(999), cost=0.0) is None
    reason = exhausted(BUDGET, turns=0, usage=tokens(1000), cost=0.0)
    assert reason is not None and "tokens" in reason and "1000 of 1000" in reason
    # only cache reads, no fresh input: still tokens
    cached = Usage(cache_read_tokens=1000)
    assert exhausted(BUDGET, turns=0, usage=cached, cost=0.0) is not None


def test_cost_runs_out_at_the_limit() -> None:
    assert exhausted(BUDGET, turns=0, usage=Usage(), cost=1.9999) is None
    reason = exhausted(BUDGET, turns=0, usage=Usage(), cost=2.0)
    assert reason is not None and "cost" in reason and "$2.00" in reason
    assert exhausted(BUDGET, turns=0, usage=Usage(), cost=3.5) is not None


def test_budget_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_turns"):
        Budget(max_turns=0)
    with pytest.raises(ValueError, match="max_cost_usd"):
        Budget(max_cost_usd=-1)


def observe_all(detector: StuckDetector, calls: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    return [detector.observe(name, args) for name, args in calls]


def test_stuck_fires_at_the_threshold_of_identical_consecutive_calls() -> None:
    call = ("read_file", {"path": "a.py", "start_line": 1})
    assert observe_all(StuckDetector(threshold=3), [call] * 4) == [False, False, True, True]
    assert observe_all(StuckDetector(threshold=1), [call]) == [True]


def test_argument_order_does_not_matter() -> None:
    detector = StuckDetector(threshold=3)
    fired = observe_all(
        detector,
        [
            ("edit_file", {"path": "a.py", "old_string": "x", "new_string": "y"}),
            ("edit_file", {"new_string": "y", "path": "a.py", "old_string": "x"}),
            ("edit_file", {"old_string": "x", "new_string": "y", "path": "a.py"}),
        ],
    )
    assert fired == [False, False, True]


def test_a_different_call_resets_the_count() -> None:
    a = ("read_file", {"path": "a.py"})
    b_args = ("read_file", {"path": "b.py"})
    b_name = ("search", {"path": "a.py"})
    assert observe_all(StuckDetector(threshold=3), [a, a, b_args, a, a]) == [False] * 5
    assert observe_all(StuckDetector(threshold=3), [a, a, b_name, a, a, a]) == [
        *[False] * 5,
        True,
    ]


def test_alternating_calls_never_fire() -> None:
    a = ("run_command", {"command": "pytest"})
    b = ("run_command", {"command": "pytest -x"})
    assert not any(observe_all(StuckDetector(threshold=2), [a, b] * 5))
