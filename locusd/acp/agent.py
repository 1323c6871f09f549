"""The ACP ``Agent`` that ``locusd acp`` serves: each ACP call becomes daemon calls.

An ACP session is bound to a checkout (its ``cwd``) and follows one run at a time: a prompt
starts a run (or a slash command acts on the session's run), and the prompt's turn lasts until
the run rests (awaits review, needs input, failed, cancelled). The daemon does the work and
holds the state; this keeps only which session follows which run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from acp import PROTOCOL_VERSION, Client, RequestError, helpers
from acp.schema import (
    AgentCapabilities,
    AudioContentBlock,
    AvailableCommand,
    AvailableCommandInput,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptCapabilities,
    PromptResponse,
    ResourceContentBlock,
    SessionCapabilities,
    SessionInfo,
    SessionListCapabilities,
    StopReason,
    TextContentBlock,
    ToolCallUpdate,
    UnstructuredCommandInput,
)

from locusd import __version__
from locusd.acp.updates import EventTranslator, Update, diff_update
from locusd.cli.rpc import DaemonClient, DaemonError, NoAnswer
from locusd.modelenv import model_env

log = logging.getLogger("locusd.acp")
INTERNAL_ERROR = -32603
T = TypeVar("T")

#: ACP protocol versions this agent speaks (the SDK's schema).
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
#: The review through ACP extension methods (``_locus/review/…``), passed to the daemon as is.
REVIEW_METHODS = frozenset(
    {
        "locus/review/get",
        "locus/review/decide",
        "locus/review/commit",
        "locus/review/send_back",
        "locus/review/content",
    }
)
#: The options of ``session/request_permission``: the option id is the daemon's decision.
PERMISSION_OPTIONS = (
    PermissionOption(option_id="allow_once", name="Allow once", kind="allow_once"),
    PermissionOption(
        option_id="allow_always", name="Always allow this command", kind="allow_always"
    ),
    PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
)
DECISIONS = frozenset(option.option_id for option in PERMISSION_OPTIONS)


def _command(name: str, description: str, hint: str | None = None) -> AvailableCommand:
    given = AvailableCommandInput(root=UnstructuredCommandInput(hint=hint)) if hint else None
    return AvailableCommand(name=name, description=description, input=given)


COMMANDS = (
    _command("claim", "Claim a cloud task (the next queued, or this number) and run it", "task"),
    _command("review", "Show the run's changes, hunk by hunk, with the decisions so far"),
    _command("commit", "Commit the accepted hunks on the task branch", "message"),
    _command("send-back", "Send the rejected hunks and their comments back to the agent"),
    _command("runs", "List the daemon's runs"),
)

Prompt = list[
    TextContentBlock
    | ImageContentBlock
    | AudioContentBlock
    | ResourceContentBlock
    | EmbeddedResourceContentBlock
]


@dataclass
class Session:
    """An ACP session: a checkout, and the run it follows (if any)."""

    session_id: str
    cwd: str
    run: dict[str, Any] | None = None
    translator: EventTranslator | None = None
    events: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    following: asyncio.Task[StopReason] | None = None


def _failure(exc: Exception) -> RequestError:
    """A daemon error as an ACP error with the same code and message (and its kind)."""
    if isinstance(exc, DaemonError):
        return RequestError(exc.code, exc.message, {"kind": exc.kind, "retryable": exc.retryable})
    return RequestError(INTERNAL_ERROR, str(exc) or type(exc).__name__)


def _invalid(field_name: str, message: str) -> RequestError:
    return RequestError(-32602, f"{field_name}: {message}", {"field": field_name})


def _text(prompt: Prompt) -> str:
    """The prompt's text; other blocks are refused (only text is advertised)."""
    parts = []
    for block in prompt:
        if not isinstance(block, TextContentBlock):
            raise _invalid("prompt", f"only text blocks are accepted, not {block.type}")
        parts.append(block.text)
    text = "".join(parts).strip()
    if not text:
        raise _invalid("prompt", "empty: say what the agent should do, or a /command")
    return text


