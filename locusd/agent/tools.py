"""The agent's tools: what each one is for (the model reads the descriptions), its input (a
pydantic model — the JSON Schema the model sees is generated from it) and what it does.

Every tool works inside one :class:`Workspace`: file tools go through
:class:`~locusd.agent.confine.Confined` (nothing outside the worktree or inside ``.git/``),
commands through the policy and :func:`~locusd.agent.commands.run_command`. A tool never
raises for a mistake the model can fix: it returns an error result that says what to do.
``finish`` and ``ask_user`` end the run through :class:`Stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from locusd.agent.commands import MAX_OUTPUT_BYTES, CommandResult, head_and_tail, run_command
from locusd.agent.confine import Confined, ConfinementError
from locusd.agent.edits import EditError, apply_edit, number_lines
from locusd.agent.messages import ToolSpec, ToolUseBlock
from locusd.agent.policy import (
    CONTAINER_WARNING,
    CommandPolicy,
    ContainerChoice,
    Mode,
    Ruling,
    decide,
)
from locusd.agent.report import Approver
from locusd.agent.sandbox import Sandbox
from locusd.agent.scratch import SCRATCH_QUOTA, Scratch
from locusd.agent.search import MAX_FILE_BYTES, Found, PatternError, compile_pattern, search_files
from locusd.agent.transcript import Evidence, FollowUp, Outcome, Proposal
from locusd.agent.verify import VerifyCommand, check_changes, evidence
from locusd.errors import describe
from locusd.git.cli import GitFailed, TimedOut
from locusd.git.repo import Repository, RepositoryError

log = logging.getLogger(__name__)
#: How much of a command's output the transcript keeps (head and tail).
TRANSCRIPT_OUTPUT = 1024 * 1024


@dataclass(frozen=True)
class Stop:
    """Ends the run after this tool call."""

    outcome: Outcome
    reason: str | None = None
    summary: str | None = None
    question: str | None = None
    proposals: tuple[Proposal, ...] = ()


@dataclass(frozen=True)
class ToolResult:
    content: str  # what the model sees
    is_error: bool = False
    stop: Stop | None = None
    exit_code: int | None = None
    full_output: str | None = None  # a command's whole output, for the transcript only


@dataclass
class Workspace:
    """Everything the tools act on, and what they leave for the runner (follow-ups,
    verification evidence)."""

    root: Path
    scratch: Path  # outside the worktree: command output files
    policy: CommandPolicy
    env: dict[str, str]
    cancel: asyncio.Event
    verify: VerifyCommand | None
    approver: Approver | None = None
    base_commit: str = "HEAD"  # what the verify step diffs against (the run's base commit)
    sandbox: Sandbox | None = None
    command_timeout: float = 600
    verify_timeout: float = 1800
    max_verify_rounds: int = 3
    containers: ContainerChoice = "ask"  # [agent] containers: the user's choice
    mode: Mode = "ask"  # [agent] mode or --mode: the user's choice
    scratch_quota: int = SCRATCH_QUOTA
    read_limit: int = 256_000
    output_limit: int = 30_000
    #: The tools this run may call (None: the work tool set, :data:`WORK_TOOLS`); a planning
    #: run's are read-only (:mod:`locusd.agent.planning`).
    tools: frozenset[str] | None = None
    follow_ups: list[FollowUp] = field(default_factory=list)
    verifications: list[Evidence] = field(default_factory=list)
    verify_failures: int = 0
    #: For the run's report (a container command that ran with the engine's socket).
    warnings: list[str] = field(default_factory=list)
    #: What the scratch quota did to the last command: why it was killed, what was removed.
    scratch_notes: tuple[str | None, str | None] = (None, None)
    _commands_run: int = 0

    def __post_init__(self) -> None:
        self.files = Confined(self.root)
        self.space = Scratch(self.scratch, self.scratch_quota)

    @cached_property
    def repo(self) -> Repository:
        """The worktree as a git repository (opened once: no process)."""
        try:
            return Repository(self.root)
        except RepositoryError as exc:
            raise EditError(str(exc)) from None

    @property
    def unattended(self) -> bool:
        return self.approver is None

    async def approved(self, command: str, reason: str) -> bool:
        """The user's answer; no (and the question withdrawn) if the run is cancelled first:
        a pending approval never holds up a cancel."""
        if self.approver is None or self.cancel.is_set():
            return False
        asking = asyncio.ensure_future(self.approver(command, reason))
        cancelled = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({asking, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if not asking.done():
                asking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asking
        return asking.done() and not asking.cancelled() and asking.result()

    async def run(
        self,
        command: str,
        timeout: float,  # noqa: ASYNC109
        *,
        containers: bool = False,
        interrupt: asyncio.Event | None = None,
    ) -> CommandResult:
        """Run ``command`` with the run's own ``$TMPDIR``, killed when the run is cancelled,
        ``interrupt`` is set (an ACP agent's ``terminal/kill``) or its scratch space goes over
        the quota (see :mod:`locusd.agent.scratch`); with ``containers`` (a container command
        the user allowed), the engines' sockets in reach."""
        self._commands_run += 1
        output_path = self.scratch / f"command-{self._commands_run}.log"
        await asyncio.to_thread(self.space.prepare)
        stop = asyncio.Event()
        watcher = asyncio.ensure_future(self.space.watch(self.cancel, stop))
        forward = asyncio.ensure_future(_forward(interrupt, stop)) if interrupt else None
        try:
            result = await run_command(
                command,
                self.root,
                output_path=output_path,
                env={**self.env, "TMPDIR": str(self.space.tmp)},
                timeout=timeout,
                cancel=stop,
                limit=self.output_limit,
                sandbox=(
                    replace(
                        self.sandbox,
                        scratch=self.space.tmp,
                        containers=self.sandbox.containers or containers,
                    )
                    if self.sandbox
                    else None
                ),
            )
        finally:
            killed = watcher.result() if watcher.done() else None
            watcher.cancel()
            if forward is not None:
                forward.cancel()
        removed = await asyncio.to_thread(self.space.enforce, output_path)
        self.scratch_notes = (killed, removed)
        return result

    def _read_text(self, path: str) -> str | None:
        """A worktree file's text through the confined open (None: absent or refused)."""
        try:
            return self.files.read_bytes(path).decode("utf-8", "replace")
        except (OSError, ValueError):
            return None

    async def run_verify(self) -> Evidence | None:
        if self.verify is None:
            return None
        result = await self.run(self.verify.command, self.verify_timeout)
        changes = await asyncio.to_thread(
            check_changes, self.root, self.base_commit, self.verify.command, self._read_text
        )
        found = evidence(self.verify, result, changes)
        self.verifications.append(found)
        return found


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


ToolFn = Callable[[Workspace, Any], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input: type[_Input]
    fn: ToolFn

    def spec(self) -> ToolSpec:
        schema = self.input.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, input_schema=schema)


TOOLS: dict[str, Tool] = {}


def tool(name: str, description: str, input: type[_Input]) -> Callable[[ToolFn], ToolFn]:
    def register(fn: ToolFn) -> ToolFn:
        TOOLS[name] = Tool(name, description, input, fn)
        return fn

    return register


def _git_paths(ws: Workspace, pathspec: str) -> list[str]:
    """Files git lists for ``pathspec``, as raw names (-z: never C-quoted)."""
    try:
        return ws.repo.ls_files([pathspec])
    except GitFailed as exc:
        raise EditError(exc.done.stderr.strip() or "git ls-files failed") from None
    except TimedOut as exc:
        raise EditError(f"{exc}: narrow the pattern") from None


def _shown(text: str) -> str:
    """Git's output for the model: bytes that are not UTF-8 (kept as surrogates so that names
    round-trip to the file system) shown as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# --- read, list, search ------------------------------------------------------------------


class ReadFile(_Input):
    path: str = Field(description="file path relative to the repository root")
    start_line: int = Field(1, ge=1, description="first line to show (1-based)")
    end_line: int | None = Field(None, ge=1, description="last line to show (inclusive)")


MAX_LINES = 2000


@tool(
    "read_file",
    "Read a text file of the repository, with line numbers. Long files: pass start_line and "
    f"end_line (at most {MAX_LINES} lines are shown at once).",
    ReadFile,
)
async def read_file(ws: Workspace, args: ReadFile) -> ToolResult:
    data = await asyncio.to_thread(ws.files.read_bytes, args.path, ws.read_limit + 1)
    if b"\0" in data[:8192]:
        return ToolResult(f"{args.path} is a binary file; not shown", is_error=True)
    note = ""
    if len(data) > ws.read_limit:
        data = data[: ws.read_limit]
        note = f"\n[only the first {ws.read_limit} bytes are shown]"
    text = data.decode("utf-8", errors="replace")
    if args.end_line is not None and args.end_line < args.start_line:
        return ToolResult(
            f"end_line {args.end_line} is before start_line {args.start_line}", is_error=True
        )
    end = args.end_line or args.start_line + MAX_LINES - 1
    if end - args.start_line >= MAX_LINES:
        end = args.start_line + MAX_LINES - 1
    total = len(text.splitlines())
    shown = number_lines(text, args.start_line, end)
    if end < total:
        note += f"\n[lines {args.start_line}-{end} of {total}; ask for more with start_line]"
    return ToolResult((shown or "[empty file]") + note)


class ListFiles(_Input):
    pattern: str = Field(
        "**", description="glob relative to the repository root, e.g. 'src/**/*.py'"
    )


MAX_LISTED = 1000


@tool(
    "list_files",
    "List the repository's files (tracked and new, without what .gitignore ignores) matching "
    "a glob. '**' matches across directories.",
    ListFiles,
)
async def list_files(ws: Workspace, args: ListFiles) -> ToolResult:
    pattern = ws.files.relative(args.pattern)
    paths = await asyncio.to_thread(_git_paths, ws, f":(glob){pattern}")
    # Deleted-but-tracked files are listed by --cached; the model should not see them. Nothing
    # here follows a symlink: a symlink is listed as one (the file tools refuse it).
    shown = await asyncio.to_thread(_listed, ws.root, paths)
    if not shown:
        return ToolResult(f"no files match {args.pattern!r}")
    more = len(shown) - MAX_LISTED
    tail = f"\n[{more} more; narrow the pattern]" if more > 0 else ""
    return ToolResult(_shown("\n".join(shown[:MAX_LISTED])) + tail)


def _listed(root: Path, paths: list[str]) -> list[str]:
    """``paths`` that exist (a symlink itself counts, marked as one), never followed."""
    listed = []
    for path in paths:
        try:
            mode = os.lstat(root / path).st_mode
        except OSError:
            continue
        listed.append(f"{path}  [symlink: not followed]" if stat.S_ISLNK(mode) else path)
    return listed


class Search(_Input):
    pattern: str = Field(
        max_length=4096,
        description="regular expression (RE2: Perl-like, no backreferences or lookaround), "
        "matched line by line",
    )
    path: str = Field(".", description="directory or file to search in, relative to the root")
    glob: str | None = Field(None, description="only files matching this glob, e.g. '*.py'")


MAX_MATCHES = 200
SEARCH_TIMEOUT = 60
#: How many skipped files are named in the answer (the rest are counted).
_SKIPPED_SHOWN = 10


def _search_names(ws: Workspace, args: Search, path: str) -> list[str]:
    """The files a search looks in: ``path`` itself when it names a file, else what git lists
    under it (not ignored). A symlink as ``path`` is refused, never followed."""
    if path != ".":
        kind = ws.files.lstat(path).st_mode
        if stat.S_ISLNK(kind):
            raise ConfinementError(f"{args.path}: is a symlink; not followed")
        if not stat.S_ISDIR(kind):
            ws.files.read_bytes(path, 0)  # named by the model: a refusal is its answer
            return [path]
    if args.glob:
        spec = f":(glob){path}/**/{args.glob}" if path != "." else f":(glob)**/{args.glob}"
    else:
        spec = path
    return _git_paths(ws, spec)


def _search(ws: Workspace, args: Search, path: str) -> Found:
    names = _search_names(ws, args, path)
    regexp = compile_pattern(args.pattern)
    deadline = time.monotonic() + SEARCH_TIMEOUT
    return search_files(ws.files, names, regexp, max_matches=MAX_MATCHES, deadline=deadline)


def _search_notes(found: Found) -> str:
    notes = []
    if found.more:
        notes.append(f"[{found.more} more matches; narrow the pattern or the path]")
    if found.timed_out:
        notes.append(f"[stopped after {SEARCH_TIMEOUT} s; narrow the path for the rest]")
    if found.cut:
        notes.append(
            f"[only the first {MAX_FILE_BYTES // 2**20} MB searched of: {', '.join(found.cut[:_SKIPPED_SHOWN])}]"
        )
    if found.skipped:
        more = len(found.skipped) - _SKIPPED_SHOWN
        named = "; ".join(found.skipped[:_SKIPPED_SHOWN]) + (
            f"; and {more} more" if more > 0 else ""
        )
        notes.append(f"[not searched (symlinks, hard links, not regular files): {named}]")
    return "\n".join(notes)


@tool(
    "search",
    "Search file contents with a regular expression; answers path:line:text. Ignored files "
    "(.gitignore), binary files, symlinks and hard-linked files are skipped.",
    Search,
)
async def search(ws: Workspace, args: Search) -> ToolResult:
    path = ws.files.relative(args.path)
    try:
        found = await asyncio.to_thread(_search, ws, args, path)
    except PatternError as exc:
        return ToolResult(str(exc), is_error=True)
    notes = _search_notes(found)
    if not found.lines:
        text = f"no matches for {args.pattern!r}"
        return ToolResult(f"{text}\n{notes}" if notes else text)
    return ToolResult("\n".join(found.lines) + (f"\n{notes}" if notes else ""))


# --- edit, write -----------------------------------------------------------------------


class EditFile(_Input):
    path: str = Field(description="file path relative to the repository root")
    old_string: str = Field(description="the exact text to replace, including indentation")
    new_string: str = Field(description="the text to put in its place")
    replace_all: bool = Field(False, description="replace every occurrence, not just one")


@tool(
    "edit_file",
    "Replace an exact piece of text in a file. old_string must occur exactly once (quote enough "
    "surrounding lines to make it unique) unless replace_all is set.",
    EditFile,
)
async def edit_file(ws: Workspace, args: EditFile) -> ToolResult:
    text = (await asyncio.to_thread(ws.files.read_bytes, args.path)).decode("utf-8")
    updated, count = apply_edit(
        text, args.old_string, args.new_string, replace_all=args.replace_all
    )
    await asyncio.to_thread(ws.files.write_bytes, args.path, updated.encode("utf-8"))
    return ToolResult(f"edited {args.path}: {count} replacement{'s' if count > 1 else ''}")


class WriteFile(_Input):
    path: str = Field(description="file path relative to the repository root")
    content: str = Field(description="the whole new content of the file")


@tool(
    "write_file",
    "Create a file, or replace a whole file's content. Prefer edit_file for changes to "
    "existing files.",
    WriteFile,
)
async def write_file(ws: Workspace, args: WriteFile) -> ToolResult:
    parent = str(Path(ws.files.relative(args.path)).parent)
    await asyncio.to_thread(ws.files.makedirs, parent)
    await asyncio.to_thread(ws.files.write_bytes, args.path, args.content.encode("utf-8"))
    return ToolResult(f"wrote {args.path} ({len(args.content.encode())} bytes)")


# --- commands and verification -------------------------------------------------------------


class RunCommand(_Input):
    command: str = Field(description="a bash command line, run in the repository root")
    timeout: float = Field(120, gt=0, le=1800, description="seconds before it is killed")


def _describe(result: CommandResult, notes: tuple[str | None, str | None]) -> str:
    killed, removed = notes
    if killed is not None:
        status = killed + "; keep big files out of $TMPDIR, or remove them when done"
    elif result.cancelled:
        status = "cancelled"
    elif result.timed_out:
        status = "killed: it ran over its timeout (is it waiting for input, or a server?)"
    elif result.overflowed:
        status = (
            f"killed: it printed more than {MAX_OUTPUT_BYTES // 2**20} MB"
            " (redirect bulk output to a file, or filter it)"
        )
    else:
        status = f"exit code {result.exit_code}"
    after = f"\n[{removed}]" if removed else ""
    return f"[{status}]\n{result.output}{after}"


async def command_refusal(ws: Workspace, command: str) -> tuple[str | None, Ruling]:
    """Why ``command`` may not run (None: it may), by the user's policy and mode, asking the
    user when the policy says "ask": one decision for ``run_command`` and an ACP agent's
    permission requests (``locusd/agent/external``)."""
    decision = decide(
        ws.policy,
        command,
        unattended=ws.unattended,
        containers=ws.containers,
        mode=ws.mode,
        sandboxed=ws.sandbox is not None,
    )
    warning = CONTAINER_WARNING if decision.containers else None
    if decision.verdict == "ask" and ws.approver is not None:
        asking = f"{decision.reason}. Warning: {warning}" if warning else decision.reason
        if not await ws.approved(command, asking):
            return f"the user declined to run this: {decision.reason}", decision
    elif decision.verdict == "deny":
        return f"not run: {decision.reason}. Find another way that does not need it.", decision
    return None, decision


@tool(
    "run_command",
    "Run a bash command in the repository root (stdin is closed; secrets are not in its "
    "environment). Output is cut in the middle when long. A policy decides what may run.",
    RunCommand,
)
async def run_command_tool(ws: Workspace, args: RunCommand) -> ToolResult:
    return await run_command_line(ws, args)


async def run_command_line(
    ws: Workspace, args: RunCommand, interrupt: asyncio.Event | None = None
) -> ToolResult:
    """``run_command``'s work, also an ACP agent's terminal (``interrupt``: its kill)."""
    refusal, decision = await command_refusal(ws, args.command)
    if refusal is not None:
        return ToolResult(refusal, is_error=True)
    warning = CONTAINER_WARNING if decision.containers else None
    approved = f"a container command ran with your approval: {warning}"
    if warning and ws.containers != "allow" and approved not in ws.warnings:
        ws.warnings.append(approved)
    result = await ws.run(
        args.command,
        min(args.timeout, ws.command_timeout),
        containers=decision.containers,
        interrupt=interrupt,
    )
    # The transcript keeps more than the model sees, but not a flood's worth.
    full, _ = await asyncio.to_thread(head_and_tail, result.output_path, TRANSCRIPT_OUTPUT)
    return ToolResult(
        _describe(result, ws.scratch_notes),
        is_error=result.exit_code != 0,
        exit_code=result.exit_code,
        full_output=full if result.truncated else None,
    )


class NoInput(_Input):
    pass


def _verify_text(found: Evidence) -> str:
    verdict = "passed" if found.passed else "FAILED"
    code = "timed out" if found.timed_out else f"exit code {found.exit_code}"
    why = f"; {found.failure}" if found.failure else ""
    changed = "".join(f"\n  {c.path}: {c.why}" for c in found.check_changes)
    if changed:
        changed = (
            "\nyour diff changes what the check depends on (the run cannot be verified):" + changed
        )
    return (
        f"verify command `{found.command}` {verdict} ({code}{why}):{changed}\n{found.output_tail}"
    )


def unverified_reason(found: Evidence) -> str:
    paths = ", ".join(f"{c.path} ({c.why})" for c in found.check_changes)
    return f"the check passed, but the diff changes what it depends on: {paths}"[:2000]


@tool(
    "run_verify",
    "Run the repository's verify command (its tests) and see the result. The runner also runs "
    "it when you finish.",
    NoInput,
)
async def run_verify(ws: Workspace, args: NoInput) -> ToolResult:
    found = await ws.run_verify()
    if found is None:
        return ToolResult("this repository has no verify command; run its checks yourself")
    return ToolResult(_verify_text(found), is_error=not found.passed, exit_code=found.exit_code)


# --- ending the run ----------------------------------------------------------------------


class Finish(_Input):
    summary: str = Field(description="what you changed and why, for the reviewer")


@tool(
    "finish",
    "Say you are done, with a summary for the reviewer. The runner then runs the verify "
    "command; if it fails you get the output and continue.",
    Finish,
)
async def finish(ws: Workspace, args: Finish) -> ToolResult:
    found = await ws.run_verify()
    if found is None:
        return ToolResult(
            "finished (no verify command)", stop=Stop("completed", summary=args.summary)
        )
    if found.passed:
        return ToolResult(_verify_text(found), stop=Stop("completed", summary=args.summary))
    if found.failure is None and found.check_changes and not ws.cancel.is_set():
        # Green, but only because of (or next to) edits to the check itself: proves nothing.
        stop = Stop("unverified", reason=unverified_reason(found), summary=args.summary)
        return ToolResult(_verify_text(found), is_error=True, stop=stop)
    if ws.cancel.is_set():
        return ToolResult(_verify_text(found), is_error=True, stop=Stop("cancelled"))
    ws.verify_failures += 1
    if ws.verify_failures >= ws.max_verify_rounds:
        return ToolResult(
            _verify_text(found),
            is_error=True,
            stop=Stop(
                "failed",
                reason=f"verification still fails after {ws.verify_failures} rounds",
                summary=args.summary,
            ),
        )
    left = ws.max_verify_rounds - ws.verify_failures
    return ToolResult(
        f"not done: {_verify_text(found)}\nFix this and call finish again"
        f" ({left} round{'s' if left > 1 else ''} left).",
        is_error=True,
    )


class AskUser(_Input):
    question: str = Field(description="what you need to know; the run stops until answered")


@tool(
    "ask_user",
    "Ask the user a question you cannot answer from the repository. This ends the run; it "
    "resumes with the answer.",
    AskUser,
)
async def ask_user(ws: Workspace, args: AskUser) -> ToolResult:
    return ToolResult("question recorded", stop=Stop("needs_input", question=args.question))


class CreateFollowUp(_Input):
    title: str = Field(min_length=1, max_length=200, description="the new task's title")
    description: str = Field("", description="what should be done and why")


@tool(
    "create_follow_up",
    "Record a follow-up task for work you noticed but that is outside this task.",
    CreateFollowUp,
)
async def create_follow_up(ws: Workspace, args: CreateFollowUp) -> ToolResult:
    ws.follow_ups.append(FollowUp(title=args.title, description=args.description))
    return ToolResult(f"follow-up recorded: {args.title}")


# --- dispatch ----------------------------------------------------------------------------

#: A work run's tools: every tool this module defines (others, such as the planning run's
#: ``propose_tasks``, are registered elsewhere and offered only to their own kind of run).
WORK_TOOLS = frozenset(TOOLS)


def specs(names: frozenset[str] | None = None) -> list[ToolSpec]:
    """The tools ``names`` (None: :data:`WORK_TOOLS`) as the model sees them."""
    offered = WORK_TOOLS if names is None else names
    return [t.spec() for t in TOOLS.values() if t.name in offered]


def _validation_message(name: str, exc: ValidationError) -> str:
    return f"invalid input for {name}: {describe(exc)}. Fix the arguments and call it again."


async def execute(ws: Workspace, call: ToolUseBlock) -> ToolResult:
    """Run one tool call; mistakes come back as error results for the model to correct."""
    offered = WORK_TOOLS if ws.tools is None else ws.tools
    found = TOOLS.get(call.name) if call.name in offered else None
    if found is None:
        names = ", ".join(name for name in TOOLS if name in offered)
        return ToolResult(
            f"there is no tool {call.name!r} in this run; the tools are {names}", is_error=True
        )
    if "__invalid_json__" in call.input:
        return ToolResult(
            f"the arguments for {call.name} were not valid JSON: {call.input['__invalid_json__']!r}",
            is_error=True,
        )
    try:
        args = found.input.model_validate(call.input)
    except ValidationError as exc:
        return ToolResult(_validation_message(call.name, exc), is_error=True)
    try:
        return await found.fn(ws, args)
    except (ConfinementError, EditError) as exc:
        return ToolResult(str(exc), is_error=True)
    except FileNotFoundError:
        return ToolResult(f"{call.input.get('path')}: no such file", is_error=True)
    except IsADirectoryError:
        return ToolResult(f"{call.input.get('path')}: is a directory", is_error=True)
    except UnicodeDecodeError:
        return ToolResult(f"{call.input.get('path')}: not UTF-8 text", is_error=True)
    except OSError as exc:
        return ToolResult(f"{call.name} failed: {exc.strerror or exc}", is_error=True)
    except (
        Exception
    ) as exc:  # a bug, or an input nobody foresaw: the model hears it, the run goes on
        log.exception("tool %s failed", call.name)
        return ToolResult(f"{call.name} failed: {type(exc).__name__}: {exc}", is_error=True)
