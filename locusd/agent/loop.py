"""The agent loop: ask the model, run the tools it calls, hand back the results, until a tool
ends the run or a budget does. Everything else (providers, tools, budgets, the transcript)
lives in its own module; this file should read top to bottom in a few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import TypeVar

from locusd.agent import tools
from locusd.agent.budget import Budget, StuckDetector, exhausted
from locusd.agent.guidance import Guidance
from locusd.agent.messages import (
    Message,
    Request,
    Response,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from locusd.agent.providers import Provider, ProviderError
from locusd.agent.report import Event, OnEvent
from locusd.agent.tools import Stop, Workspace
from locusd.agent.transcript import (
    NoteRecord,
    RequestRecord,
    ResponseRecord,
    ToolCallRecord,
    ToolResultRecord,
    TranscriptWriter,
    VerificationRecord,
)

SYSTEM_PROMPT = """\
You are Locus, a careful software engineer working on one task in a git worktree of the user's \
repository. Work only through the tools. Read the code before you change it; make the smallest \
change that does the task well; follow the repository's conventions. Run the project's tests \
(run_verify, or run_command) to check your work. When the task is done, call finish with a short \
summary for the reviewer: the runner then runs the verify command itself, and a failure comes \
back to you. If you cannot go on without the user's answer, call ask_user. Record work you \
notice outside this task with create_follow_up instead of doing it. Paths are relative to the \
repository root; you cannot leave it, and .git/ is off limits. Commands have no network \
credentials and no stdin."""

NUDGE = (
    "Use the tools to work on the task. When it is done, call finish with a summary; if you "
    "need the user's answer, call ask_user."
)
CUT_OFF = (
    "Your reply was cut off at the output limit. Continue; keep each tool call small (write "
    "large files in parts, with edit_file)."
)


T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class LoopResult:
    stop: Stop
    turns: int
    usage: Usage
    cost: float
    cost_known: bool


class Cancelled(Exception):
    pass


def record_verifications(
    ws: Workspace, transcript: TranscriptWriter, on_event: OnEvent, turn: int, since: int
) -> None:
    """The verify runs after the first ``since``: transcript records and ``verify`` events
    (which the review shows), for the built-in loop and an external agent alike."""
    for number, evidence in enumerate(ws.verifications[since:], since + 1):
        transcript.write(VerificationRecord(turn=turn, round=number, evidence=evidence))
        on_event(Event("verify", turn, evidence.command, evidence.model_dump()))


class Agent:
    def __init__(
        self,
        provider: Provider,
        workspace: Workspace,
        transcript: TranscriptWriter,
        budget: Budget,
        *,
        instructions: str | None = None,
        guidance: Guidance | None = None,
        max_tokens: int = 8192,
        stuck_threshold: int = 3,
        max_nudges: int = 3,
        on_event: OnEvent | None = None,
        system: str = SYSTEM_PROMPT,
        nudge: str = NUDGE,
    ) -> None:
        self.provider = provider
        self.system = system
        self.nudge = nudge
        self.ws = workspace
        self.transcript = transcript
        self.budget = budget
        self.instructions = instructions
        self.guidance = guidance
        self.max_tokens = max_tokens
        self.stuck = StuckDetector(stuck_threshold)
        self.max_nudges = max_nudges
        self.on_event = on_event or (lambda event: None)
        self.messages: list[Message] = []
        self.turn = 0
        self.usage = Usage()
        self.cost = 0.0
        self.cost_known = True
        self._sent = 0
        self._out_of_time = False

    # --- the loop ------------------------------------------------------------------------

    async def run(self, task: str) -> LoopResult:
        timer = asyncio.get_running_loop().call_later(self.budget.max_wall_seconds, self._time_up)
        try:
            stop = await self._loop(task)
        except Cancelled:
            stop = (
                Stop(
                    "budget_exhausted", reason=f"max wall time ({self.budget.max_wall_seconds:g} s)"
                )
                if self._out_of_time
                else Stop("cancelled", reason="cancelled")
            )
        except ProviderError as exc:
            stop = Stop("failed", reason=str(exc))
        except Exception as exc:
            # A bug of ours or an SDK's, often triggered by what the model sent: the run still
            # ends, as a failure that names it; the traceback goes to the log, not the model.
            log.exception("the agent loop failed")
            stop = Stop("failed", reason=f"internal error: {type(exc).__name__}: {exc}"[:2000])
        finally:
            timer.cancel()
        return LoopResult(stop, self.turn, self.usage, self.cost, self.cost_known)

    async def _loop(self, task: str) -> Stop:
        self.messages.append(Message.user(task))
        nudges = 0
        while True:
            reason = exhausted(self.budget, turns=self.turn, usage=self.usage, cost=self.cost)
            if reason is not None:
                return Stop("budget_exhausted", reason=reason)
            response = await self._ask_model()
            message = response.message
            if response.stop_reason == "refusal":
                return Stop("failed", reason=f"the model refused: {message.text or '(no text)'}")
            if response.stop_reason == "pause_turn":
                self.messages.append(message)  # the API resumes from it as it is
                continue
            if response.stop_reason == "max_tokens":
                # A tool call cut off mid-input cannot run; keep the text and say what happened.
                text = tuple(b for b in message.content if isinstance(b, TextBlock))
                self.messages.append(
                    Message(role="assistant", content=text or (TextBlock(text="…"),))
                )
                self.messages.append(Message.user(CUT_OFF))
                continue
            self.messages.append(message)
            if not message.tool_calls:
                nudges += 1
                if nudges > self.max_nudges:
                    return Stop("failed", reason="the model stopped without calling finish")
                self.messages.append(Message.user(self.nudge))
                continue
            nudges = 0
            results: list[ToolResultBlock] = []
            for call in message.tool_calls:
                result = await self._run_tool(call)
                results.append(
                    ToolResultBlock(
                        tool_use_id=call.id, content=result.content, is_error=result.is_error
                    )
                )
                if result.stop is not None:
                    return result.stop
                if self.stuck.observe(call.name, call.input):
                    return Stop(
                        "failed",
                        reason=f"stuck: the same {call.name} call {self.stuck.threshold} times in a row",
                    )
            self.messages.append(Message(role="user", content=tuple(results)))

    # --- one model turn, one tool call ------------------------------------------------------

    async def _ask_model(self) -> Response:
        self.turn += 1
        self.on_event(Event("turn", self.turn))
        new = self.messages[self._sent :]
        self._sent = len(self.messages)
        self.transcript.write(
            RequestRecord(turn=self.turn, new_messages=new, message_count=len(self.messages))
        )
        request = Request(
            system=self.system,
            instructions=self.instructions,
            tools=tuple(tools.specs(self.ws.tools)),
            messages=tuple(self.messages),
            max_tokens=self.max_tokens,
        )
        started = time.monotonic()
        try:
            response = await self._unless_cancelled(
                self.provider.complete(
                    request, lambda text: self.on_event(Event("text", self.turn, text))
                )
            )
        except (Cancelled, ProviderError):
            raise
        except Exception as exc:  # a provider's own bug still ends the run with a report
            raise ProviderError(
                f"the {self.provider.name} provider failed: {type(exc).__name__}: {exc}"
            ) from exc
        cost = self.provider.cost(response.usage)
        self.usage += response.usage
        self.cost_known = self.cost_known and cost is not None
        self.cost += cost or 0.0
        self.transcript.write(
            ResponseRecord(
                turn=self.turn,
                response=response,
                duration=round(time.monotonic() - started, 4),
                cost=cost,
                total_usage=self.usage,
                total_cost=self.cost,
            )
        )
        return response

    async def _run_tool(self, call: ToolUseBlock) -> tools.ToolResult:
        self.transcript.write(
            ToolCallRecord(turn=self.turn, id=call.id, name=call.name, input=call.input)
        )
        self.on_event(Event("tool", self.turn, call.name, {"input": call.input}))
        verified = len(self.ws.verifications)
        started = time.monotonic()
        result = await tools.execute(self.ws, call)
        if self.guidance is not None:  # a directory's own AGENTS.md/CLAUDE.md, first touch
            nested = await asyncio.to_thread(self.guidance.for_call, call.name, call.input)
            if nested:
                result = replace(result, content=f"{result.content}\n\n{nested}")
        duration = round(time.monotonic() - started, 4)
        self.transcript.write(
            ToolResultRecord(
                turn=self.turn,
                id=call.id,
                name=call.name,
                content=result.content,
                is_error=result.is_error,
                duration=duration,
                exit_code=result.exit_code,
                full_output=result.full_output,
            )
        )
        done = {"is_error": result.is_error, "duration": duration, "content": result.content}
        self.on_event(Event("tool_done", self.turn, call.name, done))
        record_verifications(self.ws, self.transcript, self.on_event, self.turn, verified)
        if self.ws.cancel.is_set() and result.stop is None:
            raise Cancelled
        return result

    # --- cancellation -----------------------------------------------------------------------

    def _time_up(self) -> None:
        self._out_of_time = True
        self.note("budget", f"max wall time ({self.budget.max_wall_seconds:g} s) reached")
        self.ws.cancel.set()

    def note(self, kind: str, message: str) -> None:
        self.transcript.write(NoteRecord(turn=self.turn, kind=kind, message=message))
        self.on_event(Event("note", self.turn, message, {"kind": kind}))

    async def _unless_cancelled(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless the run is cancelled first; then stop it (closing the model's
        stream) and raise :class:`Cancelled`."""
        task = asyncio.ensure_future(work)
        cancelled = asyncio.ensure_future(self.ws.cancel.wait())
        try:
            await asyncio.wait({task, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            cancelled.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise Cancelled
        return task.result()
