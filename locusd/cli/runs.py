"""``locus run`` (the worker, in the foreground through the daemon), ``locus runs``, ``locus
logs RUN``, ``locus cancel RUN``.

``locus run`` starts the daemon's worker, follows every run it starts (live progress on
stderr), answers approval requests at the terminal, and on Ctrl-C cancels the runs it started
and stops the worker: each run ends in an explicit state (the cloud gets its task back). With
``--once`` it exits after one task, with the run's exit code.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, get_args

import click

from locusd.agent.policy import Mode
from locusd.cli.asking import Asker, Withdrawn, agent_option, mode_option, question
from locusd.cli.common import (
    CANCELLED,
    FAILED,
    NEEDS_INPUT,
    OK,
    daemon,
    json_option,
    run,
    show,
)
from locusd.cli.handles import resolved
from locusd.cli.output import Column, err, fail, out, print_json_line, text
from locusd.cli.progress import Progress
from locusd.cli.rpc import DaemonClient
from locusd.cli.waits import why_waiting
from locusd.modelenv import model_env
from locusd.protocol.base import Empty
from locusd.protocol.messages import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalResolved,
    LogsParams,
    Run,
    RunCancelParams,
    RunEvent,
    RunEvents,
    RunList,
    RunRef,
    RunState,
    WorkerStartParams,
    WorkerStatus,
)

STATE_EXIT = {
    "awaiting_review": OK,
    "completed": OK,
    "committed": OK,
    "reported": OK,
    "needs_input": NEEDS_INPUT,
    "cancelled": CANCELLED,
}
#: Every state but the agent's own (starting, running): the run is over for ``locus run``.
ENDED = set(get_args(RunState)) - {"starting", "running"}


def _run_line(run: Run) -> str:
    task = f"task #{run.task_id}" if run.task_id is not None else "local"
    extra = run.reason or run.question or run.summary or ""
    return f"{run.short_id} {run.run_id}  {run.state:<16} {task}  {run.title}" + (
        f" — {extra}" if extra else ""
    )


#: ``locus run``'s answers to an approval question (Enter: no).
ANSWERS: dict[str, ApprovalDecision] = {
    **dict.fromkeys(("y", "yes", "once"), "allow_once"),
    **dict.fromkeys(("a", "always"), "allow_always"),
    **dict.fromkeys(("n", "no"), "reject"),
}


class Follower:
    """Follows runs: subscribes to each one the worker starts, shows its events, and asks the
    approval questions of the runs it follows (a withdrawn question is a no)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.asker = Asker(err.console, progress)
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.finished: dict[str, Run] = {}
        self.started: set[str] = set()
        #: Ctrl-C: the runs are being cancelled; set once they are.
        self.stopping = False
        self.stopped = asyncio.Event()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if method == "locus/approval/resolved":  # decided elsewhere, or the run was cancelled
            resolved = ApprovalResolved.model_validate(params)
            said = (
                "no: withdrawn by the daemon (reject)"
                if resolved.decision == "reject"
                else f"answered in another client: {resolved.decision.replace('_', ' ')}"
            )
            self.asker.withdraw(resolved.approval_id, said)
        self.queue.put_nowait((method, params))

    async def approve(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """An approval request from the daemon, answered at the terminal (no without one)."""
        request = ApprovalRequest.model_validate(params)
        if not sys.stdin.isatty():
            return {"decision": "reject"}
        shown = question(f"run {request.run_id}", request.command, request.reason)
        prompt = "allow? [y]es once, [a]lways in this run, [N]o: "
        try:
            decision = await self.asker.ask(
                request.approval_id, shown, prompt, ANSWERS, default="reject"
            )
        except Withdrawn:
            if self.stopping:  # Ctrl-C: the run's cancel answers it, so it cannot go on first
                await self.stopped.wait()
            decision = "reject"
        return {"decision": decision}

    async def step(self, client: DaemonClient) -> Run | None:
        """Handle one notification; the run when it has just ended."""
        method, params = await self.queue.get()
        if method == "locus/runs/started":
            started = Run.model_validate(params)
            self.started.add(started.run_id)
            self.progress.print(text(("started", "bold"), f" {_run_line(started)}"))
            await client.call("locus/runs/subscribe", RunRef(run_id=started.run_id), RunEvents)
        elif method == "locus/runs/event":
            event = RunEvent.model_validate(params)
            turn = int(event.data.get("turn", 0))
            self.progress.show(event.kind, event.text, event.data, turn)
            if event.kind == "completed":
                ended = Run.model_validate(event.data)
                self.finished[ended.run_id] = ended
                self.progress.print(text(("ended", "bold"), f" {_run_line(ended)}"))
                return ended
        return None


@click.command("run")
@click.option("--once", is_flag=True, help="stop after one task")
@click.option(
    "--task", "task_id", type=int, help="only this task (it must be queued); implies --once"
)
@click.option("--agents", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option(
    "--repo",
    "repos",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="a checkout to serve (repeatable; default: the current directory)",
)
@click.option(
    "--no-wait", is_flag=True, help="fail at once, saying why, when there is nothing to claim"
)
@mode_option
@agent_option
@json_option
def run_command(
    once: bool,
    task_id: int | None,
    agents: int,
    repos: tuple[Path, ...],
    no_wait: bool,
    mode: Mode | None,
    agent: str | None,
    as_json: bool,
) -> None:
    """Work on the cloud's queued tasks for these repositories, in the foreground."""
    once = once or task_id is not None
    checkouts = [str(p.resolve()) for p in (repos or (Path.cwd(),))]
    status = err.console.status("waiting for a task") if err.terminal and not as_json else None
    follower = Follower(Progress(err.console, status))

    async def work() -> list[Run]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with daemon(on_notification=follower.notify, on_request=follower.approve) as client:
            waits = await why_waiting(client, task_id, checkouts)
            if waits is not None and no_wait:
                fail(waits, FAILED)
            if waits is not None:  # said once, and kept on the spinner
                err.say(("waiting:", "yellow"), " ", waits)
                if status is not None:
                    status.update(text("waiting: ", waits))
            # The model settings of this shell, for these runs (the daemon may be older).
            params = WorkerStartParams(
                agents=agents,
                once=once,
                task_id=task_id,
                repos=checkouts,
                mode=mode,
                agent=agent,
                model_env=model_env(),
            )
            started = await client.call("locus/worker/start", params, WorkerStatus)
            err.say(
                f"serving {', '.join(started.repositories)} for project(s) {started.projects}"
                " — Ctrl-C stops"
            )
            stopping = asyncio.ensure_future(stop.wait())
            lost = asyncio.ensure_future(client.closed.wait())
            while True:
                step = asyncio.ensure_future(follower.step(client))
                await asyncio.wait({step, stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
                if lost.done() and not step.done():
                    step.cancel()
                    raise ConnectionError("lost the connection to locusd")
                if stopping.done():
                    step.cancel()
                    await _stop(client, follower)
                    break
                if step.result() is not None and once:
                    break
            return list(follower.finished.values())

    if status is not None:
        with status:
            ended = run(work)
    else:
        ended = run(work)
    show([r.model_dump(mode="json") for r in ended], as_json, lambda: None)
    if once and ended:
        sys.exit(STATE_EXIT.get(ended[-1].state, FAILED))
    if any(r.state == "cancelled" for r in ended):
        sys.exit(CANCELLED)


async def _stop(client: DaemonClient, follower: Follower) -> None:
    """Ctrl-C: no to a question on screen, cancel what this session started, stop the worker;
    every run ends explicitly."""
    follower.stopping = True
    follower.asker.withdraw(None, "no: Ctrl-C")
    err.say("stopping: cancelling the runs started here")
    try:
        for run_id in follower.started - set(follower.finished):
            # Stopping the worker is not deciding against the task: it goes back to the queue.
            params = RunCancelParams(run_id=run_id, requeue=True)
            ended = await client.call("locus/runs/cancel", params, Run)
            follower.finished[run_id] = ended
    finally:
        follower.stopped.set()
    await client.call("locus/worker/stop", Empty(), WorkerStatus)


@click.command("runs")
@json_option
def runs_command(as_json: bool) -> None:
    """Every run the daemon knows, newest last."""

    async def work() -> RunList:
        async with daemon() as client:
            return await client.call("locus/runs/list", Empty(), RunList)

    result = run(work)

    def human() -> None:
        out.table(
            [
                Column("id", whole=True),
                Column("run", whole=True),
                Column("state"),
                Column("task"),
                Column("title"),
            ],
            ([r.short_id, r.run_id, r.state, r.task_id or "local", r.title] for r in result.runs),
        )

    show(result, as_json, human)


@click.command("logs")
@click.argument("handle", metavar="RUN")
@click.option("--follow", "-f", is_flag=True, help="keep showing events until the run ends")
@json_option
def logs_command(handle: str, follow: bool, as_json: bool) -> None:
    """A run's events (what the agent said and did). RUN: its short id or id (or a prefix), a
    task number (that task's latest run), or 'latest'."""
    queue: asyncio.Queue[RunEvent] = asyncio.Queue()

    def notify(method: str, params: dict[str, Any]) -> None:
        if method == "locus/runs/event":
            queue.put_nowait(RunEvent.model_validate(params))

    async def work() -> list[RunEvent]:
        async with daemon(on_notification=notify) as client:
            run_id = await resolved(client, handle)
            if not follow:
                events = await client.call("locus/runs/logs", LogsParams(run_id=run_id), RunEvents)
                return events.events
            backlog = await client.call("locus/runs/subscribe", RunRef(run_id=run_id), RunEvents)
            for event in backlog.events:
                _print_event(event, as_json)
            run_now = await client.call("locus/runs/show", RunRef(run_id=run_id), Run)
            if run_now.state in ENDED:
                return []  # it was over already: the backlog above is all there is
            while True:  # subscribed before the show: the end cannot slip between
                event = await queue.get()
                _print_event(event, as_json)
                if event.kind == "completed":
                    return []

    for event in run(work):
        _print_event(event, as_json)


def _print_event(event: RunEvent, as_json: bool) -> None:
    if as_json:
        print_json_line(event.model_dump_json(by_alias=True))
    elif event.kind != "text":
        out.say(f"{event.seq:>5} {event.kind:<10} {event.text[:300]}")
    else:
        out.data(event.text)


@click.command("cancel")
@click.argument("handle", metavar="RUN")
@click.option(
    "--requeue",
    is_flag=True,
    help="give its cloud task back to the queue instead of cancelling it",
)
@json_option
def cancel_command(handle: str, requeue: bool, as_json: bool) -> None:
    """Stop a running run here (its command is killed). Its cloud task is cancelled, so no
    worker takes it again; --requeue gives it back to the queue instead. RUN: its short id or
    id (or a prefix), a task number (that task's latest run), or 'latest'."""

    async def work() -> Run:
        async with daemon() as client:
            params = RunCancelParams(run_id=await resolved(client, handle), requeue=requeue)
            return await client.call("locus/runs/cancel", params, Run)

    result = run(work)
    show(result, as_json, lambda: out.say(_run_line(result)))
