"""Daemon benchmarks: ``.venv/bin/python -m bench.daemon [--json] [--quick]`` (from the repo root).

The daemon runs as a separate process (``python -m locusd.server.main serve``) whose socket,
state, configuration and data all live in a temporary directory. In one run:

* **Status round trip over the socket**: ``locus/daemon/status`` request → response through
  :class:`~locusd.cli.rpc.DaemonClient` on ``asyncio.open_unix_connection``, p50/p99 with one
  client and with 10 concurrent clients (a connection each, all calling in a loop), next to a
  baseline measured the same way in the same run: a bare asyncio server answering each
  Content-Length frame with the daemon's own status result (bar: p50 ≤ 1 ms). Also, as context,
  the same call on a daemon whose store holds 1,000 past runs.
* **Idle cost**: with 2 idle clients connected and the worker long-polling a real
  ``locus-cloud serve`` (SQLite), the daemon's RSS and CPU time from ``/proc`` over a window
  (bar: RSS ≤ 80 MB, CPU ≈ 0 %: PASS at ≤ 1 % of one core).
* **RSS after one agent run**: the same daemon runs the sample task once (``locus/runs/start``,
  the replay provider playing ``examples/fix-median.jsonl``) to its end; its RSS then (bar:
  ≤ 80 MB). The anthropic daemon's RSS after its runs (below: the SDK loaded) has the same bar.
* **Cancel latency**: a run whose agent is in ``sleep 300`` (under a marker name, through the
  real anthropic SDK against the loopback model server): ``locus/runs/cancel`` → the command's
  process is gone; and the same from the cloud (``POST /tasks/{id}/cancel`` for a task the
  daemon's worker claimed) (bar: ≤ 2 s).

Each figure is printed with its target and PASS/MISS; the exit code is 1 on a MISS. Every wait
has a deadline, only 127.0.0.1 and Unix sockets in the temp dir are used, and every process the
bench starts is stopped at the end (also on errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import proc
from bench.cloud import Cloud, running_cloud
from bench.figures import (
    Figure,
    cancelled_on_sigterm,
    finish,
    machine,
    output_flags,
    parse_sized,
    parser_for,
    progress,
    result_of,
    table,
    work_directory,
)
from bench.stats import Samples
from locusd.cli.rpc import DaemonClient
from locusd.localdb import Database
from locusd.protocol.base import Empty
from locusd.protocol.messages import (
    AuthStatus,
    DaemonStatus,
    LoginParams,
    Run,
    RunList,
    RunRef,
    RunStartParams,
    WorkerStartParams,
    WorkerStatus,
)
from locusd.runner.store import RunStore
from locusd.server.framing import BodyError, FrameError, encode_frame, parse_body, read_frame
from tests.locusd.agentkit import DEMO_TRANSCRIPT, TASK, git, make_sample_repo
from tests.support.anthropic_server import AnthropicServer, Reply, tool_use
from tests.support.client import Api

ROUND_TRIP_P50_MS = 1.0
IDLE_RSS_MB = 80.0
RUN_RSS_MB = 80.0
IDLE_CPU_PCT = 1.0
CANCEL_S = 2.0

CLIENTS = 10
IDLE_CLIENTS = 2
IDLE_GROUP = f"idle, {IDLE_CLIENTS} clients + worker"
WARMUP_CALLS = 100
BLOCKS = 4  # the round-trip calls alternate between the daemon and the baselines in blocks
REMOTE = "https://git.example.com/acme/bench-daemon.git"
LEASE_SECONDS = 90.0
READY_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
COMMAND_START_TIMEOUT_S = 60.0
KILL_TIMEOUT_S = 40.0  # longer than the bar: a slow kill is measured, not cut off
WAITER_TIMEOUT_S = 20.0
RUN_TIMEOUT_S = 120.0
#: How often the bench looks for the marker process (reading a few /proc files).
POLL_S = 0.001
STATUS = "locus/daemon/status"
#: Every process this run started (daemons, the echo baseline, the cloud): all must be gone at
#: the end; the smoke test checks.
SPAWNED: list[int] = []


# --- the daemon process --------------------------------------------------------------------


@dataclass
class Home:
    """A user's worth of directories for one daemon: XDG runtime (0700), state, config, data."""

    root: Path

    def __post_init__(self) -> None:
        (self.root / "run").mkdir(parents=True, mode=0o700)
        for name in ("state", "config/locus", "data"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    @property
    def socket(self) -> Path:
        return self.root / "run" / "locus" / "locusd.sock"

    def write_config(self, text: str) -> None:
        (self.root / "config" / "locus" / "config.toml").write_text(text)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The bench's environment without anything that could point the daemon elsewhere
        (``LOCUS_*``, XDG dirs, model API settings), plus this home's directories."""
        drop = ("LOCUS_", "XDG_", "ANTHROPIC_", "OPENAI_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(
            XDG_RUNTIME_DIR=str(self.root / "run"),
            XDG_STATE_HOME=str(self.root / "state"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_DATA_HOME=str(self.root / "data"),
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        )
        env.update(extra or {})
        return env


class DaemonProcess:
    """``locusd serve`` in its own session, its output in ``<home>/locusd.log``."""

    def __init__(self, home: Home, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.log_path = home.root / "locusd.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "locusd.server.main", "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=home.env(extra_env),
                cwd=home.root,
                start_new_session=True,
            )
        SPAWNED.append(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    async def ready(self) -> None:
        """Until the socket accepts a connection (polled: there is no event across processes)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"locusd exited with {self.process.returncode} before listening; its log:\n"
                    f"{self.tail()}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_unix_connection(str(self.home.socket))
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"locusd did not listen within {READY_TIMEOUT_S:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM (the daemon cancels its runs and closes), SIGKILL to its group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                progress(f"locusd {self.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s: killed")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # whatever it left in its session
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def client(path: Path, name: str = "bench") -> AsyncIterator[DaemonClient]:
    """An initialized :class:`DaemonClient` on its own connection to ``path``."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    async with DaemonClient(reader, writer, client_name=name) as connected:
        yield connected


async def call(daemon: DaemonClient, method: str, params: Any, result: Any) -> Any:
    return await asyncio.wait_for(daemon.call(method, params, result), CALL_TIMEOUT_S)


# --- 1. status round trips -----------------------------------------------------------------


async def _echo_connection(
    result: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer every request with ``result``, the way the daemon frames its answers."""
    try:
        while (body := await read_frame(reader)) is not None:
            message = parse_body(body)
            if isinstance(message, dict) and "id" in message:
                writer.write(
                    encode_frame({"jsonrpc": "2.0", "id": message["id"], "result": result})
                )
    except (ConnectionError, FrameError, BodyError):
        pass
    finally:
        writer.close()


async def _serve_echo(path: Path, result: dict[str, Any]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _echo_connection(result, reader, writer)

    return await asyncio.start_unix_server(handle, path=str(path))


def echo_main(argv: list[str]) -> None:
    """The baseline server as a process of its own (``python -c`` entry): SOCKET RESULT_JSON."""
    path, result_file = Path(argv[0]), Path(argv[1])
    result = json.loads(result_file.read_text())

    async def serve() -> None:
        server = await _serve_echo(path, result)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())


class EchoProcess:
    def __init__(self, path: Path, result: dict[str, Any]) -> None:
        self.path = path
        result_file = path.with_suffix(".json")
        result_file.write_text(json.dumps(result))
        code = "import sys; from bench.daemon import echo_main; echo_main(sys.argv[1:])"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(path), str(result_file)],
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[1],
            start_new_session=True,
        )
        SPAWNED.append(self.process.pid)

    async def ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the echo baseline server did not start")
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)


@dataclass
class Latencies(Samples):
    """Round trips (ms) and the wall time of the loops that made them."""

    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.samples_ms) / self.seconds if self.seconds else 0.0


async def _status_loop(daemon: DaemonClient, calls: int, into: list[float]) -> None:
    for _ in range(calls):
        started = time.perf_counter()
        await daemon.call(STATUS, Empty(), DaemonStatus)
        into.append((time.perf_counter() - started) * 1000)


async def _round(clients: list[DaemonClient], calls: int, into: Latencies) -> None:
    """``calls`` status calls spread over ``clients``, all calling at once in a loop."""
    share = [calls // len(clients) + (i < calls % len(clients)) for i in range(len(clients))]
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(
            *(_status_loop(c, n, into.samples_ms) for c, n in zip(clients, share, strict=True))
        ),
        CALL_TIMEOUT_S + calls,
    )
    into.seconds += time.perf_counter() - started


@dataclass
class Target:
    name: str
    socket: Path
    one: Latencies = field(default_factory=Latencies)
    many: Latencies = field(default_factory=Latencies)


async def measure_round_trips(daemon: DaemonProcess, workdir: Path, calls: int) -> list[Target]:
    """The daemon against two baselines that answer the same frames with the same status
    result: a bare asyncio server in a process of its own (like the daemon: the ratio's
    baseline) and one on the bench's own event loop (no second process to wake)."""
    async with client(daemon.home.socket) as probe:
        status = await call(probe, STATUS, Empty(), DaemonStatus)
    result = status.wire()
    targets = [
        Target("daemon", daemon.home.socket),
        Target("echo", workdir / "echo.sock"),
        Target("echo_inproc", workdir / "echo-inproc.sock"),
    ]
    echo = EchoProcess(targets[1].socket, result)
    inproc: asyncio.Server | None = None
    try:
        await echo.ready()
        inproc = await _serve_echo(targets[2].socket, result)
        async with contextlib.AsyncExitStack() as stack:
            conns = {
                t.name: [
                    await stack.enter_async_context(client(t.socket, f"bench-{i}"))
                    for i in range(CLIENTS)
                ]
                for t in targets
            }
            for t in targets:  # warm-up: imports, caches, the allocator
                await _round(conns[t.name], WARMUP_CALLS, Latencies())
                await _round(conns[t.name][:1], WARMUP_CALLS, Latencies())
            per_block = max(1, calls // BLOCKS)
            for block in range(BLOCKS):
                order = targets if block % 2 == 0 else targets[::-1]
                for t in order:
                    await _round(conns[t.name][:1], per_block, t.one)
                for t in order:
                    await _round(conns[t.name], per_block, t.many)
    finally:
        if inproc is not None:
            inproc.close()
            await inproc.wait_closed()
        await asyncio.to_thread(echo.stop)
    return targets


async def measure_history(where: Path, calls: int, runs: int) -> Latencies:
    """Status round trips (1 client) on a daemon whose store holds ``runs`` finished runs, as
    one used for a few months would."""
    home = Home(where)
    db = Database(home.root / "state" / "locus" / "locusd.sqlite")
    store = RunStore(db)
    try:
        with db.transaction():
            for i in range(runs):
                store.save(
                    Run(
                        run_id=f"past-{i}",
                        title=f"past run {i}",
                        repo="/nowhere",
                        state="reported" if i % 4 else "failed",
                        summary="A summary of what the run did. " * 4,
                        started_at="2026-01-01T00:00:00+00:00",
                        ended_at="2026-01-01T00:10:00+00:00",
                    )
                )
    finally:
        db.close()
    daemon = DaemonProcess(home)
    try:
        await daemon.ready()
        measured = Latencies()
        async with client(home.socket) as one:
            await _round([one], WARMUP_CALLS, Latencies())
            await _round([one], calls, measured)
    finally:
        await asyncio.to_thread(daemon.stop)
    return measured


# --- /proc ---------------------------------------------------------------------------------


@dataclass
class ProcSample:
    at: float
    rss_kb: int
    cpu_s: float
    switches: int
    threads: int


def proc_sample(pid: int) -> ProcSample:
    """RSS (``VmRSS``), CPU time (utime + stime, every thread) and context switches (summed
    over the threads: each is a wake-up)."""
    fields = proc.status(Path(f"/proc/{pid}/status"))
    cpu_s = proc.cpu_seconds(pid)
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            thread = proc.status(task / "status")
            for kind in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                switches += int(thread.get(kind, 0))
    return ProcSample(
        at=time.monotonic(),
        rss_kb=int(fields["VmRSS"].split()[0]),
        cpu_s=cpu_s,
        switches=switches,
        threads=int(fields["Threads"]),
    )


def rss_mb(pid: int) -> float:
    return proc_sample(pid).rss_kb / 1024


# --- 2. idle cost --------------------------------------------------------------------------


async def claim_waiters(session: aiohttp.ClientSession, cloud: Cloud) -> float:
    async with session.get(f"{cloud.url}/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("locus_claim_waiters "):
            return float(line.split()[1])
    return 0.0


async def until_claiming(session: aiohttp.ClientSession, cloud: Cloud) -> None:
    """Until a worker is parked in the cloud's claim long-poll (the server's gauge)."""
    deadline = time.monotonic() + WAITER_TIMEOUT_S
    while await claim_waiters(session, cloud) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no worker long-polled within {WAITER_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)


def checkout(where: Path) -> Path:
    repo = make_sample_repo(where)
    git(repo, "remote", "add", "origin", REMOTE)
    return repo


async def start_worker(daemon: DaemonClient, cloud: Cloud, repo: Path) -> None:
    login = LoginParams(cloud_url=cloud.url, token=cloud.admin_token)
    status: AuthStatus = await call(daemon, "locus/auth/login", login, AuthStatus)
    if not status.logged_in:
        raise RuntimeError(f"login failed: {status}")
    params = WorkerStartParams(repos=[str(repo)])
    worker: WorkerStatus = await call(daemon, "locus/worker/start", params, WorkerStatus)
    if not worker.running:
        raise RuntimeError(f"the worker did not start: {worker}")


@dataclass
class Idle:
    seconds: float
    rss_mb_start: float
    rss_mb_max: float
    rss_mb_end: float
    cpu_pct: float
    wakeups_per_s: float
    threads: int


async def measure_idle(
    daemon: DaemonProcess,
    cloud: Cloud,
    session: aiohttp.ClientSession,
    repo: Path,
    seconds: float,
) -> Idle:
    """Two initialized clients that say nothing, the worker parked in the claim long-poll;
    RSS and CPU of the daemon sampled once a second over ``seconds``."""
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(client(daemon.home.socket, "bench-idle-0"))
        await start_worker(first, cloud, repo)
        for i in range(1, IDLE_CLIENTS):
            await stack.enter_async_context(client(daemon.home.socket, f"bench-idle-{i}"))
        await until_claiming(session, cloud)
        await asyncio.sleep(1.0)  # let the start-up work (register, first claim) settle
        samples = [proc_sample(daemon.pid)]
        deadline = samples[0].at + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(1.0, left))
            samples.append(proc_sample(daemon.pid))
        status: DaemonStatus = await call(first, STATUS, Empty(), DaemonStatus)
    if not status.worker.running or status.worker.last_error or status.clients < IDLE_CLIENTS:
        raise RuntimeError(
            f"the idle set-up did not hold: {status.worker}, {status.clients} clients"
        )
    first_s, last = samples[0], samples[-1]
    wall = last.at - first_s.at
    return Idle(
        seconds=wall,
        rss_mb_start=first_s.rss_kb / 1024,
        rss_mb_max=max(s.rss_kb for s in samples) / 1024,
        rss_mb_end=last.rss_kb / 1024,
        cpu_pct=(last.cpu_s - first_s.cpu_s) / wall * 100,
        wakeups_per_s=(last.switches - first_s.switches) / wall,
        threads=max(s.threads for s in samples),
    )


# --- 3. RSS after one agent run ------------------------------------------------------------


async def one_run(daemon: DaemonClient, repo: Path) -> Run:
    """``locus/runs/start`` the sample task on ``repo`` and wait until the run is over; it must
    have done the work (a run that failed at once would leave the daemon unmeasured)."""
    params = RunStartParams(repo=str(repo), task=TASK)
    run: Run = await call(daemon, "locus/runs/start", params, Run)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run.state in ("starting", "running"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run.run_id} did not end within {RUN_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)
        run = await call(daemon, "locus/runs/show", RunRef(run_id=run.run_id), Run)
    if run.state not in ("awaiting_review", "completed"):
        raise RuntimeError(f"run {run.run_id} ended {run.state}: {run.reason}")
    return run


# --- 4. cancel latency ---------------------------------------------------------------------

MARKER = re.compile(r"locus-bench-cancel-[0-9a-f]+-[0-9]+")


def long_command(body: dict[str, Any]) -> Reply:
    """The model's script: in a run whose task names a marker, first run ``sleep 300`` under
    that name; once a tool result comes back (it should not: the run is cancelled), ask."""
    messages = body.get("messages") or []
    found = MARKER.search(json.dumps(messages[:1]))
    answered = "tool_result" in json.dumps(messages)
    if found is None or answered:
        return Reply([tool_use("ask_user", {"question": "what now?"})], stop_reason="tool_use")
    command = f"exec -a {found.group(0)} sleep 300"
    return Reply(
        [tool_use("run_command", {"command": command, "timeout": 600})], stop_reason="tool_use"
    )


def _is_command(cmdline: bytes, marker: str) -> bool:
    """The command itself runs as ``marker`` (``exec -a``: its argv[0]). Only that counts: the
    sandbox's ``bwrap`` and the shell carry the marker in their arguments from their first
    instant, before the command runs."""
    return cmdline.startswith(marker.encode() + b"\0")


def alive(pids: list[int], marker: str) -> list[int]:
    """Those of ``pids`` still running as ``marker`` (a zombie has an empty command line)."""
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if _is_command(Path(f"/proc/{pid}/cmdline").read_bytes(), marker):
                found.append(pid)
    return found


def processes_named(marker: str, *, command: bool = False) -> list[int]:
    """PIDs whose command line contains ``marker`` (with ``command``: that run as it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if _is_command(cmdline, marker) if command else marker.encode() in cmdline:
                    found.append(int(entry.name))
    return found


async def command_started(marker: str, what: Callable[[], Awaitable[str]]) -> list[int]:
    """The marker's PIDs once its process exists; ``what`` describes the run on a timeout."""
    deadline = time.monotonic() + COMMAND_START_TIMEOUT_S
    while not (pids := await asyncio.to_thread(processes_named, marker, command=True)):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the command {marker} did not start within {COMMAND_START_TIMEOUT_S:.0f} s;"
                f" {await what()}"
            )
        await asyncio.sleep(0.02)
    return pids


async def until_gone(pids: list[int], marker: str, started: float) -> float:
    """Seconds from ``started`` until none of ``pids`` runs ``marker`` any more."""
    deadline = started + KILL_TIMEOUT_S
    while alive(pids, marker):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{marker} still runs {KILL_TIMEOUT_S:.0f} s after the cancel")
        await asyncio.sleep(POLL_S)
    return time.perf_counter() - started


@dataclass
class Cancel:
    kill_s: list[float] = field(default_factory=list)  # cancel sent → command gone
    answer_s: list[float] = field(default_factory=list)  # cancel sent → its answer


class Markers:
    """Unique marker names for this bench run, and the cleanup that kills any left over."""

    def __init__(self) -> None:
        self.prefix = f"locus-bench-cancel-{uuid.uuid4().hex[:12]}-"
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count}"

    def kill_leftovers(self) -> int:
        pids = processes_named(self.prefix)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


async def cancel_local(daemon: DaemonClient, repo: Path, rounds: int, markers: Markers) -> Cancel:
    """``locus/runs/start`` a run whose command hangs, then time ``locus/runs/cancel``."""
    measured = Cancel()
    for _ in range(rounds):
        marker = markers.next()
        params = RunStartParams(repo=str(repo), task=f"Run the long command {marker}.")
        run: Run = await call(daemon, "locus/runs/start", params, Run)

        async def what(run_id: str = run.run_id) -> str:
            shown: Run = await call(daemon, "locus/runs/show", RunRef(run_id=run_id), Run)
            return f"run {run_id} is {shown.state} ({shown.reason})"

        pids = await command_started(marker, what)
        started = time.perf_counter()
        cancelling = asyncio.ensure_future(
            call(daemon, "locus/runs/cancel", RunRef(run_id=run.run_id), Run)
        )
        measured.kill_s.append(await until_gone(pids, marker, started))
        done: Run = await cancelling
        measured.answer_s.append(time.perf_counter() - started)
        if done.state != "cancelled":
            raise RuntimeError(f"run {run.run_id} ended {done.state}, not cancelled")
    return measured


async def cancel_cloud(
    daemon: DaemonClient, admin: Api, cloud: Cloud, rounds: int, markers: Markers
) -> Cancel:
    """A task created through the REST API, claimed by the daemon's worker; once its command
    runs, ``POST /tasks/{id}/cancel`` is timed until the command is gone."""
    measured = Cancel()
    for _ in range(rounds):
        marker = markers.next()
        body = {"title": f"Run the long command {marker}", "status": "queued"}
        task = (await admin.post(f"/projects/{cloud.project_id}/tasks", body)).ok(201)

        async def what(task_id: int = task["id"]) -> str:
            shown = (await admin.get(f"/tasks/{task_id}")).body
            return f"task {task_id} is {shown.get('status') if isinstance(shown, dict) else shown}"

        pids = await command_started(marker, what)
        started = time.perf_counter()
        cancelling = asyncio.ensure_future(admin.post(f"/tasks/{task['id']}/cancel", {}))
        measured.kill_s.append(await until_gone(pids, marker, started))
        (await cancelling).ok()
        measured.answer_s.append(time.perf_counter() - started)
        await until_run_ended(daemon, task["id"])
    return measured


async def until_run_ended(daemon: DaemonClient, task_id: int) -> None:
    """Until the daemon's run of ``task_id`` is over (so the next round starts clean)."""
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while True:
        listed: RunList = await call(daemon, "locus/runs/list", Empty(), RunList)
        runs = [r for r in listed.runs if r.task_id == task_id]
        if runs and all(r.state not in ("starting", "running") for r in runs):
            if any(r.state != "cancelled" for r in runs):
                raise RuntimeError(f"task {task_id}'s run ended {[r.state for r in runs]}")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {task_id}'s run did not end: {[r.state for r in runs]}")
        await asyncio.sleep(0.05)


# --- figures -------------------------------------------------------------------------------


def round_trip_figures(targets: list[Target]) -> list[Figure]:
    by = {t.name: t for t in targets}
    daemon, echo, inproc = by["daemon"], by["echo"], by["echo_inproc"]
    g1, g10 = "status, 1 client", f"status, {CLIENTS} clients"
    return [
        Figure(g1, "status_p50_ms", "daemon p50", daemon.one.p50, "ms",
               f"≤ {ROUND_TRIP_P50_MS:g} ms", daemon.one.p50 <= ROUND_TRIP_P50_MS),
        Figure(g1, "status_p99_ms", "daemon p99", daemon.one.p99, "ms", "", None),
        Figure(g1, "echo_p50_ms", "raw echo p50 (own process)", echo.one.p50, "ms", "", None),
        Figure(g1, "echo_p99_ms", "raw echo p99 (own process)", echo.one.p99, "ms", "", None),
        Figure(g1, "echo_inproc_p50_ms", "raw echo p50 (bench's loop)", inproc.one.p50, "ms",
               "", None),
        Figure(g1, "ratio_p50", "ratio daemon / raw echo, p50", daemon.one.p50 / echo.one.p50,
               "x", "", None),
        Figure(g10, "status_p50_ms_10", "daemon p50", daemon.many.p50, "ms", "", None),
        Figure(g10, "status_p99_ms_10", "daemon p99", daemon.many.p99, "ms", "", None),
        Figure(g10, "status_per_s_10", "daemon calls/s", daemon.many.per_second, "/s", "", None),
        Figure(g10, "echo_p50_ms_10", "raw echo p50 (own process)", echo.many.p50, "ms", "",
               None),
        Figure(g10, "echo_p99_ms_10", "raw echo p99 (own process)", echo.many.p99, "ms", "",
               None),
        Figure(g10, "echo_per_s_10", "raw echo calls/s (own process)", echo.many.per_second,
               "/s", "", None),
        Figure(g10, "ratio_p50_10", "ratio daemon / raw echo, p50",
               daemon.many.p50 / echo.many.p50, "x", "", None),
    ]  # fmt: skip


def idle_figures(idle: Idle) -> list[Figure]:
    g = IDLE_GROUP
    return [
        Figure(g, "idle_rss_mb", "daemon RSS, max", idle.rss_mb_max, "MB",
               f"≤ {IDLE_RSS_MB:g} MB", idle.rss_mb_max <= IDLE_RSS_MB),
        Figure(g, "idle_rss_mb_start", "daemon RSS at the start", idle.rss_mb_start, "MB", "",
               None),
        Figure(g, "idle_cpu_pct", "daemon CPU, % of one core", idle.cpu_pct, "%",
               f"≤ {IDLE_CPU_PCT:g} %", idle.cpu_pct <= IDLE_CPU_PCT),
        Figure(g, "idle_wakeups_per_s", "context switches/s (all threads)", idle.wakeups_per_s,
               "/s", "", None),
        Figure(g, "idle_threads", "threads", idle.threads, "", "", None),
    ]  # fmt: skip


def run_rss_figures(rss_after: float) -> list[Figure]:
    return [
        Figure("replay daemon", "rss_after_run_mb", "RSS after one agent run (replay)",
               rss_after, "MB", f"≤ {RUN_RSS_MB:g} MB", rss_after <= RUN_RSS_MB),
    ]  # fmt: skip


def history_figures(history: Latencies, runs: int) -> list[Figure]:
    g = f"status, {runs:,} past runs"
    return [
        Figure(g, "history_status_p50_ms", "daemon p50, 1 client", history.p50, "ms", "", None),
        Figure(g, "history_status_p99_ms", "daemon p99, 1 client", history.p99, "ms", "", None),
    ]


def cancel_figures(
    local: Cancel, cloud: Cancel | None, rss_before: float, rss_after: float
) -> list[Figure]:
    figures = [
        Figure("cancel, local run", "cancel_local_s", "runs/cancel → command gone, median",
               statistics.median(local.kill_s), "s", f"≤ {CANCEL_S:g} s",
               statistics.median(local.kill_s) <= CANCEL_S),
        Figure("cancel, local run", "cancel_local_max_s", "runs/cancel → command gone, max",
               max(local.kill_s), "s", "", None),
        Figure("cancel, local run", "cancel_local_answer_s", "runs/cancel → its answer, median",
               statistics.median(local.answer_s), "s", "", None),
    ]  # fmt: skip
    if cloud is not None:
        figures += [
            Figure("cancel, from the cloud", "cancel_cloud_s",
                   "POST /tasks/{id}/cancel → command gone, median",
                   statistics.median(cloud.kill_s), "s", f"≤ {CANCEL_S:g} s",
                   statistics.median(cloud.kill_s) <= CANCEL_S),
            Figure("cancel, from the cloud", "cancel_cloud_max_s",
                   "POST /tasks/{id}/cancel → command gone, max", max(cloud.kill_s), "s", "",
                   None),
        ]  # fmt: skip
    figures += [
        Figure("anthropic daemon", "rss_before_runs_mb", "RSS before its first run",
               rss_before, "MB", "", None),
        Figure("anthropic daemon", "rss_after_runs_mb",
               "RSS after its runs (a local run, a cloud task)", rss_after, "MB",
               f"≤ {RUN_RSS_MB:g} MB", rss_after <= RUN_RSS_MB),
    ]  # fmt: skip
    return figures


# --- the run -------------------------------------------------------------------------------


#: (full, --quick) defaults of the flags that --quick shortens; a flag given wins over both
SIZES: dict[str, tuple[float, float]] = {
    "calls": (2000, 200),
    "idle_seconds": (60.0, 10.0),
    "rounds": (5, 2),
    "history_runs": (1000, 1000),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.daemon", __doc__)
    parser.add_argument("--calls", type=int, help="status calls per measurement (2000)")
    parser.add_argument("--idle-seconds", type=float, help="length of the idle window (60)")
    parser.add_argument("--rounds", type=int, help="cancel rounds, local and cloud (5)")
    parser.add_argument(
        "--history-runs",
        type=int,
        help="past runs in the store for the status-with-history figure (1000; 0: skip)",
    )
    parser.add_argument(
        "--no-cloud-cancel", action="store_true", help="measure the local cancel only"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 calls, a 10 s idle window, 2 cancel rounds (for the smoke test)",
    )
    output_flags(parser, "logs")
    args = parse_sized(parser, argv, SIZES)
    if args.calls < 10 or args.rounds < 1 or args.idle_seconds <= 0 or args.history_runs < 0:
        parser.error(
            "--calls must be at least 10, --rounds at least 1, --idle-seconds > 0,"
            " --history-runs ≥ 0"
        )
    return args


def workdir(suite: str = "daemon") -> Path:
    """A short temp dir: AF_UNIX paths are limited to ~107 bytes."""
    base = os.environ.get("TMPDIR") or "/tmp"
    if len(base) > 40:
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=f"locus-bench-{suite}-", dir=base)).resolve()


async def measure(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    figures: list[Figure] = []
    notes: list[str] = []
    markers = Markers()
    daemons: list[DaemonProcess] = []
    try:
        async with (
            running_cloud("sqlite", where / "cloud", lease_seconds=LEASE_SECONDS) as cloud,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        ):
            SPAWNED.append(cloud.process.pid)
            admin = cloud.admin(session)
            patched = {"remotes": [REMOTE]}
            (await admin.patch(f"/projects/{cloud.project_id}", patched)).ok()

            progress("daemon A (replay provider): starting")
            home_a = Home(where / "a")
            home_a.write_config(f'[agent]\nprovider = "replay"\nreplay = "{DEMO_TRANSCRIPT}"\n')
            daemon_a = DaemonProcess(home_a)
            daemons.append(daemon_a)
            await daemon_a.ready()
            rss_fresh = rss_mb(daemon_a.pid)
            progress(f"status round trips: {args.calls} calls x (1, {CLIENTS} clients) x 3 servers")
            targets = await measure_round_trips(daemon_a, where, args.calls)
            figures += round_trip_figures(targets)
            figures.append(
                Figure(IDLE_GROUP, "rss_fresh_mb", "RSS of a fresh daemon (no client yet)",
                       rss_fresh, "MB", "", None)
            )  # fmt: skip
            progress(f"idle: worker long-polling, {IDLE_CLIENTS} clients, {args.idle_seconds:g} s")
            repo_a = await asyncio.to_thread(checkout, where / "a")
            idle = await measure_idle(daemon_a, cloud, session, repo_a, args.idle_seconds)
            figures += idle_figures(idle)
            progress("one agent run on daemon A (replay), then its RSS")
            async with client(home_a.socket, "bench-run") as a:
                await one_run(a, repo_a)
            figures += run_rss_figures(rss_mb(daemon_a.pid))
            await asyncio.to_thread(daemon_a.stop)  # its worker must not claim B's tasks

            if args.history_runs:
                progress(f"status round trips with {args.history_runs:,} past runs in the store")
                history = await measure_history(where / "c", args.calls, args.history_runs)
                figures += history_figures(history, args.history_runs)

            progress("daemon B (anthropic SDK → loopback model): starting")
            with AnthropicServer(long_command).in_thread() as model:
                home_b = Home(where / "b")
                home_b.write_config(
                    f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n'
                )
                daemon_b = DaemonProcess(home_b, {"ANTHROPIC_API_KEY": "x"})
                daemons.append(daemon_b)
                await daemon_b.ready()
                rss_before = rss_mb(daemon_b.pid)
                repo_b = await asyncio.to_thread(checkout, where / "b")
                async with client(home_b.socket, "bench-cancel") as b:
                    progress(f"cancel: {args.rounds} local runs")
                    local = await cancel_local(b, repo_b, args.rounds, markers)
                    remote: Cancel | None = None
                    if args.no_cloud_cancel:
                        notes.append("cloud cancel not measured (--no-cloud-cancel)")
                    else:
                        progress(f"cancel: {args.rounds} tasks from the cloud")
                        await start_worker(b, cloud, repo_b)
                        await until_claiming(session, cloud)
                        remote = await cancel_cloud(b, admin, cloud, args.rounds, markers)
                    figures += cancel_figures(local, remote, rss_before, rss_mb(daemon_b.pid))
                raw = {
                    "cancel_local_s": _rounded(local.kill_s),
                    "cancel_local_answer_s": _rounded(local.answer_s),
                    "cancel_cloud_s": _rounded(remote.kill_s) if remote else [],
                    "cancel_cloud_answer_s": _rounded(remote.answer_s) if remote else [],
                    "idle": asdict(idle),
                    "marker_prefix": markers.prefix,
                }
    finally:
        for daemon in daemons:
            await asyncio.to_thread(daemon.stop)
        if left := markers.kill_leftovers():
            notes.append(f"{left} marker process(es) were still running at the end: killed")
    return {"figures": figures, "notes": notes, "raw": raw}


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 4) for v in values]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    where = workdir()
    # a SIGTERM still stops every process the bench started
    with work_directory(where, args.keep), cancelled_on_sigterm():
        measured = await measure(args, where)
    raw = {**measured["raw"], "pids": list(SPAWNED)}
    return result_of(info, args, measured["figures"], started, notes=measured["notes"], raw=raw)


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    raw = result["raw"]
    return table(
        f"Locus daemon benchmark — {info['cpus']} CPUs, Python {info['python']}",
        result,
        [
            "local cancel, s: " + ", ".join(f"{v:.3f}" for v in raw["cancel_local_s"]),
            "cloud cancel, s: " + (", ".join(f"{v:.3f}" for v in raw["cancel_cloud_s"]) or "-"),
            *result["notes"],
        ],
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish(asyncio.run(run(args)), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
