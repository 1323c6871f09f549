"""How the board groups the ten task statuses into the six columns a team acts on, and which
statuses wait for a person ("needs you"). Pure data, so the board, the live card refresh,
the needs-you page and the tests read one table."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_api.domain.states import TaskStatus

S = TaskStatus


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    statuses: tuple[TaskStatus, ...]
    #: A column that must not be missed when it has cards (it is coloured and counted loudly).
    alert: bool = False

    @property
    def status_list(self) -> str:
        """The statuses as a space-separated attribute value (``[data-statuses~=…]``)."""
        return " ".join(s.value for s in self.statuses)


#: Everything waiting for a person: a question to answer, a change to review (on the
#: developer's machine, ``awaiting_review``) or to approve (``verification``).
NEEDS_YOU: tuple[TaskStatus, ...] = (S.NEEDS_INPUT, S.AWAITING_REVIEW, S.VERIFICATION)

COLUMNS: tuple[Column, ...] = (
    Column("backlog", "Backlog", (S.BACKLOG,)),
    Column("queued", "Queued", (S.QUEUED,)),
    Column("in_progress", "In progress", (S.CLAIMED, S.RUNNING)),
    Column("needs_you", "Needs you", NEEDS_YOU, alert=True),
    Column("done", "Done", (S.DONE,)),
    Column("failed", "Failed / cancelled", (S.FAILED, S.CANCELLED), alert=True),
)

#: status -> its column's key.
COLUMN_OF: dict[str, str] = {s.value: c.key for c in COLUMNS for s in c.statuses}

#: What a needs-you task asks of a person, for the needs-you page and notifications.
ASKS: dict[str, str] = {
    S.NEEDS_INPUT.value: "question",
    S.AWAITING_REVIEW.value: "review on the developer's machine",
    S.VERIFICATION.value: "approve or request changes",
}
