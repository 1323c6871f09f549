"""Keeps the cloud's copy of this worker's graph of a project current (docs/graph.md,
"Uploads").

While the worker runs, every :data:`POLL_S` seconds the served checkout's fingerprint
(``HEAD`` and the ``locus/`` branch tips) is read; when it moved, the whole upload is built
again (:func:`~locusd.graph.snapshot.snapshot`, in a thread) and, if its bytes differ from
the last one enqueued for the project, it goes to the outbox through
:meth:`~locusd.cloud.uploads.Uploads.enqueue` — audited once sent, like every upload. A
newer upload withdraws an older one still pending (each replaces the worker's previous one
whole, so nothing is lost), and the digest of what was enqueued is recorded in that same
transaction: a kill -9 before it re-enqueues on the next start, after it sends what is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from locusd.cloud.canonical import canonical
from locusd.cloud.uploads import Uploads, scrubbed
from locusd.git.cli import GitFailed, TimedOut
from locusd.git.repo import RepositoryError
from locusd.graph.payload import Payload
from locusd.graph.snapshot import fingerprint, snapshot
from locusd.privacy import Scrubber

log = logging.getLogger("locusd.graph.upload")

#: How often a served checkout is looked at (one ``rev-parse`` and one ``for-each-ref``).
POLL_S = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_uploads (
    project_id INTEGER PRIMARY KEY,
    checkout TEXT NOT NULL,
    sha256 TEXT NOT NULL,        -- of the body last enqueued
    at TEXT NOT NULL
);
"""


def wire_body(payload: Payload, scrub: Scrubber) -> bytes:
    """The exact bytes an upload of ``payload`` sends: scrubbed as the outbox scrubs it, in
    the client's canonical form (``locus graph show --json`` prints these)."""
    return canonical(scrubbed("graph", json.loads(payload.body), scrub))


class GraphPublisher:
    """The graph uploads of one project, from one checkout."""

    def __init__(self, uploads: Uploads, state_dir: Path, project_id: int, checkout: Path) -> None:
        self.uploads = uploads
        self.db = uploads.outbox.db
        self.state_dir = state_dir
        self.project_id = project_id
        self.checkout = checkout
        self._seen: str | None = None  # the fingerprint last published (or found unchanged)
        self.db.script(SCHEMA)

    async def publish(self) -> bool:
        """Enqueue the checkout's upload if it changed; True when one was enqueued."""
        seen = await asyncio.to_thread(fingerprint, self.checkout)
        if seen == self._seen:
            return False
        shot = await asyncio.to_thread(snapshot, self.checkout, self.state_dir)
        digest = hashlib.sha256(shot.payload.body).hexdigest()
        enqueued = False
        with self.db.transaction():
            kept = self.db.rows(
                "SELECT sha256 FROM graph_uploads WHERE project_id = ?", (self.project_id,)
            )
            if not kept or kept[0]["sha256"] != digest:
                self.uploads.enqueue(
                    "graph",
                    None,
                    json.loads(shot.payload.body),
                    checkout=self.checkout,
                    project_id=self.project_id,
                    replaces=True,
                )
                self.db.execute(
                    "INSERT INTO graph_uploads (project_id, checkout, sha256, at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET"
                    " checkout = excluded.checkout, sha256 = excluded.sha256, at = excluded.at",
                    (self.project_id, str(self.checkout), digest, datetime.now(UTC).isoformat()),
                )
                enqueued = True
        self._seen = seen
        return enqueued

    async def look(self) -> None:
        """:meth:`publish`, a checkout git cannot read logged (and looked at again next time:
        the worker goes on)."""
        try:
            if await self.publish():
                log.info("graph of %s enqueued for project %d", self.checkout, self.project_id)
        except (GitFailed, TimedOut, RepositoryError, OSError) as exc:
            log.warning("graph of %s not built: %s", self.checkout, exc)

    async def run(self, stop: asyncio.Event, every: float = POLL_S) -> None:
        """Look whenever the checkout may have moved, every ``every`` seconds, until ``stop``."""
        while not stop.is_set():
            await self.look()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
