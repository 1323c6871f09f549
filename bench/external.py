"""What Locus adds around an external ACP agent (``python -m bench.agent --external``).

The same scripted session (the model reads ``stats.py``, edits the fix in, ends its turn) with
the real Claude Code adapter against the loopback Anthropic server, twice per round:

* **direct** — the adapter driven by the ``acp`` Python SDK in a temporary git repository:
  spawn, ``initialize``, ``session/new``, ``session/prompt``, end of turn, process killed;
* **Locus** — the same task as a Locus run: worktree, sandbox, egress proxy, Locus's ACP
  client, transcript, the runner's verification, the diff.

Moments, each from the spawn (Locus: from the ``running the agent`` phase, which starts the
egress proxy and the sandbox before the agent): session ready (``session/new`` answered), the
first update that is the agent's work (a message chunk or a tool call) and the turn's end (the
prompt's answer); and the whole run (direct: spawn to process gone; Locus: ``run_task`` call to
its report). Locus's moments are read from its transcript, which is flushed per message, by a
poller (10 ms). Then the time from a cancel (during the agent's own long command) to the
agent's whole process tree gone, for the Locus run only: with the Claude Code adapter (which
ends its turn on ``session/cancel``), with an agent that ignores the cancel and SIGTERM (the
test suite's stubborn probe agent, with a ``setsid`` grandchild and a terminal command; also
its budget stop), and with Codex and Gemini CLI through their pinned adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from acp import PROTOCOL_VERSION, Client, spawn_agent_process, text_block
from acp.schema import ClientCapabilities, FileSystemCapabilities

from bench.figures import environment, machine, progress, verdict
from tests.locusd.acp.test_acp_south import (
    Script,
    cancelled_in_a_command,
    claude_config,
    commandlines,
    fix_median,
    running,
)
from tests.locusd.acp.test_acp_stop import (
    LONG,
    codex_calls,
    gemini_calls,
    preset_stopped,
    stubborn_run,
)
from tests.locusd.agentkit import API_KEY, FIXED, TASK, anthropic, make_sample_repo, run
from tests.support import gemini_server
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer
from tests.support.programs import required
from tests.support.test_acp_adapters import RecordingClient, agent_env

#: The moments of one run, in order, by their key.
MOMENTS = ("ready", "first_update", "turn_end", "whole")
LABELS = {
    "ready": "start (spawn → session ready)",
    "first_update": "first update (spawn → first chunk/tool call)",
    "turn_end": "turn's end (spawn → prompt answered)",
    "whole": "whole run",
}
WORK = ("agent_message_chunk", "tool_call")
POLL_S = 0.01
DEADLINE_S = 180.0
#: Issue 18: the agent's process tree gone within 2 s of a cancel.
CANCEL_TARGET_S = 2.0
#: The stops timed, by their key.
STOPS = {
    "claude": "cancel, Claude Code (it ends its turn)",
    "stubborn": "cancel, an agent that ignores it and SIGTERM",
    "stubborn_budget": "budget spent, the same agent (no grace)",
    "codex": "cancel, Codex running a command",
    "gemini": "cancel, Gemini CLI waiting for its model",
}


def fix_script() -> Script:
    """Read, write the fix, end: the short session both sides run (the test suite's session
    without its test run, which the runner's verification does anyway)."""
    read, edit, _test_run, summary = fix_median().steps
    return Script(read, edit, summary)


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    return agent_env(
        home,
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=API_KEY,
        DISABLE_TELEMETRY="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )


@dataclass
class TimedClient(RecordingClient):
    """The direct run's client: also notes when the agent's first work arrives."""

    first_work: float = 0.0

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        kind = getattr(update, "session_update", "")
        if kind in WORK and not self.first_work:
            self.first_work = time.perf_counter()
        await super().session_update(session_id, update, **kwargs)


async def direct(where: Path) -> dict[str, float]:
    """One session with the adapter alone; seconds from the spawn to each moment."""
    repo = make_sample_repo(where)
    client = TimedClient(repo)
    setsid = required("setsid", "util-linux")
    async with AnthropicServer(fix_script()) as server:
        env = claude_env(where, server.base_url)
        spawned = time.perf_counter()
        with (where / "claude.stderr").open("wb") as stderr:
            async with spawn_agent_process(
                cast(Client, client), setsid, str(installed().claude), env=env, cwd=repo,
                transport_kwargs={"stderr": stderr},
            ) as (conn, process):  # fmt: skip
                try:
                    both = FileSystemCapabilities(read_text_file=True, write_text_file=True)
                    await conn.initialize(
                        protocol_version=PROTOCOL_VERSION,
                        client_capabilities=ClientCapabilities(fs=both, terminal=False),
                    )
                    session = await conn.new_session(cwd=str(repo), mcp_servers=[])
                    ready = time.perf_counter()
                    prompt = conn.prompt(session_id=session.session_id, prompt=[text_block(TASK)])
                    result = await asyncio.wait_for(prompt, DEADLINE_S)
                    ended = time.perf_counter()
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
        whole = time.perf_counter() - spawned
    if result.stop_reason != "end_turn" or FIXED not in (repo / "stats.py").read_text():
        raise RuntimeError(f"the direct session did not fix stats.py ({result.stop_reason})")
    return {
        "ready": ready - spawned,
        "first_update": client.first_work - spawned,
        "turn_end": ended - spawned,
        "whole": whole,
    }


@dataclass
class TranscriptClock:
    """When each ACP moment reached the run's transcript (flushed per message), polled."""

    path: Path
    moments: dict[str, float] = field(default_factory=dict)
    _offset: int = 0
    _rest: bytes = b""

    def look(self) -> None:
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = self._rest + file.read()
                self._offset = file.tell()
        except FileNotFoundError:  # the run has not made it yet
            return
        lines = data.split(b"\n")
        self._rest = lines.pop()
        now = time.perf_counter()
        for line in lines:
            self._see(json.loads(line), now)

    def _see(self, record: dict[str, Any], now: float) -> None:
        if record.get("type") != "acp" or record.get("direction") != "from_agent":
            return
        message = record["message"]
        result = message.get("result")
        if isinstance(result, dict) and "sessionId" in result:
            self.moments.setdefault("ready", now)
        elif isinstance(result, dict) and "stopReason" in result:
            self.moments.setdefault("turn_end", now)
        elif message.get("method") == "session/update":
            kind = message.get("params", {}).get("update", {}).get("sessionUpdate")
            if kind in WORK:
                self.moments.setdefault("first_update", now)

    async def watch(self) -> None:
        while True:
            await asyncio.to_thread(self.look)
            await asyncio.sleep(POLL_S)


async def through_locus(where: Path) -> dict[str, float]:
    """The same session as a Locus run; seconds from the agent's start to each moment, and
    the whole run from ``run_task``'s call."""
    repo = make_sample_repo(where)
    clock = TranscriptClock(where / "transcript.jsonl")
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases.setdefault(name, time.perf_counter())

    async with AnthropicServer(fix_script()) as server:
        config = claude_config(where, base_url=server.base_url)
        watcher = asyncio.ensure_future(clock.watch())
        started = time.perf_counter()
        try:
            report = await run(
                anthropic(server), repo, config, transcript_path=clock.path, on_phase=phase
            )
        finally:
            watcher.cancel()
        whole = time.perf_counter() - started
    with contextlib.suppress(asyncio.CancelledError):
        await watcher  # a poller that failed says so here
    clock.look()
    if report.outcome != "completed" or report.verification is None:
        raise RuntimeError(f"the Locus run ended {report.outcome}: {report.reason}")
    spawned = phases["running the agent"]
    return {
        **{key: clock.moments[key] - spawned for key in ("ready", "first_update", "turn_end")},
        "before_agent": spawned - started,
        "after_turn": started + whole - clock.moments["turn_end"],
        "whole": whole,
    }


def timer(gone: list[float]) -> Callable[[list[int]], Awaitable[None]]:
    """What to call with the tree's pids at the stop: it appends the seconds until the last
    of them is gone (polled every 10 ms)."""

    async def time_it(tree: list[int]) -> None:
        stopped = time.perf_counter()
        if len(tree) < 2:  # nothing to time: the agent and its command must be seen
            raise RuntimeError(f"expected the agent and its command in the worktree: {tree}")
        while any(running(pid) for pid in tree):  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)
        gone.append(time.perf_counter() - stopped)

    return time_it


def timed(gone: list[float], report: Any, outcome: str) -> float:
    if report.outcome != outcome or not gone:
        raise RuntimeError(f"the stopped run ended {report.outcome}: {report.reason}")
    return gone[0]


async def cancel_to_gone(where: Path) -> float:
    """Seconds from the cancel (while the agent's own Bash runs ``sleep``, with a child that
    left its group) to the last process of the agent's tree gone."""
    gone: list[float] = []
    report, _, _ = await asyncio.wait_for(cancelled_in_a_command(where, timer(gone)), DEADLINE_S)
    return timed(gone, report, "cancelled")


async def stubborn_to_gone(where: Path, *, budget: bool) -> float:
    """The same for the stubborn probe agent, from the cancel (or from the tool call that
    spends its one-turn budget) to its whole tree gone."""
    gone: list[float] = []
    stop: dict[str, Any] = {"budget": {"max_turns": 1}} if budget else {"cancel": asyncio.Event()}
    report, _ = await asyncio.wait_for(
        stubborn_run(where, calls=2 if budget else 1, after=timer(gone), **stop), DEADLINE_S
    )
    return timed(gone, report, "budget_exhausted" if budget else "cancelled")


async def preset_to_gone(where: Path, agent: str) -> float:
    """The same for Codex (cancelled while it runs a long command itself, with a ``setsid``
    child) and Gemini CLI (cancelled while it waits for its model)."""
    gone: list[float] = []
    state = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locus-tests"
    state.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="bench-runs-", dir=state))  # CODEX_HOME: not in /tmp
    try:
        if agent == "codex":
            mark = f"{os.getpid() % 1000 + 8000}"

            async def until() -> None:
                while not any(f"sleep {mark}2".encode() in c for c in commandlines()):  # noqa: ASYNC110
                    await asyncio.sleep(POLL_S)

            script: Any = codex_calls(LONG.format(mark=mark))
        else:
            hang = gemini_server.Hang()
            script, until = gemini_calls(hang), hang.reached.wait
        report, _ = await asyncio.wait_for(
            preset_stopped(agent, state, where, script, until, timer(gone)), DEADLINE_S
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return timed(gone, report, "cancelled")


def node_version() -> str:
    node = required("node", "nodejs")
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def adapter_version(name: str = "@zed-industries/claude-agent-acp") -> str:
    package = installed().node_modules / name / "package.json"
    return f"{name.rsplit('/', 1)[-1]} {json.loads(package.read_text())['version']}"


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


async def measure(where: Path, runs: int) -> dict[str, Any]:
    """``runs`` rounds of direct then Locus (alternating, so load drifts hit both), then
    ``runs`` cancels; medians, Locus minus direct and Locus ÷ direct per moment."""
    directs: list[dict[str, float]] = []
    locus: list[dict[str, float]] = []
    stops: dict[str, list[float]] = {key: [] for key in STOPS}
    with environment({"ANTHROPIC_API_KEY": API_KEY}):
        for n in range(runs):
            progress(f"external agent: round {n + 1}/{runs}")
            directs.append(await direct(where / f"direct-{n}"))
            locus.append(await through_locus(where / f"locus-{n}"))
        for n in range(runs):
            progress(f"external agent: stops {n + 1}/{runs}")
            stops["claude"].append(await cancel_to_gone(where / f"cancel-{n}"))
            stubborn = where / f"stubborn-{n}"
            stops["stubborn"].append(await stubborn_to_gone(stubborn, budget=False))
            spent = where / f"spent-{n}"
            stops["stubborn_budget"].append(await stubborn_to_gone(spent, budget=True))
            for agent in ("codex", "gemini"):
                stops[agent].append(await preset_to_gone(where / f"{agent}-{n}", agent))
    d, lo = medians(directs), medians(locus)
    pairs = list(zip(directs, locus, strict=True))
    # Per round (its two runs back to back), then the median: steadier than the difference of
    # the medians when the machine's load drifts between rounds.
    overhead = {k: statistics.median(b[k] - a[k] for a, b in pairs) for k in MOMENTS}
    ratio = {k: statistics.median(b[k] / a[k] for a, b in pairs) for k in MOMENTS}
    return {
        "machine": machine(
            node=node_version(),
            adapter=adapter_version(),
            codex=adapter_version("@zed-industries/codex-acp"),
            gemini=adapter_version("@google/gemini-cli"),
        ),
        "agent": "claude",
        "runs": runs,
        "direct_s": {k: round(v, 3) for k, v in d.items()},
        "locus_s": {k: round(v, 3) for k, v in lo.items()},
        "overhead_s": {k: round(v, 3) for k, v in overhead.items()},
        "ratio": {k: round(v, 2) for k, v in ratio.items()},
        "cancel_to_gone_s": round(statistics.median(stops["claude"]), 3),
        "stop_to_gone_s": {k: round(statistics.median(v), 3) for k, v in stops.items()},
        "stop_to_gone_max_s": {k: round(max(v), 3) for k, v in stops.items()},
        "samples": {"direct": directs, "locus": locus, "cancel": stops["claude"], "stops": stops},
    }


def render(result: dict[str, Any]) -> str:
    d, lo = result["direct_s"], result["locus_s"]

    def row(*cells: str) -> str:
        first, *rest = cells
        return f"{first:<46}" + "".join(f"  {cell:>8}" for cell in rest)

    lines = [
        f"{result['machine']['adapter']} (Node {result['machine']['node']}),"
        f" median of {result['runs']} runs, seconds; Locus-d and ratio: median per round",
        row("", "direct", "Locus", "Locus-d", "ratio"),
    ]
    for key in MOMENTS:
        lines.append(
            row(
                LABELS[key], f"{d[key]:.3f}", f"{lo[key]:.3f}",
                f"{result['overhead_s'][key]:+.3f}", f"{result['ratio'][key]:.2f}",
            )
        )  # fmt: skip
    lines += [
        f"  of the Locus run: before the agent (worktree, setup) {lo['before_agent']:.3f} s,"
        f" after its turn (verify, diff, report) {lo['after_turn']:.3f} s",
        f"stop → the agent's process tree gone (Locus, {result['runs']} each;"
        f" {result['machine']['codex']}, {result['machine']['gemini']}; the issue asks ≤ 2 s):",
        *(
            f"  {label:<46}  median {result['stop_to_gone_s'][key]:.3f} s,"
            f" max {result['stop_to_gone_max_s'][key]:.3f} s"
            f"  {verdict(result['stop_to_gone_max_s'][key] <= CANCEL_TARGET_S)}"
            for key, label in STOPS.items()
        ),
        f"load average {result['machine']['load_start']} at the start",
    ]
    return "\n".join(lines)
