"""Locus as the ACP client of an external agent: what the agent asks of its client, answered
by the run's own parts, so the agent gets no more than the built-in one.

- ``session/request_permission``: a command is judged by the user's policy and mode (and asked
  about through the run's approver, as ``run_command`` asks); an edit is allowed only inside the
  worktree, never in ``.git/``; a fetch is refused (the agent's network reaches only its model).
  An allow is always ``allow_once``: an agent that remembered ``allow_always`` would stop asking.
- ``fs/*``: through the file tools' confined open (:mod:`locusd.agent.confine`).
- ``terminal/*``: through ``run_command`` (policy, sandbox, scrubbed environment, quota).
- ``session/update``: the run's events; usage and cost against the run's budget.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import RequestError
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    AllowedOutcome,
    CreateTerminalResponse,
    DeniedOutcome,
    EnvVariable,
    KillTerminalResponse,
    PermissionOption,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    TextContentBlock,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    UsageUpdate,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

from locusd.agent import tools
from locusd.agent.confine import ConfinementError
from locusd.agent.report import Event, OnEvent
from locusd.agent.tools import Workspace

#: Kinds of tool call that only look: allowed without a question.
LOOKING = {"read", "search", "think", "switch_mode"}
#: Kinds that change files: allowed when every path is inside the worktree.
EDITING = {"edit", "delete", "move"}
#: How much of an agent's plan a run keeps (entries, characters each): its text is data.
PLAN_ENTRIES, PLAN_TEXT = 100, 2000
#: How a plan's entry shows as text, by status.
PLAN_MARKS = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


@dataclass
class Spending:
    """What the agent reported it used: tool calls (the run's turns), cost, tokens."""

    turns: int = 0
    cost: float = 0.0
    cost_known: bool = False


@dataclass
class _Terminal:
    task: asyncio.Task[tools.ToolResult]
    kill: asyncio.Event  # kills the command's whole group (run_command's own kill)


@dataclass
class LocusClient:
    """The ACP ``Client`` of one run (methods named as the ``acp`` package dispatches them)."""

    ws: Workspace
    on_event: OnEvent
    #: Called after each usage report: the session ends when it says the budget is spent.
    on_spent: Callable[[], None]
    #: Set once the session is ending (a spent budget): every later request is refused.
    ending: asyncio.Event = field(default_factory=asyncio.Event)
    spending: Spending = field(default_factory=Spending)
    #: The last permission Locus refused, said as the policy note says it (None: none yet).
    refused: str | None = None
    _terminals: dict[str, _Terminal] = field(default_factory=dict)
    #: Released ones, killed but maybe not gone yet: the run ends only once they are.
    _released: list[_Terminal] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _titles: dict[str, str] = field(default_factory=dict)

    # --- permissions -----------------------------------------------------------------------

    async def request_permission(
        self,
        options: list[PermissionOption],
        session_id: str,
        tool_call: ToolCallUpdate,
        **kwargs: Any,
    ) -> RequestPermissionResponse:
        refusal = await self._refusal(tool_call)
        if refusal is not None:
            self.refused = f"{tool_call.title or tool_call.kind}: {refusal}"
            self.note("policy", f"refused {self.refused}")
        wanted = ("reject_once", "reject_always") if refusal else ("allow_once",)
        chosen = next((o for o in options if o.kind in wanted), None)
        if chosen is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=chosen.option_id)
        )

    async def _refusal(self, call: ToolCallUpdate) -> str | None:
        if self.ending.is_set() or self.ws.cancel.is_set():
            return "the run is ending (cancelled, or its budget is spent)"
        raw = call.raw_input if isinstance(call.raw_input, dict) else {}
        if call.kind == "execute":
            command = raw.get("command")
            if not isinstance(command, str) or not command.strip():
                return "a command to run must be named in rawInput.command"
            refusal, _ = await tools.command_refusal(self.ws, command)
            return refusal
        if call.kind in EDITING:
            paths = [loc.path for loc in call.locations or []]
            paths += [v for k, v in raw.items() if k.endswith("path") and isinstance(v, str)]
            for path in paths:
                try:
                    self._relative(path)
                except RequestError as exc:
                    return str(exc.data or exc)
            return None if paths else "an edit must name the files it changes"
        if call.kind in LOOKING:
            return None
        if call.kind == "fetch":
            return "the agent's network reaches only its model endpoint"
        # Anything else (another tool of the agent's own): the user's to answer, if anyone is.
        what = call.title or str(call.kind)
        if await self.ws.approved(what, f"the agent asks to use {what}"):
            return None
        return f"{what}: not allowed (nobody approved it)"

    # --- files -----------------------------------------------------------------------------

    def _relative(self, path: str) -> str:
        """``path`` as the confined file tools take it, or an ACP error naming the field."""
        given = Path(path)
        root = self.ws.root
        if not given.is_absolute():
            raise RequestError.invalid_params({"path": f"{path!r}: ACP paths are absolute"})
        try:
            relative = given.relative_to(root)
        except ValueError:
            raise RequestError.invalid_params(
                {"path": f"{path} is outside the run's worktree {root}"}
            ) from None
        try:
            return self.ws.files.relative(str(relative))
        except (ConfinementError, ValueError) as exc:
            raise RequestError.invalid_params({"path": f"{path}: {exc}"}) from None

    async def read_text_file(
        self,
        path: str,
        session_id: str,
        limit: int | None = None,
        line: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:
        relative = self._relative(path)
        try:
            data = await asyncio.to_thread(self.ws.files.read_bytes, relative, self.ws.read_limit)
        except (OSError, ValueError) as exc:
            raise RequestError.invalid_params({"path": f"{path}: {exc}"}) from None
        text = data.decode("utf-8", "replace")
        if line is not None or limit is not None:
            start = max((line or 1) - 1, 0)
            lines = text.splitlines(keepends=True)
            text = "".join(lines[start : start + limit if limit is not None else None])
        return ReadTextFileResponse(content=text)

    async def write_text_file(
        self, content: str, path: str, session_id: str, **kwargs: Any
    ) -> WriteTextFileResponse | None:
        relative = self._relative(path)
        try:
            await asyncio.to_thread(self.ws.files.write_bytes, relative, content.encode())
        except (OSError, ValueError) as exc:
            raise RequestError.invalid_params({"path": f"{path}: {exc}"}) from None
        return WriteTextFileResponse()

    # --- terminals: run_command, policy and sandbox included --------------------------------

    async def create_terminal(
        self,
        command: str,
        session_id: str,
        args: list[str] | None = None,
        cwd: str | None = None,
        env: list[EnvVariable] | None = None,
        output_byte_limit: int | None = None,
        **kwargs: Any,
    ) -> CreateTerminalResponse:
        line = shlex.join([command, *args]) if args else command
        if cwd is not None and Path(cwd) != self.ws.root:
            line = f"cd {shlex.quote(self._relative(cwd))} && {line}"
        run = tools.RunCommand(command=line, timeout=self.ws.command_timeout)
        terminal = f"terminal-{next(self._ids)}"
        kill = asyncio.Event()
        running = asyncio.ensure_future(tools.run_command_line(self.ws, run, kill))
        self._terminals[terminal] = _Terminal(running, kill)
        return CreateTerminalResponse(terminal_id=terminal)

    def _terminal(self, terminal_id: str) -> _Terminal:
        found = self._terminals.get(terminal_id)
        if found is None:
            raise RequestError.invalid_params({"terminalId": f"no terminal {terminal_id!r}"})
        return found

    @staticmethod
    def _status(result: tools.ToolResult) -> TerminalExitStatus:
        code = result.exit_code if result.exit_code is not None else 1
        return TerminalExitStatus(exit_code=max(code, 0))

    async def terminal_output(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> TerminalOutputResponse:
        task = self._terminal(terminal_id).task
        if not task.done():
            return TerminalOutputResponse(output="", truncated=False)
        result = task.result()
        return TerminalOutputResponse(
            output=result.content, truncated=False, exit_status=self._status(result)
        )

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> WaitForTerminalExitResponse:
        status = self._status(await asyncio.shield(self._terminal(terminal_id).task))
        return WaitForTerminalExitResponse(exit_code=status.exit_code)

    async def kill_terminal(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> KillTerminalResponse | None:
        self._terminal(terminal_id).kill.set()
        return KillTerminalResponse()

    async def release_terminal(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> ReleaseTerminalResponse | None:
        self._terminal(terminal_id).kill.set()
        self._released.append(self._terminals.pop(terminal_id))
        return ReleaseTerminalResponse()

    async def close(self) -> None:
        """Kill every command still running, and wait until each one's tree is gone (the run
        ends), released ones too."""
        every = [*self._terminals.values(), *self._released]
        for terminal in every:
            terminal.kill.set()
        await asyncio.gather(*(t.task for t in every), return_exceptions=True)

    # --- progress ---------------------------------------------------------------------------

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        turn = self.spending.turns
        if isinstance(update, AgentMessageChunk | AgentThoughtChunk):
            if isinstance(update.content, TextContentBlock) and update.content.text:
                kind = "text" if isinstance(update, AgentMessageChunk) else "thought"
                if kind == "text":
                    self.on_event(Event("text", turn, update.content.text))
        elif isinstance(update, ToolCallStart):
            self.spending.turns += 1
            self._titles[update.tool_call_id] = update.title
            data = {"input": update.raw_input, "kind": update.kind}
            self.on_event(Event("tool", self.spending.turns, update.title, data))
            self.on_spent()
        elif isinstance(update, ToolCallProgress):
            if update.title:
                self._titles[update.tool_call_id] = update.title
            if update.status in ("completed", "failed"):
                title = self._titles.get(update.tool_call_id, update.tool_call_id)
                done = {"is_error": update.status == "failed", "content": _text(update)}
                self.on_event(Event("tool_done", turn, title, done))
        elif isinstance(update, AgentPlanUpdate):
            self.on_event(plan_event(turn, update))
        elif isinstance(update, UsageUpdate) and update.cost is not None:
            if update.cost.currency == "USD":
                self.spending.cost = update.cost.amount
                self.spending.cost_known = True
            self.on_spent()

    def note(self, kind: str, message: str) -> None:
        self.on_event(Event("note", self.spending.turns, message, {"kind": kind}))

    def on_connect(self, conn: Any) -> None:
        """Nothing to keep: the session holds the connection."""


def plan_event(turn: int, update: AgentPlanUpdate) -> Event:
    """The agent's plan as a ``plan`` note: its entries (bounded) for clients that show plans
    (``locusd acp`` sends them on as a ``plan`` update), and as lines for those that do not."""
    entries = [
        {"content": e.content[:PLAN_TEXT], "priority": e.priority, "status": e.status}
        for e in update.entries[:PLAN_ENTRIES]
    ]
    lines = [f"{PLAN_MARKS.get(e['status'], '[ ]')} {e['content']}" for e in entries]
    return Event("note", turn, "plan:\n" + "\n".join(lines), {"kind": "plan", "entries": entries})


def _text(update: ToolCallProgress) -> str:
    if isinstance(update.raw_output, str):
        return update.raw_output
    parts = []
    for item in update.content or []:
        inner = getattr(item, "content", None)
        if isinstance(inner, TextContentBlock):
            parts.append(inner.text)
    return "\n".join(parts)
