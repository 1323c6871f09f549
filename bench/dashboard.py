"""Dashboard benchmarks: ``.venv/bin/python -m bench.dashboard [--json]`` (from the repo root).

A real ``locus-cloud serve`` on a fresh SQLite file runs as a separate process (started the
way the dispatch bench starts it, ``bench/cloud.py``), so its RSS, open files and CPU time can
be read from ``/proc``. Its demo project is filled through the REST API with 2,000 tasks spread
over every status (claims and status reports by four workers, approvals, cancels), labels and
two sprints. Then, signed in through the real ``/login`` form:

* **The board** (``GET /projects/{id}``, every card server-rendered): latency p50/p95/max over
  N requests after a warm-up, next to baselines measured the same way in the same run — one
  REST page (``GET /api/v1/projects/{id}/tasks?limit=200``), all the tasks over REST (every
  page, following the cursor), the columns alone (what the live refresh fetches) and
  ``/healthz`` — the server's CPU per board, and the page's size (bar: p50 ≤ 150 ms).
* **Idle live connections**: 500 clients hold the board's SSE stream
  (``/projects/{id}/live?after=<the page's cursor>``, one per open board page). Server RSS and
  open file descriptors before and with them (per-connection cost), server CPU over an idle
  window that spans one keepalive period, the fan-out latency of one status change (``POST
  /tasks/{id}/queue`` → the ``status`` event at every client) and ``/healthz`` and the board
  while the connections are open. Then the refresh the board's script makes after a ``status``
  event (each page fetches the one card the event names) is measured for every open page.

Each figure is printed with its target and PASS/MISS (exit 1 on a MISS). Every wait has a
deadline, only 127.0.0.1 is used, and the server is stopped at the end (also on errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bench import proc
from bench.cloud import Cloud, make_workers, running_cloud
from bench.figures import (
    Figure,
    cancelled_on_sigterm,
    finish,
    machine,
    output_flags,
    parser_for,
    progress,
    result_of,
    table,
    work_directory,
)
from bench.stats import Samples, percentile
from cloud_api.config import CloudSettings
from cloud_api.dashboard.session import CSRF_FIELD, SESSION_COOKIE
from cloud_api.store.tables import task_events
from tests.support.client import Api, Worker

BOARD_P50_MS = 150.0
LEASE_SECONDS = 3600.0  # longer than the run: no lease expires while the board is measured
#: The cloud's SSE keepalive: a parked stream wakes, reads the database and writes a comment
#: this often (the server runs with the default).
KEEPALIVE_S: float = CloudSettings.model_fields["sse_keepalive_seconds"].default
SEED_CONCURRENCY = 8
CONNECT_CONCURRENCY = 32
WORKERS = 4
VERBS = ("Fix", "Add", "Speed up", "Document", "Test", "Refactor")
THINGS = ("parser", "board", "login form", "exporter", "scheduler", "cache", "CLI", "API")
LABELS = ("api", "ui", "bug", "docs", "infra", "perf", "security", "tests", "db", "cli")
#: Where 2,000 tasks sit on a busy board (shares of --tasks; the rest is backlog).
SPREAD = {
    "queued": 0.25,
    "claimed": 0.03,
    "running": 0.05,
    "needs_input": 0.02,
    "awaiting_review": 0.03,
    "verification": 0.05,
    "done": 0.12,
    "failed": 0.03,
    "cancelled": 0.02,
}
#: The worker's status reports that lead from claimed to each status (done: then approved).
PATHS = {
    "claimed": [],
    "running": ["running"],
    "needs_input": ["running", "needs_input"],
    "awaiting_review": ["running", "awaiting_review"],
    "verification": ["running", "awaiting_review", "verification"],
    "done": ["running", "awaiting_review", "verification"],
    "failed": ["running", "failed"],
}
MEMBER_EMAIL = "reader@bench.example.com"
MEMBER_PASSWORD = "correct horse battery staple"
HEALTHZ_SAMPLES = 50
CONNECT_TIMEOUT_S = 120.0
FANOUT_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 120.0


# --- /proc ---------------------------------------------------------------------------------


@dataclass
class ProcSample:
    at: float
    rss_kb: int
    cpu_s: float
    fds: int
    threads: int


def proc_sample(pid: int) -> ProcSample:
    """RSS (``VmRSS``), CPU time (utime + stime, all threads), open fds and threads."""
    fields = proc.status(Path(f"/proc/{pid}/status"))
    return ProcSample(
        at=time.monotonic(),
        rss_kb=int(fields["VmRSS"].split()[0]),
        cpu_s=proc.cpu_seconds(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(fields["Threads"]),
    )


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` (the server, started after this,
    inherits it); an error if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RuntimeError(
                f"{needed} open files are needed and the hard limit is {hard}:"
                " raise it (ulimit -Hn) or use fewer --connections"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        soft = needed
    return soft


# --- the board's data ----------------------------------------------------------------------


def spread(total: int) -> dict[str, int]:
    """How many of ``total`` tasks end in each status (backlog takes the rest)."""
    counts = {status: int(total * share) for status, share in SPREAD.items()}
    return {"backlog": total - sum(counts.values()), **counts}


@dataclass
class Seeded:
    counts: dict[str, int]
    backlog: list[int]  # ids of the backlog tasks, for the status changes of the fan-out
    sprints: int
    events: int
    seconds: float


async def _claim(worker: Worker, task_id: int) -> dict[str, Any]:
    claim: dict[str, Any] = (
        await worker.api.post("/worker/claim", {"wait_seconds": 0, "task_id": task_id})
    ).ok()
    return claim


async def seed(cloud: Cloud, admin: Api, total: int) -> Seeded:
    """Two sprints, four workers and ``total`` tasks through the REST API, moved on by the
    workers' claims and status reports and the admin's approvals and cancels until they sit
    in the statuses of :func:`spread` (setup, not measured)."""
    started = time.monotonic()
    project = cloud.project_id
    sprints = [
        (await admin.post(f"/projects/{project}/sprints", {"name": name, "state": state})).ok(201)
        for name, state in (("Sprint 14", "active"), ("Sprint 15", "planned"))
    ]
    workers = await make_workers(admin, project, WORKERS, "board")
    rng = random.Random(2000)  # the same board every run
    counts = spread(total)
    plan = [status for status, n in counts.items() for _ in range(n)]
    rng.shuffle(plan)
    bodies = [
        {
            "title": f"{rng.choice(VERBS)} the {rng.choice(THINGS)} ({i})",
            "description": f"Task {i} of the dashboard benchmark: a few lines of what to do. " * 3,
            "priority": rng.choice([0, 0, 0, 1, 2, 5, 10, -1]),
            "labels": rng.sample(LABELS, rng.choice([0, 1, 1, 2, 3])),
            "sprint_id": rng.choice([None, None, *(s["id"] for s in sprints)]),
            "status": "queued" if status in PATHS or status == "queued" else "backlog",
        }
        for i, status in enumerate(plan)
    ]
    gate = asyncio.Semaphore(SEED_CONCURRENCY)
    backlog: list[int] = []

    async def one(i: int, status: str) -> None:
        async with gate:
            tid = (await admin.post(f"/projects/{project}/tasks", bodies[i])).ok(201)["id"]
            if status == "backlog":
                backlog.append(tid)
            elif status == "cancelled":
                (await admin.post(f"/tasks/{tid}/cancel", {})).ok()
            elif status in PATHS:
                worker = workers[i % len(workers)]
                claim = await _claim(worker, tid)
                for step in PATHS[status]:
                    extra = {"question": "Which way?"} if step == "needs_input" else {}
                    (await worker.status(claim, step, **extra)).ok()
                if status == "done":
                    (await admin.post(f"/tasks/{tid}/approve", {})).ok()

    await asyncio.gather(*(one(i, status) for i, status in enumerate(plan)))
    async with cloud.db.read() as conn:
        events = (
            await conn.execute(select(func.count()).where(task_events.c.project_id == project))
        ).scalar_one()
    return Seeded(counts, sorted(backlog), len(sprints), events, time.monotonic() - started)


# --- signing in ------------------------------------------------------------------------------


async def add_member(admin: Api, project_id: int) -> None:
    """A person who works on the project (role member: the cards carry their move buttons)."""
    body = {"email": MEMBER_EMAIL, "name": "Board Reader", "password": MEMBER_PASSWORD}
    (await admin.post("/users", body)).ok(201)
    org = (await admin.get(f"/projects/{project_id}")).ok()["org_id"]
    member = {"email": MEMBER_EMAIL, "role": "member"}
    (await admin.post(f"/orgs/{org}/members", member)).ok(201)


async def sign_in(url: str, email: str, password: str) -> str:
    """The browser's way in: GET /login (pre-session cookie, CSRF field), POST the form; the
    session cookie it sets is returned."""
    jar = aiohttp.CookieJar(unsafe=True)  # the default jar keeps no cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(f"{url}/login") as resp:
            html = await resp.text()
        found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
        if found is None:
            raise RuntimeError("the sign-in page has no CSRF field")
        form = {CSRF_FIELD: found.group(1), "email": email, "password": password, "next": "/"}
        async with browser.post(f"{url}/login", data=form, allow_redirects=False) as resp:
            if resp.status != 303:
                raise RuntimeError(f"sign-in answered {resp.status}: {await resp.text()}")
        for cookie in jar:
            if cookie.key == SESSION_COOKIE:
                return cookie.value
    raise RuntimeError("sign-in set no session cookie")


def browser_headers(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={cookie}", "Accept": "text/html"}


# --- requests and their timings --------------------------------------------------------------


@dataclass
class Timings(Samples):
    """Wall times (ms, request sent → whole body read) and the server's CPU time meanwhile."""

    server_cpu_s: float = 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU per request (summed over the requests: /proc counts in 10-ms ticks)."""
        return self.server_cpu_s / len(self.samples_ms) * 1000 if self.samples_ms else 0.0


Probe = Callable[[], Awaitable[bytes]]


async def timed(pid: int, probe: Probe, into: Timings) -> bytes:
    cpu = proc_sample(pid).cpu_s
    started = time.perf_counter()
    body = await probe()
    into.samples_ms.append((time.perf_counter() - started) * 1000)
    into.server_cpu_s += proc_sample(pid).cpu_s - cpu
    return body


async def _get(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bytes:
    async with session.get(url, headers=headers, allow_redirects=False) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {url} answered {resp.status}: {body[:300]!r}")
        return body


def getter(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Probe:
    async def probe() -> bytes:
        return await _get(session, url, headers)

    return probe


def every_page(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Probe:
    """Every task over REST, page after page of 200 following the cursor (a JSON list of the
    pages comes back)."""

    async def probe() -> bytes:
        pages: list[bytes] = []
        after: int | None = 0
        while after is not None:
            pages.append(await _get(session, f"{url}?limit=200&after={after}", headers))
            after = json.loads(pages[-1])["next_cursor"]
        return b"[" + b",".join(pages) + b"]"

    return probe


# --- 1. the board ----------------------------------------------------------------------------


@dataclass
class Board:
    html_bytes: int
    cards: int
    columns: dict[str, int]
    live_after: int
    rest_tasks: int
    rest_pages: int
    rest_bytes: int
    timings: dict[str, Timings]


def parse_board(html: str) -> tuple[int, dict[str, int], int]:
    """The cards on the page, the count in each column's heading, the live stream's cursor."""
    cards = len(re.findall(r'<li class="card[ "]', html))
    columns = {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', html)}
    found = re.search(r'data-live="/projects/\d+/live\?after=(\d+)"', html)
    if found is None:
        raise RuntimeError("the board has no live stream URL")
    return cards, columns, int(found.group(1))


async def measure_board(cloud: Cloud, cookie: str, reps: int, warmup: int) -> Board:
    pid, project = cloud.process.pid, cloud.project_id
    browser = browser_headers(cookie)
    bearer = {"Authorization": f"Bearer {cloud.admin_token}"}
    tasks_url = f"{cloud.url}/api/v1/projects/{project}/tasks"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        probes: dict[str, Probe] = {
            "board": getter(session, f"{cloud.url}/projects/{project}", browser),
            "columns": getter(session, f"{cloud.url}/projects/{project}/columns?", browser),
            "rest_page": getter(session, f"{tasks_url}?limit=200", bearer),
            "rest_all": every_page(session, tasks_url, bearer),
            "healthz": getter(session, f"{cloud.url}/healthz", {}),
        }
        for _ in range(warmup):  # imports, template compilation, caches, the allocator
            for probe in probes.values():
                await probe()
        timings = {name: Timings() for name in probes}
        last: dict[str, bytes] = {}
        for rep in range(reps):  # interleaved, so drift on the machine hits every figure alike
            order = list(probes.items())
            for name, probe in order if rep % 2 == 0 else order[::-1]:
                last[name] = await timed(pid, probe, timings[name])
    cards, columns, after = parse_board(last["board"].decode())
    pages = json.loads(last["rest_all"])
    return Board(
        html_bytes=len(last["board"]),
        cards=cards,
        columns=columns,
        live_after=after,
        rest_tasks=sum(len(p["items"]) for p in pages),
        rest_pages=len(pages),
        rest_bytes=len(last["rest_all"]),
        timings=timings,
    )


# --- 2. live connections -------------------------------------------------------------------


@dataclass
class Round:
    """One status change, when each client saw its ``status`` event and (with ``refreshers``)
    when the first ``refreshers`` clients had fetched the changed card."""

    task_id: int
    expected: int  # clients that must see it
    refresh: Probe | None = None
    refreshers: int = 0
    started: float = 0.0
    post_ms: float = 0.0
    cpu_s: float = 0.0
    seen: dict[int, float] = field(default_factory=dict)  # client → perf_counter at receipt
    first: asyncio.Event = field(default_factory=asyncio.Event)
    everyone: asyncio.Event = field(default_factory=asyncio.Event)
    refreshes: list[asyncio.Task[float]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # every client and refresh

    def latencies_ms(self) -> list[float]:
        return [(at - self.started) * 1000 for at in self.seen.values()]


class Listener:
    """One open board page's SSE connection. It reads frames, counts keepalives, notes when
    it sees the current round's event and, if the round asks, fetches the card it names (what
    the board's script does on every ``status`` event)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.connected = asyncio.Event()
        self.keepalives = 0
        self.events = 0
        self.round: Round | None = None
        self.failed: str | None = None

    async def run(self, session: aiohttp.ClientSession, url: str, cookie: str) -> None:
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}", "Accept": "text/event-stream"}
        try:
            async with session.get(url, headers=headers, allow_redirects=False) as resp:
                if resp.status != 200 or resp.content_type != "text/event-stream":
                    raise RuntimeError(
                        f"the live stream answered {resp.status} {resp.content_type}"
                    )
                await self._read(resp.content)
        except (aiohttp.ClientError, RuntimeError, ValueError, KeyError) as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
        finally:
            self.connected.set()  # a failure to connect must not leave the connect wait hanging

    async def _read(self, content: aiohttp.StreamReader) -> None:
        kind, data = "", ""
        async for raw in content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("retry:"):
                self.connected.set()  # the server writes it once the stream is subscribed
            elif line.startswith(": keepalive"):
                self.keepalives += 1
            elif line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif not line and kind:
                self.events += 1
                self._seen(kind, data, time.perf_counter())
                kind, data = "", ""
        raise RuntimeError("the server closed the live stream")

    def _seen(self, kind: str, data: str, at: float) -> None:
        current = self.round
        if current is None or kind != "status":
            return
        event = json.loads(data)
        if event["task_id"] != current.task_id or event["to_status"] != "queued":
            return
        current.seen[self.index] = at
        current.first.set()
        if current.refresh is not None and self.index < current.refreshers:
            current.refreshes.append(asyncio.create_task(_refreshed(current.refresh)))
        if len(current.seen) == current.expected:
            current.everyone.set()


