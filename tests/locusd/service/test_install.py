"""install/uninstall into a temporary home, and the service commands.

The real ``systemctl --user`` is never run here: on a developer's machine it would reload the
real user manager and enable whatever ``locusd.service`` it finds. Where the tests need the
service manager's answers, ``PATH`` points at small shell scripts standing in for ``systemctl``
and ``launchctl`` (external tools, not Locus code) that log their arguments and fail on demand —
including with the exact error a container gives ("Failed to connect to bus: No medium found").
"""

from __future__ import annotations

import os
import plistlib
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from locusd.service import (
    InstallResult,
    default_environment,
    default_exec_args,
    detect,
    environment_file,
    install,
    launchd_plist,
    logs_command,
    restart_command,
    service_path,
    start_command,
    status_command,
    stop_command,
    systemd_unit,
    uninstall,
)

EXEC = ["/opt/locus/bin/locusd", "serve"]
RELOAD = ["systemctl", "--user", "daemon-reload"]
ENABLE = ["systemctl", "--user", "enable", "--now", "locusd.service"]
DISABLE = ["systemctl", "--user", "disable", "--now", "locusd.service"]
STOP = ["systemctl", "--user", "stop", "locusd.service"]
UID = os.getuid()
BOOTOUT = ["launchctl", "bootout", f"gui/{UID}/dev.locus.locusd"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    return directory


@pytest.fixture
def environ(bin_dir: Path, tmp_path: Path) -> dict[str, str]:
    """A hermetic environment: no XDG_CONFIG_HOME, and PATH holds only the fake tools."""
    return {"PATH": str(bin_dir), "CALLS": str(tmp_path / "calls.log")}


def calls(environ: dict[str, str]) -> list[list[str]]:
    log = Path(environ["CALLS"])
    if not log.exists():
        return []
    return [line.split(" ") for line in log.read_text().splitlines()]


def fake_systemctl(bin_dir: Path) -> None:
    """Logs its arguments; fails with a bus error when $FAIL_ON is one of them."""
    script = bin_dir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        'echo "systemctl $*" >> "$CALLS"\n'
        'if [ -n "$FAIL_ON" ]; then for arg in "$@"; do\n'
        '  if [ "$arg" = "$FAIL_ON" ]; then\n'
        '    echo "Failed to connect to bus: No medium found" >&2; exit 1\n'
        "  fi\n"
        "done; fi\n"
        "exit 0\n"
    )
    script.chmod(0o755)


def fake_launchctl(bin_dir: Path, state: Path) -> None:
    """Keeps "loaded" as a file: print succeeds when loaded, bootstrap refuses a loaded job (as
    the real one does, with EIO), bootout refuses an unloaded one."""
    script = bin_dir / "launchctl"
    script.write_text(
        "#!/bin/sh\n"
        "PATH=/usr/bin:/bin\n"  # the test's PATH holds only the fakes
        f"STATE='{state}'\n"
        'case "$1" in\n'
        '  print) [ -e "$STATE" ] && exit 0; echo "Could not find service" >&2; exit 113;;\n'
        "  *) ;;\n"
        "esac\n"
        'echo "launchctl $*" >> "$CALLS"\n'
        'case "$1" in\n'
        '  bootstrap) if [ -e "$STATE" ] || [ -n "$FAIL_BOOTSTRAP" ]; then\n'
        '      echo "Bootstrap failed: 5: Input/output error" >&2; exit 5; fi\n'
        '    touch "$STATE";;\n'
        '  bootout) [ -e "$STATE" ] || { echo "Boot-out failed: 3: No such process" >&2; exit 3; }\n'
        '    rm "$STATE";;\n'
        "esac\n"
        "exit 0\n"
    )
    script.chmod(0o755)


# --- systemd, files only ----------------------------------------------------------------------


