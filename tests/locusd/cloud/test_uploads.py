"""The one upload path (``locusd/cloud/uploads.py``): nothing else writes the outbox or the audit
log; every free-text field of every write the contract defines is scrubbed, whoever builds the
body; an upload is audited once the cloud acknowledges it, and only then."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from locusd.cloud.canonical import canonical
from locusd.cloud.errors import InvalidRequest
from locusd.cloud.outbox import Outbox, OutboxEntry
from locusd.cloud.uploads import JSON, PATCH, Uploads, scrubbed
from locusd.cloud.writes import PROTOCOL_FIELDS, WRITES, WriteKind
from locusd.localdb import Database
from locusd.privacy import AuditLog, Scrubber
from locusd.runner.redact import MASK
from tests.locusd.secretshapes import ENVIRONMENT, LOCUS_TOML, every_fake

ROOT = Path(__file__).resolve().parents[3]
FAKES = every_fake()
LEAKY = "\n".join(fake.line for fake in FAKES.values())
CLOUD = "https://cloud.example.com"


def _calls(path: Path, method: str) -> list[str]:
    """Each ``<receiver>.<method>(…)`` call in ``path``, by the receiver's source text."""
    source = path.read_text(encoding="utf-8")
    return [
        ast.unparse(node.func.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
    ]


def test_only_the_upload_path_writes_the_outbox_or_the_audit_log() -> None:
    allowed = {ROOT / "locusd/cloud/uploads.py"}
    offenders = []
    for path in sorted((ROOT / "locusd").rglob("*.py")):
        if path in allowed:
            continue
        for receiver in _calls(path, "enqueue"):
            if "upload" not in receiver:  # uploads.enqueue is the way in
                offenders.append(f"{path.relative_to(ROOT)}: {receiver}.enqueue")
        for receiver in _calls(path, "record"):
            if "audit" in receiver:
                offenders.append(f"{path.relative_to(ROOT)}: {receiver}.record")
        if "outbox.on_settled =" in path.read_text(encoding="utf-8"):
            offenders.append(f"{path.relative_to(ROOT)}: takes over outbox.on_settled")
    assert not offenders, offenders


def _mentions_str(annotation: Any) -> bool:
    """Whether a field's type can hold a string (``str``, a string ``Literal``, or either
    inside ``Annotated``/``Optional``)."""
    if annotation is str:
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(arg, str) for arg in get_args(annotation))
    return any(_mentions_str(arg) for arg in get_args(annotation))


def _string_fields(model: type[Any]) -> set[str]:
    return {name for name, f in model.model_fields.items() if _mentions_str(f.annotation)}


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_every_string_field_of_a_write_is_scrubbed_or_the_protocol_s_own(kind: str) -> None:
    """A field added to a write's contract must be declared free text (scrubbed) or protocol:
    a new free-text field cannot leave unscrubbed by being forgotten."""
    spec = WRITES[kind]
    strings = _string_fields(spec.body)
    assert set(spec.text) <= set(spec.body.model_fields), "a text field the contract lacks"
    undeclared = strings - set(spec.text) - PROTOCOL_FIELDS
    assert not undeclared, f"{kind}: {undeclared} neither text (scrubbed) nor protocol"
    assert set(spec.text), f"{kind}: carries no text at all?"


def _scrubber(tmp_path: Path) -> Scrubber:
    (tmp_path / ".locus.toml").write_text(LOCUS_TOML)
    (tmp_path / ".locusignore").write_text("private/\n")
    return Scrubber.for_checkout(tmp_path, ENVIRONMENT)


def _leaks(payload: dict[str, Any]) -> list[str]:
    text = json.dumps(payload, ensure_ascii=False)
    return [name for name, fake in FAKES.items() if fake.secret in text]


@pytest.mark.parametrize(
    ("kind", "field"), [(k, f) for k, spec in sorted(WRITES.items()) for f in spec.text]
)
def test_every_text_field_is_scrubbed_whoever_builds_the_body(
    kind: WriteKind, field: str, tmp_path: Path
) -> None:
    body = {"claim_token": "c", "attempt": 1, field: LEAKY}
    out = scrubbed(kind, body, _scrubber(tmp_path))
    assert MASK in out[field]
    assert not _leaks(out)
    assert out["claim_token"] == "c" and out["attempt"] == 1  # the protocol's own, untouched


def test_an_artifact_is_scrubbed_as_what_it_holds(tmp_path: Path) -> None:
    scrub = _scrubber(tmp_path)
    # JSON: a line-anchored secret inside a JSON string (after an escaped newline) is found.
    evidence = json.dumps({"output_tail": LEAKY, "exit_code": 1})
    out = scrubbed("artifact", {"media_type": JSON, "content": evidence}, scrub)
    assert not _leaks(out)
    assert json.loads(out["content"])["exit_code"] == 1  # still the JSON it was
    # A patch: a .locusignore'd file's change is left out whole, not merely scrubbed.
    patch = (
        "diff --git a/private/notes.txt b/private/notes.txt\n--- a/private/notes.txt\n"
        "+++ b/private/notes.txt\n@@ -0,0 +1 @@\n+row 17 is Alice Example\n"
    )
    out = scrubbed("artifact", {"media_type": PATCH, "content": patch}, scrub)
    assert "Alice Example" not in out["content"]
    assert "private/notes.txt is left out (.locusignore)" in out["content"]


async def test_an_upload_is_audited_once_acknowledged_and_only_then(tmp_path: Path) -> None:
    db = Database(tmp_path / "locusd.sqlite")
    outbox = Outbox(db)
    audit = AuditLog(db)
    heard: list[tuple[int, str]] = []
    uploads = Uploads(outbox, audit, lambda path: _scrubber(path), lambda: CLOUD)
    uploads.on_settled = lambda entry, state, error: heard.append((entry.id, state))
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    good = uploads.enqueue("log", 1, {"text": "é " + LEAKY}, checkout=checkout)
    bad = uploads.enqueue("log", 2, {"text": "refused"}, checkout=checkout)
    sent: list[OutboxEntry] = []

    async def sender(entry: OutboxEntry) -> None:
        if entry.task_id == 2:
            raise InvalidRequest("refused for good")
        sent.append(entry)

    stop = asyncio.Event()
    drain = asyncio.create_task(outbox.drain_forever(sender, stop))
    await asyncio.wait_for(outbox.wait_empty(), 10)
    stop.set()
    await drain
    assert sorted(heard) == [(good, "sent"), (bad, "dead")]  # the owner still hears both
    (entry,) = audit.entries()  # the refused one left nothing: not audited
    assert (entry.task_id, entry.kind, entry.destination) == (1, "log", CLOUD)
    body = canonical(sent[0].payload)
    assert entry.sha256 == hashlib.sha256(body).hexdigest() and entry.bytes == len(body)
    assert not _leaks(sent[0].payload)  # what was stored to be sent was already scrubbed
