"""Conflict-aware dispatch with two real workers of one project, on SQLite and PostgreSQL: a
graph says earlier parser tasks touched ``src/parser.py``; while worker 1 holds "fix the parser
crash", worker 2 is not handed "parser: handle empty input" (``avoid``), is handed it with an
``overlap`` event (``warn``), or without one (``ignore``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cloud_api.dispatch import claims
from cloud_api.dispatch.claims import WorkerIdentity
from cloud_api.services import SERVICES
from cloud_api.store.tables import tasks
from tests.cloud_api.dispatch.test_dispatch import wait_for_waiters
from tests.cloud_api.dispatch.test_targeted_wakeups import wakeups
from tests.conftest import Cloud
from tests.support.client import Api, Worker, timeline

PARSER = ("src/parser.py", "src/lexer.py")


async def task(api: Api, pid: int, title: str, status: str = "queued") -> int:
    body = {"title": title, "status": status}
    return int((await api.post(f"/projects/{pid}/tasks", body)).ok(201)["id"])


def graph(parser_task: int, docs_task: int, parser: tuple[str, str] = PARSER) -> dict[str, Any]:
    """The graph a daemon uploads: files, two finished tasks with the files they touched,
    and a co-change pair."""
    files = [*parser, "docs/index.md", "README.md", "src/app.py"]
    nodes = [{"kind": "file", "key": path} for path in files]
    nodes += [{"kind": "task", "key": str(t)} for t in (parser_task, docs_task)]

    def ref(kind: str, key: str) -> dict[str, str]:
        return {"kind": kind, "key": key}

    edges = [
        {"src": ref("task", str(parser_task)), "dst": ref("file", path), "kind": "touched"}
        for path in parser
    ]
    edges.append(
        {"src": ref("task", str(docs_task)), "dst": ref("file", "docs/index.md"), "kind": "touched"}
    )
    pair = {"src": ref("file", parser[0]), "dst": ref("file", parser[1]), "kind": "co_change"}
    return {"nodes": nodes, "edges": [*edges, {**pair, "weight": 4}]}


async def setup(
    cloud: Cloud, policy: str | None, *, with_graph: bool = True, parser: tuple[str, str] = PARSER
) -> dict[str, Any]:
    """Two workers, the graph (uploaded by worker 1), the policy, and tasks A, B, C queued
    in that order."""
    api, pid = cloud.api, cloud.project_id
    one = await Worker.create(api, pid, "one")
    two = await Worker.create(api, pid, "two")
    earlier_parser = await task(api, pid, "parser crashes on an empty file", "backlog")
    earlier_docs = await task(api, pid, "docs: rebuild the index page", "backlog")
    if with_graph:
        url = f"/worker/projects/{pid}/graph"
        (await one.api.post(url, graph(earlier_parser, earlier_docs, parser))).ok()
    if policy is not None:
        got = (await api.patch(f"/projects/{pid}", {"dispatch_overlap": policy})).ok()
        assert got["dispatch_overlap"] == policy
    a = await task(api, pid, "fix the parser crash")
    b = await task(api, pid, "parser: handle empty input")
    c = await task(api, pid, "update the docs index")
    return {"api": api, "one": one, "two": two, "a": a, "b": b, "c": c}


async def overlap_events(api: Api, task_id: int) -> list[dict[str, Any]]:
    return [e for e in await timeline(api, task_id) if e["kind"] == "overlap"]


async def finish(api: Api, worker: Worker, claim: dict[str, Any]) -> None:
    for status in ("running", "awaiting_review", "verification"):
        (await worker.status(claim, status)).ok()
    (await api.post(f"/tasks/{claim['task']['id']}/approve")).ok()


async def test_avoid_passes_over_the_overlapping_task_until_the_overlap_is_gone(
    cloud: Cloud,
) -> None:
    s = await setup(cloud, None)  # avoid is the default
    api, one, two = s["api"], s["one"], s["two"]
    first = (await one.claim()).ok()
    assert first["task"]["id"] == s["a"]
    second = (await two.claim()).ok()
    assert second["task"]["id"] == s["c"], "B overlaps A on src/parser.py: C comes first"
    assert (await two.claim()).status == 204, "B stays queued while A is held"
    assert (await api.get(f"/tasks/{s['b']}")).ok()["status"] == "queued"
    await finish(api, one, first)
    third = (await two.claim()).ok()
    assert third["task"]["id"] == s["b"]
    assert await overlap_events(api, s["b"]) == []


async def test_warn_hands_it_out_and_records_the_overlap(cloud: Cloud) -> None:
    s = await setup(cloud, "warn")
    api, one, two = s["api"], s["one"], s["two"]
    assert (await one.claim()).ok()["task"]["id"] == s["a"]
    assert (await two.claim()).ok()["task"]["id"] == s["b"]
    (event,) = await overlap_events(api, s["b"])
    (overlap,) = event["data"]["overlaps"]
    assert overlap["task_id"] == s["a"]
    assert "src/parser.py" in overlap["files"]
    assert event["actor"] == "system"
    # C overlaps neither A nor B: no event.
    assert (await two.claim()).ok()["task"]["id"] == s["c"]
    assert await overlap_events(api, s["c"]) == []


async def test_ignore_is_todays_dispatch(cloud: Cloud) -> None:
    s = await setup(cloud, "ignore")
    api, one, two = s["api"], s["one"], s["two"]
    assert (await one.claim()).ok()["task"]["id"] == s["a"]
    assert (await two.claim()).ok()["task"]["id"] == s["b"]
    assert await overlap_events(api, s["b"]) == []


async def test_without_a_graph_nothing_changes(cloud: Cloud) -> None:
    s = await setup(cloud, "avoid", with_graph=False)
    assert (await s["one"].claim()).ok()["task"]["id"] == s["a"]
    assert (await s["two"].claim()).ok()["task"]["id"] == s["b"]


async def test_a_task_asked_for_by_id_is_handed_out_with_its_overlap(cloud: Cloud) -> None:
    """``locus run --task B`` is a person's explicit choice: avoid does not refuse it."""
    s = await setup(cloud, "avoid")
    api, one, two = s["api"], s["one"], s["two"]
    assert (await one.claim()).ok()["task"]["id"] == s["a"]
    got = (await two.api.post("/worker/claim", {"wait_seconds": 0, "task_id": s["b"]})).ok()
    assert got["task"]["id"] == s["b"]
    (event,) = await overlap_events(api, s["b"])
    assert event["data"]["overlaps"][0]["task_id"] == s["a"]


