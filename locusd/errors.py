"""Turning validation errors into one line that names each field and what is wrong with it."""

from __future__ import annotations

from pydantic import ValidationError


def describe(exc: ValidationError) -> str:
    """``agent.budget.max_turns: Input should be greater than 0; …``"""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )
