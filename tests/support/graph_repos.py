"""Real git repositories for the cloud's graph tests, and the upload the daemon would send for a
checkout of one (its own indexer and payload builder, so the cloud is tested on real payloads)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locusd.graph.index import index_checkout
from locusd.graph.payload import HistoryStats, PathHistory, build_payload


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def commit(repo: Path, files: dict[str, str | None], message: str) -> None:
    for name, text in files.items():
        path = repo / name
        if text is None:
            git(repo, "rm", "-q", name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(repo, "add", name)
    git(repo, "commit", "-qm", message)


def body(
    checkout: Path,
    state: Path,
    co_change: Mapping[tuple[str, str], int],
    tasks: Mapping[int, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """What the daemon would send for ``checkout`` (its indexer, its payload builder)."""
    structure = index_checkout(checkout, state, save=False).structure
    when = datetime(2026, 12, 1, tzinfo=UTC)
    paths = {p: PathHistory(n, when) for pair, n in co_change.items() for p in pair}
    payload = build_payload(
        structure, HistoryStats(co_change=co_change, paths=paths, tasks=tasks or {})
    )
    return payload.upsert.model_dump(mode="json")
