"""Rendering the service definitions: a systemd user unit and a launchd LaunchAgent plist.

Everything here is pure (text in, text out) so that the exact bytes written by
``locus daemon install`` can be tested — and fed to ``systemd-analyze verify`` or ``plutil -lint``
— without touching the user's service manager. The IO lives in :mod:`locusd.service.install`.

The hard part is quoting. A systemd unit is not a shell script: ``ExecStart=`` is split on
whitespace, unquoted, C-unescaped, then ``%`` specifiers and ``$VAR`` references are expanded.
An interpreter path such as ``/Users/Ada Lovelace/.venv/bin/python`` or an environment value with
quotes must survive all of that, so every word is double-quoted and escaped the systemd way
(systemd.syntax(7), systemd.service(5) "Command lines"). The plist needs no quoting of our own:
:mod:`plistlib` writes XML.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

#: The systemd unit's name; ``systemctl --user … locusd.service``.
SYSTEMD_UNIT_NAME = "locusd.service"
#: The launchd job's label, also the plist's file name (``dev.locus.locusd.plist``).
LAUNCHD_LABEL = "dev.locus.locusd"
#: The log file launchd sends the daemon's stdout and stderr to (inside ``log_dir``).
LAUNCHD_LOG_NAME = "locusd.log"

DEFAULT_DESCRIPTION = "Locus daemon (locusd): runs coding agents for this user"

#: Seconds between SIGTERM and SIGKILL when the service is stopped. On SIGTERM the daemon cancels
#: its agent runs (each command's process group gets a short grace, then SIGKILL), records them as
#: cancelled and leaves cloud reports in its durable outbox — a few seconds of work. The bound is
#: generous so a slow disk does not turn a clean stop into a kill, and short enough that
#: ``systemctl --user stop`` or a logout never hangs for the systemd default of 90 s.
STOP_TIMEOUT_SEC = 30
#: Seconds systemd waits before restarting the daemon after a crash.
RESTART_SEC = 5
#: systemd gives up restarting after this many starts within ``START_LIMIT_INTERVAL_SEC`` (a
#: crash loop: a broken install, a corrupt database) instead of restarting every 5 s forever; the
#: unit then shows as ``failed`` in ``systemctl --user status``, with the reason in the journal.
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL_SEC = 300

#: Set for the daemon whatever the caller passes (the caller can override it): Python buffers
#: stdout when it is not a terminal, so without this, log lines reach the journal (or launchd's
#: log file) late, in chunks, and the last ones are lost in a crash.
BASE_ENVIRONMENT: Mapping[str, str] = {"PYTHONUNBUFFERED": "1"}

#: Characters systemd refuses in ExecStart's executable path (string_is_safe: quotes and backslash;
#: control characters are refused for every argument anyway), plus ``$``, which it cannot carry
#: there faithfully. Such an executable is run through ``ENV_EXECUTABLE``.
SYSTEMD_UNSAFE_EXECUTABLE_CHARS = "\"'\\$"
ENV_EXECUTABLE = "/usr/bin/env"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Inside a double-quoted systemd word: what must be backslash-escaped (C escapes).
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def _check_text(what: str, value: str, *, allow: str = "") -> None:
    """Reject what a unit file or a process cannot carry, naming the culprit.

    NUL cannot be in an argument or an environment value at all; text that is not valid UTF-8
    (a path decoded with surrogate escapes) cannot be written to a unit file, which systemd reads
    as UTF-8, nor can a Unicode noncharacter. Control characters are refused except those
    ``allow`` lists for this position (which the renderers escape).
    """
    if "\0" in value:
        raise ValueError(f"{what} contains a NUL character: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid UTF-8: {value!r}") from None
    bad = [c for c in value if (ord(c) < 0x20 or ord(c) == 0x7F) and c not in allow]
    if bad:
        raise ValueError(f"{what} contains control character {bad[0]!r}: {value!r}")
    nonchars = [c for c in value if _is_noncharacter(c)]
    if nonchars:
        raise ValueError(f"{what} contains Unicode noncharacter {nonchars[0]!r}: {value!r}")


def _is_noncharacter(char: str) -> bool:
    """U+FDD0…U+FDEF and U+xxFFFE/U+xxFFFF: systemd calls a unit holding one "not UTF-8 clean"
    and ignores the whole setting (measured); XML forbids U+FFFE/U+FFFF."""
    point = ord(char)
    return 0xFDD0 <= point <= 0xFDEF or (point & 0xFFFE) == 0xFFFE


def _check_raw_value(what: str, value: str) -> None:
    """For settings systemd takes as is, unquoted (Description=, EnvironmentFile=): a trailing
    backslash would continue the line into the next setting."""
    _check_text(what, value)
    if value.rstrip().endswith("\\"):
        raise ValueError(f"{what} ends with a backslash: {value!r}")


def _check_args(args: Sequence[str]) -> list[str]:
    """The service's argv, checked: not empty, an absolute executable, carriable text.

    Both service managers exec the program without a shell and without the login shell's
    ``PATH``, hence the absolute path (and for systemd, a leading ``-``/``@``/``+``/``!``/``:``
    would be read as an ExecStart prefix). Tab and newline are carried (escaped in a unit, as is
    in XML); other control characters cannot be carried by a plist (plistlib refuses them and
    turns ``\\r\\n`` into ``\\n``) and are refused in both, so both renderers accept the same
    command lines.
    """
    if isinstance(args, str):
        raise TypeError("pass the command line as a list of arguments, not a string")
    checked = list(args)
    if not checked:
        raise ValueError("the service command line is empty")
    for index, arg in enumerate(checked):
        _check_text(f"argument {index} of the service command line", arg, allow="\t\n")
    if not PurePosixPath(checked[0]).is_absolute():
        raise ValueError(f"the service's executable must be an absolute path, got {checked[0]!r}")
    return checked


def _systemd_escape(value: str, *, dollar: bool) -> str:
    """Escape ``value`` for use inside a double-quoted word of a unit file.

    ``\\``, ``"`` and the control characters we let through get C escapes (``\\n``); ``%`` becomes
    ``%%`` because specifiers are expanded in every setting we write; ``$`` becomes ``$$`` when
    ``dollar`` is set, because ``ExecStart=`` (and only it, among our settings) expands
    ``$VAR``/``${VAR}`` at exec time. Everything else, spaces and ``'`` and ``;`` included, is
    literal between double quotes.
    """
    out: list[str] = []
    for char in value:
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif char == "%":
            out.append("%%")
        elif char == "$" and dollar:
            out.append("$$")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def quote_exec_args(args: Sequence[str]) -> str:
    """A command line for ``ExecStart=``: every argument double-quoted and escaped.

    Quoting every word (not only those with spaces) keeps the rules in one place: a lone ``;``
    (a command separator when bare), a ``$HOME`` or a ``%h`` in an argument reach the daemon
    literally. See :func:`_check_args` for what is refused.

    The executable gets one more rule, systemd's own: it refuses (fatally, "Executable name
    contains special characters") an executable path holding a quote or a backslash, quoted or
    not, and it execs that path without ``$`` expansion while expanding ``$$`` in the argv the
    program sees — so a ``$`` there cannot be written both ways at once. Such a path (a
    virtualenv under ``/home/ada/O'Brien's projects``) is run through ``/usr/bin/env``, which
    receives it as an ordinary, fully escapable argument and execs it unchanged.
    """
    checked = _check_args(args)
    executable = checked[0]
    if any(char in executable for char in SYSTEMD_UNSAFE_EXECUTABLE_CHARS):
        if "=" in executable:
            # env would take the word for a NAME=VALUE assignment instead of the command.
            raise ValueError(
                "systemd cannot run an executable whose path holds a quote, backslash or $ "
                f"together with =: {executable!r}; install Locus under a simpler path"
            )
        checked = [ENV_EXECUTABLE, *checked]
    return " ".join(_systemd_escape(arg, dollar=True) for arg in checked)


def _environment(environment: Mapping[str, str] | None) -> dict[str, str]:
    """``BASE_ENVIRONMENT`` overridden by ``environment``, every name and value checked."""
    merged = {**BASE_ENVIRONMENT, **(environment or {})}
    for name, value in merged.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(
                f"invalid environment variable name {name!r} (letters, digits and _, "
                "not starting with a digit)"
            )
        # systemd accepts tab and newline in a value (and refuses the other control characters).
        _check_text(f"environment variable {name}", value, allow="\t\n")
    return merged


def systemd_unit(
    exec_start: Sequence[str],
    *,
    environment: Mapping[str, str] | None = None,
    description: str = DEFAULT_DESCRIPTION,
    environment_file: Path | None = None,
) -> str:
    """The text of ``locusd.service``, a systemd **user** unit that runs ``exec_start``.

    ``exec_start`` is the daemon's argv (``[python, "-m", "locusd", "serve"]`` or
    ``[".../bin/locusd", "serve"]``), its first element an absolute path. ``environment`` is
    added to the service's environment (after ``PYTHONUNBUFFERED=1``, which it may override): the
    user manager does not run the login shell, so the caller passes what the daemon needs, such as
    ``PATH``. ``environment_file``, if given, is read at each start and may be missing (``-``
    prefix): the place for API keys, which should not sit in a world-readable unit.

    Raises ValueError for what systemd could not carry faithfully (see :func:`quote_exec_args`).
    """
    exec_line = quote_exec_args(exec_start)
    _check_raw_value("the description", description)
    env = _environment(environment)
    lines = [
        "# Written by `locus daemon install`; `locus daemon uninstall` removes it.",
        "# Edits are lost on the next install: add a drop-in instead",
        "# (`systemctl --user edit locusd.service`).",
        "[Unit]",
        f"Description={description.strip().replace('%', '%%')}",
        # A crash loop (a broken install, a corrupt database) stops after START_LIMIT_BURST
        # starts in START_LIMIT_INTERVAL_SEC instead of restarting every RestartSec forever.
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_SEC}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        # No After=network-online.target: that target belongs to the system manager, and the
        # daemon works offline anyway (cloud writes wait in its outbox).
        "",
        "[Service]",
        # simple, not notify: the daemon does not implement sd_notify. Clients do not depend on
        # the start being "complete": they connect to the socket and retry.
        "Type=simple",
        f"ExecStart={exec_line}",
        *(f"Environment={_systemd_escape(f'{k}={v}', dollar=False)}" for k, v in env.items()),
    ]
    if environment_file is not None:
        path = str(environment_file)
        _check_raw_value("the environment file's path", path)
        if not environment_file.is_absolute():
            raise ValueError(f"the environment file must be an absolute path, got {path!r}")
        # The value is a path taken as is (no unquoting); only specifiers need escaping.
        lines.append(f"EnvironmentFile=-{path.replace('%', '%%')}")
    lines += [
        # Journal lines are tagged "locusd", not "python3.11".
        "SyslogIdentifier=locusd",
        # on-failure: restart after a crash or a kill -9 (the daemon resumes or fails its runs
        # explicitly on restart), but not after a clean `systemctl --user stop` or exit 0.
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        # KillMode=mixed: on stop, SIGTERM goes to the daemon only — not, as with the default
        # control-group mode, to every process at once. The daemon must outlive its children for
        # a moment: it cancels its agent runs, kills each command's process group itself, and
        # records the runs as cancelled. Once it has exited (or TimeoutStopSec is up) systemd
        # SIGKILLs whatever is left in the cgroup, including a grandchild that escaped its
        # process group with setsid, so nothing outlives the service.
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT_SEC}",
        "",
        "[Install]",
        # The user's login (or, with `loginctl enable-linger`, boot) starts the daemon.
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


def launchd_plist(
    exec_args: Sequence[str],
    *,
    log_dir: Path,
    label: str = LAUNCHD_LABEL,
    environment: Mapping[str, str] | None = None,
    working_directory: Path | None = None,
) -> bytes:
    """The XML of a launchd LaunchAgent (``~/Library/LaunchAgents/<label>.plist``).

    The job starts when it is loaded (``RunAtLoad``: at login, or at ``launchctl bootstrap``) and
    is restarted when it does not exit successfully (``KeepAlive.SuccessfulExit = false``) — the
    launchd spelling of systemd's ``Restart=on-failure``; so the daemon must exit 0 after a
    SIGTERM, or ``locus daemon stop`` would be undone by a restart. stdout and stderr go to one
    file, ``log_dir/locusd.log`` (launchd has no journal for agents); the directory must exist
    when the job starts, which :func:`locusd.service.install.install` sees to. ``ProcessType
    Background`` tells macOS the daemon is not interactive (lower CPU and IO priority).

    Raises ValueError for a relative executable or log directory, an invalid label or
    variable name, or text XML cannot carry (control characters).
    """
    args = _check_args(exec_args)
    if not _LABEL.fullmatch(label):
        raise ValueError(f"invalid launchd label {label!r} (use reverse DNS: dev.locus.locusd)")
    if not log_dir.is_absolute():
        raise ValueError(f"the log directory must be an absolute path, got {str(log_dir)!r}")
    log_path = str(log_dir / LAUNCHD_LOG_NAME)
    _check_text("the log path", log_path)
    plist: dict[str, object] = {
        "Label": label,
        "ProgramArguments": args,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": log_path,
        "StandardErrorPath": log_path,
        "EnvironmentVariables": _environment(environment),
        "ProcessType": "Background",
        # launchd's TimeoutStopSec: SIGTERM, then SIGKILL after this many seconds. When the job
        # exits, launchd also kills what is left of its process group (AbandonProcessGroup is
        # false by default), as KillMode=mixed does for the cgroup.
        "ExitTimeOut": STOP_TIMEOUT_SEC,
    }
    if working_directory is not None:
        if not working_directory.is_absolute():
            raise ValueError(
                f"the working directory must be an absolute path, got {str(working_directory)!r}"
            )
        plist["WorkingDirectory"] = str(working_directory)
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=True)
