"""Workers' graph uploads (``POST /worker/projects/{id}/graph``), merged per project.

Two checkouts of one real repository at different commits, indexed by the daemon's own indexer
and payload builder: the stored graph is the union of both workers' uploads, a worker's next
upload removes only what it dropped and no other worker holds, the same upload twice changes
nothing, and co-change edges keep their weight."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from tests.conftest import Cloud
from tests.support.client import Worker
from tests.support.graph_repos import body, commit, git


def stored(got: dict[str, Any]) -> tuple[set[tuple[str, str]], dict[tuple[str, str, str], Any]]:
    keys = {n["id"]: (n["kind"], n["key"]) for n in got["nodes"]}
    edges = {
        (keys[e["src_id"]][1], keys[e["dst_id"]][1], e["kind"]): e["weight"] for e in got["edges"]
    }
    return set(keys.values()), edges


async def test_two_workers_uploads_merge_and_each_replaces_only_its_own(
    cloud: Cloud, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit(repo, {"app/main.py": "x", "app/old.py": "x", "README.md": "x"}, "one")
    old = git(repo, "rev-parse", "HEAD")
    commit(repo, {"app/old.py": None, "app/new.py": "x", "lib/util.rs": "x"}, "two")
    behind = tmp_path / "behind"
    git(tmp_path, "clone", "-q", str(repo), str(behind))
    git(behind, "checkout", "-q", old)
    state = tmp_path / "state"

    a = await Worker.create(cloud.api, cloud.project_id, "ahead")
    b = await Worker.create(cloud.api, cloud.project_id, "behind")
    url = f"/worker/projects/{cloud.project_id}/graph"
    a_body = body(repo, state, {("app/main.py", "app/new.py"): 7})
    b_body = body(behind, state, {("app/main.py", "app/old.py"): 3})
    (await a.api.post(url, a_body)).ok()
    (await b.api.post(url, b_body)).ok()
    graph = f"/projects/{cloud.project_id}/graph"
    nodes, edges = stored((await cloud.api.get(graph)).ok())
    assert {("file", "app/old.py"), ("file", "app/new.py"), ("file", "lib/util.rs")} <= nodes
    assert edges[("app/main.py", "app/new.py", "co_change")] == 7
    assert edges[("app/main.py", "app/old.py", "co_change")] == 3

    # Same upload again: nothing changes (the outbox's retry).
    before = (await cloud.api.get(graph)).ok()
    again = (await b.api.post(url, b_body)).ok()
    assert (again["removed_nodes"], again["removed_edges"]) == (0, 0)
    after = (await cloud.api.get(graph)).ok()
    assert stored(after) == stored(before)
    assert [n["id"] for n in after["nodes"]] == [n["id"] for n in before["nodes"]]

    # The behind checkout catches up: old.py (only it held) goes, new.py (ahead holds) stays.
    git(behind, "checkout", "-q", git(repo, "rev-parse", "HEAD"))
    caught_up = (
        await b.api.post(url, body(behind, state, {("app/main.py", "app/new.py"): 9}))
    ).ok()
    assert caught_up["removed_nodes"] == 1 and caught_up["removed_edges"] == 1
    nodes, edges = stored((await cloud.api.get(graph)).ok())
    assert ("file", "app/old.py") not in nodes
    assert ("file", "app/new.py") in nodes and ("file", "lib/util.rs") in nodes
    assert ("app/main.py", "app/old.py", "co_change") not in edges
    assert edges[("app/main.py", "app/new.py", "co_change")] == 9  # the newest upload's weight

    # Ahead uploads nothing at all: what behind still holds stays.
    (await a.api.post(url, {"nodes": [], "edges": []})).ok()
    nodes, edges = stored((await cloud.api.get(graph)).ok())
    assert ("file", "app/new.py") in nodes and ("app/main.py", "app/new.py", "co_change") in edges


async def test_a_persons_nodes_are_never_collected(cloud: Cloud) -> None:
    """A node a person wrote (no worker holds it) survives a worker dropping it."""
    graph = f"/projects/{cloud.project_id}/graph"
    node = {"kind": "note", "key": "by hand"}
    (await cloud.api.post(graph, {"nodes": [node]})).ok()
    w = await Worker.create(cloud.api, cloud.project_id, "w")
    url = f"/worker/projects/{cloud.project_id}/graph"
    a_py = {"kind": "file", "key": "a.py"}
    (
        await w.api.post(url, {"nodes": [a_py], "edges": [{"src": a_py, "dst": node, "kind": "x"}]})
    ).ok()
    dropped = (await w.api.post(url, {"nodes": [{"kind": "file", "key": "b.py"}]})).ok()
    assert (dropped["removed_nodes"], dropped["removed_edges"]) == (1, 1)  # a.py and its edge
    nodes, _ = stored((await cloud.api.get(graph)).ok())
    assert ("file", "a.py") not in nodes
    assert {("note", "by hand"), ("file", "b.py")} <= nodes


def files(names: range, tag: str) -> dict[str, Any]:
    """File nodes ``f{i}`` and a co-change edge between neighbours, weighted by ``tag``'s
    length (so two bodies over the same files differ only in weights)."""
    nodes = [{"kind": "file", "key": f"f{i}"} for i in names]
    edges = [
        {"src": a, "dst": b, "kind": "co_change", "weight": len(tag)}
        for a, b in itertools.pairwise(nodes)
    ]
    return {"nodes": nodes, "edges": edges}


async def test_workers_uploading_and_dropping_at_once_end_with_the_union(cloud: Cloud) -> None:
    """Three workers upload overlapping graphs at once, each then dropping half of its own
    (what another still holds must survive, its edges too): every answer is 200, or a 409 the
    outbox sends again (a node deleted meanwhile) — never a 500 (a PostgreSQL deadlock)."""
    url = f"/worker/projects/{cloud.project_id}/graph"
    workers = [await Worker.create(cloud.api, cloud.project_id, f"w{i}") for i in range(3)]
    plans = [
        [files(range(i * 300, i * 300 + 600), "x" * i), files(range(i * 300, i * 300 + 300), "y")]
        for i in range(3)
    ]

    async def run(worker: Worker, bodies: list[dict[str, Any]]) -> None:
        for sent in bodies:
            reply = await worker.api.post(url, sent)
            while reply.status == 409:
                reply = await worker.api.post(url, sent)
            reply.ok()

    await asyncio.gather(*(run(w, plan) for w, plan in zip(workers, plans, strict=True)))
    nodes, edges = stored((await cloud.api.get(f"/projects/{cloud.project_id}/graph")).ok())
    last = [plan[-1] for plan in plans]
    assert nodes == {("file", n["key"]) for b in last for n in b["nodes"]}
    assert set(edges) == {
        (e["src"]["key"], e["dst"]["key"], e["kind"]) for b in last for e in b["edges"]
    }


async def test_an_unregistered_worker_and_an_oversized_upload_are_refused(cloud: Cloud) -> None:
    url = f"/worker/projects/{cloud.project_id}/graph"
    token = (
        await cloud.api.post(f"/projects/{cloud.project_id}/tokens", {"worker_name": "new"})
    ).ok(201)
    unregistered = await cloud.api.as_(token["token"]).post(url, {"nodes": []})
    assert unregistered.status == 409 and "register" in unregistered.body["detail"]
    w = await Worker.create(cloud.api, cloud.project_id, "w")
    too_many = await w.api.post(url, files(range(5001), "x"))
    assert too_many.status == 422 and "nodes" in str(too_many.body)
    heavy = files(range(2), "x")
    heavy["edges"][0]["weight"] = 2**31
    assert (await w.api.post(url, heavy)).status == 422
    nodes, _ = stored((await cloud.api.get(f"/projects/{cloud.project_id}/graph")).ok())
    assert nodes == set()  # nothing written by a refused upload