class LocusAgent:
    """ACP on one side, the daemon (one connection) on the other."""

    def __init__(self, daemon: DaemonClient) -> None:
        self.daemon = daemon
        self.client: Client | None = None
        self.sessions: dict[str, Session] = {}
        self.followed: dict[str, Session] = {}  # run id → the session following it
        self._tasks: set[asyncio.Task[Any]] = set()
        self._spawn(self._watch_daemon())

    def on_connect(self, conn: Client) -> None:
        self.client = conn

    # --- the daemon's side --------------------------------------------------------------------

    def on_daemon_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "locus/runs/event":
            session = self.followed.get(str(params.get("runId")))
            if session is not None:
                session.events.put_nowait(params)

    async def on_daemon_request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``locus/approval`` → ``session/request_permission``; a client that cancels its
        prompt answers nothing (the daemon waits for another client, or withdraws)."""
        session = self.followed.get(str(params.get("runId")))
        if method != "locus/approval" or session is None or self.client is None:
            raise NoAnswer
        command = str(params.get("command", ""))
        translator = session.translator
        open_calls = translator.open_tools.get("run_command") if translator else None
        tool_id = open_calls[-1][0] if open_calls else f"approval:{params.get('approvalId')}"
        answer = await self.client.request_permission(
            session_id=session.session_id,
            tool_call=ToolCallUpdate(
                tool_call_id=tool_id,
                title=f"Run: {command}",
                kind="execute",
                status="pending",
                raw_input={"command": command, "reason": params.get("reason", "")},
            ),
            options=list(PERMISSION_OPTIONS),
        )
        outcome = answer.outcome
        if outcome.outcome != "selected":
            raise NoAnswer
        option = getattr(outcome, "option_id", "")
        return {"decision": option if option in DECISIONS else "reject"}

    async def _watch_daemon(self) -> None:
        await self.daemon.closed.wait()
        for session in self.sessions.values():
            session.events.put_nowait(None)

    async def _call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return await self.daemon.call_wire(method, dict(params or {}))
        except (DaemonError, ConnectionError) as exc:
            raise _failure(exc) from None

    # --- ACP: connection and sessions ----------------------------------------------------------

    async def initialize(
        self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None,
        **kwargs: Any,
    ) -> InitializeResponse:  # fmt: skip
        """The client's version if we speak it, else ours (the client then decides)."""
        version = protocol_version if protocol_version in SUPPORTED_VERSIONS else PROTOCOL_VERSION
        return InitializeResponse(
            protocol_version=version,
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities()),
            ),
            auth_methods=[],
            agent_info=Implementation(name="locus", title="Locus", version=__version__),
            field_meta={"locus": {"extensions": sorted(f"_{m}" for m in REVIEW_METHODS)}},
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> None:
        raise RequestError(-32601, "no authentication here: the daemon holds the session")

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        session = self._session(f"locus-{uuid.uuid4().hex}", cwd)
        self._spawn(self._advertise(session))
        return NewSessionResponse(session_id=session.session_id)

    async def load_session(self, cwd: str, session_id: str, **kwargs: Any) -> LoadSessionResponse:
        """``session_id`` names a run (its id, short id, or ``task-N``: task N's latest run):
        its events so far are replayed as updates, then it is followed live."""
        handle = session_id.removeprefix("task-")
        run = await self._call("locus/runs/resolve", {"handle": handle})
        session = self._session(session_id, cwd)
        await self._send(session, helpers.update_user_message_text(str(run.get("title", ""))))
        if not await self._bind(session, run):
            session.following = self._spawn(self._follow(session))
        self._spawn(self._advertise(session))
        return LoadSessionResponse()

    async def list_sessions(
        self, cwd: str | None = None, cursor: str | None = None, **kwargs: Any
    ) -> ListSessionsResponse:
        """The daemon's runs (of the checkout ``cwd``, if given) and, with a ``cwd``, its
        project's cloud tasks; state or status in ``_meta.locus``."""
        runs = (await self._call("locus/runs/list"))["runs"]
        here = _normal(cwd) if cwd else None
        sessions = [
            SessionInfo(
                session_id=run["runId"],
                cwd=run["repo"],
                title=run.get("title"),
                updated_at=run.get("endedAt") or run.get("startedAt"),
                field_meta={
                    "locus": {"kind": "run", **_pick(run, "state", "shortId", "taskId", "costUsd")}
                },
            )
            for run in runs
            if here is None or _normal(run["repo"]) == here
        ]
        meta: dict[str, Any] = {}
        if here is None:
            meta["tasks"] = "give a cwd to list its project's tasks"
        else:
            try:
                sessions += await self._tasks_of(here)
            except RequestError as exc:  # no login, no cloud, no project: the runs still
                meta["tasks"] = str(exc)
        return ListSessionsResponse(sessions=sessions, field_meta={"locus": meta})

    async def _tasks_of(self, cwd: str) -> list[SessionInfo]:
        found = await self._call("locus/projects/resolve", {"repos": [cwd], "one": True})
        project = found["projects"][0]["id"]
        tasks = (await self._call("locus/tasks/list", {"projectId": project}))["tasks"]
        return [
            SessionInfo(
                session_id=f"task-{task['id']}",
                cwd=cwd,
                title=task.get("title"),
                field_meta={
                    "locus": {
                        "kind": "task",
                        "taskId": task["id"],
                        **_pick(task, "status", "priority", "reason"),
                    }
                },
            )
            for task in tasks
        ]

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.run is None:
            return
        session.cancelled = True
        with contextlib.suppress(RequestError):  # it ended meanwhile: nothing to cancel
            await self._call("locus/runs/cancel", {"runId": session.run["runId"]})

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``_locus/review/*``: the daemon's review methods, params and results as they are
        (a stale revision is the daemon's ``review_stale``)."""
        if method not in REVIEW_METHODS:
            raise RequestError(
                -32601, f"_{method}: not a Locus extension method", {"method": method}
            )
        result = await self._call(method, params)
        return dict(result or {})

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    # --- ACP: prompts ---------------------------------------------------------------------------

    async def prompt(self, session_id: str, prompt: Prompt, **kwargs: Any) -> PromptResponse:
        session = self.sessions.get(session_id)
        if session is None:
            raise _invalid("sessionId", f"no session {session_id!r}: session/new or session/load")
        text = _text(prompt)
        session.cancelled = False
        if text.startswith("/"):
            name, _, argument = text[1:].partition(" ")
            return await self._slash(session, name, argument.strip())
        run = await self._call(
            "locus/runs/start", {"repo": session.cwd, "task": text, "modelEnv": model_env()}
        )
        return await self._run_turn(session, run)

    async def _slash(self, session: Session, name: str, argument: str) -> PromptResponse:
        if name == "claim":
            params: dict[str, Any] = {"repos": [session.cwd], "modelEnv": model_env()}
            if argument:
                if not argument.lstrip("#").isdigit():
                    raise _invalid(
                        "prompt", f"/claim takes a task number (e.g. /claim 12), not {argument!r}"
                    )
                params["taskId"] = int(argument.lstrip("#"))
            return await self._run_turn(session, await self._call("locus/tasks/pull", params))
        if name == "runs":
            runs = (await self._call("locus/runs/list"))["runs"]
            lines = [f"{r['shortId']}  {r['state']:<15} {r['title']}  ({r['repo']})" for r in runs]
            await self._say(session, "\n".join(lines) or "No runs.")
            return PromptResponse(stop_reason="end_turn", field_meta={"locus": {"runs": runs}})
        if name not in ("review", "commit", "send-back"):
            names = ", ".join(f"/{c.name}" for c in COMMANDS)
            await self._say(session, f"Unknown command /{name}; the commands are {names}.")
            return PromptResponse(stop_reason="end_turn")
        if session.run is None:
            raise _invalid(
                "prompt",
                f"/{name}: this session has no run yet (send a prompt, /claim a task or load a run)",
            )
        run_id = session.run["runId"]
        view = await self._call("locus/review/get", {"runId": run_id})
        if name == "review":
            await self._show_review(session, view)
            return PromptResponse(stop_reason="end_turn", field_meta={"locus": {"review": view}})
        if name == "commit":
            params = {"runId": run_id, "revision": view["revision"]}
            if argument:
                params["message"] = argument
            done = await self._call("locus/review/commit", params)
            where = f" on {done['branch']}" if done.get("branch") else ""
            await self._say(session, f"Committed {done['commit']}{where}.")
            return PromptResponse(stop_reason="end_turn", field_meta={"locus": {"commit": done}})
        again = await self._call(
            "locus/review/send_back",
            {"runId": run_id, "revision": view["revision"], "modelEnv": model_env()},
        )
        return await self._run_turn(session, again)

    async def _show_review(self, session: Session, view: Mapping[str, Any]) -> None:
        """The review as text (hunks with their decisions) and one diff per file."""
        lines = [f"Review of run {view['runId']} (revision {view['revision']})"]
        if view.get("summary"):
            lines.append(str(view["summary"]))
        for file in view.get("files", []):
            lines.append(f"\n{file['path']} ({file['status']})")
            for hunk in file.get("hunks", []):
                decided = (hunk.get("decision") or {}).get("action", "undecided")
                lines += [f"  hunk {hunk['id']} [{decided}] {hunk['header']}", *hunk["lines"]]
        lines.append(f"\n{view.get('undecided', 0)} undecided.")
        await self._say(session, "\n".join(lines))
        await self._show_files(session, view, {})

    async def _show_files(
        self, session: Session, view: Mapping[str, Any], calls: Mapping[str, str]
    ) -> None:
        """One diff per file of the review (base → proposed), on the tool call in ``calls``
        that wrote the file, else on a call of its own (a file a command changed)."""
        worktree = str((session.run or {}).get("worktree") or session.cwd)
        written = {posixpath.normpath(path): tool_id for path, tool_id in calls.items()}
        for number, file in enumerate(view.get("files", []), 1):
            if file.get("binary"):
                continue
            content = await self._call(
                "locus/review/content", {"runId": view["runId"], "path": file["path"]}
            )
            tool_id = written.get(file["path"])
            if tool_id is None:
                tool_id = f"review:{view['revision']}:{number}"
                await self._send(
                    session,
                    helpers.start_tool_call(
                        tool_id, f"changed: {file['path']}", kind="edit", status="pending"
                    ),
                )
            await self._send(session, diff_update(tool_id, worktree, content))

    async def _run_turn(self, session: Session, run: dict[str, Any]) -> PromptResponse:
        """Follow ``run`` until it rests; the turn's stop reason says how it ended."""
        if await self._bind(session, run):
            stop: StopReason = "end_turn"
        else:
            session.following = self._spawn(self._follow(session))
            stop = await session.following
        assert session.run is not None
        if session.cancelled:
            stop = "cancelled"
        return PromptResponse(
            stop_reason=stop,
            field_meta={"locus": _pick(session.run, "runId", "shortId", "state", "costUsd")},
        )

    # --- following a run -----------------------------------------------------------------------

    async def _bind(self, session: Session, run: dict[str, Any]) -> bool:
        """Follow ``run`` from now on: subscribe and replay its events so far. True if it has
        already ended."""
        if session.following is not None and not session.following.done():
            session.following.cancel()
        if session.run is not None:
            self.followed.pop(session.run["runId"], None)
        session.run, session.translator = run, EventTranslator(run["runId"])
        session.events = asyncio.Queue()
        self.followed[run["runId"]] = session
        so_far = await self._call("locus/runs/subscribe", {"runId": run["runId"]})
        ended = False
        for event in so_far.get("events", []):
            ended = await self._show(session, event) or ended
        return ended

    async def _follow(self, session: Session) -> StopReason:
        while True:
            event = await session.events.get()
            if event is None:
                raise RequestError(INTERNAL_ERROR, "lost the connection to locusd")
            if await self._show(session, event):
                state = (session.run or {}).get("state")
                return "cancelled" if state == "cancelled" else "end_turn"

    async def _show(self, session: Session, event: dict[str, Any]) -> bool:
        """Send what ``event`` shows; True if the run has ended (it rests)."""
        translator, run = session.translator, session.run
        assert translator is not None and run is not None
        for update in translator.updates(event):
            await self._send(session, update)
        if event.get("kind") == "completed":
            session.run = {**run, **(event.get("data") or {})}
            await self._show_edits(session)
            return True
        return False

    async def _show_edits(self, session: Session) -> None:
        """The run's changes as diffs once it rests (none where it has nothing to review:
        failed, cancelled); the files come from the daemon's review, not from the agent."""
        run, translator = session.run, session.translator
        assert run is not None and translator is not None
        if run.get("state") != "awaiting_review":
            return
        try:
            view = await self._call("locus/review/get", {"runId": run["runId"]})
            await self._show_files(session, view, translator.edits)
        except RequestError as exc:  # the review went meanwhile (discarded): said, not fatal
            await self._say(session, f"\n(no diffs: {exc})\n")

    # --- plumbing -------------------------------------------------------------------------------

    def _session(self, session_id: str, cwd: str) -> Session:
        where = Path(cwd)
        if not where.is_absolute() or not where.is_dir():
            raise _invalid(
                "cwd", f"{cwd!r} is not an absolute path to a directory (open a checkout)"
            )
        session = Session(session_id, str(where.resolve()))
        self.sessions[session_id] = session
        return session

    async def _advertise(self, session: Session) -> None:
        await self._send(session, helpers.update_available_commands(COMMANDS))

    async def _say(self, session: Session, text: str) -> None:
        await self._send(session, helpers.update_agent_message_text(text))

    async def _send(self, session: Session, update: Update | Any) -> None:
        if self.client is not None:
            await self.client.session_update(session_id=session.session_id, update=update)

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _normal(path: str) -> str:
    """``path`` without ``.``, ``..`` or doubled slashes (no file system access)."""
    return os.path.normpath(path)


def _pick(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: source[key] for key in keys if source.get(key) is not None}
