"""Graph uploads under concurrency: no deadlock on PostgreSQL, SQLite's writer shared.

Concurrent uploads of one graph in different orders used to deadlock on PostgreSQL (rows
locked in each body's order); one maximal upload held SQLite's only writer for seconds, so a
worker's heartbeat waited behind it. Uploads are now written sorted and in short chunks
(cloud_api.store.graph)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from cloud_api.services import SERVICES
from tests.conftest import Cloud
from tests.support import graphs
from tests.support.client import Worker

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"reaper_interval": 3600.0}  # no reaper write queues up while a test counts writes


async def test_concurrent_uploads_in_different_orders_all_succeed(cloud: Cloud) -> None:
    """Six uploads of one graph at once, each in its own order, and two overlapping it in part:
    every one answers 200 (on PostgreSQL unsorted upserts deadlocked: 500s), and the graph
    holds each node and edge sent, once."""
    graph = f"/projects/{cloud.project_id}/graph"
    same = [graphs.upload("g", 2000, 6000, attr_chars=40, shuffle=seed) for seed in range(6)]
    other = [graphs.upload(tag, 1000, 3000, attr_chars=40, shuffle=7) for tag in ("g", "h")]
    replies = await asyncio.gather(*(cloud.api.post(graph, body) for body in [*same, *other]))
    assert [r.status for r in replies] == [200] * 8, [r.body for r in replies if r.status != 200]
    got = (await cloud.api.get(graph, params={"limit": 20000})).ok()
    sent = [*same, *other]
    nodes = {n["id"]: (n["kind"], n["key"]) for n in got["nodes"]}
    assert sorted(nodes.values()) == sorted(
        {(n["kind"], n["key"]) for b in sent for n in b["nodes"]}
    )
    edges = [(nodes[e["src_id"]][1], nodes[e["dst_id"]][1], e["kind"]) for e in got["edges"]]
    assert sorted(edges) == sorted(
        {(e["src"]["key"], e["dst"]["key"], e["kind"]) for b in sent for e in b["edges"]}
    )


class WriterLog:
    """What SQLite's writer thread runs, in order: each statement's first words, and a
    ``COMMIT`` per transaction. The first commit of a graph chunk waits for :attr:`go`, so
    the test can queue a heartbeat behind it (an observation hook on the engine's events,
    not a patched function)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lines: list[str] = []
        self.first_chunk = asyncio.Event()
        self.go = threading.Event()
        self._loop, self._in_graph, self._paused = loop, False, False

    @staticmethod
    def _on_writer() -> bool:
        # cloud_api.store.sqlite_writer's thread (the readers are aiosqlite's own threads)
        return threading.current_thread().name.startswith("locus-sqlite-writer")

    def statement(self, _conn: Connection, _cursor: Any, sql: str, *_args: Any) -> None:
        if self._on_writer():
            self.lines.append(" ".join(sql.split()[:3]))
            self._in_graph = self._in_graph or "graph_" in self.lines[-1]

    def commit(self, _conn: Connection) -> None:
        if not self._on_writer():
            return
        self.lines.append("COMMIT")
        if self._in_graph and not self._paused:
            self._paused = True
            self._loop.call_soon_threadsafe(self.first_chunk.set)
            assert self.go.wait(120), "the test never let the upload go on"
        self._in_graph = False

    def graph_commits(self) -> list[int]:
        """Indexes of the COMMITs of graph chunks."""
        return [
            i
            for i, line in enumerate(self.lines)
            if line == "COMMIT" and "graph_" in self.lines[i - 1]
        ]


@pytest.fixture
def writer_log() -> Iterator[WriterLog]:
    log = WriterLog(asyncio.get_event_loop())
    event.listen(Engine, "after_cursor_execute", log.statement)
    event.listen(Engine, "commit", log.commit)
    try:
        yield log
    finally:
        log.go.set()
        event.remove(Engine, "after_cursor_execute", log.statement)
        event.remove(Engine, "commit", log.commit)


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_a_heartbeat_during_a_maximal_upload_runs_between_its_chunks(
    cloud: Cloud, writer_log: WriterLog
) -> None:
    """SQLite: a heartbeat sent while a maximal upload writes is committed right after the
    chunk then being written, not after the whole upload (one transaction held the writer
    6-7 s: issue 15)."""
    db = cloud.app[SERVICES].db
    worker = await Worker.create(cloud.api, cloud.project_id, "punctual")
    task = {"title": "held", "status": "queued"}
    (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", task)).ok(201)
    claim = (await worker.claim()).ok()
    body = graphs.upload("big")
    before = len(writer_log.lines)  # the claim's own UPDATE tasks is older
    assert graphs.size(body) > 8 * 1024 * 1024  # close to the 10 MiB body limit
    upload = asyncio.create_task(cloud.api.post(f"/projects/{cloud.project_id}/graph", body))
    async with asyncio.timeout(120):
        await writer_log.first_chunk.wait()  # the writer is committing the first chunk, held
        heartbeat = asyncio.create_task(worker.heartbeat(claim))
        while db.writes_waiting < 1:  # the heartbeat queued behind the chunk
            await asyncio.sleep(0.01)
    writer_log.go.set()
    beat_reply = (await heartbeat).ok()
    assert beat_reply["cancel"] is False and beat_reply["lease_expires_at"] is not None
    assert (await upload).ok() == {"nodes": graphs.NODES, "edges": graphs.EDGES}
    lines = writer_log.lines
    chunks = writer_log.graph_commits()
    beat = next(i for i in range(before, len(lines)) if lines[i].startswith("UPDATE tasks"))
    assert len(chunks) > 2, "a maximal upload is written in several transactions"
    assert chunks[0] < beat < chunks[1], (
        "the heartbeat waited for more than the chunk it queued behind",
        chunks[:3],
        beat,
    )
