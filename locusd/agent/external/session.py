"""One run's turn with an external ACP agent: started inside the run's sandbox with a network
that reaches only its model (a preset: the run's model gateway, which meters each call against
the budget; else the endpoint itself), prompted with the task, answered by
:class:`~locusd.agent.external.client.LocusClient`, and ended like the built-in loop: the
agent's end of turn is its ``finish`` (the runner's own verification; a failure goes back to
it as the next prompt), a cancel or a spent budget is ``session/cancel`` and then the whole
process tree killed (the sandbox's PID namespace ends with its first process).

What Locus cannot see or bound: what the agent sends to its own model (its prompt, the files it
read), and what it does inside the sandbox without asking (it runs its own tools; ACP only lets
it ask). The sandbox is the boundary; the permission answers are the policy on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar, cast

import acp
from acp.connection import StreamEvent
from acp.schema import ClientCapabilities, FileSystemCapabilities, Implementation

from locusd.agent import tools
from locusd.agent.budget import Budget, exhausted
from locusd.agent.commands import kill_group
from locusd.agent.egress.journal import Journal
from locusd.agent.egress.network import socket_base
from locusd.agent.egress.proxy import Connection, EgressProxy
from locusd.agent.egress.rules import EgressRules, Rule
from locusd.agent.external.client import LocusClient
from locusd.agent.external.gateway import INSIDE_PORT, ModelGateway
from locusd.agent.external.metering import Meter
from locusd.agent.external.presets import Launch
from locusd.agent.loop import LoopResult, record_verifications
from locusd.agent.messages import Usage
from locusd.agent.providers.pricing import Price
from locusd.agent.report import Event, OnEvent
from locusd.agent.sandbox import SHARED_SCRATCH, Egress, Sandbox
from locusd.agent.tools import Stop, Workspace
from locusd.agent.transcript import AcpRecord, TranscriptWriter

T = TypeVar("T")
#: An ACP message can carry a whole file.
MAX_MESSAGE = 64 * 1024 * 1024
#: How long an agent has to end its turn after a user's ``session/cancel`` before its tree is
#: killed. The Claude Code adapter ends its turn 0.01-0.17 s after one (docs/benchmarks.md), and
#: issue 18 wants the whole tree gone within 2 s: an agent that ignores the cancel is killed at
#: 0.5 s, which leaves the kill (and a terminal command's 1-s SIGTERM grace, started at the
#: cancel) well inside.
CANCEL_GRACE = 0.5
#: After a spent budget: ``session/cancel`` is still sent, but the tree is killed at once; a
#: grace would only be more spending past the cap by an agent that does not stop.
BUDGET_GRACE = 0.0
GUIDANCE = (
    "You work in a git worktree of the user's repository made for this task ({root}); stay in"
    " it. When you are done, end your turn with a short summary for the reviewer: Locus then"
    " runs the project's verify command itself, and a failure comes back to you."
)
VERIFY_FAILED = "Locus ran the verify command and it failed:\n{result}\nFix this and end your turn."


class _Stopped(Exception):
    def __init__(self, stop: Stop) -> None:
        self.stop = stop


@asynccontextmanager
async def model_only_network(
    boxed: Sandbox, launch: Launch, journal: Journal, meter: Meter | None = None
) -> AsyncIterator[Sandbox]:
    """``boxed`` with a network of its own that reaches the agent's model and nothing else,
    through an egress proxy of its own (a host's loopback port included: the relay listens
    on it inside). With ``launch.upstream`` (the presets) and a ``meter``, the one place is
    the run's model gateway (gateway.py), which meters each call and forwards it; else the
    endpoint itself. Its connections go to the run's journal (the gateway's calls, as it
    records them)."""
    directory = Path(tempfile.mkdtemp(prefix="locus-agent-", dir=socket_base()))
    socket = directory / "proxy.sock"
    try:
        async with contextlib.AsyncExitStack() as stack:
            routes: dict[tuple[str, int], Path] = {}
            on_connection = journal.add
            if launch.upstream is not None and meter is not None:
                served = directory / "gateway.sock"
                gateway = ModelGateway(
                    launch.upstream, served, meter.record, meter.refusal, launch.key
                )
                await stack.enter_async_context(gateway)
                rule = Rule.parse(f"127.0.0.1:{INSIDE_PORT}", "the run's model gateway")
                routes[("127.0.0.1", INSIDE_PORT)] = served

                def on_connection(connection: Connection) -> None:
                    if not connection.allowed:  # an allowed one is the gateway's to record
                        journal.add(connection)
            else:
                rule = Rule.parse(launch.endpoint, "the agent's model endpoint")
            rules = EgressRules([rule])
            await stack.enter_async_context(EgressProxy(rules, socket, on_connection, routes))
            egress = Egress(socket, rules.loopback_ports())
            yield replace(boxed, network=False, egress=egress)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def program_root(path: Path) -> Path:
    """Where a program's files are: its ``node_modules`` tree, its virtualenv, or its folder."""
    for parent in path.parents:
        if parent.name == "node_modules" or (parent / "pyvenv.cfg").is_file():
            return parent
    return path.parent


