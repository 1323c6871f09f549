"""Running the project's commands for the agent: in the worktree, in a process group of their
own, with stdin closed, a timeout, a scrubbed environment, and output that goes to a file.

Why a file and not a pipe: a grandchild that escapes the group could keep a pipe open and hang
the read forever (docs/agent.md). Why a process group: a timeout or a cancel must kill the whole
tree the command started, not only the shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from locusd.agent.sandbox import Sandbox

#: Variables a command may see (anything else is dropped), before secrets are removed.
DEFAULT_ALLOW = (
    *("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR"),
    *("LC_ALL", "LC_CTYPE", "LC_MESSAGES", "VIRTUAL_ENV", "CARGO_HOME", "RUSTUP_HOME", "GOPATH"),
    *("JAVA_HOME", "NODE_PATH", "PYTHONPATH", "CI"),
)
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_SECRET_PREFIXES = ("ANTHROPIC_", "LOCUS_", "OPENAI_")


def is_secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret (or Locus's or a model API's own)."""
    return bool(_SECRET_NAME.search(name)) or name.upper().startswith(_SECRET_PREFIXES)


def scrubbed_env(base: Mapping[str, str], allow: Iterable[str] = DEFAULT_ALLOW) -> dict[str, str]:
    """Only allow-listed variables, and never one whose name says it is a secret."""
    allowed = set(allow)
    return {
        name: value for name, value in base.items() if name in allowed and not is_secret_name(name)
    }


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int | None  # None when it was killed (timeout or cancel)
    duration: float
    output: str  # head and tail, capped; the whole output is in output_path
    output_path: Path
    truncated: bool
    timed_out: bool
    cancelled: bool


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: killpg(pgid, 0)
    succeeds for them, and a zombie that PID 1 reaps late would hold the kill's grace period
    open for nothing (seen with bwrap's inner process)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True  # no /proc (macOS): a zombie is all killpg can tell us about
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


async def _kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for it to empty, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    # No event tells when a group empties: poll, bounded by the grace period.
    while _group_alive(pgid) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _cap(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    half = limit // 2
    dropped = len(text) - 2 * half
    return (
        f"{text[:half]}\n… [{dropped} characters cut; the whole output is kept] …\n{text[-half:]}",
        True,
    )


async def run_command(
    command: str,
    cwd: Path,
    *,
    output_path: Path,
    env: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - the command's time limit, not the caller's
    cancel: asyncio.Event | None = None,
    limit: int = 30_000,
    grace: float = 1.0,
    sandbox: Sandbox | None = None,
) -> CommandResult:
    """Run ``command`` with bash in ``cwd``. Ends on exit, on ``timeout``, or when ``cancel``
    is set; in the last two cases the whole process group is killed within ``grace`` s."""
    started = time.monotonic()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("wb") as sink:
        argv = ["bash", "-c", command]
        proc = await asyncio.create_subprocess_exec(
            *(sandbox.wrap(argv, cwd) if sandbox is not None else argv),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,  # its own session and process group
        )
    waiters = {asyncio.ensure_future(proc.wait())}
    cancelled_waiter = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    if cancelled_waiter is not None:
        waiters.add(cancelled_waiter)
    done, _pending = await asyncio.wait(
        waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    cancelled = cancelled_waiter is not None and cancelled_waiter in done
    timed_out = not done
    if cancelled_waiter is not None and not cancelled_waiter.done():
        cancelled_waiter.cancel()
    if timed_out or cancelled:
        await _kill_group(proc.pid, grace)
    else:
        # The shell exited; anything it left running in its group goes too.
        if _group_alive(proc.pid):
            await _kill_group(proc.pid, grace)
    exit_code = await proc.wait()
    text = (await asyncio.to_thread(output_path.read_bytes)).decode("utf-8", "replace")
    output, truncated = _cap(text, limit)
    return CommandResult(
        command=command,
        exit_code=None if (timed_out or cancelled) else exit_code,
        duration=time.monotonic() - started,
        output=output,
        output_path=output_path,
        truncated=truncated,
        timed_out=timed_out,
        cancelled=cancelled,
    )
