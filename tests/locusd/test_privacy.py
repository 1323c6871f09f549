"""What leaves the machine: scrubbing secrets, leaving out .locusignore'd files, the audit log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from locusd.privacy import AuditLog, Scrubber
from locusd.runner.redact import MASK

PATCH = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1 +1,2 @@
 x = 1
+password = "correct-horse-battery-staple"
diff --git a/secrets/prod.env b/secrets/prod.env
new file mode 100644
--- /dev/null
+++ b/secrets/prod.env
@@ -0,0 +1 @@
+DATABASE_URL=postgres://admin:s3cr3t@db/prod
diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1 +1 @@
-hello
+hello, token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and INTERNAL-42-XYZ
"""


def scrubber(tmp_path: Path) -> Scrubber:
    (tmp_path / ".locusignore").write_text("# not even as a diff\nsecrets/\n")
    (tmp_path / ".locus.toml").write_text("secret_patterns = ['INTERNAL-\\d+-[A-Z]+']\n")
    env = {"MY_SERVICE_TOKEN": "tok-0123456789abcdef", "PATH": "/usr/bin"}
    return Scrubber.for_checkout(tmp_path, env)


def test_a_patch_leaves_without_secrets_or_ignored_files(tmp_path: Path) -> None:
    out = scrubber(tmp_path).patch(PATCH)
    assert "correct-horse-battery-staple" not in out  # detect-secrets: a keyword assignment
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in out  # a token shape
    assert "INTERNAL-42-XYZ" not in out  # the repository's own pattern
    assert "s3cr3t" not in out and "DATABASE_URL" not in out  # the ignored file's content
    assert "# Locus: the change to secrets/prod.env is left out (.locusignore)" in out
    assert out.count(MASK) >= 3
    # Everything else is intact: the patch still says what changed where.
    assert "diff --git a/app.py b/app.py" in out and "+hello, token" in out


def test_environment_secrets_and_plain_text(tmp_path: Path) -> None:
    scrub = scrubber(tmp_path)
    assert scrub.text("the token is tok-0123456789abcdef.") == f"the token is {MASK}."
    assert scrub.text("PATH=/usr/bin; x = 1") == "PATH=/usr/bin; x = 1"  # not a secret
    assert scrub.text("") == ""


def test_the_audit_log_records_each_upload_once(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "locusd.sqlite")
    payload = {"status": "verification", "summary": "fixed"}
    entry = log.record("key-1", "http://cloud/api/v1", "status", 42, payload)
    log.record("key-2", "http://cloud/api/v1", "artifact", 42, {"content": "patch"})
    log.record("key-1", "http://cloud/api/v1", "status", 42, payload)  # a replay: not again
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    assert entry.sha256 == hashlib.sha256(body).hexdigest() and entry.bytes == len(body)
    assert [(e.kind, e.task_id) for e in log.entries()] == [("status", 42), ("artifact", 42)]
    assert (log.db.path.stat().st_mode & 0o777) == 0o600


def test_an_older_jsonl_audit_log_is_moved_in(tmp_path: Path) -> None:
    old = AuditLog(tmp_path / "old.sqlite")
    lines = [old.record(f"k{n}", "http://c", "log", 7, {"n": n}) for n in range(2)]
    legacy = tmp_path / "audit.jsonl"
    legacy.write_text("".join(e.model_dump_json() + "\n" for e in lines))
    log = AuditLog(tmp_path / "locusd.sqlite")
    log.adopt(legacy)
    assert log.entries() == lines
    assert not legacy.exists() and (tmp_path / "audit.jsonl.imported").exists()
