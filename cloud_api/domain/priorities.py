"""Priority names as teams use them. The task's ``priority`` stays an integer (higher is
claimed first, ``ORDER BY priority DESC`` in dispatch/claims.py) so that the backlog can
order tasks finely; people see four named levels, P0 the most urgent, as in Linear or Jira.

A level covers a band of integers: the level's own value and everything up to the next one,
so a task nudged up or down within its band (the backlog's ▲/▼) keeps its name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    key: str
    name: str
    p: str
    #: The value a form sets for this level, and the lowest value the level covers (the
    #: last level also covers everything below it).
    value: int


#: Most urgent first. Low covers everything below Medium, so the default 0 is Low.
LEVELS: tuple[Level, ...] = (
    Level("urgent", "Urgent", "P0", 300),
    Level("high", "High", "P1", 200),
    Level("medium", "Medium", "P2", 100),
    Level("low", "Low", "P3", 0),
)


def level_of(priority: int) -> Level:
    """The named level an integer priority falls in."""
    return next((level for level in LEVELS if priority >= level.value), LEVELS[-1])
