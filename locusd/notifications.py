"""Desktop notifications when a run needs a person: ``notify-send`` on Linux, ``osascript`` on
macOS, found on PATH once, when the daemon starts; nothing elsewhere (and the daemon's status
says why).

The text is data: the body carries the agent's question or command and a task's title, so it
goes to the program as one argv element (never through a shell), with control and
format characters removed, cut to :data:`BODY_LIMIT`, and — for notify-send, whose servers may
read the body as the Desktop Notifications spec's markup (``<b>``, ``<a href>``, ``<img>``) —
with ``&``, ``<`` and ``>`` written as entities. The title is our own words only. The program
runs in the background with the daemon's desktop variables only (no API key, nothing of a
run's environment or sandbox), from ``/``, in a session of its own; one that fails or hangs
is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import shutil
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from locusd.protocol.messages import NeedsYou, NeedsYouKind, NotificationStatus

log = logging.getLogger(__name__)

Program = Literal["notify-send", "osascript"]
#: The most characters of a notification's body (before markup escaping): a toast, not a log.
BODY_LIMIT = 300
#: Seconds a notification program may take before it is killed (a desktop bus that hangs).
PROGRAM_TIMEOUT = 30.0
#: The variables a notification program is given, from the daemon's environment: what finds
#: the desktop session and its language, nothing else (the daemon's may hold API keys).
DESKTOP_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "XDG_CURRENT_DESKTOP",
    "DBUS_SESSION_BUS_ADDRESS",
    "TMPDIR",
)
TITLES: dict[NeedsYouKind, str] = {
    "approval": "Locus: a command waits for your approval",
    "question": "Locus: the agent asks a question",
    "review": "Locus: changes ready for review",
}
#: What to run on AppleScript's side: the texts arrive as the script's arguments, so no
#: string of ours is ever parsed as AppleScript.
APPLESCRIPT = (
    "on run argv",
    "display notification (item 2 of argv) with title (item 1 of argv)",
    "end run",
)


@dataclass(frozen=True)
class Desktop:
    """The program that raises notifications on this machine, or why there is none."""

    program: Program | None = None
    path: str | None = None
    reason: str | None = None


def find(platform: str = sys.platform, search_path: str | None = None) -> Desktop:
    """The notification program for ``platform``, looked up on ``search_path`` (the
    daemon's PATH by default)."""
    if platform.startswith("linux"):
        found = shutil.which("notify-send", path=search_path)
        if found is None:
            return Desktop(
                reason="notify-send is not on the daemon's PATH (install libnotify-bin or"
                " libnotify, then locus daemon stop so that the next start finds it)"
            )
        return Desktop("notify-send", found)
    if platform == "darwin":
        found = shutil.which("osascript", path=search_path)
        if found is None:
            return Desktop(reason="osascript is not on the daemon's PATH (/usr/bin on macOS)")
        return Desktop("osascript", found)
    return Desktop(reason=f"no desktop notifications on {platform} (only Linux and macOS)")


def clean(text: str) -> str:
    """``text`` as it may be shown: lines kept, every other control, format (bidi
    overrides, zero-width) or unpaired surrogate character dropped, blanks squeezed."""
    kept = "".join(
        char
        for char in text.replace("\r\n", "\n").replace("\t", " ")
        if char == "\n" or unicodedata.category(char) not in ("Cc", "Cf", "Cs")
    )
    lines = [" ".join(line.split()) for line in kept.split("\n")]
    return "\n".join(line for line in lines if line)


def body(note: NeedsYou) -> str:
    """The task's title and the agent's text, cleaned and cut to :data:`BODY_LIMIT`."""
    text = clean(f"{note.title}\n{note.text}" if note.text else note.title)
    return text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 1].rstrip() + "…"


def argv(program: Program, path: str, note: NeedsYou) -> list[str]:
    """The command raising ``note``: our title and the body as arguments of their own, where
    a text starting with ``-`` cannot be read as an option."""
    title = TITLES[note.kind]
    if program == "notify-send":
        # The body may be read as markup: escaped. The title (summary) is plain text.
        escaped = html.escape(body(note), quote=False)
        return [path, "--app-name=Locus", "--", title, escaped]
    # osascript stops reading options at its first argument, our title (never "-…"); a "--"
    # would not be dropped but passed on to the script as its first item.
    script = [part for line in APPLESCRIPT for part in ("-e", line)]
    return [path, *script, title, body(note)]


def desktop_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` a notification program needs (:data:`DESKTOP_VARIABLES`)."""
    return {name: environ[name] for name in DESKTOP_VARIABLES if name in environ}


class Notifier:
    """Raises each note as a desktop notification in the background; :meth:`settle` waits for
    those launched (the daemon's close). Notes raised outside an event loop (a core built for
    a test, recovering runs) wait for :meth:`release`."""

    def __init__(
        self,
        desktop: Desktop,
        environ: Mapping[str, str] | None = None,
        *,
        timeout: float = PROGRAM_TIMEOUT,
    ) -> None:
        self.desktop = desktop
        self.timeout = timeout
        self.environment = desktop_environment(os.environ if environ is None else environ)
        self.last_error: str | None = None
        self._held: list[NeedsYou] = []
        self._running: set[asyncio.Task[None]] = set()

    def status(self, enabled: bool) -> NotificationStatus:
        if not enabled:
            reason = "turned off in config.toml ([notifications] desktop = false)"
            return NotificationStatus(desktop=False, reason=reason)
        if self.desktop.program is None:
            return NotificationStatus(desktop=False, reason=self.desktop.reason)
        return NotificationStatus(
            desktop=True, program=self.desktop.program, last_error=self.last_error
        )

    def raise_(self, note: NeedsYou) -> None:
        """Raise ``note`` without waiting for it (a no-op without a program)."""
        if self.desktop.program is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._held.append(note)
            return
        task = asyncio.create_task(self._show(note))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def release(self) -> None:
        """Raise the notes held until an event loop runs (call from inside one)."""
        held, self._held = self._held, []
        for note in held:
            self.raise_(note)

    async def settle(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _show(self, note: NeedsYou) -> None:
        program, path = self.desktop.program, self.desktop.path
        assert program is not None and path is not None
        command = argv(program, path, note)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            self._failed(f"{program} could not start: {exc}")
            return
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self._failed(f"{program} did not finish within {self.timeout:g} s (killed)")
            return
        if process.returncode != 0:
            said = clean(stderr.decode(errors="replace"))[:200] or "nothing on stderr"
            self._failed(f"{program} exited with status {process.returncode}: {said}")
        else:
            self.last_error = None

    def _failed(self, why: str) -> None:
        self.last_error = why
        log.warning("desktop notification not shown: %s", why)