def test_install_writes_the_unit(home: Path, environ: dict[str, str]) -> None:
    result = install("systemd", EXEC, home=home, environ=environ, run_systemctl=False)
    path = home / ".config" / "systemd" / "user" / "locusd.service"
    assert result.path == path
    assert result.kind == "systemd"
    expected = systemd_unit(
        EXEC,
        environment={"PATH": environ["PATH"]},
        environment_file=home / ".config" / "locus" / "locusd.env",
    )
    assert path.read_text() == expected
    assert mode(path) == 0o644
    assert result.changed
    # Nothing ran; the message says what to run, and the CLI gets the commands as data.
    assert result.commands_run == []
    assert result.pending == [RELOAD, ENABLE]
    assert not result.ok
    assert "systemctl --user daemon-reload" in result.message
    assert "systemctl --user enable --now locusd.service" in result.message
    assert calls(environ) == []
    # The temporary file used for the atomic write is gone.
    assert sorted(p.name for p in path.parent.iterdir()) == ["locusd.service"]


def test_reinstall_is_idempotent(home: Path, environ: dict[str, str]) -> None:
    first = install("systemd", EXEC, home=home, environ=environ, run_systemctl=False)
    first.path.chmod(0o666)  # someone loosened it: a re-install puts it right
    second = install("systemd", EXEC, home=home, environ=environ, run_systemctl=False)
    assert second.path == first.path
    assert not second.changed
    assert mode(second.path) == 0o644
    third = install(
        "systemd",
        ["/usr/bin/python3", "-m", "locusd", "serve"],
        home=home,
        environ=environ,
        run_systemctl=False,
    )
    assert third.changed
    assert '"/usr/bin/python3" "-m" "locusd" "serve"' in third.path.read_text()


def test_uninstall_removes_the_unit_and_is_idempotent(home: Path, environ: dict[str, str]) -> None:
    path = install("systemd", EXEC, home=home, environ=environ, run_systemctl=False).path
    result = uninstall("systemd", home=home, environ=environ, run_systemctl=False)
    assert result.changed
    assert not path.exists()
    assert result.pending == [STOP, RELOAD]  # for a daemon that may still run under systemd
    again = uninstall("systemd", home=home, environ=environ, run_systemctl=False)
    assert not again.changed
    assert again.ok
    assert "not installed" in again.message


def test_xdg_config_home_is_respected(tmp_path: Path, home: Path, environ: dict[str, str]) -> None:
    config = tmp_path / "xdg config"
    environ["XDG_CONFIG_HOME"] = str(config)
    result = install("systemd", EXEC, home=home, environ=environ, run_systemctl=False)
    assert result.path == config / "systemd" / "user" / "locusd.service"
    assert f"EnvironmentFile=-{config}/locus/locusd.env" in result.path.read_text()
    assert environment_file(home, environ) == config / "locus" / "locusd.env"
    assert not home.exists()
    # The XDG spec says to ignore a relative value.
    environ["XDG_CONFIG_HOME"] = "relative/config"
    assert service_path("systemd", home=home, environ=environ) == (
        home / ".config" / "systemd" / "user" / "locusd.service"
    )


def test_service_environment(home: Path, environ: dict[str, str]) -> None:
    """PATH comes from the installing shell; the caller's variables are added; a variable whose
    name says it is a secret makes the file private."""
    result = install(
        "systemd",
        EXEC,
        environment={"LOCUS_LOG_LEVEL": "debug"},
        home=home,
        environ={**environ, "HOME_SECRET_TOKEN": "not copied"},
        run_systemctl=False,
    )
    text = result.path.read_text()
    assert f'Environment="PATH={environ["PATH"]}"' in text
    assert "not copied" not in text
    assert mode(result.path) == 0o600  # LOCUS_* is treated as secret by the agent's scrubber
    plain = install(
        "systemd",
        EXEC,
        environment={"RUST_LOG": "info"},
        home=home,
        environ=environ,
        run_systemctl=False,
    )
    assert mode(plain.path) == 0o644
    assert default_environment({"PATH": "/a:/b", "OPENAI_API_KEY": "x"}) == {"PATH": "/a:/b"}
    assert default_environment({}) == {}


# --- systemd, with a stand-in systemctl -------------------------------------------------------


def test_install_enables_and_starts(home: Path, bin_dir: Path, environ: dict[str, str]) -> None:
    fake_systemctl(bin_dir)
    result = install("systemd", EXEC, home=home, environ=environ)
    assert result.ok
    assert result.commands_run == [RELOAD, ENABLE]
    assert calls(environ) == [RELOAD, ENABLE]
    assert "journalctl --user -u locusd.service" in result.message
    assert "systemctl --user restart" not in result.message
    # Re-installing a changed unit says how to apply it, instead of restarting on its own.
    changed = install("systemd", [*EXEC, "--verbose"], home=home, environ=environ)
    assert changed.ok
    assert "systemctl --user restart locusd.service" in changed.message


