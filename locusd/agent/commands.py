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
from typing import BinaryIO

from locusd.agent.sandbox import Sandbox

#: Variables a command may see (anything else is dropped), before secrets are removed.
DEFAULT_ALLOW = (
    *("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR"),
    *("LC_ALL", "LC_CTYPE", "LC_MESSAGES", "VIRTUAL_ENV", "CARGO_HOME", "RUSTUP_HOME", "GOPATH"),
    *("JAVA_HOME", "NODE_PATH", "PYTHONPATH", "CI", "DOCKER_HOST", "CONTAINER_HOST"),
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


#: Package managers' registry settings from the daemon's environment: a command needs them to
#: use the registries the egress proxy allows (``locusd/agent/registries.py`` reads the same).
REGISTRY_VARIABLES = (
    *("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX"),
    *("UV_EXTRA_INDEX_URL", "NPM_CONFIG_REGISTRY", "npm_config_registry", "GOPROXY", "GOSUMDB"),
    *("GONOSUMDB", "GOPRIVATE", "GONOPROXY"),
)
_USERINFO = re.compile(r"(?<=://)[^/\s,@]*@")


def registry_env(base: Mapping[str, str]) -> dict[str, str]:
    """The registry settings, each URL without the credentials it may carry (``user:token@``):
    a command may reach the registry, never hold the user's token for it."""
    return {
        name: _USERINFO.sub("", value)
        for name in REGISTRY_VARIABLES
        if (value := base.get(name)) and not is_secret_name(name)
    }


#: A command that prints more than this is killed; what it printed up to here is kept.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int | None  # None when it was killed (timeout, cancel, output limit)
    duration: float
    output: str  # head and tail, capped; the output up to MAX_OUTPUT_BYTES is in output_path
    output_path: Path
    truncated: bool
    timed_out: bool
    cancelled: bool
    overflowed: bool = False  # killed for printing more than the output limit


def group_alive(pgid: int) -> bool:
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


#: After SIGKILL, how long to wait for the group to empty before giving up: SIGKILL is not
#: refused, but a process that changed its user (sandbox off, a setuid program) cannot be sent it.
KILLED_WAIT = 5.0


async def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for it to empty, then SIGKILL what is left
    (``grace`` 0: SIGKILL at once) and wait until it is gone: a sandbox's PID namespace is
    empty once its first process (in the group) has exited, so on return the caller may say
    the whole tree is gone, a ``setsid`` child inside the namespace too."""
    if grace > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # No event tells when a group empties: poll, bounded by the grace period.
        while group_alive(pgid) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + KILLED_WAIT
    while group_alive(pgid) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def _copy(stream: asyncio.StreamReader, sink: BinaryIO, limit: int) -> bool:
    """The command's output into ``sink`` up to ``limit`` bytes; True when it went past it
    (the caller kills the command: a flood must not fill the disk or the memory)."""
    written = 0
    while chunk := await stream.read(_CHUNK):
        if written + len(chunk) > limit:
            sink.write(chunk[: limit - written])
            return True
        sink.write(chunk)
        written += len(chunk)
    return False


def head_and_tail(path: Path, limit: int) -> tuple[str, bool]:
    """A file's text, or its first and last ``limit // 2`` bytes with a note between, read
    without loading the rest; and whether anything was cut."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= limit:
            return handle.read().decode("utf-8", "replace"), False
        half = limit // 2
        head = handle.read(half)
        handle.seek(size - half)
        tail = handle.read(half)
    dropped = size - 2 * half
    text = (
        f"{head.decode('utf-8', 'replace')}\n… [{dropped} bytes cut; the output up to the limit is"
        f" kept] …\n{tail.decode('utf-8', 'replace')}"
    )
    return text, True


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
    max_output: int = MAX_OUTPUT_BYTES,
) -> CommandResult:
    """Run ``command`` with bash in ``cwd``. Ends on exit, on ``timeout``, when ``cancel`` is
    set, or when its output passes ``max_output`` bytes; in the last three cases the whole
    process group is killed within ``grace`` s. The output goes through a pipe into
    ``output_path``, counted: a flood costs a bounded file, not the disk or the memory."""
    started = time.monotonic()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["bash", "-c", command]
    # Our own pipe rather than asyncio's: asyncio's wait() does not return while the pipe is
    # open, and a process that left the group (setsid) may hold it open for ever.
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *(sandbox.wrap(argv, cwd) if sandbox is not None else argv),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,  # its own session and process group
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    output = asyncio.StreamReader(limit=_CHUNK)
    pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(output), os.fdopen(read_fd, "rb", buffering=0)
    )
    with output_path.open("wb") as sink:
        copying = asyncio.ensure_future(_copy(output, sink, max_output))
        exited = asyncio.ensure_future(proc.wait())
        waiters = {exited, copying}
        cancelled_waiter = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        if cancelled_waiter is not None:
            waiters.add(cancelled_waiter)
        deadline = started + timeout
        # Until the shell exits (or a cancel, or the timeout); the copy ending early means
        # either the output closed (wait on) or the limit was passed (stop).
        while not exited.done():
            done, _ = await asyncio.wait(
                waiters,
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done or (cancelled_waiter in done) or (copying.done() and copying.result()):
                break
            waiters.discard(copying)
        cancelled = cancelled_waiter is not None and cancelled_waiter.done()
        overflowed = copying.done() and copying.result()
        timed_out = not exited.done() and not cancelled and not overflowed
        if cancelled_waiter is not None and not cancelled_waiter.done():
            cancelled_waiter.cancel()
        if timed_out or cancelled or overflowed or group_alive(proc.pid):
            # (after a plain exit: anything the shell left running in its group goes too)
            await kill_group(proc.pid, grace)
        exit_code = await proc.wait()
        try:  # what is still in the pipe; a process outside the group may hold it open
            await asyncio.wait_for(asyncio.shield(copying), grace)
        except TimeoutError:
            copying.cancel()
        finally:
            pipe.close()
    shown, truncated = await asyncio.to_thread(head_and_tail, output_path, limit)
    killed = timed_out or cancelled or overflowed
    return CommandResult(
        command=command,
        exit_code=None if killed else exit_code,
        duration=time.monotonic() - started,
        output=shown,
        output_path=output_path,
        truncated=truncated,
        timed_out=timed_out,
        cancelled=cancelled,
        overflowed=overflowed,
    )
