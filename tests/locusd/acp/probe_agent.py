"""An ACP agent for tests, run by Locus as an ``[agents.NAME]`` agent (in the run's sandbox): on
a prompt with a line that is a JSON list of requests, it asks its client for each —
``{"read": PATH}``, ``{"write": PATH, "content": TEXT}``, ``{"run": COMMAND}``, ``{"kill":
COMMAND}`` (started, then killed once its output shows), ``{"plan": [ENTRY, ...]}`` (sent as
a ``plan`` update; an entry: ``content``, ``status``, ``priority``), ``{root}`` in a
path standing for its session's cwd (the worktree) — and says what each gave back (or the
error) as one JSON line of its message, then ends its turn.

``{"stubborn": MARK, "calls": N}`` makes it an agent that will not stop: it ignores SIGTERM and
``session/cancel``, starts a child that ignores SIGTERM and double-forks a ``setsid``
grandchild that ignores it too, runs a terminal command that ignores it, and once all of them
run (each with MARK in its command line, for the test to find) starts N tool calls and never
ends its turn."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import acp
from acp.schema import InitializeResponse, NewSessionResponse, PromptResponse

#: The stubborn agent's child (``-c CHILD MARK READY``): it and its double-forked ``setsid``
#: grandchild ignore SIGTERM; the grandchild writes READY once it runs.
CHILD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(10**6)
    os._exit(0)
time.sleep(10**6)
"""
#: The stubborn agent's terminal command: it ignores SIGTERM, then makes the file ``deaf`` in
#: the worktree (a terminal's output is known only once it ends).
DEAF = (
    "python3 -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    ' open("deaf", "w").close(); time.sleep(10**6)\' {mark}'
)


class Probe:
    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(protocol_version=protocol_version)

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        self.cwd = cwd
        return NewSessionResponse(session_id="probe")

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        lines = [line for line in prompt[0].text.splitlines() if line.startswith("[{")]
        requests = json.loads(lines[0]) if lines else []  # a verify failure: nothing to do
        if requests and "stubborn" in requests[0]:
            await self._stubborn(session_id, requests[0]["stubborn"], int(requests[0]["calls"]))
        for request in requests:
            try:
                answer = await self._ask(session_id, request)
            except acp.RequestError as exc:
                answer = {"error": exc.code, "data": exc.data}
            line = json.dumps(answer) + "\n"
            await self.conn.session_update(session_id, acp.update_agent_message_text(line))
        return PromptResponse(stop_reason="end_turn")

    async def _ask(self, session: str, given: dict[str, Any]) -> dict[str, Any]:
        if "plan" in given:
            entries = [acp.plan_entry(**entry) for entry in given["plan"]]
            await self.conn.session_update(session, acp.update_plan(entries))
            return {"planned": len(entries)}
        request = {key: value.replace("{root}", self.cwd) for key, value in given.items()}
        if "read" in request:
            read = await self.conn.read_text_file(path=request["read"], session_id=session)
            return {"content": read.content}
        if "write" in request:
            await self.conn.write_text_file(
                path=request["write"], content=request["content"], session_id=session
            )
            return {"written": request["write"]}
        command = request.get("run") or request["kill"]
        made = await self.conn.create_terminal(command=command, session_id=session)
        if "kill" in request:
            await asyncio.sleep(1)  # a moment for it to start (the test checks what is left)
            await self.conn.kill_terminal(session_id=session, terminal_id=made.terminal_id)
        done = await self.conn.wait_for_terminal_exit(
            session_id=session, terminal_id=made.terminal_id
        )
        output = await self.conn.terminal_output(session_id=session, terminal_id=made.terminal_id)
        return {"exit": done.exit_code, "output": output.output}

    async def _stubborn(self, session: str, mark: str, calls: int) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ready = Path(tempfile.mkdtemp()) / "ready"
        subprocess.Popen([sys.executable, "-c", CHILD, mark, str(ready)])
        await self.conn.create_terminal(command=DEAF.format(mark=mark), session_id=session)
        while not ready.exists() or not (Path(self.cwd) / "deaf").exists():
            await asyncio.sleep(0.01)
        for call in range(calls):
            await self.conn.session_update(session, acp.start_tool_call(f"call-{call}", "spend"))
        await asyncio.Event().wait()  # its turn never ends; a cancel changes nothing

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        pass


if __name__ == "__main__":
    asyncio.run(acp.run_agent(Probe()))  # type: ignore[arg-type]