def test_no_user_bus_is_reported_not_hidden(
    home: Path, bin_dir: Path, environ: dict[str, str]
) -> None:
    """In a container `systemctl --user` cannot reach a bus: the unit is still written, and the
    result says why it is not running and what to run instead."""
    fake_systemctl(bin_dir)
    environ["FAIL_ON"] = "daemon-reload"
    result = install("systemd", EXEC, home=home, environ=environ)
    assert result.path.exists()
    assert not result.ok
    assert result.commands_run == []
    assert result.pending == [RELOAD, ENABLE]
    assert "Failed to connect to bus: No medium found" in result.message
    assert "locusd serve" in result.message
    assert "systemctl --user enable --now locusd.service" in result.message

    environ["FAIL_ON"] = "enable"
    result = install("systemd", EXEC, home=home, environ=environ)
    assert result.commands_run == [RELOAD]
    assert result.pending == [ENABLE]
    assert "Failed to connect to bus" in result.message


def test_missing_systemctl(home: Path, environ: dict[str, str]) -> None:
    result = install("systemd", EXEC, home=home, environ=environ)
    assert result.path.exists()
    assert result.pending == [RELOAD, ENABLE]
    assert "systemctl was not found" in result.message
    assert "locusd serve" in result.message


def test_uninstall_disables_then_removes(
    home: Path, bin_dir: Path, environ: dict[str, str]
) -> None:
    fake_systemctl(bin_dir)
    path = install("systemd", EXEC, home=home, environ=environ).path
    Path(environ["CALLS"]).unlink()
    result = uninstall("systemd", home=home, environ=environ)
    assert result.ok
    assert result.commands_run == [DISABLE, RELOAD]
    assert calls(environ) == [DISABLE, RELOAD]
    assert not path.exists()


def test_uninstall_without_a_bus_still_removes(
    home: Path, bin_dir: Path, environ: dict[str, str]
) -> None:
    """What `systemctl enable` created is removed by hand too, so the daemon does not come back
    at the next login; stopping a running one is left to the user, and said so."""
    fake_systemctl(bin_dir)
    path = install("systemd", EXEC, home=home, environ=environ).path
    wants = path.parent / "default.target.wants" / "locusd.service"
    wants.parent.mkdir()
    wants.symlink_to(path)
    environ["FAIL_ON"] = "disable"
    result = uninstall("systemd", home=home, environ=environ)
    assert not path.exists()
    assert not wants.is_symlink()
    assert result.pending == [STOP, RELOAD]
    assert "Failed to connect to bus" in result.message


# --- launchd -------------------------------------------------------------------------------


def test_launchd_install_writes_the_plist(home: Path, environ: dict[str, str]) -> None:
    result = install("launchd", EXEC, home=home, environ=environ, run_systemctl=False)
    path = home / "Library" / "LaunchAgents" / "dev.locus.locusd.plist"
    assert result.path == path
    assert mode(path) == 0o644  # launchd refuses a group- or world-writable plist
    log_dir = home / "Library" / "Logs" / "locus"
    assert log_dir.is_dir()  # launchd would not create it, and the job would not start
    assert path.read_bytes() == launchd_plist(
        EXEC, log_dir=log_dir, environment={"PATH": environ["PATH"]}, working_directory=home
    )
    plist = plistlib.loads(path.read_bytes())
    assert plist["ProgramArguments"] == EXEC
    assert plist["StandardOutPath"] == str(log_dir / "locusd.log")
    assert plist["WorkingDirectory"] == str(home)
    assert result.pending == [["launchctl", "bootstrap", f"gui/{UID}", str(path)]]
    assert "launchctl bootstrap" in result.message
    again = install("launchd", EXEC, home=home, environ=environ, run_systemctl=False)
    assert not again.changed
    removed = uninstall("launchd", home=home, environ=environ, run_systemctl=False)
    assert removed.changed and not path.exists()
    assert removed.pending == [BOOTOUT]
    assert "not installed" in uninstall("launchd", home=home, environ=environ).message


