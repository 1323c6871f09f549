"""An ACP client built from the Python SDK (the ``acp`` package's client side) that spawns the
real ``locusd acp`` and records what the agent sends: every ``session/update`` and every
permission request, answered with the option the test chose (or cancelled)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from acp import Client, RequestError
from acp.client.connection import ClientSideConnection
from acp.schema import (
    AllowedOutcome,
    DeniedOutcome,
    PermissionOption,
    RequestPermissionResponse,
    ToolCallUpdate,
)
from acp.stdio import spawn_agent_process

from tests.locusd.daemonmachine import BIN, Machine


@dataclass
class Recorder:
    """The client's side: records updates; answers permission requests with ``answer``
    (an option id, or None: cancelled)."""

    answer: str | None = "allow_once"
    updates: list[tuple[str, Any]] = field(default_factory=list)
    asked: list[tuple[ToolCallUpdate, list[PermissionOption]]] = field(default_factory=list)
    #: Released at each run's ``[running]`` state update: the client is watching that run.
    watching: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:  # fmt: skip
        self.asked.append((tool_call, options))
        if self.answer is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.answer)
        )

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))
        if update.session_update == "agent_thought_chunk" and update.content.text == "[running]\n":
            self.watching.release()

    async def write_text_file(self, **kwargs: Any) -> None:
        raise RequestError.method_not_found("fs/write_text_file")

    async def read_text_file(self, **kwargs: Any) -> None:
        raise RequestError.method_not_found("fs/read_text_file")

    def of(self, kind: str, session_id: str | None = None) -> list[Any]:
        """The updates of one ``sessionUpdate`` kind (of one session)."""
        return [
            u
            for s, u in self.updates
            if u.session_update == kind and (session_id is None or s == session_id)
        ]

    def said(self, session_id: str | None = None) -> str:
        """All agent message text, joined."""
        return "".join(u.content.text for u in self.of("agent_message_chunk", session_id))


@contextlib.asynccontextmanager
async def acp_agent(
    machine: Machine, recorder: Recorder, *args: str
) -> AsyncIterator[ClientSideConnection]:
    """``locusd acp`` spawned as an editor spawns it: the user's environment, the checkout as
    its working directory; its stderr kept in ``acp-stderr.log`` next to the daemon's log."""
    with (machine.log.parent / "acp-stderr.log").open("ab") as stderr:
        async with spawn_agent_process(
            cast(Client, recorder), str(BIN / "locusd"), "acp", *args,
            env=machine.env, cwd=machine.repo, transport_kwargs={"stderr": stderr.fileno()},
        ) as (conn, _process):  # fmt: skip
            yield conn


def stderr_of(machine: Machine) -> str:
    path: Path = machine.log.parent / "acp-stderr.log"
    return path.read_text() if path.exists() else ""
