"""What the daemon core sees of one connected client, and what the server needs of the core.

The server (one connection per client) implements :class:`Peer`; the daemon core implements
:class:`Core`. Handlers are the core's coroutines marked with the method they answer
(``@handles("locus/runs/start")`` on ``async def runs_start(self, params, peer)``, see
:mod:`locusd.server.handlers`), taking the validated params model and returning the result
model; they raise :class:`~locusd.protocol.errors.LocusError` for Locus errors.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from locusd.protocol.base import Wire
from locusd.protocol.messages import ClientInfo, LocusCapabilities

W = TypeVar("W", bound=Wire)


class Peer(Protocol):
    id: int
    client: ClientInfo | None

    def notify(self, method: str, params: Wire) -> None:
        """Send a notification; a closed connection drops it silently."""
        ...

    async def request(self, method: str, params: Wire, result: type[W]) -> W:
        """Send a request to the client and wait for its answer (raises ConnectionError
        when the client goes away first)."""
        ...

    async def create_progress(self, token: str) -> None:
        """``window/workDoneProgress/create``: ask the client to show progress ``token``."""
        ...

    def progress(self, token: str, value: dict[str, Any]) -> None:
        """``$/progress`` with a WorkDoneProgressBegin/Report/End ``value``."""
        ...


class Core(Protocol):
    def capabilities(self) -> LocusCapabilities: ...

    def connected(self, peer: Peer) -> None: ...

    def disconnected(self, peer: Peer) -> None:
        """The connection closed (exit, EOF, error): drop its subscriptions and approvals."""
        ...

    async def shutdown_requested(self) -> None:
        """``locus/daemon/shutdown``: stop serving after answering."""
        ...