def test_launchd_load_reload_unload(
    tmp_path: Path, home: Path, bin_dir: Path, environ: dict[str, str]
) -> None:
    fake_launchctl(bin_dir, tmp_path / "loaded")
    first = install("launchd", EXEC, home=home, environ=environ)
    bootstrap = ["launchctl", "bootstrap", f"gui/{UID}", str(first.path)]
    assert first.ok, first.message
    assert first.commands_run == [bootstrap]
    # A loaded job cannot be replaced in place: unload, wait, load.
    second = install("launchd", EXEC, home=home, environ=environ)
    assert second.ok, second.message
    assert second.commands_run == [BOOTOUT, bootstrap]
    removed = uninstall("launchd", home=home, environ=environ)
    assert removed.ok
    assert removed.commands_run == [BOOTOUT]
    assert not first.path.exists()
    assert calls(environ) == [bootstrap, BOOTOUT, bootstrap, BOOTOUT]
    assert "not installed" in uninstall("launchd", home=home, environ=environ).message


def test_launchd_bootstrap_failure_is_reported(
    tmp_path: Path, home: Path, bin_dir: Path, environ: dict[str, str]
) -> None:
    fake_launchctl(bin_dir, tmp_path / "loaded")
    environ["FAIL_BOOTSTRAP"] = "1"
    result = install("launchd", EXEC, home=home, environ=environ)
    assert not result.ok
    assert result.pending == [["launchctl", "bootstrap", f"gui/{UID}", str(result.path)]]
    assert "Input/output error" in result.message


# --- commands and detection -----------------------------------------------------------------


def test_systemd_commands() -> None:
    assert start_command("systemd") == ["systemctl", "--user", "start", "locusd.service"]
    assert stop_command("systemd") == ["systemctl", "--user", "stop", "locusd.service"]
    assert restart_command("systemd") == ["systemctl", "--user", "restart", "locusd.service"]
    assert status_command("systemd") == [
        "systemctl",
        "--user",
        "--no-pager",
        "status",
        "locusd.service",
    ]
    assert logs_command("systemd") == [
        "journalctl",
        "--user",
        "-u",
        "locusd.service",
        "-n",
        "200",
        "--no-pager",
    ]
    assert logs_command("systemd", follow=True, lines=10)[-3:] == ["10", "--no-pager", "-f"]


def test_launchd_commands(home: Path) -> None:
    target = "gui/501/dev.locus.locusd"
    assert start_command("launchd", uid=501) == ["launchctl", "kickstart", target]
    assert stop_command("launchd", uid=501) == ["launchctl", "kill", "SIGTERM", target]
    assert restart_command("launchd", uid=501) == ["launchctl", "kickstart", "-k", target]
    assert status_command("launchd", uid=501) == ["launchctl", "print", target]
    log = str(home / "Library" / "Logs" / "locus" / "locusd.log")
    assert logs_command("launchd", home=home) == ["tail", "-n", "200", log]
    assert logs_command("launchd", home=home, follow=True) == ["tail", "-n", "200", "-F", log]
    with pytest.raises(ValueError):
        logs_command("launchd", lines=-1)


def test_detect_by_platform() -> None:
    assert detect("linux") == "systemd"
    assert detect("darwin") == "launchd"
    assert detect("win32") is None
    assert detect() == detect(sys.platform)
    if detect() is not None:  # on this machine, the kind defaults to what detect() says
        assert start_command() == start_command(detect())


def test_default_exec_args_start_the_daemon() -> None:
    """The default command line really reaches ``locusd serve`` (its --help, so nothing starts)."""
    args = default_exec_args()
    assert Path(args[0]).is_absolute()
    assert os.access(args[0], os.X_OK)
    assert args[-1] == "serve"
    done = subprocess.run(
        [*args, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "usage: locusd serve" in done.stdout


def test_result_ok_means_nothing_left_to_do(tmp_path: Path) -> None:
    assert InstallResult("systemd", tmp_path, [], "done").ok
    assert not InstallResult("systemd", tmp_path, [], "todo", [RELOAD]).ok