async def test_a_text_edit_changes_the_footprint(cloud: Cloud) -> None:
    """The cached footprint is keyed by the task's text: once B no longer speaks of the
    parser, it no longer overlaps A."""
    s = await setup(cloud, "avoid")
    api, one, two = s["api"], s["one"], s["two"]
    assert (await one.claim()).ok()["task"]["id"] == s["a"]
    assert (await two.claim()).ok()["task"]["id"] == s["c"]
    assert (await two.claim()).status == 204
    (await api.patch(f"/tasks/{s['b']}", {"title": "document the readme badges"})).ok()
    assert (await two.claim()).ok()["task"]["id"] == s["b"]


@pytest.mark.parametrize("bad", ["sometimes", 3, None])
async def test_a_bad_policy_is_a_422_naming_the_field(cloud: Cloud, bad: Any) -> None:
    reply = await cloud.api.patch(f"/projects/{cloud.project_id}", {"dispatch_overlap": bad})
    if bad is None:  # null means "leave it as it is", like the other fields
        assert reply.ok()["dispatch_overlap"] == "avoid"
        return
    assert reply.status == 422
    text = str(reply.body)
    assert "dispatch_overlap" in text and "avoid" in text


async def test_a_graph_upload_changes_the_footprints(cloud: Cloud) -> None:
    """The cached model is keyed by the graph's version: once the upload no longer says an
    earlier task touched the parser, "parser" is a path word alone and B overlaps nothing."""
    s = await setup(cloud, "avoid")
    one, two = s["one"], s["two"]
    assert (await one.claim()).ok()["task"]["id"] == s["a"]
    assert (await two.claim()).ok()["task"]["id"] == s["c"]
    assert (await two.claim()).status == 204
    files = [{"kind": "file", "key": path} for path in (*PARSER, "docs/index.md")]
    url = f"/worker/projects/{cloud.project_id}/graph"
    (await one.api.post(url, {"nodes": files, "edges": []})).ok()
    assert (await two.claim()).ok()["task"]["id"] == s["b"]


