"""A run's record of its network: each connection the egress proxy saw, into the transcript as
it ends (held until the transcript exists: the setup command runs before it), and summed per
host for the review."""

from __future__ import annotations

from collections.abc import Callable

from locusd.agent.egress.proxy import Connection
from locusd.agent.transcript import EgressRecord, NetworkUse, TranscriptWriter


class Journal:
    def __init__(self, on_refused: Callable[[Connection], None] | None = None) -> None:
        self.connections: list[Connection] = []
        self._transcript: TranscriptWriter | None = None
        #: Told of each refusal as it happens (the run's watchers see it live).
        self.on_refused = on_refused

    def add(self, connection: Connection) -> None:
        self.connections.append(connection)
        if self._transcript is not None:
            self._transcript.write(self._record(connection))
        if not connection.allowed and self.on_refused is not None:
            self.on_refused(connection)

    def attach(self, transcript: TranscriptWriter) -> None:
        """Write what came so far, and each later connection as it ends."""
        for connection in self.connections:
            transcript.write(self._record(connection))
        self._transcript = transcript

    def detach(self) -> None:
        self._transcript = None

    def summary(self) -> list[NetworkUse]:
        """Per host, port and verdict: how many connections, bytes each way — refused first."""
        used: dict[tuple[str, int, bool], NetworkUse] = {}
        for c in self.connections:
            key = (c.host, c.port, c.allowed)
            found = used.get(key)
            if found is None:
                used[key] = NetworkUse(
                    host=c.host, port=c.port, allowed=c.allowed, connections=1,
                    sent=c.sent, received=c.received, reason=c.reason,
                )  # fmt: skip
            else:
                found.connections += 1
                found.sent += c.sent
                found.received += c.received
        return sorted(used.values(), key=lambda u: (u.allowed, u.host, u.port))

    @staticmethod
    def _record(c: Connection) -> EgressRecord:
        return EgressRecord(
            host=c.host, port=c.port, method=c.method, allowed=c.allowed, reason=c.reason,
            sent=c.sent, received=c.received, duration=c.duration,
        )  # fmt: skip
