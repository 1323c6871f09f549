"""Graph uploads under concurrency: no deadlock on PostgreSQL, SQLite's writer shared.

Concurrent uploads of one graph in different orders used to deadlock on PostgreSQL (rows
locked in each body's order); one maximal upload held SQLite's only writer for seconds, so a
worker's heartbeat waited behind it. Uploads are now written sorted and in short chunks
(cloud_api.store.graph)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from cloud_api.services import SERVICES
from tests.conftest import Cloud
from tests.support import graphs
from tests.support.client import Worker

pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")


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
    ``COMMIT`` per transaction. The first commit of a transaction that wrote a table named
    by :attr:`pause_on` waits for :attr:`go`, so the test can queue a request behind it (an
    observation hook on the engine's events, not a patched function)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lines: list[str] = []
        self.pause_on: str | None = None  # a table name, or nothing to pause on
        self.paused = asyncio.Event()
        self.go = threading.Event()
        self._loop, self._in_tx = loop, False

    @staticmethod
    def _on_writer() -> bool:
        # cloud_api.store.sqlite_writer's thread (the readers are aiosqlite's own threads)
        return threading.current_thread().name.startswith("locus-sqlite-writer")

    def statement(self, _conn: Connection, _cursor: Any, sql: str, *_args: Any) -> None:
        if self._on_writer():
            self.lines.append(" ".join(sql.split()[:3]))
            pause_on = self.pause_on
            self._in_tx = self._in_tx or (pause_on is not None and pause_on in self.lines[-1])

    def commit(self, _conn: Connection) -> None:
        if not self._on_writer():
            return
        self.lines.append("COMMIT")
        if self._in_tx and not self.paused.is_set():
            self._loop.call_soon_threadsafe(self.paused.set)
            assert self.go.wait(120), "the test never let the writer go on"
        self._in_tx = False

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
@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
async def test_a_heartbeat_during_a_maximal_upload_runs_between_its_chunks(
    cloud: Cloud, writer_log: WriterLog, keyed: bool
) -> None:
    """SQLite: a heartbeat sent while a maximal upload writes is committed right after the
    chunk then being written, not after the whole upload (one transaction held the writer
    6-7 s: issue 15). Also with an Idempotency-Key, which elsewhere makes a request's writes
    one transaction."""
    worker = await Worker.create(cloud.api, cloud.project_id, "punctual")
    task = {"title": "held", "status": "queued"}
    (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", task)).ok(201)
    claim = (await worker.claim()).ok()
    body = graphs.upload("big")
    before = len(writer_log.lines)  # the claim's own UPDATE tasks is older
    writer_log.pause_on = "graph_"
    assert graphs.size(body) > 8 * 1024 * 1024  # close to the 10 MiB body limit
    headers = {"Idempotency-Key": "graph-upload-1"} if keyed else {}
    upload = asyncio.create_task(
        cloud.api.post(f"/projects/{cloud.project_id}/graph", body, headers=headers)
    )
    paused = asyncio.create_task(writer_log.paused.wait())  # the first chunk's commit, held
    await asyncio.wait([paused, upload], timeout=120, return_when=asyncio.FIRST_COMPLETED)
    assert paused.done(), f"the upload wrote no chunk: {upload.done() and upload.result()}"
    heartbeat = await until_queued(cloud, worker.heartbeat(claim))
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


async def until_queued(cloud: Cloud, request: Awaitable[T]) -> asyncio.Task[T]:
    """Send ``request`` while the writer is held, and return once it waits for the writer."""
    db = cloud.app[SERVICES].db
    sent = asyncio.ensure_future(request)
    async with asyncio.timeout(120):
        while db.writes_waiting < 1:
            await asyncio.sleep(0.01)
    return sent


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
@pytest.mark.parametrize("during", ["graph_nodes", "graph_edges"])
async def test_a_node_deleted_during_an_upload_is_a_409_not_a_500(
    cloud: Cloud, writer_log: WriterLog, during: str
) -> None:
    """A node the upload's edges name is deleted between two of its chunks (after its nodes
    are written, or between two chunks of edges): the upload answers 409 asking to send it
    again, never a 500 from the foreign key."""
    graph = f"/projects/{cloud.project_id}/graph"
    (await cloud.api.post(graph, {"nodes": [{"kind": "dependency", "key": "x"}]})).ok()
    (x,) = (await cloud.api.get(graph)).ok()["nodes"]
    body = graphs.upload("d", 1200, 0)
    body["edges"] = [
        {"src": {"kind": n["kind"], "key": n["key"]}, "dst": {"kind": "dependency", "key": "x"},
         "kind": "uses"}
        for n in body["nodes"]
    ]  # fmt: skip
    writer_log.pause_on = during
    upload = asyncio.create_task(cloud.api.post(graph, body))
    async with asyncio.timeout(120):
        await writer_log.paused.wait()
    deleting = await until_queued(cloud, cloud.api.delete(f"{graph}/nodes/{x['id']}"))
    writer_log.go.set()
    assert (await deleting).status == 204
    reply = await upload
    assert reply.status == 409, reply.body
    assert "send the upload again" in reply.body["detail"]
    got = (await cloud.api.get(graph)).ok()
    assert "x" not in {n["key"] for n in got["nodes"]}
    assert got["edges"] == []


async def test_a_node_or_edge_sent_twice_in_one_upload_is_written_once(cloud: Cloud) -> None:
    """Repeats in one body (the last node's attributes win) are one row each: a multi-row
    upsert touching one row twice would be an error on PostgreSQL."""
    graph = f"/projects/{cloud.project_id}/graph"
    a, b = {"kind": "file", "key": "a.py"}, {"kind": "file", "key": "b.py"}
    edge = {"src": a, "dst": b, "kind": "imports"}
    body = {
        "nodes": [{**a, "attrs": {"v": 1}}, b, {**a, "attrs": {"v": 2}}],
        "edges": [edge, edge],
    }
    assert (await cloud.api.post(graph, body)).ok() == {"nodes": 3, "edges": 2}
    got = (await cloud.api.get(graph)).ok()
    assert {n["key"]: n["attrs"] for n in got["nodes"]} == {"a.py": {"v": 2}, "b.py": {}}
    assert len(got["edges"]) == 1
