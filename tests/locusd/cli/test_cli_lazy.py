"""The ``locus`` command loads its subcommands on demand: ``--help`` still lists each with the
short help its own docstring gives, near misses are still suggested, and ``locus --version`` /
``locus status`` run without importing what they do not need (pydantic, rich, the SDKs).
Every CLI run here is the installed console script (or its entry point) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from locusd.cli import COMMANDS, main
from locusd.cli.lazy import LazyGroup
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(120)
LOCUS = str(Path(sys.executable).parent / "locus")
#: Imported by other commands, never needed by ``--version`` or ``status``.
HEAVY = (
    "pydantic",
    "anthropic",
    "openai",
    "pygls",
    "aiohttp",
    "locusd.agent",
    "locusd.runner",
    "locusd.protocol.messages",
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user of their own (XDG dirs in tmp, the socket's in a short one whatever $TMPDIR is),
    a wide terminal; the daemon stopped at the end."""
    with short_tmp() as runtime:
        runtime.chmod(0o700)
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LOCUS")},
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "COLUMNS": "200",
        }
        yield environ
        subprocess.run([LOCUS, "daemon", "stop"], env=environ, capture_output=True, check=False)


def locus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOCUS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def imported_by(env: dict[str, str], *args: str) -> set[str]:
    """The modules ``locus ARGS`` had imported when it exited (its own exit code checked)."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
        f"sys.argv = ['locus', *{list(args)!r}]\n"
        "from locusd.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.splitlines()[-1]))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)}


def test_each_summary_is_the_first_sentence_of_its_commands_own_help() -> None:
    for name, entry in COMMANDS.items():
        command = entry.load()
        stand_in = click.Command(name, help=entry.summary)
        assert command.get_short_help_str(10_000) == stand_in.get_short_help_str(10_000), name


@pytest.mark.parametrize("width", [50, 80, 120])
def test_the_listing_is_clicks_own_for_the_loaded_commands(width: int) -> None:
    lazy = LazyGroup("locus", lazy=COMMANDS)
    eager = click.Group("locus", commands={n: e.load() for n, e in COMMANDS.items()})
    listings = []
    for group in (lazy, eager):
        formatter = click.HelpFormatter(width=width)
        group.format_commands(click.Context(group, info_name="locus"), formatter)
        listings.append(formatter.getvalue())
    assert listings[0] == listings[1]
    assert lazy.commands == {}  # listed without importing one


def test_every_command_is_listed_and_loads() -> None:
    context = click.Context(main, info_name="locus")
    assert main.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:
        assert main.get_command(context, name) is COMMANDS[name].load()


def test_a_near_miss_is_suggested_from_commands_not_loaded_yet(env: dict[str, str]) -> None:
    done = locus(env, "sta")
    assert done.returncode == 2
    assert "No such command 'sta'. Did you mean 'status'?" in done.stderr


def test_version_imports_nothing_heavy_and_no_rich(env: dict[str, str]) -> None:
    done = locus(env, "--version")
    assert (done.returncode, done.stdout) == (0, "locus, version 0.1.0\n")
    modules = imported_by(env, "--version")
    assert heavy(modules) == set()
    assert not any(m.startswith("rich") for m in modules)


def test_status_imports_nothing_heavy_and_says_what_the_model_says(env: dict[str, str]) -> None:
    started = locus(env, "daemon", "start", "--json")  # the models' way (DaemonStatus)
    assert started.returncode == 0, started.stderr
    assert heavy(imported_by(env, "status")) == set()

    by_model = json.loads(started.stdout)
    done = locus(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    raw = json.loads(done.stdout)
    for answer in (raw, by_model):
        del answer["uptimeSeconds"], answer["clients"]
    assert raw == by_model

    done = locus(env, "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"locusd 0.1.0 (pid {by_model['pid']}, up ")
    assert lines[1] == f"socket {by_model['socket']}; 1 client(s) connected"
    assert lines[2].startswith("not logged in (cloud http://127.0.0.1:8420; secrets kept in file ")
    assert lines[3:6] == [
        "runs: none; outbox: 0 pending",
        "worker: stopped",
        # scripts/test.sh installs bubblewrap; the default: the proxy, registries only
        "sandbox: bubblewrap, network through the egress proxy: the repository's registries",
    ]
    # Whether notify-send is installed is this machine's: tests/locusd/test_daemon_notify.py.
    assert len(lines) == 7 and lines[6].startswith("notifications: ")
