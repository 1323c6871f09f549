"""``locus daemon install`` / ``uninstall``: write or remove the service file, then tell the service
manager — or, where it cannot be reached, say exactly what to run by hand.

Never failing silently is the point of the shape of :class:`InstallResult`: in a container, over
``sudo -u``, or in an SSH session without a user manager, ``systemctl --user`` cannot reach a bus.
The file is still written (it is correct, and it is picked up at the next login), and the result
lists the commands that did not run with the error that stopped them, for the CLI to print.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from locusd.agent.commands import is_secret_name
from locusd.service.control import (
    ServiceError,
    ServiceKind,
    environment_file,
    format_command,
    launchd_domain,
    launchd_log_dir,
    launchd_target,
    logs_command,
    resolve_kind,
    restart_command,
    service_path,
    status_command,
    systemd_unit_dir,
)
from locusd.service.units import (
    STOP_TIMEOUT_SEC,
    SYSTEMD_UNIT_NAME,
    launchd_plist,
    systemd_unit,
)

#: A service manager command that takes longer than this is reported as failed, not waited on.
COMMAND_TIMEOUT_SEC = 60

_FOREGROUND_HINT = (
    "Without a service manager, run `locusd serve` in the foreground (in a terminal, tmux, or as "
    "a container's command); the `locus` CLI also starts the daemon on demand."
)


@dataclass(frozen=True)
class InstallResult:
    """What ``install`` or ``uninstall`` did, for the CLI to report.

    ``commands_run`` lists the service manager commands that ran and changed something (probes
    such as ``launchctl print`` are left out); ``pending`` the ones that still have to be run by
    hand, in order — empty when everything is done; ``message`` says what happened, including any
    error output, and what to do next. ``changed`` tells whether the file was created, modified
    or removed.
    """

    kind: ServiceKind
    path: Path
    commands_run: list[list[str]]
    message: str
    pending: list[list[str]] = field(default_factory=list)
    changed: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing is left to run by hand."""
        return not self.pending


#: The module behind the ``locusd`` console script (pyproject ``[project.scripts]``), run with
#: ``python -m`` where the script is not installed next to the interpreter (a source checkout).
DAEMON_MODULE = "locusd.server.main"


def default_exec_args() -> list[str]:
    """The daemon's command line for this installation.

    The ``locusd`` console script next to the running interpreter when there is one (its shebang
    pins the interpreter and so the virtualenv, and ``ps`` shows ``locusd``); otherwise this
    interpreter running the daemon's module with ``-m`` (``locusd`` itself when the package has
    a ``__main__``). The interpreter path is made absolute but deliberately not resolved: a
    virtualenv's ``bin/python`` is a symlink, and following it would lose the virtualenv's
    packages.
    """
    if not sys.executable:
        raise ServiceError("cannot tell which Python runs Locus (sys.executable is empty)")
    python = os.path.abspath(sys.executable)
    script = Path(python).parent / "locusd"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "serve"]
    module = "locusd" if importlib.util.find_spec("locusd.__main__") else DAEMON_MODULE
    return [python, "-m", module, "serve"]


def default_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the service inherits from the shell that runs ``install``: ``PATH`` only.

    A service manager starts the daemon without the login shell, so ``~/.local/bin``, Homebrew or
    a version manager's directories would be missing and the agent's ``git``, ``npm`` or
    ``cargo`` not found. Nothing else is copied: the unit is world-readable, and a variable that
    changes later would be frozen in it (re-run ``install`` after changing ``PATH``).
    """
    environ = os.environ if environ is None else environ
    path = environ.get("PATH", "")
    return {"PATH": path} if path else {}


def _write(path: Path, data: bytes, mode: int) -> bool:
    """Write ``data`` atomically (a reader never sees half a file) with exactly ``mode``.

    Returns whether the content changed. The mode is set explicitly, not left to the umask: a
    LaunchAgent that is group- or world-writable is refused by launchd.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        changed = path.read_bytes() != data
    except FileNotFoundError:
        changed = True
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return changed