async def _refreshed(probe: Probe) -> float:
    await probe()
    return time.perf_counter()


async def fan_out(admin: Api, pid: int, listeners: list[Listener], current: Round) -> Round:
    """Queue one backlog task; wait until every client has seen its ``status`` event (and the
    round's refreshes are done)."""
    for listener in listeners:
        listener.round = current
    cpu = proc_sample(pid).cpu_s
    current.started = time.perf_counter()
    (await admin.post(f"/tasks/{current.task_id}/queue", {})).ok()
    current.post_ms = (time.perf_counter() - current.started) * 1000
    async with asyncio.timeout(FANOUT_TIMEOUT_S):
        await current.everyone.wait()
        await asyncio.gather(*current.refreshes)
    current.cpu_s = proc_sample(pid).cpu_s - cpu
    current.done.set()
    for listener in listeners:
        listener.round = None
    return current


@dataclass
class Live:
    clients: int
    connected: int
    connect_s: float
    before: ProcSample
    opened: ProcSample
    after_idle: ProcSample
    closed: ProcSample
    close_s: float
    idle_s: float
    idle_cpu_s: float
    idle_keepalives: int
    idle_rss_kb_max: int
    rounds: list[Round]
    healthz: Timings
    board: Timings
    refresh: Round | None
    refresh_healthz: Timings
    failures: list[str]

    @property
    def fanout_ms(self) -> list[float]:
        """Every client's latency in every round."""
        return [ms for r in self.rounds for ms in r.latencies_ms()]

    @property
    def last_ms(self) -> list[float]:
        """Per round: until the last client had the event."""
        return [max(r.latencies_ms()) for r in self.rounds if r.seen]


