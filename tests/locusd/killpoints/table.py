"""The outcomes the kill-point tests record, one line per case, for the printed table."""

from __future__ import annotations

OUTCOMES: list[tuple[str, str]] = []
