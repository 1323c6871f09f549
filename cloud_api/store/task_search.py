"""Text search over a project's tasks: what a person typed is data, never a pattern.

``Column.icontains(..., autoescape=True)`` escapes ``%``, ``_`` and the escape character itself
before building the LIKE, so "100%" finds the text "100%" and "a_b" does not match "axb". A
number ("12" or "#12") also finds the task with that number."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, or_

from cloud_api.store.tables import tasks

_NUMBER = re.compile(r"#?(\d{1,18})")


def matching(text: str) -> ColumnElement[bool]:
    """Tasks whose title or description contains ``text`` (case-insensitive), or whose number
    it is."""
    clauses = [
        tasks.c.title.icontains(text, autoescape=True),
        tasks.c.description.icontains(text, autoescape=True),
    ]
    if number := _NUMBER.fullmatch(text):
        clauses.append(tasks.c.id == int(number.group(1)))
    return or_(*clauses)
