"""The one way work leaves this machine: every status, log line, artifact and follow-up the
daemon sends about a task goes through :meth:`Uploads.enqueue`, which scrubs it, and every one
the cloud acknowledges is audited here — so no caller can skip either.

- **Scrubbing** happens at enqueue, before the entry is stored to be sent: each free-text field
  the write's contract names (:attr:`~locusd.cloud.writes.WriteSpec.text`) passes the
  checkout's :class:`~locusd.privacy.Scrubber`, chosen by what the field holds — a patch
  (``text/x-diff``) loses its ``.locusignore``'d files, JSON is scrubbed string by string (a
  secret's line would otherwise hide behind escaped newlines), anything else as text. A field
  that is not text (the claim token, the status) is the protocol's own.
- **Auditing** happens when the outbox settles an entry as sent, in that transaction: the audit
  log lists it once, with the sha256 of the exact bytes sent (:mod:`locusd.cloud.canonical`).

The outbox itself is only written from here (``tests/locusd/cloud/test_uploads.py`` fails if any
other module enqueues), and what is scrubbed is decided by the contract, not the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from locusd.cloud.outbox import Outbox, OutboxEntry, State
from locusd.cloud.writes import WRITES, WriteKind
from locusd.privacy import AuditLog, Scrubber

PATCH = "text/x-diff"
JSON = "application/json"

Settled = Callable[[OutboxEntry, State, "str | None"], None]


def scrubbed(kind: WriteKind, body: Mapping[str, Any], scrub: Scrubber) -> dict[str, Any]:
    """``body`` with every free-text field of a ``kind`` write scrubbed."""
    out = dict(body)
    for field in WRITES[kind].text:
        value = out.get(field)
        if isinstance(value, str):
            out[field] = _scrubbed_text(value, out.get("media_type"), scrub)
        elif isinstance(value, list | dict):  # structured text (a review's files): each string
            out[field] = scrub.data(value)
    return out


def _scrubbed_text(value: str, media_type: object, scrub: Scrubber) -> str:
    if media_type == PATCH:
        return scrub.patch(value)
    if media_type == JSON:
        try:
            parsed = json.loads(value)
        except ValueError:
            return scrub.text(value)
        return json.dumps(scrub.data(parsed), ensure_ascii=False, separators=(",", ":"))
    return scrub.text(value)


class Uploads:
    """The outbox's one writer and the audit log's one recorder."""

    def __init__(
        self,
        outbox: Outbox,
        audit: AuditLog,
        scrubber: Callable[[Path], Scrubber],
        destination: Callable[[], str],
    ) -> None:
        self.outbox = outbox
        self.audit = audit
        #: The scrubber of a checkout: its ``.locusignore`` and ``secret_patterns``, read at
        #: each upload (a pattern the user adds applies to the next upload).
        self.scrubber = scrubber
        #: Where the cloud is, when an upload is acknowledged (for the audit log).
        self.destination = destination
        #: Called inside the transaction that settles an entry, after the audit: the owner of
        #: the write (the run it is about) hears the cloud's answer.
        self.on_settled: Settled = lambda *_: None
        outbox.on_settled = self._settled

    def enqueue(
        self,
        kind: WriteKind,
        task_id: int | None,
        body: Mapping[str, Any],
        *,
        checkout: Path,
        run_id: str | None = None,
        project_id: int | None = None,
        replaces: bool = False,
    ) -> int:
        """Store a write about work in ``checkout``, scrubbed by that checkout's rules; durable
        when this returns (or when the caller's transaction commits). ``replaces``: a write
        about no task that replaces the project's previous one whole (the graph), so a pending
        older one is withdrawn in the same transaction."""
        payload = scrubbed(kind, body, self.scrubber(checkout))
        with self.outbox.db.transaction():
            if replaces and project_id is not None and task_id is None:
                self.outbox.withdraw(kind, project_id)
            return self.outbox.enqueue(kind, task_id, payload, run_id=run_id, project_id=project_id)

    def _settled(self, entry: OutboxEntry, state: State, error: str | None) -> None:
        if state == "sent":
            self.audit.record(
                entry.idempotency_key, self.destination(), entry.kind, entry.task_id, entry.payload
            )
        self.on_settled(entry, state, error)
