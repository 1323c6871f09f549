"""Every kind of upload an attempt makes reaches the outbox (the SQLite table the daemon sends
from: exactly what would leave) with every secret shape masked: status summaries, log lines,
verification evidence, follow-ups, the agent's question, the failure reason, the patch (at the
end of a run, at a commit, at a resubmission) and a declined claim's reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud_api.schemas.workers import ClaimOut
from locusd.agent.messages import Usage
from locusd.agent.report import RunReport
from locusd.agent.transcript import Evidence, FollowUp
from locusd.cloud.outbox import Outbox
from locusd.cloud.uploads import Uploads
from locusd.localdb import Database
from locusd.privacy import AuditLog, Scrubber
from locusd.protocol.messages import Run
from locusd.runner.attempt import Attempt, Attempts
from locusd.runner.redact import MASK
from locusd.runner.store import RunStore
from tests.locusd.secretshapes import ENVIRONMENT, LOCUS_TOML, every_fake

FAKES = every_fake()
#: Every fake at once, one per line: what the agent (or its commands) might put in any field.
LEAKY = "\n".join(fake.line for fake in FAKES.values())
NOW = datetime.now(UTC).isoformat()


def claim(task_id: int = 7) -> ClaimOut:
    task: dict[str, Any] = {
        "id": task_id,
        "project_id": 1,
        "sprint_id": None,
        "title": "fix the bug",
        "description": "",
        "priority": 0,
        "labels": [],
        "repository": None,
        "status": "running",
        "status_reason": None,
        "version": 1,
        "attempt": 1,
        "lease_owner_id": 1,
        "lease_expires_at": NOW,
        "feedback": None,
        "summary": None,
        "created_at": NOW,
        "updated_at": NOW,
        "queued_at": NOW,
    }
    return ClaimOut.model_validate(
        {
            "task": task,
            "attempt": 1,
            "claim_token": "claim-token-1",
            "lease_expires_at": NOW,
            "lease_seconds": 60,
        }
    )


class Trial:
    """An attempt on a real daemon database, and what its outbox holds."""

    def __init__(self, tmp_path: Path) -> None:
        checkout = tmp_path / "checkout"
        checkout.mkdir()
        (checkout / ".locus.toml").write_text(LOCUS_TOML)
        self.db = Database(tmp_path / "state" / "locusd.sqlite")
        self.store = RunStore(self.db)
        self.outbox = Outbox(self.db)
        # The checkout shares its proposed diffs (share_proposed_diffs): the widest case, in
        # which a run's patch and its evidence's output leave before acceptance.
        uploads = Uploads(
            self.outbox,
            AuditLog(self.db),
            lambda path: Scrubber.for_checkout(path, ENVIRONMENT),
            lambda: "http://cloud.invalid",
        )
        self.attempts = Attempts(self.store, uploads, lambda path: True)
        with self.db.transaction():
            self.attempt: Attempt = self.attempts.claimed(claim(), checkout)

    def run(self, **fields: Any) -> Run:
        base: dict[str, Any] = {
            "run_id": "run-1",
            "task_id": 7,
            "title": "fix the bug",
            "repo": "/x",
            "state": "awaiting_review",
            "started_at": NOW,
        }
        run = Run.model_validate({**base, **fields})
        self.store.save(run, attempt_id=self.attempt.id)
        return run

    def sent(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self.db.execute("SELECT kind, payload FROM outbox ORDER BY id").fetchall()
        return [(kind, json.loads(payload)) for kind, payload in rows]


def report(**fields: Any) -> RunReport:
    base: dict[str, Any] = {
        "outcome": "completed",
        "reason": None,
        "summary": None,
        "question": None,
        "follow_ups": [],
        "verification": None,
        "diff": "",
        "turns": 1,
        "usage": Usage(),
        "cost_usd": 0.0,
        "cost_known": True,
        "duration": 1.0,
        "task_id": "7",
        "verify_command": None,
        "verify_reason": "",
        "worktree": "/x",
        "branch": "b",
        "base_commit": "0" * 40,
        "transcript": "/x/t.jsonl",
        "warnings": [],
    }
    return RunReport.model_validate({**base, **fields})


def patch_of(text: str) -> str:
    added = "".join(f"+{line}\n" for line in text.splitlines())
    return f"diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -0,0 +1 @@\n{added}"


def evidence(text: str) -> Evidence:
    return Evidence(
        command="pytest -q",
        reason="test",
        exit_code=1,
        duration=1.0,
        output_tail=text,
        passed=False,
    )


#: Each upload kind: how the attempt is made to send ``text`` in it, and the (write kind,
#: field) where the text lands in the outbox.
UPLOADS: dict[str, tuple[Callable[[Trial, str], None], str, str]] = {
    "log line": (lambda u, t: u.attempt.log("run-1", t), "log", "text"),
    "summary, awaiting review": (
        lambda u, t: u.attempt.ended(u.run(summary=t), "awaiting_review", report()),
        "status",
        "summary",
    ),
    "question": (
        lambda u, t: u.attempt.ended(u.run(state="needs_input", question=t), "needs_input", None),
        "status",
        "question",
    ),
    "failure reason": (
        lambda u, t: u.attempt.ended(u.run(state="failed", reason=t), "failed", None),
        "status",
        "reason",
    ),
    "follow-up title": (
        lambda u, t: u.attempt.ended(
            u.run(), "awaiting_review", report(follow_ups=[FollowUp(title=t)])
        ),
        "follow_up",
        "title",
    ),
    "follow-up description": (
        lambda u, t: u.attempt.ended(
            u.run(), "awaiting_review", report(follow_ups=[FollowUp(title="x", description=t)])
        ),
        "follow_up",
        "description",
    ),
    "verification evidence": (
        lambda u, t: u.attempt.ended(u.run(), "awaiting_review", report(verification=evidence(t))),
        "artifact",
        "content",
    ),
    "patch at the end of a run": (
        lambda u, t: u.attempt.ended(u.run(), "awaiting_review", report(diff=patch_of(t))),
        "artifact",
        "content",
    ),
    "patch at a commit": (
        lambda u, t: u.attempt.verified(u.run(), patch_of(t)),
        "artifact",
        "content",
    ),
    "summary at a commit": (
        lambda u, t: u.attempt.verified(u.run(summary=t), ""),
        "status",
        "summary",
    ),
    "patch at a resubmission": (
        lambda u, t: u.attempt.resubmitted(u.run(), patch_of(t)),
        "artifact",
        "content",
    ),
    "summary at a resubmission": (
        lambda u, t: u.attempt.resubmitted(u.run(summary=t), ""),
        "status",
        "summary",
    ),
    "a declined claim's reason": (lambda u, t: u.attempt.declined(t), "status", "reason"),
}


def strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON payload (keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("upload", sorted(UPLOADS))
def test_every_upload_kind_reaches_the_outbox_scrubbed(upload: str, tmp_path: Path) -> None:
    send, kind, field = UPLOADS[upload]
    trial = Trial(tmp_path)
    send(trial, LEAKY)
    sent = trial.sent()
    # The text did reach the outbox, in the field that carries it (so the test is not vacuous).
    carrying = [body[field] for k, body in sent if k == kind and MASK in str(body.get(field))]
    assert carrying, f"{upload}: no {kind} write with a masked {field} in {sent}"
    everything = "\n".join(s for _, body in sent for s in strings(body))
    leaked = [name for name, fake in FAKES.items() if fake.secret in everything]
    assert not leaked, f"{upload}: {leaked} reached the outbox"
