"""Limits that end a run: turns, tokens, cost, wall time; and the stuck detector. Pure logic:
the loop feeds in what happened and asks whether to stop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from locusd.agent.messages import Usage


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(50, gt=0, description="model calls per run")
    max_tokens: int = Field(2_000_000, gt=0, description="input + output tokens per run")
    max_cost_usd: float = Field(5.0, gt=0, description="USD per run (unknown prices count 0)")
    max_wall_seconds: float = Field(1800, gt=0, description="wall-clock seconds per run")


def exhausted(budget: Budget, *, turns: int, usage: Usage, cost: float) -> str | None:
    """Why the run may not start another turn, or None. (Wall time is enforced by a timer,
    so it also interrupts a turn or command in progress.)"""
    if turns >= budget.max_turns:
        return f"max turns reached ({turns} of {budget.max_turns})"
    if usage.total_tokens >= budget.max_tokens:
        return f"max tokens reached ({usage.total_tokens} of {budget.max_tokens})"
    if cost >= budget.max_cost_usd:
        return f"max cost reached (${cost:.4f} of ${budget.max_cost_usd:.2f})"
    return None


@dataclass
class StuckDetector:
    """The same tool call (name and input) made ``threshold`` times in a row means the model
    is going round in circles; the run stops instead of burning the budget."""

    threshold: int = 3
    _last: str | None = None
    _count: int = 0

    def observe(self, name: str, arguments: dict[str, Any]) -> bool:
        key = name + json.dumps(arguments, sort_keys=True)
        self._count = self._count + 1 if key == self._last else 1
        self._last = key
        return self._count >= self.threshold