async def test_a_task_held_meanwhile_stops_the_chosen_claim(cloud: Cloud) -> None:
    """The race the avoid path closes within one statement: a claim chose C as overlapping
    none of the held tasks it read ({A}); if D became held before the claim ran, the claim
    takes nothing (and claims.claim looks again) rather than C, which may overlap D."""
    s = await setup(cloud, "avoid")
    api, one, two = s["api"], s["one"], s["two"]
    d = await task(api, cloud.project_id, "update the docs index page title")
    assert (await one.claim()).ok()["task"]["id"] == s["a"]
    db = cloud.app[SERVICES].db
    me = WorkerIdentity(two.id or 0, cloud.project_id, ())
    free = s["c"]
    seen = [s["a"]]  # what the claim read as held
    (await one.api.post("/worker/claim", {"wait_seconds": 0, "task_id": d})).ok()
    assert await claims._claim(db, me, 60.0, False, free, (), held=seen) is None
    assert (await api.get(f"/tasks/{free}")).ok()["status"] == "queued"
    # Read again, the held tasks are {A, D}: C (the docs index) overlaps D, B overlaps A.
    assert (await two.claim()).status == 204
    row = await claims._claim(db, me, 60.0, False, free, (), held=[s["a"], d])
    assert row is not None and row.id == free  # the statement itself takes it when unchanged


async def test_workers_claiming_at_once_get_at_most_one_of_overlapping_tasks(
    cloud: Cloud,
) -> None:
    """Nothing held yet, and six workers claim at the same moment (a sprint just started):
    one of the five parser tasks is handed out, the docs task to another worker, and nothing
    to the rest — never two parser tasks at once (PostgreSQL: the project's claim lock)."""
    s = await setup(cloud, "avoid")
    api, pid = s["api"], cloud.project_id
    parser = {s["a"], s["b"]} | {await task(api, pid, f"parser: handle case {n}") for n in range(3)}
    workers = [s["one"], s["two"], *[await Worker.create(api, pid, f"w{n}") for n in range(4)]]
    for _ in range(3):  # three rounds, each racing from an empty start
        replies = await asyncio.gather(*(worker.claim() for worker in workers))
        got = [r.ok()["task"]["id"] for r in replies if r.status == 200]
        assert len(set(got) & parser) == 1, got
        assert s["c"] in got
        for reply in replies:
            if reply.status == 200:  # give it back: the next round starts from nothing held
                given = reply.ok()["task"]["id"]
                (await api.post(f"/tasks/{given}/cancel")).ok()
                (await api.post(f"/tasks/{given}/retry")).ok()


@pytest.mark.parametrize("template", ["postgresql"], indirect=True)
async def test_a_claim_waits_for_a_racing_claim_of_the_project_and_sees_what_it_took(
    cloud: Cloud,
) -> None:
    """PostgreSQL: another claim of the project has taken A but not committed (its
    transaction holds the project's claim lock). A second worker's claim waits for it, then
    sees A held and takes C — not B, which overlaps A (without the lock it would read A as
    still queued and nothing as held)."""
    s = await setup(cloud, "avoid")
    db = cloud.app[SERVICES].db
    two = WorkerIdentity(s["two"].id or 0, cloud.project_id, ())
    async with db.engine.connect() as racing:
        await racing.begin()
        await racing.execute(claims._PROJECT_LOCK, {"p_project": cloud.project_id})
        await racing.execute(tasks.update().where(tasks.c.id == s["a"]).values(status="claimed"))
        waiting = asyncio.create_task(claims.claim(db, two, 60.0))
        await asyncio.sleep(0.3)  # (only lets the claim reach the lock; no outcome rides on it)
        await racing.commit()
    row = await asyncio.wait_for(waiting, 60)
    assert row is not None and row.id == s["c"], row


async def test_a_passed_over_task_is_handed_to_a_waiting_worker_once_the_overlap_ends(
    cloud: Cloud,
) -> None:
    """Under avoid, B waits while A is held; a worker long-polling meanwhile is woken when A
    ends (a wake-up counted on /metrics, not timed) and gets B."""
    s = await setup(cloud, "avoid")
    api, one, two = s["api"], s["one"], s["two"]
    first = (await one.claim()).ok()
    assert first["task"]["id"] == s["a"]
    assert (await two.claim()).ok()["task"]["id"] == s["c"]
    three = await Worker.create(api, cloud.project_id, "three")
    before = await wakeups(api)
    poll = asyncio.create_task(three.claim(wait=30))
    await wait_for_waiters(api, 1)
    await finish(api, one, first)  # A leaves the held statuses
    got = (await asyncio.wait_for(poll, 60)).ok()
    assert got["task"]["id"] == s["b"]
    assert (await wakeups(api))["queued"] > before["queued"]  # woken, not timed out
