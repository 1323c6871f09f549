"""What leaves the machine, and the record of it.

Everything the daemon uploads (log chunks, summaries, the patch) passes a :class:`Scrubber`
first: secret values from this process's environment and well-known token shapes
(:class:`~locusd.runner.redact.Redactor`), what detect-secrets finds line by line (keywords such
as ``password = "…"``, AWS/GitHub/Slack keys, high-entropy strings), and the repository's own
patterns (``secret_patterns`` in ``.locus.toml``). In a patch, the files that ``.locusignore``
names (gitignore syntax) are replaced by a one-line notice, so not even their diff leaves.

Every upload that the cloud acknowledged is listed once in the :class:`AuditLog` (in the
daemon's database, 0600): when, to where, what kind, for which task, its size and sha256 —
``locus audit`` shows it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pathspec
from pydantic import BaseModel

from locusd import repo_config
from locusd.cloud.canonical import canonical
from locusd.localdb import Database
from locusd.runner.redact import MASK, MIN_SECRET_LENGTH, Redactor

IGNORE_FILE = ".locusignore"
_FILE_HEADER = re.compile(r"^diff --git a/(.+?) b/(.+)$")


#: detect-secrets' detectors of known secret shapes and assignments. The high-entropy string
#: detectors are left out: on code and diffs they flag paths and identifiers, and masking those
#: would make the patch useless (public IPs are not secrets either).
_PLUGINS = {
    "plugins_used": [
        {"name": name}
        for name in (
            *("AWSKeyDetector", "ArtifactoryDetector", "AzureStorageKeyDetector"),
            *("BasicAuthDetector", "CloudantDetector", "DiscordBotTokenDetector"),
            *("GitHubTokenDetector", "GitLabTokenDetector", "IbmCloudIamDetector"),
            *("IbmCosHmacDetector", "JwtTokenDetector", "KeywordDetector", "MailchimpDetector"),
            *("NpmDetector", "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector"),
            *("SendGridDetector", "SlackDetector", "SoftlayerDetector", "SquareOAuthDetector"),
            *("StripeDetector", "TelegramBotTokenDetector", "TwilioKeyDetector"),
        )
    ]
}


def _detected(line: str) -> set[str]:
    # Imported at the first scan: detect-secrets brings requests and urllib3 along (~6 MB of
    # the daemon's memory), which a daemon that uploads nothing never needs.
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    with transient_settings(_PLUGINS):
        found = {s.secret_value for s in scan_line(line) if s.secret_value}
    # Short "secrets" are detect-secrets' noise ('ghp', '7E'): masking them would mangle code.
    return {v for v in found if len(v) >= MIN_SECRET_LENGTH and v not in MASK}


class Scrubber:
    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        patterns: Iterable[str] = (),
        ignore: Iterable[str] = (),
    ) -> None:
        self.redact = Redactor(environ)
        self.patterns = [re.compile(p) for p in patterns]
        self.ignore = pathspec.GitIgnoreSpec.from_lines(list(ignore))

    @classmethod
    def for_checkout(cls, checkout: Path, environ: Mapping[str, str]) -> Scrubber:
        """With the repository's ``.locusignore`` and ``secret_patterns`` (``.locus.toml``)."""
        try:
            patterns = repo_config.load(checkout).secret_patterns
        except repo_config.RepoConfigError:
            patterns = []  # a broken .locus.toml must not turn scrubbing off: the rest still runs
        ignore_file = checkout / IGNORE_FILE
        lines = (
            ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.is_file() else []
        )
        return cls(environ, patterns=patterns, ignore=lines)

    def text(self, text: str) -> str:
        text = self.redact(text)
        for pattern in self.patterns:
            text = pattern.sub(MASK, text)
        secrets = set().union(*(_detected(line) for line in text.splitlines())) if text else set()
        for value in sorted(secrets, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def data(self, value: Any) -> Any:
        """Every string in JSON-shaped ``value`` scrubbed, before it is serialised: in JSON
        text, a line's secrets would sit after escaped newlines and quotes, where the
        line-anchored detectors (``cloudant_pass …``, ``AKC…``) no longer find them."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        return value

    def ignored(self, path: str) -> bool:
        return self.ignore.match_file(path)

    def patch(self, patch: str) -> str:
        """The patch without the files ``.locusignore`` names (a notice instead), scrubbed."""
        kept: list[str] = []
        skipping = False
        for line in patch.splitlines(keepends=True):
            header = _FILE_HEADER.match(line.rstrip("\n"))
            if header is not None:
                old, new = header.groups()
                skipping = self.ignored(old) or self.ignored(new)
                if skipping:
                    kept.append(f"# Locus: the change to {new} is left out ({IGNORE_FILE})\n")
                    continue
            if not skipping:
                kept.append(line)
        return self.text("".join(kept))


class AuditEntry(BaseModel):
    at: str
    destination: str
    kind: str
    task_id: int | None
    bytes: int
    sha256: str


class AuditLog:
    """Every upload the cloud acknowledged, listed once: keyed by the write's Idempotency-Key
    and recorded in the transaction that marks the outbox entry sent, so neither a resend after
    a crash (a replay) nor a crash between the two lists it twice."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS audit (
        idempotency_key TEXT PRIMARY KEY,
        body TEXT NOT NULL                 -- the AuditEntry as JSON
    );
    """

    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self.db.script(self.SCHEMA)

    def record(
        self, key: str, destination: str, kind: str, task_id: int | None, payload: Any
    ) -> AuditEntry:
        body = canonical(payload)  # the bytes sent, hashed as the cloud hashes them
        entry = AuditEntry(
            at=datetime.now(UTC).isoformat(),
            destination=destination,
            kind=kind,
            task_id=task_id,
            bytes=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
        )
        self.db.execute(
            "INSERT INTO audit (idempotency_key, body) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (key, entry.model_dump_json()),
        )
        return entry

    def entries(self) -> list[AuditEntry]:
        rows = self.db.execute("SELECT body FROM audit ORDER BY rowid").fetchall()
        return [AuditEntry.model_validate_json(body) for (body,) in rows]

    def adopt(self, path: Path) -> None:
        """The JSONL audit log of an older daemon, moved in (its lines had no keys: each gets
        one of its own); the file is kept as ``*.imported``."""
        if not path.exists():
            return
        with self.db.transaction():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                if line.strip():
                    entry = AuditEntry.model_validate_json(line)
                    self.db.execute(
                        "INSERT INTO audit (idempotency_key, body) VALUES (?, ?)"
                        " ON CONFLICT DO NOTHING",
                        (f"{path.name}:{number}", entry.model_dump_json()),
                    )
        path.rename(path.with_name(path.name + ".imported"))
