"""Fixtures shared by the daemon's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Cloud
from tests.locusd.cliuser import User, machine


@pytest.fixture
async def user(cloud: Cloud, tmp_path: Path) -> AsyncIterator[User]:
    """A user's machine driving the real ``locus`` CLI against ``cloud`` (see cliuser.py)."""
    async with machine(cloud, tmp_path) as found:
        yield found