# The same rule as the agent's environment scrubber (locusd.agent.commands): a name that says
# "secret", or the prefix of Locus's or a model API's own variables.


def _file_mode(environment: Mapping[str, str]) -> int:
    """0644 as service files usually are; 0600 when a variable's name says it holds a secret,
    since the service manager reads the file as the user anyway and nobody else needs to."""
    return 0o600 if any(is_secret_name(name) for name in environment) else 0o644


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    detail: str  # stderr (or stdout) of a failed command, or why it could not run


class _Runner:
    """Runs service manager commands in ``environ`` (its ``PATH`` finds the tool)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)
        self.ran: list[list[str]] = []

    def available(self, tool: str) -> bool:
        return shutil.which(tool, path=self.environ.get("PATH", os.defpath)) is not None

    def run(self, argv: Sequence[str], *, record: bool = True) -> _Outcome:
        tool = shutil.which(argv[0], path=self.environ.get("PATH", os.defpath))
        if tool is None:
            return _Outcome(False, f"{argv[0]} not found")
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv built in this module, no shell
                [tool, *argv[1:]],
                env=self.environ,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=COMMAND_TIMEOUT_SEC,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return _Outcome(False, f"timed out after {COMMAND_TIMEOUT_SEC} s")
        except OSError as exc:
            return _Outcome(False, str(exc))
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()) or f"exit {done.returncode}"
            return _Outcome(False, detail)
        if record:
            self.ran.append(list(argv))
        return _Outcome(True, "")


def _by_hand(commands: Sequence[Sequence[str]]) -> str:
    return "\n".join(f"  {format_command(argv)}" for argv in commands)


def install(
    kind: ServiceKind | None = None,
    exec_args: Sequence[str] | None = None,
    *,
    environment: Mapping[str, str] | None = None,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    run_systemctl: bool = True,
) -> InstallResult:
    """Install locusd as a per-user service, enable it and start it.

    ``kind`` defaults to :func:`~locusd.service.control.detect`; ``exec_args`` to
    :func:`default_exec_args`. The service's environment is :func:`default_environment` (the
    current ``PATH``) updated with ``environment``. ``home`` and ``environ`` (default: the real
    home and ``os.environ``) decide where files go and where ``systemctl``/``launchctl`` are
    looked up — tests point them at a temporary directory. With ``run_systemctl=False`` (the name
    covers ``launchctl`` too) only the file is written and the commands come back in ``pending``.

    Re-installing is safe: the file is rewritten atomically. systemd keeps a running daemon on
    the old unit until it is restarted (the message says so when the unit changed), because a
    restart cancels the daemon's agent runs; launchd cannot replace a loaded job in place, so on
    macOS the old job is unloaded and the new one loaded, which restarts the daemon.
    """
    resolved = resolve_kind(kind)
    environ = os.environ if environ is None else environ
    args = default_exec_args() if exec_args is None else list(exec_args)
    env = {**default_environment(environ), **(environment or {})}
    runner = _Runner(environ) if run_systemctl else None
    if resolved == "systemd":
        return _install_systemd(args, env, home, environ, runner)
    return _install_launchd(args, env, home, environ, runner)


def _install_systemd(
    args: list[str],
    env: dict[str, str],
    home: Path | None,
    environ: Mapping[str, str],
    runner: _Runner | None,
) -> InstallResult:
    path = service_path("systemd", home=home, environ=environ)
    existed = path.exists()
    text = systemd_unit(args, environment=env, environment_file=environment_file(home, environ))
    changed = _write(path, text.encode("utf-8"), _file_mode(env))
    reload = ["systemctl", "--user", "daemon-reload"]
    enable = ["systemctl", "--user", "enable", "--now", SYSTEMD_UNIT_NAME]
    wrote = f"Wrote {path}."

    def result(message: str, pending: list[list[str]]) -> InstallResult:
        ran = runner.ran if runner else []
        return InstallResult("systemd", path, ran, message, pending, changed)

    if runner is None:
        return result(
            f"{wrote} To enable and start it, run:\n{_by_hand([reload, enable])}", [reload, enable]
        )
    if not runner.available("systemctl"):
        return result(
            f"{wrote} systemctl was not found, so this system does not seem to run systemd. "
            f"{_FOREGROUND_HINT} Where systemd runs, enable it with:\n{_by_hand([reload, enable])}",
            [reload, enable],
        )
    outcome = runner.run(reload)
    if not outcome.ok:
        return result(
            f"{wrote} But `{format_command(reload)}` failed: {outcome.detail}\n"
            "There is no systemd user manager to talk to (a container, a `sudo`/`su` shell, or an "
            "SSH session without a login session). In a normal login session, run:\n"
            f"{_by_hand([reload, enable])}\n{_FOREGROUND_HINT}",
            [reload, enable],
        )
    outcome = runner.run(enable)
    if not outcome.ok:
        return result(
            f"{wrote} But `{format_command(enable)}` failed: {outcome.detail}\n"
            f"Fix the cause, then run:\n{_by_hand([enable])}",
            [enable],
        )
    message = (
        f"{wrote} locusd is enabled and started; it starts at each login and restarts after a "
        f"crash.\nStatus: {format_command(status_command('systemd'))}\n"
        f"Logs:   {format_command(logs_command('systemd'))}"
    )
    if existed and changed:
        message += (
            "\nThe unit changed: a daemon that was already running keeps the old settings until "
            f"restarted ({format_command(restart_command('systemd'))}; this cancels its runs)."
        )
    return result(message, [])


def _launchd_loaded(runner: _Runner) -> bool:
    return runner.run(["launchctl", "print", launchd_target()], record=False).ok


def _install_launchd(
    args: list[str],
    env: dict[str, str],
    home: Path | None,
    environ: Mapping[str, str],
    runner: _Runner | None,
) -> InstallResult:
    path = service_path("launchd", home=home, environ=environ)
    log_dir = launchd_log_dir(home)
    data = launchd_plist(
        args, log_dir=log_dir, environment=env, working_directory=home or Path.home()
    )
    # launchd does not create the directory of StandardOutPath; the job would fail to start.
    log_dir.mkdir(parents=True, exist_ok=True)
    changed = _write(path, data, _file_mode(env))
    bootout = ["launchctl", "bootout", launchd_target()]
    bootstrap = ["launchctl", "bootstrap", launchd_domain(), str(path)]
    wrote = f"Wrote {path} (logs go to {log_dir})."

    def result(message: str, pending: list[list[str]]) -> InstallResult:
        ran = runner.ran if runner else []
        return InstallResult("launchd", path, ran, message, pending, changed)

    if runner is None:
        return result(
            f"{wrote} To load and start it, run (if it is already loaded, first "
            f"`{format_command(bootout)}`):\n{_by_hand([bootstrap])}",
            [bootstrap],
        )
    if not runner.available("launchctl"):
        return result(f"{wrote} launchctl was not found. {_FOREGROUND_HINT}", [bootstrap])
    if _launchd_loaded(runner):
        # A loaded job cannot be replaced in place: unload it (SIGTERM, then SIGKILL after
        # ExitTimeOut) and wait until launchd has forgotten it, or bootstrap fails with EIO.
        outcome = runner.run(bootout)
        if not outcome.ok:
            return result(
                f"{wrote} But `{format_command(bootout)}` failed: {outcome.detail}\n"
                f"Run by hand:\n{_by_hand([bootout, bootstrap])}",
                [bootout, bootstrap],
            )
        deadline = time.monotonic() + STOP_TIMEOUT_SEC + 5
        while _launchd_loaded(runner) and time.monotonic() < deadline:
            time.sleep(0.2)
    outcome = runner.run(bootstrap)
    if not outcome.ok:
        return result(
            f"{wrote} But `{format_command(bootstrap)}` failed: {outcome.detail}\n"
            "(launchctl needs the GUI login session: over SSH, log in on the Mac once.) "
            f"Run by hand:\n{_by_hand([bootstrap])}",
            [bootstrap],
        )
    message = (
        f"{wrote} locusd is loaded and started; it starts at each login and restarts after a "
        f"crash.\nStatus: {format_command(status_command('launchd'))}\n"
        f"Logs:   {format_command(logs_command('launchd', home=home))}"
    )
    return result(message, [])


def uninstall(
    kind: ServiceKind | None = None,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    run_systemctl: bool = True,
) -> InstallResult:
    """Stop and disable the service, then remove its file. Idempotent: uninstalling what is not
    installed reports so and succeeds.

    The file is removed even when the service manager cannot be reached (the user asked for it to
    go, and it would otherwise start again at the next login); the commands to stop a daemon that
    may still be running then come back in ``pending``.
    """
    resolved = resolve_kind(kind)
    environ = os.environ if environ is None else environ
    runner = _Runner(environ) if run_systemctl else None
    if resolved == "systemd":
        return _uninstall_systemd(home, environ, runner)
    return _uninstall_launchd(home, environ, runner)


def _uninstall_systemd(
    home: Path | None, environ: Mapping[str, str], runner: _Runner | None
) -> InstallResult:
    path = service_path("systemd", home=home, environ=environ)
    # What `systemctl enable` created; removed by hand too in case systemctl cannot be used.
    wants = systemd_unit_dir(home, environ) / "default.target.wants" / SYSTEMD_UNIT_NAME
    if not path.exists() and not wants.is_symlink():
        return InstallResult("systemd", path, [], f"locusd is not installed (no {path}).")
    disable = ["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT_NAME]
    stop = ["systemctl", "--user", "stop", SYSTEMD_UNIT_NAME]
    reload = ["systemctl", "--user", "daemon-reload"]
    problem = ""
    if runner is None:
        problem = "systemctl was not run"
    elif not runner.available("systemctl"):
        problem = "systemctl was not found"
    else:
        outcome = runner.run(disable)
        if not outcome.ok:
            problem = f"`{format_command(disable)}` failed: {outcome.detail}"
    with contextlib.suppress(FileNotFoundError):
        wants.unlink()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    ran = runner.ran if runner else []
    if problem or runner is None:
        return InstallResult(
            "systemd",
            path,
            ran,
            f"Removed {path}, but {problem}. If a daemon is still running under systemd, stop it "
            f"with:\n{_by_hand([stop, reload])}",
            [stop, reload],
            True,
        )
    # Let the manager forget the unit now rather than list it as "not-found" until next login.
    outcome = runner.run(reload)
    if not outcome.ok:
        return InstallResult(
            "systemd",
            path,
            runner.ran,
            f"Stopped locusd and removed {path}, but `{format_command(reload)}` failed: "
            f"{outcome.detail}",
            [reload],
            True,
        )
    return InstallResult(
        "systemd", path, runner.ran, f"Stopped locusd and removed {path}.", [], True
    )


def _uninstall_launchd(
    home: Path | None, environ: Mapping[str, str], runner: _Runner | None
) -> InstallResult:
    path = service_path("launchd", home=home, environ=environ)
    bootout = ["launchctl", "bootout", launchd_target()]
    usable = runner is not None and runner.available("launchctl")
    # A job is unloaded by label, so one still loaded (its plist already deleted by hand) is
    # unloaded too.
    loaded = usable and runner is not None and _launchd_loaded(runner)
    existed = path.exists()
    if not existed and not loaded:
        return InstallResult("launchd", path, [], f"locusd is not installed (no {path}).")
    problem = ""
    if runner is None:
        problem = "launchctl was not run"
    elif not usable:
        problem = "launchctl was not found"
    elif loaded:
        outcome = runner.run(bootout)
        if not outcome.ok:
            problem = f"`{format_command(bootout)}` failed: {outcome.detail}"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    ran = runner.ran if runner else []
    done = f"Removed {path}" if existed else f"{path} was already gone"
    if problem:
        return InstallResult(
            "launchd",
            path,
            ran,
            f"{done}, but {problem}. If the daemon is still loaded, unload it with:\n"
            f"{_by_hand([bootout])}",
            [bootout],
            existed,
        )
    return InstallResult(
        "launchd", path, ran, f"Stopped locusd; {done[0].lower()}{done[1:]}.", [], existed
    )
