"""Secrets out of anything uploaded (log chunks, summaries, diffs). Pure logic.

Two nets: the values of this process's secret-named environment variables (whatever their
shape), and well-known token shapes (Anthropic, OpenAI, GitHub, GitLab, AWS, Slack, private keys,
Locus's own tokens, Stripe-style keys), which catch a secret the agent read from a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from locusd.agent.commands import is_secret_name

MASK = "[REDACTED]"
_SHAPES = re.compile(
    "|".join(
        (
            r"sk-ant-[A-Za-z0-9_\-]{8,}",
            r"sk-(?:proj-)?[A-Za-z0-9_\-]{20,}",
            r"gh[pousr]_[A-Za-z0-9]{20,}",
            r"github_pat_[A-Za-z0-9_]{20,}",
            r"(?:gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-|GR1348941)[A-Za-z0-9_\-]{20,}",
            r"(?:AKIA|ASIA)[A-Z0-9]{16}",
            r"xox[abprs]-[A-Za-z0-9\-]{10,}",
            r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe-style keys
            r"lc[uw]_[A-Za-z0-9_\-]{20,}",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        )
    )
)
#: Shorter values would mask ordinary words ("true", "1234").
MIN_SECRET_LENGTH = 8


class Redactor:
    def __init__(self, environ: Mapping[str, str]) -> None:
        values = {
            value
            for name, value in environ.items()
            if is_secret_name(name) and len(value) >= MIN_SECRET_LENGTH
        }
        # Longest first, so a secret that contains another is masked whole.
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return _SHAPES.sub(MASK, text)
