"""Where the service files go and which commands manage the service — pure, no IO.

``locus daemon start|stop|status|logs`` run these argv lists, or print them where they cannot be
run (no user bus in a container, a dry run); keeping them as data lets the CLI do either and lets
the tests check them without a service manager.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from locusd.service.units import LAUNCHD_LABEL, LAUNCHD_LOG_NAME, SYSTEMD_UNIT_NAME

ServiceKind = Literal["systemd", "launchd"]


class ServiceError(RuntimeError):
    """No service manager to install into (the message says what to do instead)."""


def detect(platform: str | None = None) -> ServiceKind | None:
    """The service manager for this platform: systemd on Linux, launchd on macOS, else None.

    By platform only, not by probing: on a Linux box without a running systemd (a container),
    ``install`` still writes the unit and then says plainly that it could not enable it and what
    to run instead, which is more useful than refusing.
    """
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        return "systemd"
    if platform == "darwin":
        return "launchd"
    return None


def resolve_kind(kind: ServiceKind | None) -> ServiceKind:
    """``kind``, or the detected one; ServiceError where there is none."""
    resolved = kind or detect()
    if resolved is None:
        raise ServiceError(
            f"no supported service manager on this platform ({sys.platform}); "
            "run `locusd serve` in the foreground instead (the `locus` CLI also starts the "
            "daemon on demand)"
        )
    return resolved


def _home(home: Path | None) -> Path:
    return Path.home() if home is None else home


def config_home(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME``, or ``~/.config`` when unset, empty or relative (as the XDG spec
    says to ignore a relative one) — the directory systemd's user manager searches too."""
    environ = os.environ if environ is None else environ
    value = environ.get("XDG_CONFIG_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    return _home(home) / ".config"


def systemd_unit_dir(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    return config_home(home, environ) / "systemd" / "user"


def service_path(
    kind: ServiceKind,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    label: str = LAUNCHD_LABEL,
) -> Path:
    """The file ``install`` writes: the unit or the LaunchAgent plist."""
    if kind == "systemd":
        return systemd_unit_dir(home, environ) / SYSTEMD_UNIT_NAME
    return _home(home) / "Library" / "LaunchAgents" / f"{label}.plist"


def launchd_log_dir(home: Path | None = None) -> Path:
    """``~/Library/Logs/locus``: where macOS users (and Console.app) look for an app's logs."""
    return _home(home) / "Library" / "Logs" / "locus"


def environment_file(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``~/.config/locus/locusd.env``: optional ``NAME=value`` lines the systemd unit reads at
    each start — where API keys go (mode 0600), not into the unit."""
    return config_home(home, environ) / "locus" / "locusd.env"


def _uid(uid: int | None) -> int:
    return os.getuid() if uid is None else uid


def launchd_domain(uid: int | None = None) -> str:
    """``gui/<uid>``: the per-user login-session domain LaunchAgents are loaded into."""
    return f"gui/{_uid(uid)}"


def launchd_target(uid: int | None = None, label: str = LAUNCHD_LABEL) -> str:
    """``gui/<uid>/<label>``: how launchctl names one job."""
    return f"{launchd_domain(uid)}/{label}"


def start_command(kind: ServiceKind | None = None, *, uid: int | None = None) -> list[str]:
    """Start the installed service now (it also starts by itself at login)."""
    if resolve_kind(kind) == "systemd":
        return ["systemctl", "--user", "start", SYSTEMD_UNIT_NAME]
    # kickstart starts a loaded job that is not running (and does nothing to a running one).
    return ["launchctl", "kickstart", launchd_target(uid)]


def stop_command(kind: ServiceKind | None = None, *, uid: int | None = None) -> list[str]:
    """Stop the daemon gracefully (SIGTERM; it cancels its runs) until the next start or login.

    On macOS this is a SIGTERM through launchd rather than ``bootout``: the job stays loaded so
    ``start`` (kickstart) works, and since the daemon exits 0, ``KeepAlive.SuccessfulExit =
    false`` does not restart it.
    """
    if resolve_kind(kind) == "systemd":
        return ["systemctl", "--user", "stop", SYSTEMD_UNIT_NAME]
    return ["launchctl", "kill", "SIGTERM", launchd_target(uid)]


def restart_command(kind: ServiceKind | None = None, *, uid: int | None = None) -> list[str]:
    """Restart the daemon, e.g. to apply a re-installed unit."""
    if resolve_kind(kind) == "systemd":
        return ["systemctl", "--user", "restart", SYSTEMD_UNIT_NAME]
    # -k: kill the running instance first, then start it again.
    return ["launchctl", "kickstart", "-k", launchd_target(uid)]


def status_command(kind: ServiceKind | None = None, *, uid: int | None = None) -> list[str]:
    """The service manager's view: loaded, running, PID, last exit, recent log lines."""
    if resolve_kind(kind) == "systemd":
        return ["systemctl", "--user", "--no-pager", "status", SYSTEMD_UNIT_NAME]
    return ["launchctl", "print", launchd_target(uid)]


def logs_command(
    kind: ServiceKind | None = None,
    *,
    follow: bool = False,
    lines: int = 200,
    home: Path | None = None,
) -> list[str]:
    """The daemon's output: the user journal under systemd, the log file under launchd."""
    if lines < 0:
        raise ValueError(f"lines must be >= 0, got {lines}")
    if resolve_kind(kind) == "systemd":
        argv = ["journalctl", "--user", "-u", SYSTEMD_UNIT_NAME, "-n", str(lines), "--no-pager"]
        return [*argv, "-f"] if follow else argv
    # -F: keep following across a truncation or rotation of the file.
    follow_flag = ["-F"] if follow else []
    return ["tail", "-n", str(lines), *follow_flag, str(launchd_log_dir(home) / LAUNCHD_LOG_NAME)]


def format_command(argv: Sequence[str]) -> str:
    """One argv as a line to paste into a POSIX shell (quoted where needed)."""
    return shlex.join(argv)
