"""A run's events (``locus/runs/event``) as ACP ``session/update``\\ s.

Pure translation with a little memory (which tool call is open): the agent's texts, tool names
and file names are data, passed on as text and never interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acp import helpers
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    Cost,
    ToolCallProgress,
    ToolCallStart,
    ToolKind,
    UsageUpdate,
)
from pydantic import ValidationError

Update = (
    AgentMessageChunk
    | AgentThoughtChunk
    | AgentPlanUpdate
    | ToolCallStart
    | ToolCallProgress
    | UsageUpdate
)

#: The built-in agent's tools by ACP kind (an unknown tool is ``other``).
TOOL_KINDS: Mapping[str, ToolKind] = {
    "read_file": "read",
    "list_files": "read",
    "search": "search",
    "edit_file": "edit",
    "write_file": "edit",
    "run_command": "execute",
    "run_verify": "execute",
    "finish": "think",
}
#: Tools whose ``path`` input names a file they change: their update carries the diff.
EDITING = frozenset({"edit_file", "write_file"})


def _title(name: str, given: Any) -> str:
    """``name``, and the input's path or command: what an editor shows in its tool list."""
    if isinstance(given, Mapping):
        for key in ("path", "command", "pattern", "query"):
            value = given.get(key)
            if isinstance(value, str) and value:
                return f"{name}: {value}"
    return name


@dataclass
class EventTranslator:
    """One run's events, in order, to updates; remembers the open tool calls by name."""

    run_id: str
    open_tools: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    last_seq: int = 0
    #: The files the run's tools changed, each with the last call that changed it: their
    #: diffs are shown when the run rests (the daemon shows a run's files only then).
    edits: dict[str, str] = field(default_factory=dict)

    def updates(self, event: Mapping[str, Any]) -> list[Update]:
        """What the client sees of ``event`` (a ``RunEvent`` as JSON); none if seen before."""
        seq = int(event.get("seq", 0))
        if seq and seq <= self.last_seq:
            return []
        self.last_seq = max(self.last_seq, seq)
        kind, text = str(event.get("kind", "")), str(event.get("text", ""))
        data: Mapping[str, Any] = event.get("data") or {}
        if kind == "state":
            return [helpers.update_agent_thought_text(f"[{text}]\n")]
        if kind == "text":
            return [helpers.update_agent_message_text(text)] if text else []
        if kind == "note" and data.get("kind") == "plan":
            shown = plan(data.get("entries"))
            if shown is not None:
                return [shown]
        if kind == "note":
            return [helpers.update_agent_message_text(f"\n[{data.get('kind', 'note')}] {text}\n")]
        if kind == "tool":
            tool_id = f"{self.run_id}:{seq}"
            self.open_tools.setdefault(text, []).append((tool_id, data.get("input")))
            return [
                helpers.start_tool_call(
                    tool_id,
                    _title(text, data.get("input")),
                    kind=TOOL_KINDS.get(text, "other"),
                    status="in_progress",
                    raw_input=data.get("input"),
                )
            ]
        if kind == "tool_done":
            tool_id, given = self.close_tool(text) or (f"{self.run_id}:{seq}", None)
            path = given.get("path") if isinstance(given, Mapping) else None
            if text in EDITING and isinstance(path, str) and not data.get("is_error"):
                self.edits[path] = tool_id
            failed = bool(data.get("is_error"))
            return [
                helpers.update_tool_call(
                    tool_id, status="failed" if failed else "completed", raw_output=dict(data)
                )
            ]
        if kind == "output" and text:
            return [helpers.update_agent_message_text(f"\n```\n{text}\n```\n")]
        if kind == "verify":
            return [helpers.update_agent_message_text(f"\n[verify] {text}\n")]
        if kind == "completed":
            return [usage(data)]
        return []

    def close_tool(self, name: str) -> tuple[str, Any] | None:
        """The id and input of the oldest open call of tool ``name``, now closed."""
        ids = self.open_tools.get(name)
        return ids.pop(0) if ids else None


def plan(entries: Any) -> AgentPlanUpdate | None:
    """An external agent's plan (a ``plan`` note's entries) as ACP's ``plan`` update, or None
    when the entries are not a plan's (the note is then shown as text)."""
    try:
        return AgentPlanUpdate.model_validate({"sessionUpdate": "plan", "entries": entries})
    except ValidationError:
        return None


def usage(run: Mapping[str, Any]) -> UsageUpdate:
    """The run's cost so far. The daemon reports no token counts or context size, so ``used``
    and ``size`` are 0 (unknown); the cost is the run's cumulative USD."""
    return UsageUpdate(
        session_update="usage_update",
        used=0,
        size=0,
        cost=Cost(amount=float(run.get("costUsd", 0.0) or 0.0), currency="USD"),
        field_meta={"locus": {"runId": run.get("runId"), "state": run.get("state")}},
    )


def diff_update(tool_id: str, worktree: str, content: Mapping[str, Any]) -> ToolCallProgress:
    """A file-editing tool's result: the file at the run's base and as proposed now
    (``locus/review/content``); a deleted file's new text is empty."""
    path = str(content.get("path", ""))
    diff = helpers.tool_diff_content(
        f"{worktree.rstrip('/')}/{path}",
        new_text=str(content.get("proposed") or ""),
        old_text=content.get("base"),
    )
    return helpers.update_tool_call(tool_id, status="completed", content=[diff])
