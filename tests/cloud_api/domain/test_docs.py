"""docs/state-machine.md shows the transition table the code enforces, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from cloud_api.domain.states import TRANSITIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "state-machine.md"


def test_documented_transitions_are_the_enforced_ones() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| ([a-z, ]+) \|$", DOC.read_text(), re.M)
    documented = {(f, t): frozenset(who.split(", ")) for f, t, who in rows}
    enforced = {
        (f.value, t.value): frozenset(a.value for a in who) for (f, t), who in TRANSITIONS.items()
    }
    assert documented == enforced
