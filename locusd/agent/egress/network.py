"""A run's network, set up: the rules from the user's config, the proxy started on a socket of
its own, and the sandbox that reaches it — or the sandbox as it was, when the user chose no
proxy (no network) or the whole network (``allow_network``), or there is no sandbox."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from locusd.agent.egress.journal import Journal
from locusd.agent.egress.proxy import EgressProxy
from locusd.agent.egress.rules import EgressRules, Rule
from locusd.agent.registries import default_allowlist
from locusd.agent.sandbox import Egress, Sandbox

if TYPE_CHECKING:
    from locusd.config import AgentConfig, EgressConfig

#: A UNIX socket's path must fit in ~107 bytes: the runtime dir is short, else /tmp.
_LONGEST_BASE = 60


def allowlist(
    config: EgressConfig, worktree: Path, env: Mapping[str, str], warnings: list[str]
) -> EgressRules:
    """The run's rules: the hosts the user's config adds, and — unless turned off — the
    registries of the ecosystems the worktree's manifests name, as the user's package managers
    are configured (``env``: the daemon's environment, its ``HOME``; never the command's), else
    the public ones (:mod:`locusd.agent.registries`). The repository adds no host."""
    rules = [Rule.parse(entry, "your config") for entry in config.allow]
    if config.registries and env.get("HOME"):
        found = default_allowlist(worktree, Path(env["HOME"]), env)
        warnings.extend(found.warnings)
        rules.extend(found.rules())
    return EgressRules(rules)


def socket_base() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and len(runtime) < _LONGEST_BASE and Path(runtime).is_dir():
        return runtime
    return "/tmp"  # noqa: S108 - a 0700 directory of our own is made in it


@asynccontextmanager
async def network_for(
    config: AgentConfig,
    worktree: Path,
    boxed: Sandbox | None,
    journal: Journal,
    warnings: list[str],
) -> AsyncIterator[Sandbox | None]:
    if boxed is None or config.allow_network or not config.egress.proxy:
        yield boxed
        return
    rules = allowlist(config.egress, worktree, os.environ, warnings)
    directory = Path(tempfile.mkdtemp(prefix="locus-egress-", dir=socket_base()))
    socket = directory / "proxy.sock"
    try:
        async with EgressProxy(rules, socket, journal.add):
            yield boxed.with_egress(Egress(socket, rules.loopback_ports()))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
