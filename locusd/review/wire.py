"""Decisions between the model and the protocol: the daemon stores and sends
:class:`~locusd.protocol.messages.DecisionIn`, the model decides with its own types."""

from __future__ import annotations

from locusd.protocol.messages import DecisionIn
from locusd.review.model import Accept, Decision, Edit, Reject


def to_decision(given: DecisionIn) -> Decision:
    if given.action == "accept":
        return Accept()
    if given.action == "reject":
        return Reject(comment=given.comment)
    return Edit(given.lines or [], given.comment)


def from_decision(decision: Decision) -> DecisionIn:
    if isinstance(decision, Accept):
        return DecisionIn(action="accept")
    if isinstance(decision, Reject):
        return DecisionIn(action="reject", comment=decision.comment)
    return DecisionIn(action="edit", lines=list(decision.new_text_lines), comment=decision.comment)