async def _open(
    session: aiohttp.ClientSession, url: str, cookie: str, listeners: list[Listener]
) -> list[asyncio.Task[None]]:
    """Connect every listener, ``CONNECT_CONCURRENCY`` at a time; returns their readers."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    readers: list[asyncio.Task[None]] = []

    async def one(listener: Listener) -> None:
        async with gate:
            readers.append(asyncio.create_task(listener.run(session, url, cookie)))
            await listener.connected.wait()

    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.gather(*(one(listener) for listener in listeners))
    except BaseException:
        await _close(readers)
        raise
    return readers


async def _close(readers: list[asyncio.Task[None]]) -> None:
    for reader in readers:
        reader.cancel()  # leaving ``session.get`` closes the connection
    await asyncio.gather(*readers, return_exceptions=True)


async def measure_live(
    cloud: Cloud, cookie: str, after: int, backlog: list[int], args: argparse.Namespace
) -> Live:
    pid, project = cloud.process.pid, cloud.project_id
    n = args.connections
    url = f"{cloud.url}/projects/{project}/live?after={after}"
    browser = browser_headers(cookie)
    before = proc_sample(pid)
    listeners = [Listener(i) for i in range(n)]
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=None)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as live,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as other,
    ):
        admin = Api(other, cloud.url, cloud.admin_token)
        health = getter(other, f"{cloud.url}/healthz", {})
        progress(f"live: opening {n} SSE connections")
        started = time.monotonic()
        readers = await _open(live, url, cookie, listeners)
        try:
            connect_s = time.monotonic() - started
            failures = [f"client {x.index}: {x.failed}" for x in listeners if x.failed]
            listeners = [x for x in listeners if not x.failed]
            opened = proc_sample(pid)
            rounds: list[Round] = []
            for i in range(args.rounds):
                progress(f"live: status change {i + 1}/{args.rounds} → {len(listeners)} clients")
                change = Round(backlog[i], len(listeners))
                rounds.append(await fan_out(admin, pid, listeners, change))

            # Every stream is parked now: it wrote the last round's event and waits again.
            # Each wakes once per KEEPALIVE_S for a keepalive (and a read of the database).
            progress(f"live: idle window, {args.idle_seconds:g} s")
            keepalives = sum(x.keepalives for x in listeners)
            samples = [proc_sample(pid)]
            deadline = samples[0].at + args.idle_seconds
            while (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(1.0, left))
                samples.append(proc_sample(pid))
            idle_keepalives = sum(x.keepalives for x in listeners) - keepalives

            progress(f"live: /healthz and the board with {n} connections open")
            healthz, board = Timings(), Timings()
            page = getter(other, f"{cloud.url}/projects/{project}", browser)
            for _ in range(HEALTHZ_SAMPLES):
                await timed(pid, health, healthz)
            for _ in range(max(3, args.reps // 2)):
                await timed(pid, page, board)

            refresh: Round | None = None
            refresh_healthz = Timings()
            refreshers = n if args.refreshers is None else min(args.refreshers, n)
            if refreshers:
                progress(f"live: a status change after which {refreshers} pages fetch its card")
                changed = backlog[args.rounds]
                card = getter(other, f"{cloud.url}/projects/{project}/cards/{changed}?", browser)
                refresh = Round(changed, len(listeners), card, refreshers)

                async def during() -> None:  # /healthz, one after the other, meanwhile
                    assert refresh is not None
                    await refresh.first.wait()
                    await timed(pid, health, refresh_healthz)
                    while not refresh.done.is_set():
                        await timed(pid, health, refresh_healthz)

                probe = asyncio.create_task(during())
                await fan_out(admin, pid, listeners, refresh)
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await probe
        finally:
            progress("live: closing the connections")
            await _close(readers)
    closing = time.monotonic()
    while (closed := proc_sample(pid)).fds > before.fds:  # the server lets go of every socket
        if time.monotonic() - closing > CLOSE_TIMEOUT_S:  # (polled: no event across processes)
            raise RuntimeError(f"the server still has {closed.fds} fds open, {before.fds} before")
        await asyncio.sleep(0.02)
    return Live(
        clients=n,
        connected=n - len(failures),
        connect_s=connect_s,
        before=before,
        opened=opened,
        after_idle=samples[-1],
        closed=closed,
        close_s=time.monotonic() - closing,
        idle_s=samples[-1].at - samples[0].at,
        idle_cpu_s=samples[-1].cpu_s - samples[0].cpu_s,
        idle_keepalives=idle_keepalives,
        idle_rss_kb_max=max(s.rss_kb for s in samples),
        rounds=rounds,
        healthz=healthz,
        board=board,
        refresh=refresh,
        refresh_healthz=refresh_healthz,
        failures=failures,
    )


# --- figures -------------------------------------------------------------------------------


def board_figures(board: Board, tasks: int) -> list[Figure]:
    t = board.timings
    g = f"board, {tasks:,} tasks"
    page, every = t["rest_page"], t["rest_all"]
    return [
        Figure(g, "board_p50_ms", "GET /projects/{id} (the board), p50", t["board"].p50, "ms",
               f"≤ {BOARD_P50_MS:g} ms", t["board"].p50 <= BOARD_P50_MS),
        Figure(g, "board_p95_ms", "the board, p95", t["board"].p95, "ms", "", None),
        Figure(g, "board_max_ms", "the board, max", t["board"].max, "ms", "", None),
        Figure(g, "board_cpu_ms", "server CPU per board, mean", t["board"].cpu_ms, "ms", "", None),
        Figure(g, "board_kb", "board HTML", board.html_bytes / 1024, "kB", "", None),
        Figure(g, "columns_p50_ms", "the columns alone (reconnect refresh), p50", t["columns"].p50,
               "ms", "", None),
        Figure(g, "rest_page_p50_ms", "REST: one page of 200 tasks, p50", page.p50, "ms", "",
               None),
        Figure(g, "rest_all_p50_ms", f"REST: all tasks, {board.rest_pages} pages, p50",
               every.p50, "ms", "", None),
        Figure(g, "rest_all_kb", "REST: all tasks, JSON", board.rest_bytes / 1024, "kB", "",
               None),
        Figure(g, "healthz_p50_ms", "GET /healthz, p50", t["healthz"].p50, "ms", "", None),
        Figure(g, "ratio_board_rest_page", "ratio board / one REST page, p50",
               t["board"].p50 / page.p50, "x", "", None),
        Figure(g, "ratio_board_rest_all", "ratio board / all tasks over REST, p50",
               t["board"].p50 / every.p50, "x", "", None),
    ]  # fmt: skip


def live_figures(live: Live) -> list[Figure]:
    n = live.clients
    g = f"live, {n} SSE connections"
    mb = 1024
    received = sum(len(r.seen) for r in live.rounds)
    expected = n * len(live.rounds)
    figures = [
        Figure(g, "live_connected", "connections open at once", live.connected, "",
               f"= {n}", live.connected == n),
        Figure(g, "live_connect_s", f"opening them ({CONNECT_CONCURRENCY} at a time)",
               live.connect_s, "s", "", None),
        Figure(g, "rss_before_mb", "server RSS before", live.before.rss_kb / mb, "MB", "", None),
        Figure(g, "rss_open_mb", "server RSS with them open, max", max(
            live.opened.rss_kb, live.idle_rss_kb_max) / mb, "MB", "", None),
        Figure(g, "rss_per_connection_kb", "server RSS per connection",
               (live.idle_rss_kb_max - live.before.rss_kb) / n, "kB", "", None),
        Figure(g, "fds_before", "server open fds before", live.before.fds, "", "", None),
        Figure(g, "fds_open", "server open fds with them open", live.opened.fds, "", "", None),
        Figure(g, "threads_open", "server threads with them open", live.opened.threads, "", "",
               None),
        Figure(g, "idle_cpu_pct", f"server CPU idle, {live.idle_s:.0f} s window, % of a core",
               live.idle_cpu_s / live.idle_s * 100 if live.idle_s else 0.0, "%", "", None),
        Figure(g, "idle_keepalives", "keepalives received in the window", live.idle_keepalives,
               "", "", None),
        Figure(g, "fanout_received", f"status events received ({len(live.rounds)} changes)",
               received, "", f"= {expected}", received == expected),
        Figure(g, "fanout_p50_ms", "change → event at a client, p50", percentile(
            live.fanout_ms, 50), "ms", "", None),
        Figure(g, "fanout_p95_ms", "change → event at a client, p95", percentile(
            live.fanout_ms, 95), "ms", "", None),
        Figure(g, "fanout_last_ms", "change → event at the last client, median of changes",
               statistics.median(live.last_ms), "ms", "", None),
        Figure(g, "fanout_max_ms", "change → event at the last client, max",
               max(live.last_ms), "ms", "", None),
        Figure(g, "fanout_post_ms", "the change itself (POST /tasks/{id}/queue), median",
               statistics.median(r.post_ms for r in live.rounds), "ms", "", None),
        Figure(g, "fanout_cpu_ms_per_connection", "server CPU per change, per connection",
               statistics.median(r.cpu_s for r in live.rounds) / n * 1000, "ms", "", None),
        Figure(g, "healthz_open_p50_ms", "GET /healthz with them open, p50", live.healthz.p50,
               "ms", "", None),
        Figure(g, "healthz_open_max_ms", "GET /healthz with them open, max", live.healthz.max,
               "ms", "", None),
        Figure(g, "board_open_p50_ms", "the board with them open, p50", live.board.p50, "ms",
               "", None),
        Figure(g, "close_s", "closed → server fds back to before", live.close_s, "s", "", None),
    ]  # fmt: skip
    refresh = live.refresh
    if refresh is not None:
        k = refresh.refreshers
        done = [(at - refresh.started) * 1000 for at in (t.result() for t in refresh.refreshes)]
        g = f"live, {k} of them refresh"
        figures += [
            Figure(g, "refresh_count", "pages that fetched the changed card", len(done), "", "",
                   None),
            Figure(g, "refresh_last_ms", "change → the last page has the card", max(done), "ms",
                   "", None),
            Figure(g, "refresh_p50_ms", "change → a page has the card, p50", percentile(done, 50), "ms",
                   "", None),
            Figure(g, "refresh_cpu_s", "server CPU for the change and the refreshes",
                   refresh.cpu_s, "s", "", None),
            Figure(g, "refresh_healthz_p50_ms", "GET /healthz meanwhile, p50",
                   live.refresh_healthz.p50, "ms", "", None),
            Figure(g, "refresh_healthz_max_ms", "GET /healthz meanwhile, max",
                   live.refresh_healthz.max, "ms", "", None),
        ]  # fmt: skip
    return figures


# --- the run -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.dashboard", __doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks on the board (2000)")
    parser.add_argument(
        "--connections", type=int, default=500, help="SSE connections held at once (500)"
    )
    parser.add_argument("--reps", type=int, default=30, help="measured requests per figure (30)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up rounds, not counted (5)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=KEEPALIVE_S + 5,
        help=f"idle window with the connections open ({KEEPALIVE_S + 5:g}: one keepalive round)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="status changes fanned out to every client (5)"
    )
    parser.add_argument(
        "--refreshers",
        type=int,
        default=None,
        help="clients that fetch the changed card after one more change, as the board's script"
        " does (default: all; 0: skip)",
    )
    output_flags(parser, "logs, db")
    args = parser.parse_args(argv)
    if args.tasks < 10 or args.connections < 1 or args.reps < 1 or args.rounds < 1:
        parser.error("--tasks must be at least 10; --connections, --reps, --rounds at least 1")
    if args.warmup < 0 or (args.refreshers or 0) < 0 or args.idle_seconds <= 0:
        parser.error("--warmup and --refreshers must be ≥ 0, --idle-seconds > 0")
    if spread(args.tasks)["backlog"] <= args.rounds + 1:
        parser.error("too few backlog tasks for --rounds: use more --tasks")
    return args


async def measure(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    fd_limit = raise_fd_limit(args.connections + 256)  # before the server starts: it inherits it
    async with running_cloud("sqlite", where, lease_seconds=LEASE_SECONDS) as cloud:
        pid = cloud.process.pid
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        ) as session:
            admin = cloud.admin(session)
            progress(f"seeding {args.tasks:,} tasks through the REST API")
            seeded = await seed(cloud, admin, args.tasks)
            await add_member(admin, cloud.project_id)
        progress(f"seeded in {seeded.seconds:.1f} s; signing in through /login as a member")
        cookie = await sign_in(cloud.url, MEMBER_EMAIL, MEMBER_PASSWORD)
        progress(f"the board: {args.warmup} warm-up + {args.reps} rounds")
        board = await measure_board(cloud, cookie, args.reps, args.warmup)
        live = await measure_live(cloud, cookie, board.live_after, seeded.backlog, args)
    figures = board_figures(board, args.tasks) + live_figures(live)
    raw = {
        "seeded": {"counts": seeded.counts, "sprints": seeded.sprints, "events": seeded.events,
                   "seconds": round(seeded.seconds, 1)},
        "board": {"cards": board.cards, "columns": board.columns, "html_bytes": board.html_bytes,
                  "rest_tasks": board.rest_tasks, "rest_pages": board.rest_pages,
                  "live_after": board.live_after,
                  "samples_ms": {k: _rounded(v.samples_ms) for k, v in board.timings.items()}},
        "live": {
            "clients": live.clients,
            "connected": live.connected,
            "fd_limit": fd_limit,
            "proc": {name: asdict(s) for name, s in (("before", live.before),
                     ("opened", live.opened), ("after_idle", live.after_idle),
                     ("closed", live.closed))},
            "rounds": [{"task_id": r.task_id, "received": len(r.seen), "post_ms": round(
                r.post_ms, 3), "cpu_s": r.cpu_s, "latencies_ms": _rounded(sorted(
                r.latencies_ms()))} for r in live.rounds],
            "refresh": None if live.refresh is None else {
                "refreshers": live.refresh.refreshers,
                "received": len(live.refresh.seen),
                "refreshed": len(live.refresh.refreshes),
            },
            "failures": live.failures[:10],
        },
        "server_pid": pid,
    }  # fmt: skip
    return {"figures": figures, "raw": raw}


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    where = Path(tempfile.mkdtemp(prefix="locus-bench-dashboard-"))
    # a SIGTERM still stops the server
    with work_directory(where, args.keep), cancelled_on_sigterm():
        measured = await measure(args, where)
    return result_of(info, args, measured["figures"], started, raw=measured["raw"])


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    raw = result["raw"]
    return table(
        f"Locus dashboard benchmark — {info['cpus']} CPUs, Python {info['python']}, SQLite",
        result,
        [
            f"seeded: {raw['seeded']['counts']} ({raw['seeded']['events']:,} events,"
            f" {raw['seeded']['seconds']:g} s)",
            f"board: {raw['board']['cards']:,} cards; REST: {raw['board']['rest_tasks']:,} tasks",
            *(f"failed: {failure}" for failure in raw["live"]["failures"]),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish(asyncio.run(run(args)), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
