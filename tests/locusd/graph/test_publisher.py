"""The graph publisher's bookkeeping with a real outbox (docs/graph.md, "Uploads"): an upload
only when the checkout moved and its bytes changed, a newer one withdrawing an older one not
yet sent, and the record of what was enqueued surviving a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.cloud.outbox import Outbox
from locusd.cloud.uploads import Uploads
from locusd.graph.upload import GraphPublisher
from locusd.localdb import Database
from locusd.privacy import AuditLog, Scrubber
from tests.locusd.git.test_worktrees import identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config
PROJECT = 7


def commit(repo: Path, name: str, message: str) -> None:
    (repo / name).write_text(f"{message}\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", message)


def publisher(tmp_path: Path, repo: Path) -> GraphPublisher:
    db = Database(tmp_path / "locusd.sqlite")
    outbox = Outbox(db)
    uploads = Uploads(outbox, AuditLog(db), lambda path: Scrubber.for_checkout(path, {}), str)
    return GraphPublisher(uploads, tmp_path / "state", PROJECT, repo)


def graphs(found: GraphPublisher) -> list[set[str]]:
    """The file keys of each pending graph upload."""
    return [
        {node["key"] for node in entry.payload["nodes"] if node["kind"] == "file"}
        for entry in found.uploads.outbox.pending()
        if entry.kind == "graph" and entry.project_id == PROJECT and entry.task_id is None
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    sh(tmp_path, "git", "init", "-q", "-b", "main", str(repo))
    commit(repo, "a.py", "first")
    return repo


async def test_an_upload_when_the_checkout_moves_and_a_newer_one_replaces_a_pending_one(
    repo: Path, tmp_path: Path
) -> None:
    first = publisher(tmp_path, repo)
    assert await first.publish()
    assert not await first.publish()  # nothing moved: not even built again
    assert graphs(first) == [{"a.py"}]

    commit(repo, "b.py", "second")
    assert await first.publish()
    assert graphs(first) == [{"a.py", "b.py"}]  # the older upload, unsent, was withdrawn

    # A branch that is not the served one moving changes nothing that is uploaded.
    sh(repo, "git", "branch", "elsewhere")
    first.db.close()

    # A new daemon (the same state): what was enqueued is known, so nothing is sent twice.
    again = publisher(tmp_path, repo)
    assert not await again.publish()
    assert graphs(again) == [{"a.py", "b.py"}]
    again.db.close()
