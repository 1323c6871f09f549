"""The agent process: one ``run_task`` for the daemon, spoken to in the lines of
``locusd/agent/pipe.py`` (``python -m locusd.agent.child``; the daemon side is
``locusd/runner/agent_process.py``).

Why a process of its own: the model SDKs' memory stays out of the long-lived daemon and leaves
with the run, and an agent that crashes takes only itself down. If the daemon goes away (its end
of stdin closes; on Linux also the parent-death signal) the run is cancelled at once, which kills
the agent's command process groups: no agent keeps editing a worktree nobody watches.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import itertools
import logging
import os
import signal
import sys
from typing import NoReturn

from pydantic import ValidationError

from locusd.agent.pipe import (
    MAX_ERROR,
    MAX_LINE,
    TO_CHILD,
    Answer,
    Ask,
    Cancel,
    EventMessage,
    Failure,
    FromChild,
    Phase,
    Report,
    Start,
    WorktreeReady,
    line,
)
from locusd.agent.providers import ConfigurationError
from locusd.agent.providers.select import provider_for
from locusd.agent.run import run_task

log = logging.getLogger("locusd.agent.child")
PR_SET_PDEATHSIG = 1


def private_pipes() -> tuple[int, int]:
    """Move the protocol's pipes off fds 0 and 1 (to non-inheritable fds), leaving /dev/null and
    stderr there: nothing the run starts (git, setup, the agent's commands) or prints can read
    or corrupt the protocol, or hold its pipes open after this process is gone."""
    incoming, outgoing = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return incoming, outgoing


def die_with_parent() -> None:
    """Linux: SIGTERM (handled as a cancel) when the daemon dies — a second net under EOF."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Daemon:
    """The daemon's end of the pipes, as the run's callbacks."""

    def __init__(self, reader: asyncio.StreamReader, out: io.BufferedWriter) -> None:
        self.reader = reader
        self.out = out
        self.cancel = asyncio.Event()
        self.gone = False  # nothing more will come from the daemon
        self.deaf = False  # nothing more can go to it
        self.asks: dict[int, asyncio.Future[bool]] = {}
        self._ids = itertools.count(1)

    def send(self, message: FromChild) -> None:
        if self.deaf:
            return
        try:
            self.out.write(line(message))
            self.out.flush()
        except BrokenPipeError:  # the daemon has gone
            self.deaf = True
            self.lost()

    def lost(self) -> None:
        """The daemon is gone (or wants everything to stop): cancel, refuse what was asked."""
        self.gone = True
        self.cancel.set()
        for pending in self.asks.values():
            if not pending.done():
                pending.set_result(False)
        self.asks.clear()

    async def listen(self) -> None:
        """Cancels and answers until EOF, which means the daemon has gone."""
        while raw := await self.reader.readline():
            try:
                message = TO_CHILD.validate_json(raw)
            except ValidationError as exc:
                log.error("not a message from the daemon, stopping: %s", exc)
                break
            if isinstance(message, Cancel):
                self.cancel.set()
            elif isinstance(message, Answer):
                pending = self.asks.pop(message.id, None)
                if pending is not None and not pending.done():
                    pending.set_result(message.allowed)
        self.lost()

    async def approve(self, command: str, reason: str) -> bool:
        if self.gone:
            return False
        ask = Ask(id=next(self._ids), command=command, reason=reason)
        answer = asyncio.get_running_loop().create_future()
        self.asks[ask.id] = answer
        self.send(ask)
        return bool(await answer)


async def serve(incoming: int, outgoing: int) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(incoming, "rb", buffering=0)
    )
    first = await reader.readline()
    if not first:
        return 0  # the daemon went before saying what to run
    start = TO_CHILD.validate_json(first)
    if not isinstance(start, Start):
        raise ValueError(f"the first message must be start, not {start.type}")
    daemon = Daemon(reader, os.fdopen(outgoing, "wb"))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.lost)
    listening = asyncio.create_task(daemon.listen())
    try:
        provider = provider_for(start.config, replay=start.replay)
    except ConfigurationError as exc:
        # This machine's setup, before the agent did anything: the only failure said to be
        # local (a cloud task is given back, not failed). Nothing the agent does comes first.
        listening.cancel()
        daemon.send(Failure(message=str(exc)[:MAX_ERROR], local=True))
        return 1
    try:
        report = await run_task(
            repo=start.repo,
            task=start.task,
            provider=provider,
            config=start.config,
            task_id=start.task_id,
            cancel=daemon.cancel,
            approver=daemon.approve if start.attended else None,
            on_event=lambda event: daemon.send(EventMessage(event=event)),
            on_phase=lambda text: daemon.send(Phase(text=text)),
            on_worktree=lambda worktree: daemon.send(WorktreeReady(worktree=worktree)),
            continue_in=start.continue_in,
            planning=start.planning,
        )
    except Exception as exc:  # a run that cannot run: its reason goes to the daemon
        log.exception("run %s failed", start.task_id)
        daemon.send(Failure(message=(str(exc) or type(exc).__name__)[:MAX_ERROR]))
        return 1
    finally:
        listening.cancel()
    daemon.send(Report(report=report))
    return 0


def main() -> NoReturn:
    incoming, outgoing = private_pipes()
    die_with_parent()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s agent[{os.getpid()}] %(name)s: %(message)s",
    )
    code = asyncio.run(serve(incoming, outgoing))
    logging.shutdown()
    # Everything is written and closed: skip tearing the interpreter down (a third of a second
    # with the SDKs loaded), which the daemon would otherwise wait for.
    os._exit(code)


if __name__ == "__main__":
    main()
