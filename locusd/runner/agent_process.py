"""One agent run in a child process (``python -m locusd.agent.child``), called as
``run_task`` is: the daemon swaps one call and keeps its callbacks.

Why: the model SDKs (~85 MB for ``anthropic`` alone) are imported by the child and leave with it,
so the long-lived daemon stays small; and an agent that crashes takes down only its process.
The child's output is untrusted input: every line is bounded and validated against the models in
``locusd/agent/pipe.py``; a child that dies, exits early or writes anything else ends its run
with :class:`AgentProcessError`, which the run manager records as the run's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from locusd.agent.pipe import (
    FROM_CHILD,
    MAX_ERROR,
    MAX_LINE,
    Answer,
    Ask,
    Cancel,
    EventMessage,
    Failure,
    FromChild,
    Phase,
    Report,
    Start,
    ToChild,
    WorktreeReady,
    line,
)
from locusd.agent.report import Approver, OnEvent, RunReport
from locusd.config import Config
from locusd.errors import describe
from locusd.git.worktrees import Worktree
from locusd.modelenv import ModelEnv, with_model_env

CHILD = (sys.executable, "-m", "locusd.agent.child")
#: Seconds a child has to end its run once its stdin is closed, before it is killed.
GRACE = 10.0


class AgentProcessError(Exception):
    """The agent process died, exited without a report, or broke the protocol; says which.
    ``local``: it said this machine's setup cannot run the agent (a claim the run manager
    checks for itself before it gives a cloud task back)."""

    def __init__(self, message: str, *, local: bool = False) -> None:
        super().__init__(message)
        self.local = local


def ending(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"the agent process died (signal {-returncode}, {name}) before reporting"
    return f"the agent process exited with status {returncode} before reporting"


class _Child:
    def __init__(self, process: asyncio.subprocess.Process, approver: Approver | None) -> None:
        self.process = process
        self.approver = approver
        self.asking: set[asyncio.Task[None]] = set()

    def send(self, message: ToChild) -> None:
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(line(message))

    async def messages(self) -> AsyncIterator[FromChild]:
        assert self.process.stdout is not None
        number = 0
        while True:
            try:
                raw = await self.process.stdout.readline()
            except ValueError:  # over the reader's limit
                raise AgentProcessError(
                    f"the agent process wrote a line over {MAX_LINE} bytes"
                ) from None
            if not raw.endswith(b"\n"):
                return  # the end (a torn last line: it died mid-write)
            number += 1
            try:
                yield FROM_CHILD.validate_json(raw)
            except ValidationError as exc:
                raise AgentProcessError(
                    f"the agent process broke the protocol (line {number}): {describe(exc)}"[
                        :MAX_ERROR
                    ]
                ) from None

    async def follow(
        self,
        cancel: asyncio.Event,
        on_event: OnEvent,
        on_phase: Callable[[str], None],
        on_worktree: Callable[[Worktree], None],
    ) -> RunReport:
        relay = asyncio.ensure_future(self._relay(cancel))
        try:
            async for message in self.messages():
                if isinstance(message, Report):
                    return message.report
                if isinstance(message, Failure):
                    raise AgentProcessError(message.message, local=message.local)
                if isinstance(message, EventMessage):
                    on_event(message.event)
                elif isinstance(message, Phase):
                    on_phase(message.text)
                elif isinstance(message, WorktreeReady):
                    on_worktree(message.worktree)
                elif isinstance(message, Ask):
                    asking = asyncio.create_task(self._answer(message))
                    self.asking.add(asking)
                    asking.add_done_callback(self.asking.discard)
        finally:
            relay.cancel()
        raise AgentProcessError(ending(await self.process.wait()))

    async def _relay(self, cancel: asyncio.Event) -> None:
        await cancel.wait()
        self.send(Cancel())

    async def _answer(self, ask: Ask) -> None:
        allowed = False if self.approver is None else await self.approver(ask.command, ask.reason)
        self.send(Answer(id=ask.id, allowed=allowed))

    async def end(self) -> None:
        """Closing stdin tells a child still running to cancel its run (killing its commands);
        one that does not end within :data:`GRACE` is killed."""
        for asking in list(self.asking):
            asking.cancel()
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


def _ignore(_: object) -> None:
    return None


async def run_in_child(
    *,
    repo: Path,
    task: str,
    config: Config,
    replay: Path | None,
    task_id: str,
    cancel: asyncio.Event,
    approver: Approver | None = None,
    on_event: OnEvent | None = None,
    on_phase: Callable[[str], None] | None = None,
    on_worktree: Callable[[Worktree], None] | None = None,
    continue_in: Worktree | None = None,
    program: Sequence[str] = CHILD,
    model_env: ModelEnv | None = None,
    planning: bool = False,
) -> RunReport:
    """``run_task`` in a child process (``program``; the default is the agent's entry point).
    The provider is built there from ``config``, ``replay`` and its environment: the daemon's,
    with the ``model_env`` a client gave for this run (the agent's commands never see either:
    ``locusd/agent/commands.py`` scrubs them); the daemon has checked them (``check_agent``)."""
    start = Start(
        repo=repo,
        task=task,
        config=config,
        replay=replay,
        task_id=task_id,
        attended=approver is not None,
        continue_in=continue_in,
        planning=planning,
    )
    process = await asyncio.create_subprocess_exec(
        *program,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,  # stderr: the daemon's own, i.e. its log
        limit=MAX_LINE,
        env=with_model_env(os.environ, model_env) if model_env else None,
        start_new_session=True,  # a Ctrl-C at the daemon's terminal reaches it as a cancel
    )
    child = _Child(process, approver)
    try:
        child.send(start)
        return await child.follow(
            cancel, on_event or _ignore, on_phase or _ignore, on_worktree or _ignore
        )
    finally:
        await child.end()
