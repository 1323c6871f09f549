"""The environment variables that choose and reach a model: the ones the providers read
(``locusd/agent/providers/select.py``) and the base URLs their SDKs read. Pure, stdlib only: the CLI imports it to send
the model settings it was started with to the daemon, which may have been started long before,
with others (see docs/daemon.md, "Settings that take effect").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, get_args

#: The built-in providers' (and the claude and codex presets'), then the gemini preset's.
ModelVar = Literal[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
]
MODEL_ENV: tuple[ModelVar, ...] = get_args(ModelVar)
#: Model variables and their values, as a client gives them for a run.
ModelEnv = Mapping[ModelVar, str]


def model_env(environ: Mapping[str, str] = os.environ) -> dict[ModelVar, str]:
    """The model variables set (not empty) in ``environ``."""
    return {name: environ[name] for name in MODEL_ENV if environ.get(name)}


def with_model_env(base: Mapping[str, str], given: ModelEnv) -> dict[str, str]:
    """``base`` with the model variables a client gave in place of its own (the rest of
    ``base`` as it is: a variable the client lacks keeps the daemon's value)."""
    return {**base, **{name: value for name, value in given.items() if name in MODEL_ENV}}
