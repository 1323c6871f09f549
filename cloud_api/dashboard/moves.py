"""The moves a person makes from the board without words (a card's buttons, drag and drop,
bulk moves, the ``m`` shortcut), and which of them asks first. Pure data over the state
table (``cloud_api.domain.states.USER_ACTIONS``), shared by the board and the bulk view."""

from __future__ import annotations

from cloud_api.domain.states import USER_ACTIONS, TaskStatus, UserAction

S = TaskStatus

#: The buttons a card offers: moves that need no text. Request changes and answer need the
#: reviewer's words, so they live on the task page.
CARD_ACTIONS = (UserAction.QUEUE, UserAction.APPROVE, UserAction.RETRY, UserAction.CANCEL)

#: Where selected cards can go at once, with their names (the shortcut keys are 1, 2, 3).
TARGETS: dict[TaskStatus, str] = {S.QUEUED: "Queued", S.DONE: "Done", S.CANCELLED: "Cancelled"}
#: Targets that stop work and lose it: confirmed on a page first.
CONFIRM = frozenset({S.CANCELLED})


def move_for(status: TaskStatus, target: TaskStatus) -> UserAction | None:
    """The card action that takes a task from ``status`` to ``target`` (queued is reached by
    'queue' from the backlog and by 'retry' from failed or cancelled), or None."""
    for act in CARD_ACTIONS:
        sources, to = USER_ACTIONS[act]
        if to is target and status in sources:
            return act
    return None
