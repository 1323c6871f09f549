"""The privacy promise, end to end: every byte the daemon sends to the cloud during a whole trip
(claim → agent → review → commit → report) is recorded by a proxy in front of the real cloud,
on a repository holding a file with a fake secret and a file that .locusignore names. Nothing
of the repository's files reaches the cloud except the accepted patch's hunks; the secret is
redacted; the ignored file's content never appears; the audit log lists exactly the uploads."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from locusd.daemon import Daemon
from locusd.protocol.messages import (
    LoginParams,
    TaskCreateParams,
    WorkerStartParams,
)
from tests.conftest import Cloud
from tests.locusd.agentkit import (
    BUGGY,
    FIXED,
    TASK,
    call,
    git,
    make_config,
    make_sample_repo,
    with_identity,
)
from tests.locusd.peers import Client, commit_everything
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
REMOTE = "https://git.example.com/acme/private.git"
SECRET = "sk_live_4f9a1c7e2b8d6053aa17"  # a payment-provider-style key, fake
SECRET_FILE = f'PAYMENT_API_KEY = "{SECRET}"\nTIMEOUT_SECONDS = 30\n'
PRIVATE = "the customer list is in the vault, row 17 is Alice Example\n"
LINE_ONLY_HERE = "def undocumented_helper(): return 'only in the repository'\n"


class Recorder:
    """A reverse proxy that keeps every request body the daemon sends."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.bodies: list[tuple[str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append((request.method, request.path_qs, body))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as answer,
        ):
            payload = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type",)}
            return web.Response(status=answer.status, body=payload, headers=out)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = make_sample_repo(tmp_path)
    (checkout / "settings.py").write_text(SECRET_FILE)
    (checkout / "private").mkdir()
    (checkout / "private" / "notes.txt").write_text("nothing yet\n")
    (checkout / "helpers.py").write_text(LINE_ONLY_HERE)
    (checkout / ".locusignore").write_text("private/\n")
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "more files")
    git(checkout, "remote", "add", "origin", REMOTE)
    return with_identity(checkout)


def session_touching_everything() -> list[Reply]:
    """The agent reads the secret, quotes it and a private file in its prose, writes to the
    ignored file, runs a command that prints the secret, and fixes the bug."""
    return [
        Reply(
            [
                text(f"settings.py has {SECRET}; {PRIVATE}"),
                tool_use("read_file", {"path": "settings.py"}),
            ],
            stop_reason="tool_use",
        ),
        call("run_command", command="cat settings.py helpers.py"),
        call("write_file", path="private/notes.txt", content=PRIVATE),
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        # (non-ASCII on purpose: the audit log hashes the UTF-8 bytes sent, not \u escapes)
        call("finish", summary=f"Médiane corrigée ✓ (the key {SECRET} was not needed.)"),
    ]


async def test_only_the_accepted_hunks_leave_and_the_audit_log_lists_every_upload(
    cloud: Cloud, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-privacy-test")
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    recorder = Recorder(cloud.url)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy = f"http://127.0.0.1:{runner.addresses[0][1]}"
    peer = Client()
    try:
        async with AnthropicServer(session_touching_everything()) as model:
            daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
            await daemon.auth_login(
                LoginParams(cloud_url=proxy, token=cloud.first_start.token), peer
            )
            task = await daemon.tasks_create(
                TaskCreateParams(project_id=cloud.project_id, title="Fix median", description=TASK),
                peer,
            )
            await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
            await asyncio.wait_for(daemon.worker_done(), 90)
        (run,) = daemon.store.all()
        assert run.state == "awaiting_review", run.reason
        await commit_everything(daemon, run.run_id, peer)
        await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
        uploads = daemon.audit.entries()
        await daemon.close()
    finally:
        await runner.cleanup()

    sent = b"\n".join(body for _, _, body in recorder.bodies).decode()
    assert (await cloud.api.get(f"/tasks/{task.id}")).ok()["status"] == "verification"
    assert SECRET not in sent  # redacted everywhere: prose, command, summary, patch
    assert "vault" not in sent and "Alice Example" not in sent  # the ignored file, and prose
    assert "undocumented_helper" not in sent  # a file the agent only read: never uploaded
    assert "TIMEOUT_SECONDS" not in sent  # nor the rest of the secret's file
    assert "ordered[middle - 1] + ordered[middle]" in sent  # the accepted hunk did go
    assert "private/notes.txt is left out (.locusignore)" in sent
    # The audit log lists exactly the acknowledged writes (the login, claims and heartbeats are
    # reads and bookkeeping, not uploads of work).
    writes = [
        (method, path)
        for method, path, _ in recorder.bodies
        if path.startswith("/api/v1/worker/tasks/") and method == "POST"
        and not path.endswith("/heartbeat")
    ]  # fmt: skip
    assert len(uploads) == len(writes)
    assert sorted(u.kind for u in uploads) == sorted(
        "log" if p.endswith("/logs") else "artifact" if p.endswith("/artifacts") else "status"
        for _, p in writes
    )
    for upload in uploads:
        assert upload.destination == proxy and upload.task_id == task.id
    bodies = [b for m, p, b in recorder.bodies if (m, p) in writes]
    assert len(bodies) == len(uploads)
    # Each audit entry is the sha256 and size of the exact bytes the cloud received.
    assert sorted((u.sha256, u.bytes) for u in uploads) == sorted(
        (hashlib.sha256(body).hexdigest(), len(body)) for body in bodies
    )
    assert any("Médiane corrigée ✓".encode() in body for body in bodies)
