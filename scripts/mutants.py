"""Mutation check of Locus's guarantees: ``.venv/bin/python scripts/mutants.py [NAME …]``.

Each mutation below is a one-line semantic change that breaks one guarantee (the sandbox, the
confinement of the file tools, the scrubber, what leaves for the cloud, the audit, verification,
replay, the review commit, fencing, idempotency, CSRF, the git hardening). The script applies it
to the working tree, runs the tests named with it, restores the file, and reports whether the
suite *killed* the mutant (some test failed) or it *survived* (the guarantee has no test that
notices its loss). It exits 1 if any survived or no longer applies.

It edits files in place (and puts each back, even on Ctrl-C): run it on a clean tree. It takes
about as long as the named tests (several minutes in all); it is not part of CI — run it before
calling an issue that touches these modules resolved (docs/security.md, "Mutation check").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "sandbox: the file system writable",
        "locusd/agent/sandbox.py",
        '"--unshare-pid", "--ro-bind", "/", "/"',
        '"--unshare-pid", "--bind", "/", "/"',
        ("tests/locusd/agent/test_sandbox.py",),
    ),
    Mutation(
        "sandbox: the network not cut",
        "locusd/agent/sandbox.py",
        'prefix.append("--unshare-net")',
        "pass",
        ("tests/locusd/agent/test_sandbox.py", "tests/adversarial/test_commands.py"),
    ),
    Mutation(
        "file tools: symlinks followed",
        "locusd/agent/confine.py",
        "_RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS)",
        "_RESOLVE_BENEATH)",
        ("tests/locusd/agent/test_confine.py", "tests/adversarial/test_file_tools.py"),
    ),
    Mutation(
        "scrubber: Anthropic keys not redacted",
        "locusd/runner/redact.py",
        'r"sk-ant-[A-Za-z0-9_\\-]{8,}",',
        "",
        ("tests/locusd/test_privacy_shapes.py", "tests/locusd/runner/test_upload_scrub.py"),
    ),
    Mutation(
        "upload: the proposed diff sent before acceptance",
        "locusd/runner/attempt.py",
        "if report.diff and self.share_proposed:",
        "if report.diff:",
        ("tests/locusd/test_daemon_worker.py",),
    ),
    Mutation(
        "upload path: a write stored unscrubbed",
        "locusd/cloud/uploads.py",
        "payload = scrubbed(kind, body, self.scrubber(checkout))",
        "payload = dict(body)",
        ("tests/locusd/cloud/test_uploads.py", "tests/locusd/runner/test_upload_scrub.py"),
    ),
    Mutation(
        "upload path: JSON scrubbed as flat text",
        "locusd/cloud/uploads.py",
        "if media_type == JSON:",
        "if False:",
        ("tests/locusd/cloud/test_uploads.py", "tests/locusd/runner/test_upload_scrub.py"),
    ),
    Mutation(
        "upload path: a free-text field declared protocol",
        "locusd/cloud/writes.py",
        '("reason", "summary", "question")',
        '("reason", "summary")',
        ("tests/locusd/cloud/test_uploads.py",),
    ),
    Mutation(
        "audit: an upload the cloud refused listed as sent",
        "locusd/cloud/uploads.py",
        'if state == "sent":',
        "if True:",
        ("tests/locusd/cloud/test_uploads.py",),
    ),
    Mutation(
        "audit: the hash of other bytes than those sent",
        "locusd/privacy.py",
        "body = canonical(payload)",
        'body = __import__("json").dumps(payload, sort_keys=True).encode()',
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "dashboard: a diff shared before review shown as accepted",
        "cloud_api/dashboard/views/tasks.py",
        '"patch_accepted": patch is not None and _accepted(events, patch[0].attempt),',
        '"patch_accepted": patch is not None,',
        ("tests/cloud_api/dashboard/test_dashboard_http.py",),
    ),
    Mutation(
        "discard: the cloud never told the attempt ended",
        "locusd/runner/lifecycle.py",
        '"discarded": _row("", "failed",',
        '"discarded": _row("", None,',
        ("tests/locusd/runner/test_lifecycle.py",),
    ),
    Mutation(
        "review: a rejected change taken as accepted",
        "locusd/runner/reviews.py",
        "        return Reject(comment=given.comment)",
        "        return Accept()",
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "report: the patch Locus built sent, not the commit's diff",
        "locusd/runner/reviews.py",
        "committed = await asyncio.to_thread(_diff_of, run, sha)",
        "committed = patch",
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "logs: the agent's prose uploaded",
        "locusd/runner/worker.py",
        'if event.kind == "state" or (event.kind == "note" and event.data.get("kind") == "phase"):',
        'if event.kind in ("state", "note", "text"):',
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "logs: what the agent wrote in a tool call uploaded",
        "locusd/runner/worker.py",
        'return f"tool {event.text}"  # the tool\'s name only',
        "return f\"tool {event.text} {event.data.get('input')}\"",
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "upload: the held check's output sent",
        "locusd/runner/attempt.py",
        "if report.diff and not self.share_proposed:",
        "if False:",
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "registration: remote URLs (with their credentials) sent",
        "locusd/daemon.py",
        "remotes=list(served),",
        "remotes=[u for c in checkouts for u in remotes(c).values()],",
        ("tests/locusd/test_privacy_trip.py",),
    ),
    Mutation(
        "egress: every host allowed",
        "locusd/agent/egress/rules.py",
        "            if rule.matches(normal, port):",
        "            if True:",
        ("tests/locusd/agent/egress", "tests/adversarial/test_egress.py"),
    ),
    Mutation(
        "egress: an allowed name may lead to loopback or link-local",
        "locusd/agent/egress/rules.py",
        "            if address is None or _special(address):",
        "            if False:",
        ("tests/locusd/agent/egress", "tests/adversarial/test_egress.py"),
    ),
    Mutation(
        "egress: *.domain matches look-alikes",
        "locusd/agent/egress/rules.py",
        "host.endswith(self.host[1:])",
        "host.endswith(self.host[2:])",
        ("tests/locusd/agent/egress", "tests/adversarial/test_egress.py"),
    ),
    Mutation(
        "egress: connections not recorded",
        "locusd/agent/egress/proxy.py",
        "            self.on_connection(connection)",
        "            pass",
        ("tests/locusd/agent/egress", "tests/adversarial/test_egress.py"),
    ),
    Mutation(
        "egress: registry URLs keep their credentials for commands",
        "locusd/agent/commands.py",
        '        name: _USERINFO.sub("", value)',
        "        name: value",
        ("tests/locusd/agent/egress/test_registry_run.py",),
    ),
    Mutation(
        "caches: other repositories' caches visible",
        "locusd/agent/run.py",
        "                config.cache_dir,  # every repository's caches",
        "                # every repository's caches",
        ("tests/locusd/agent/test_package_caches.py",),
    ),
    Mutation(
        "caches: the tools not pointed at Locus's caches",
        "locusd/agent/run.py",
        "        | (packages.env() if packages else {})",
        "        | {}",
        ("tests/locusd/agent/test_package_caches.py",),
    ),
    Mutation(
        "caches: a symlink a command left is kept",
        "locusd/agent/caches.py",
        "            if place.is_symlink() or (place.exists() and not place.is_dir()):",
        "            if place.exists() and not place.is_dir():",
        ("tests/locusd/agent/test_package_caches.py",),
    ),
    Mutation(
        "caches: trimmed while another run holds them",
        "locusd/agent/caches.py",
        "                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "                pass",
        ("tests/locusd/agent/test_package_caches.py",),
    ),
    Mutation(
        "verification: a changed check still passes",
        "locusd/agent/verify.py",
        "passed=failure is None and not changes,",
        "passed=failure is None,",
        ("tests/adversarial/test_verification.py",),
    ),
    Mutation(
        "replay: tool results not compared",
        "locusd/agent/providers/replay.py",
        "self._same_reproducible_results(new[-1], request.messages[-1])",
        "pass",
        ("tests/adversarial/test_replay.py",),
    ),
    Mutation(
        "review: a stale revision accepted",
        "locusd/review/model.py",
        "if revision != review.revision:",
        "if False:",
        ("tests/locusd/review", "tests/locusd/runner/test_reviews.py"),
    ),
    Mutation(
        "fencing: a stale claim's write accepted",
        "cloud_api/dispatch/claims.py",
        "if not holds(row, worker, attempt, token):",
        "if False:",
        ("tests/cloud_api/dispatch/test_dispatch.py",),
    ),
    Mutation(
        "lease: never renewed during a run",
        "locusd/runner/attempt.py",
        "every = max(1.0, self.record.claim.lease_seconds / 3)",
        "every = 3600.0",
        ("tests/locusd/test_daemon_worker.py",),
    ),
    Mutation(
        "idempotency: a reused key with another body replayed",
        "cloud_api/api/idempotency.py",
        "if row.request_hash != request_hash:",
        "if False:",
        ("tests/cloud_api/api/test_api_idempotency.py",),
    ),
    Mutation(
        "idempotency: the effect committed apart from its stored answer",
        "cloud_api/store/db.py",
        "        shared = self._request_tx()\n        if shared is None:\n",
        "        shared = self._request_tx()\n        if True:\n",
        ("tests/cloud_api/api/test_idempotency_crash.py",),
    ),
    Mutation(
        "idempotency: a keyed long-poll holds its transaction while waiting",
        "cloud_api/api/workers.py",
        "            await ctx.db.checkpoint()",
        "            pass",
        ("tests/cloud_api/api/test_api_idempotency.py",),
    ),
    Mutation(
        "worker reports: a repeated report of the current state refused",
        "cloud_api/api/workers.py",
        "        if row.status == target.value:\n",
        "        if False:\n",
        ("tests/cloud_api/api/test_idempotency_crash.py",),
    ),
    Mutation(
        "CSRF: a form without its token accepted",
        "cloud_api/dashboard/session.py",
        "if not secret or not token or not hmac.compare_digest(_derive(secret), token):",
        "if False:",
        ("tests/cloud_api/dashboard",),
    ),
    Mutation(
        "git: the repository's hooks run by Locus's git calls",
        "locusd/git/programs.py",
        '"core.hooksPath"',
        '"core.unused"',
        ("tests/locusd/git/test_untrusted_config.py",),
    ),
    Mutation(
        "run: a crash in the loop ends without a report",
        "locusd/agent/loop.py",
        '            log.exception("the agent loop failed")',
        "            raise",
        ("tests/adversarial/test_denial.py",),
    ),
    Mutation(
        "sandbox: the container engines' sockets not hidden",
        "locusd/agent/sandbox.py",
        "elif socket.exists() and not self._out_of_sight(socket, shown):",
        "elif False:",
        ("tests/locusd/agent/test_container_sockets.py", "tests/adversarial/test_containers.py"),
    ),
    Mutation(
        "policy: container commands run without the user's consent",
        "locusd/agent/policy.py",
        "if engine is not None and containers == verdict:",
        "if False:",
        ("tests/locusd/agent/test_policy_publishing.py", "tests/adversarial/test_containers.py"),
    ),
    Mutation(
        "policy: a publish behind leading options not seen",
        "locusd/agent/policy.py",
        "new += [[current[0], *current[at:]] for at in _positions(current, 1) if at > 1]",
        "pass",
        ("tests/locusd/agent/test_policy_publishing.py", "tests/adversarial/test_containers.py"),
    ),
)


def run_one(mutation: Mutation) -> str:
    """'killed', 'survived', or why it cannot be applied."""
    path = ROOT / mutation.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutation.old) != 1:
        return f"stale: {mutation.old!r} is not once in {mutation.path} (update the mutation)"
    try:
        path.write_text(original.replace(mutation.old, mutation.new), encoding="utf-8")
        done = subprocess.run(  # noqa: S603 - this interpreter, the mutation's own test paths
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
    finally:
        path.write_text(original, encoding="utf-8")
    return "killed" if done.returncode != 0 else "survived"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only mutations whose name contains this")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or any(n in m.name for n in args.names)]
    dirty = subprocess.run(  # noqa: S603
        ["git", "status", "--porcelain", "--", *{m.path for m in chosen}],  # noqa: S607
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if dirty:
        print(f"uncommitted changes in the files to mutate; commit or stash first:\n{dirty}")
        return 2
    bad = 0
    started = time.monotonic()
    for mutation in chosen:
        began = time.monotonic()
        verdict = run_one(mutation)
        bad += verdict != "killed"
        print(f"{verdict:8}  {time.monotonic() - began:6.1f} s  {mutation.name}", flush=True)
    print(f"{len(chosen) - bad}/{len(chosen)} killed in {time.monotonic() - started:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
