"""What the user is told about containment: one answer (``sandbox.containment``) for a run's
report and the daemon's status, from the config and what works on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.agent.sandbox import containment
from locusd.config import AgentConfig
from locusd.daemon import Daemon
from locusd.protocol.base import Empty
from tests.locusd.agentkit import make_config
from tests.locusd.peers import Client


def test_bubblewrap_here_means_contained_without_a_warning() -> None:
    found = containment(AgentConfig())
    assert found.sandbox is not None and found.warning is None
    assert not found.sandbox.network
    assert containment(AgentConfig(allow_network=True)).sandbox.network  # type: ignore[union-attr]


def test_without_bubblewrap_or_by_choice_the_warning_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = containment(AgentConfig(sandbox=False))
    assert off.sandbox is None and off.warning and "sandbox = false" in off.warning
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    missing = containment(AgentConfig())
    assert missing.sandbox is None and missing.warning
    assert "install the bubblewrap package" in missing.warning
    assert "network access" in missing.warning


async def test_the_daemon_status_carries_it(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.agent.sandbox = False
    daemon = Daemon(config)
    try:
        status = await daemon.daemon_status(Empty(), Client())
    finally:
        await daemon.close()
    assert not status.sandbox.contained and status.sandbox.warning
    assert "sandbox = false" in status.sandbox.warning
