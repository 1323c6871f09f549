"""Programs some tests run, which scripts/test.sh installs. A missing one fails the test that
needs it, saying how to get it, instead of skipping it: a skip would let the test command pass
without the test ever running."""

from __future__ import annotations

import shutil
from typing import NoReturn

import pytest


def missing(program: str, package: str) -> NoReturn:
    """Fail the test: ``program`` (from the Debian ``package``) is not installed."""
    pytest.fail(
        f"{program} is not installed: run scripts/test.sh, which installs it"
        f" (or: apt-get install {package})",
        pytrace=False,
    )


def required(program: str, package: str) -> str:
    """The path of ``program`` on PATH; a failure naming ``package`` when it is not there."""
    found = shutil.which(program)
    if found is None:
        missing(program, package)
    return found
