"""An in-process client of the daemon core: what the server's per-connection peer is, minus the
socket. Used where a test is about the core, not the transport (tests/locusd/server covers that
with real socket clients)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from locusd.daemon import Daemon
from locusd.protocol.base import Wire
from locusd.protocol.messages import (
    ApprovalAnswer,
    ApprovalRequest,
    ClientInfo,
    CommitParams,
    CommitResult,
    DecideParams,
    DecisionIn,
    ReviewParams,
    RunEvent,
)

W = TypeVar("W", bound=Wire)
Answer = Callable[[ApprovalRequest], Awaitable[ApprovalAnswer]]


class Client:
    """A connected client as the core sees it: notifications are kept, approval requests are
    answered by ``answer`` (or never, when it is None)."""

    _ids = iter(range(1, 1000))

    def __init__(self, answer: Answer | None = None) -> None:
        self.id = next(self._ids)
        self.client: ClientInfo | None = ClientInfo(name="test")
        self.notes: list[tuple[str, Wire]] = []
        self.answer = answer
        self.asked: list[ApprovalRequest] = []
        self.progress_tokens: set[str] = set()
        self.progress_values: list[dict[str, Any]] = []

    def notify(self, method: str, params: Wire) -> None:
        self.notes.append((method, params))

    async def request(self, method: str, params: Wire, result: type[W]) -> W:
        assert method == "locus/approval" and isinstance(params, ApprovalRequest)
        self.asked.append(params)
        if self.answer is None:
            await asyncio.Event().wait()  # never answers
        assert self.answer is not None
        return result.model_validate((await self.answer(params)).model_dump())

    async def create_progress(self, token: str) -> None:
        self.progress_tokens.add(token)

    def progress(self, token: str, value: dict[str, Any]) -> None:
        if token in self.progress_tokens:  # as a real client: only for created tokens
            self.progress_values.append(value)

    def events(self) -> list[RunEvent]:
        return [p for m, p in self.notes if m == "locus/runs/event" and isinstance(p, RunEvent)]


async def accept_everything(daemon: Daemon, run_id: str, peer: Client) -> str:
    """Accept every file of the run's review, as a reviewer would; the revision decided on."""
    view = await daemon.review_get(ReviewParams(run_id=run_id), peer)
    everything = {f.path: DecisionIn(action="accept") for f in view.files}
    params = DecideParams(run_id=run_id, revision=view.revision, decisions=everything)
    await daemon.review_decide(params, peer)
    return view.revision


async def commit_everything(
    daemon: Daemon,
    run_id: str,
    peer: Client,
    integrate: Literal["none", "merge", "rebase", "push"] = "none",
) -> CommitResult:
    """Accept everything and commit it (optionally merging/rebasing/pushing)."""
    revision = await accept_everything(daemon, run_id, peer)
    params = CommitParams(run_id=run_id, revision=revision, integrate=integrate)
    return await daemon.review_commit(params, peer)