def with_program(boxed: Sandbox, argv: tuple[str, ...]) -> Sandbox:
    """The agent's program (and the files its command names, e.g. a script) readable where
    the sandbox would put them out of sight: in a tmpfs ``$HOME``, or in a scratch place
    (``/tmp``, …) replaced by an empty one. Each one's root (its ``node_modules``, its
    virtualenv, or its folder) is bound back read-only; never a scratch place's root itself
    (another program's sockets live there), never a hidden place (secrets)."""
    named = [Path(shutil.which(argv[0]) or argv[0])] if argv else []
    named += [Path(arg) for arg in argv[1:] if arg.startswith("/") and Path(arg).is_file()]
    roots = {program_root(p) for p in named} | {program_root(p.resolve()) for p in named}
    home_allow, shown = list(boxed.home_allow), list(boxed.shown)
    for root in sorted(roots):
        if boxed.home is not None and root.is_relative_to(boxed.home) and root != boxed.home:
            home_allow.append(str(root.relative_to(boxed.home)))
        elif any(root.is_relative_to(s) and root != Path(s) for s in SHARED_SCRATCH):
            shown.append(root)
    return replace(boxed, home_allow=tuple(home_allow), shown=tuple(shown))


class ExternalAgent:
    """Runs one task with an ACP agent; :meth:`run` returns what the built-in loop returns."""

    def __init__(
        self,
        launch: Launch,
        workspace: Workspace,
        transcript: TranscriptWriter,
        budget: Budget,
        *,
        sandbox: Sandbox | None,
        journal: Journal,
        log_dir: Path,
        env: dict[str, str],
        instructions: str | None = None,
        on_event: OnEvent | None = None,
        price: Price | None = None,
    ) -> None:
        self.launch = launch
        self.ws = workspace
        self.transcript = transcript
        self.budget = budget
        self.sandbox = sandbox
        self.journal = journal
        self.log_dir = log_dir
        self.env = env
        self.instructions = instructions
        self.spent = asyncio.Event()
        self.spent_reason = ""
        self.client = LocusClient(
            workspace, on_event or (lambda event: None), self._check, ending=self.spent
        )
        self.usage = Usage()  # what the agent reported
        #: What the model server said, through the run's model gateway (the presets).
        self.meter = Meter(launch.endpoint, transcript, journal, self._check, price, self._ending)
        self.connection: acp.ClientSideConnection | None = None

    def _ending(self) -> str | None:
        """Why the gateway refuses further model calls: the run is ending."""
        if self.ws.cancel.is_set():
            return "cancelled"
        return self.spent_reason if self.spent.is_set() else None

    def _check(self) -> None:
        """The budget, after each tool call the agent starts and each usage it reports: the
        agent may start ``max_turns`` tool calls; the one after that ends the session."""
        s = self.client.spending
        turns = max(s.turns - 1, 0)
        usage, cost = self.meter.spent(self.usage, s.cost)
        reason = exhausted(self.budget, turns=turns, usage=usage, cost=cost)
        if reason is not None and not self.spent.is_set():
            self.spent_reason = reason
            self.spent.set()

    def _time_up(self) -> None:
        self.spent_reason = f"max wall time ({self.budget.max_wall_seconds:g} s)"
        self.spent.set()

    def _record(self, event: StreamEvent) -> None:
        direction = "to_agent" if event.direction.value == "outgoing" else "from_agent"
        self.transcript.write(
            AcpRecord(turn=self.client.spending.turns, direction=direction, message=event.message)
        )

    async def run(self, task: str) -> LoopResult:
        s = self.client.spending
        if self.sandbox is None:
            stop = Stop(
                "failed",
                reason=f"the {self.launch.name} agent runs only in the sandbox, which is off for"
                " this run: install bubblewrap (and set [agent] sandbox = true)",
            )
            return LoopResult(stop, 0, self.usage, 0.0, True)
        timer = asyncio.get_running_loop().call_later(self.budget.max_wall_seconds, self._time_up)
        try:
            stop = await self._session(task, self.sandbox)
        finally:
            timer.cancel()
            await self.client.close()
        usage, cost = self.meter.spent(self.usage, s.cost)
        return LoopResult(stop, s.turns, usage, cost, s.cost_known or self.meter.cost_known)

    def _argv(self, boxed: Sandbox) -> list[str]:
        boxed = with_program(boxed, self.launch.argv)
        boxed = boxed.with_caches([*boxed.caches, *((p, p) for p in self.launch.writable)])
        return boxed.wrap(list(self.launch.argv), self.ws.root)

    async def _session(self, task: str, boxed: Sandbox) -> Stop:
        env = {**self.env, "TMPDIR": "/tmp", **self.launch.env}  # noqa: S108 - the sandbox's own
        stderr_path = self.log_dir / "agent-stderr.log"
        async with model_only_network(boxed, self.launch, self.journal, self.meter) as networked:
            with stderr_path.open("wb") as stderr:
                process = await asyncio.create_subprocess_exec(
                    *self._argv(networked),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    cwd=self.ws.root,
                    start_new_session=True,  # one group: bwrap and the namespace it starts
                    limit=MAX_MESSAGE,
                )
            try:
                return await self._converse(process, task)
            except _Stopped as stopped:
                return stopped.stop
            except (acp.RequestError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                said = _tail(stderr_path)
                return Stop(
                    "failed",
                    reason=f"the {self.launch.name} agent failed: {exc or type(exc).__name__}"
                    + (f"; it said: {said}" if said else ""),
                )
            finally:
                if self.connection is not None:  # its loops stopped before the pipes go
                    with contextlib.suppress(Exception):
                        await self.connection.close()
                await self._kill(process)

    async def _converse(self, process: asyncio.subprocess.Process, task: str) -> Stop:
        assert process.stdin is not None and process.stdout is not None
        conn = self.connection = acp.connect_to_agent(
            cast(acp.Client, self.client), process.stdin, process.stdout, observers=[self._record]
        )
        await self._bounded(
            conn.initialize(
                protocol_version=acp.PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(
                    fs=FileSystemCapabilities(
                        read_text_file=self.launch.read_files, write_text_file=True
                    ),
                    terminal=True,
                ),
                client_info=Implementation(name="locus", version="1"),
            ),
            process,
        )
        session = await self._bounded(
            conn.new_session(cwd=str(self.ws.root), mcp_servers=[]), process
        )
        prompt = "\n\n".join(
            [
                *([self.instructions] if self.instructions else []),
                task,
                GUIDANCE.format(root=self.ws.root),
            ]
        )
        while True:
            said: list[str] = []
            watching = self.client.on_event

            def hear(event: Event, said: list[str] = said, watching: OnEvent = watching) -> None:
                if event.kind == "text":
                    said.append(event.text)
                elif event.kind == "tool":  # the summary is what it says after its last tool
                    said.clear()
                watching(event)

            self.client.on_event = hear
            try:
                response = await self._bounded(
                    conn.prompt(session_id=session.session_id, prompt=[acp.text_block(prompt)]),
                    process,
                    cancel=lambda: conn.cancel(session_id=session.session_id),
                )
            finally:
                self.client.on_event = watching
            if response.usage is not None:
                u = response.usage
                self.usage += Usage(
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cache_read_tokens=u.cached_read_tokens or 0,
                    cache_write_tokens=u.cached_write_tokens or 0,
                )
            self._check()
            if self.spent.is_set():
                return Stop("budget_exhausted", reason=self.spent_reason)
            if response.stop_reason == "refusal":
                return Stop("failed", reason=f"the agent refused: {''.join(said) or '(no text)'}")
            refused = self.client.refused
            if response.stop_reason == "cancelled" and refused and not self.ws.cancel.is_set():
                # Not the user's cancel (that ends in _bounded): Codex ends its whole turn
                # when a permission is refused.
                return Stop(
                    "failed",
                    reason=f"the agent ended its turn when Locus refused {refused}",
                )
            if response.stop_reason == "cancelled":
                return Stop("cancelled", reason="cancelled")
            if response.stop_reason in ("max_tokens", "max_turn_requests"):
                return Stop("budget_exhausted", reason=f"the agent stopped: {response.stop_reason}")
            summary = "".join(said).strip() or "(the agent gave no summary)"
            verified = len(self.ws.verifications)
            result = await tools.finish(self.ws, tools.Finish(summary=summary[:4000]))
            turn = self.client.spending.turns
            record_verifications(self.ws, self.transcript, self.client.on_event, turn, verified)
            if result.stop is not None:
                return result.stop
            prompt = VERIFY_FAILED.format(result=result.content)

    async def _kill(self, process: asyncio.subprocess.Process) -> None:
        """The agent's whole tree, the one place it is ended: its group and the PID namespace
        that dies with its first process (a ``setsid`` or double-forked child in it too), and,
        at the same time, the commands it runs through ``terminal/*`` (each in a sandbox of its
        own). Returns once all of them are gone."""
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        await asyncio.gather(kill_group(process.pid, grace=0), self.client.close())
        await process.wait()

    async def _bounded(
        self,
        work: Awaitable[T],
        process: asyncio.subprocess.Process,
        cancel: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """``work`` unless the run is cancelled, the budget is spent or the agent exits first;
        then ``session/cancel`` (when ``cancel`` says how), a grace (:data:`CANCEL_GRACE` for a
        cancel, :data:`BUDGET_GRACE` for a spent budget), and :class:`_Stopped`; the caller
        kills the tree (:meth:`_kill`) before the stop is reported."""
        task = asyncio.ensure_future(work)
        ends = {
            asyncio.ensure_future(self.ws.cancel.wait()),
            asyncio.ensure_future(self.spent.wait()),
            asyncio.ensure_future(process.wait()),
        }
        try:
            await asyncio.wait({task, *ends}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for end in ends:
                end.cancel()
        if task.done():
            return task.result()
        grace = BUDGET_GRACE if self.spent.is_set() else CANCEL_GRACE
        if cancel is not None and process.returncode is None:
            with contextlib.suppress(Exception):
                await cancel()
            if grace > 0:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), grace)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if self.ws.cancel.is_set():
            raise _Stopped(Stop("cancelled", reason="cancelled"))
        if self.spent.is_set():
            raise _Stopped(Stop("budget_exhausted", reason=self.spent_reason))
        raise ConnectionError(f"the agent exited (status {process.returncode}) mid-turn")


def _tail(path: Path, size: int = 2000) -> str:
    try:
        data = path.read_bytes()[-size:]
    except OSError:
        return ""
    return data.decode("utf-8", "replace").strip()
