"""Plays a recorded transcript back: each model turn returns the recorded response, so a run
can be reproduced without a model (the demo, the tests, a bug report).

It fails loudly on divergence instead of returning a response that no longer fits: the run must
send the same task, answer the same tool calls in the same order, and see the same tools
succeed or fail as in the recording. What it can reproduce it compares: the results of the
deterministic tools (:data:`REPRODUCIBLE`: reading, listing, searching the worktree — the same
base commit and the same edits give the same text), so a recording whose tool results were
rewritten, even with its hash chain recomputed, fails at the first one. A command's output may
differ (timings, paths) and is not compared. Only hash-chained recordings (format 2) are
played: a tampered file cannot pass itself off as an older, unchained one.
"""

from __future__ import annotations

from pathlib import Path

from locusd.agent import hints
from locusd.agent.messages import Message, Request, Response, ToolResultBlock, Usage
from locusd.agent.providers import OnText, ProviderError
from locusd.agent.transcript import Header, RequestRecord, ResponseRecord, read

#: Tools whose result is a function of the worktree's files, which the replay reproduces.
REPRODUCIBLE = frozenset({"read_file", "list_files", "search"})
#: The first transcript format with the hash chain (transcript.py).
CHAINED_FORMAT = 2


class ReplayDivergence(ProviderError):
    pass


def _results(message: Message) -> list[tuple[str, bool]]:
    return [(b.tool_use_id, b.is_error) for b in message.content if isinstance(b, ToolResultBlock)]


class ReplayProvider:
    name = "replay"

    def __init__(self, path: Path) -> None:
        records = read(path)
        header = records[0]
        assert isinstance(header, Header)
        if header.format < CHAINED_FORMAT:
            raise ProviderError(
                f"{path}: transcript format {header.format} has no hash chain and cannot be"
                " checked for tampering: record the run again with this version of Locus"
            )
        self.path = path
        self.model = header.model
        self.task = header.task
        #: The hints the recording was made with: a replayed run is given exactly these.
        self.hints = header.hints
        self.requests = [r for r in records if isinstance(r, RequestRecord)]
        self.responses = [r for r in records if isinstance(r, ResponseRecord)]
        self.turn = 0

    def _same_reproducible_results(self, recorded: Message, now: Message) -> None:
        """The text of each deterministic tool's result, as recorded and as this run got it."""
        if self.turn < 2:
            return  # the task: no tool has run yet
        names = {
            call.id: call.name for call in self.responses[self.turn - 2].response.message.tool_calls
        }
        sent = {b.tool_use_id: b.content for b in now.content if isinstance(b, ToolResultBlock)}
        for block in recorded.content:
            if not isinstance(block, ToolResultBlock):
                continue
            name = names.get(block.tool_use_id)
            if name in REPRODUCIBLE and sent.get(block.tool_use_id) != block.content:
                raise ReplayDivergence(
                    f"{self.path}: turn {self.turn}: the recorded {name} result differs from"
                    " what this run read: the recording was edited, or the repository is not"
                    " the one it was made on"
                )

    def cost(self, usage: Usage) -> float | None:
        """Nothing: a replay calls no model (the recording's own cost is in its records)."""
        return 0.0

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        self.turn += 1
        if self.turn > len(self.responses):
            raise ReplayDivergence(
                f"{self.path}: the recording has {len(self.responses)} turns;"
                f" this run asked for turn {self.turn}"
            )
        recorded_request = self.requests[self.turn - 1]
        expected = hints.first_message(self.task, self.hints)
        if self.turn == 1 and request.messages[0].text != expected:
            raise ReplayDivergence(
                f"{self.path}: recorded for the first message {expected!r},"
                f" not {request.messages[0].text!r}"
            )
        new = recorded_request.new_messages
        if new and request.messages and _results(request.messages[-1]) != _results(new[-1]):
            raise ReplayDivergence(
                f"{self.path}: turn {self.turn} diverges: the recording's tool results were"
                f" {_results(new[-1])} (id, is_error), this run's are"
                f" {_results(request.messages[-1])}"
            )
        if new and request.messages:
            self._same_reproducible_results(new[-1], request.messages[-1])
        response = self.responses[self.turn - 1].response
        if on_text is not None and response.message.text:
            on_text(response.message.text)
        return response
