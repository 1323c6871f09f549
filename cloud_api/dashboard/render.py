"""Templates: one Jinja2 environment with autoescaping on, and the filters pages use.

All user text reaches the page through autoescaping; the two places that produce HTML
themselves — Markdown and syntax colouring — escape their input first (markdown-it with raw
HTML off and its link validation; Pygments' formatter) and are marked safe only then.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from cloud_api.dashboard.groups import COLUMNS, NEEDS_YOU
from cloud_api.domain.priorities import LEVELS, level_of

HERE = Path(__file__).parent
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str | None) -> Markup:
    """Markdown to HTML with raw HTML shown as text and only safe link schemes kept."""
    return Markup(_markdown.render(text or ""))  # noqa: S704 (raw HTML is off: output is safe)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """'5 s ago', '3 min ago', … — the full timestamp goes in the title attribute."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(timespec="seconds")


def status_label(status: str) -> str:
    return status.replace("_", " ")


def priority_name(priority: int) -> str:
    """'P1 High': the level's P-label (P0 the most urgent) and name."""
    level = level_of(priority)
    return f"{level.p} {level.name}"


def priority_key(priority: int) -> str:
    return level_of(priority).key


def priority_options(current: int | None = None) -> list[tuple[int, str, bool]]:
    """A priority select's options (value, label, selected). The current level's option keeps
    the task's exact value, so saving a form that did not touch it changes nothing."""
    chosen = level_of(current if current is not None else 0)
    return [
        (
            current if level is chosen and current is not None else level.value,
            f"{level.p} {level.name}",
            level is chosen,
        )
        for level in LEVELS
    ]


#: Statuses that share a column with others: their cards carry a status badge.
SHARED_STATUSES = frozenset(s.value for c in COLUMNS if len(c.statuses) > 1 for s in c.statuses)


@lru_cache(maxsize=16)
def static(name: str) -> str:
    """The URL of a static file, versioned by its content so browsers never run stale code."""
    digest = hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        markdown=markdown,
        ago=ago,
        iso=iso,
        status_label=status_label,
        priority_name=priority_name,
        priority_key=priority_key,
    )
    env.globals.update(
        static=static,
        priority_options=priority_options,
        shared_statuses=SHARED_STATUSES,
        needs_you_statuses=" ".join(s.value for s in NEEDS_YOU),
    )
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
