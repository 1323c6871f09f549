"""``locus demo``: the whole trip on embedded defaults, for a newcomer with nothing configured and
no network — a local cloud on SQLite, a daemon of its own, a sample repository with a failing
test and a task for it; the agent runs (Anthropic when ANTHROPIC_API_KEY is set, else the
recorded session shipped in examples/, and it says so), the review is shown and accepted, the
commit made and reported, and the task ends in ``verification`` in the cloud.

Everything lives in one directory (``--dir``), with its own XDG directories and socket, so the
demo never touches the user's own daemon, config or keyring. Each step is the ``locus`` command
a user would type, run as such and printed. With ``--json`` the steps go to stderr and stdout
gets what the trip made (cloud URL, task, run, commit, the task's final status) as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import click

from locusd.cli.common import FAILED, OK, json_option
from locusd.cli.output import Output, diff_lines, err, fail, out, print_json
from locusd.git.repo import Repository

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REMOTE = "https://git.example.com/locus/sample-repo.git"
LOCUS = str(Path(sys.executable).parent / "locus")
CLOUD = str(Path(sys.executable).parent / "locus-cloud")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Trip:
    def __init__(self, where: Path, show: Output) -> None:
        self.where = where
        self.show = show  # stdout, or stderr when stdout is for --json
        runtime = where / "run"
        runtime.mkdir(parents=True, mode=0o700)
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_STATE_HOME": str(where / "state"),
            "XDG_CONFIG_HOME": str(where / "config"),
            "XDG_DATA_HOME": str(where / "data"),
            "LOCUS_SOCKET": str(runtime / "locusd.sock"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        self.env.pop("LOCUS_CONFIG", None)
        self.cloud: subprocess.Popen[str] | None = None

    def step(self, title: str) -> None:
        self.show.say("\n", (f"▶ {title}", "bold cyan"))

    def locus(self, *args: str) -> Any:
        shown = " ".join(a if " " not in a else repr(a) for a in args)
        self.show.say((f"$ locus {shown}", "dim"))
        done = subprocess.run(  # noqa: S603 - our own CLI
            [LOCUS, *args, "--json"], env=self.env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            fail(f"locus {shown} failed:\n{done.stderr}", FAILED)
        return json.loads(done.stdout)

    def start_cloud(self) -> tuple[str, str]:
        port = _free_port()
        db = f"sqlite:///{self.where / 'cloud.db'}"
        log = (self.where / "cloud.log").open("w")
        self.cloud = subprocess.Popen(  # noqa: S603
            [CLOUD, "serve", "--db", db, "--port", str(port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # no event says a process has bound its port
            text = (self.where / "cloud.log").read_text()
            token = re.search(r"token:\s+(lcu_\S+)", text)
            if token and "listening" in text:
                return url, token.group(1)
            if self.cloud.poll() is not None:
                fail(f"the cloud did not start:\n{text}", FAILED)
            time.sleep(0.1)
        fail("the cloud did not start within 60 s (see cloud.log)", FAILED)

    def api(self, url: str, token: str, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - our own local cloud
            f"{url}/api/v1{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read() or b"null")

    def stop(self) -> None:
        subprocess.run([LOCUS, "daemon", "stop"], env=self.env, capture_output=True, check=False)  # noqa: S603
        if self.cloud is not None:
            self.cloud.terminate()
            self.cloud.wait(30)


@click.command()
@click.option(
    "--dir",
    "where",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where the demo lives (default: a fresh locus-demo-* directory in the temp dir)",
)
@click.option("--keep/--stop", default=False, help="leave the cloud and daemon running after")
@json_option
def demo(where: Path | None, keep: bool, as_json: bool) -> None:
    """One task from the cloud to a commit and back, on embedded defaults (no account, no
    network; no model key needed)."""
    if not (EXAMPLES / "sample-repo").is_dir():
        fail(f"the demo's sample repository is not at {EXAMPLES}: run it from a checkout", FAILED)
    where = where or Path(tempfile.mkdtemp(prefix="locus-demo-"))
    trip = Trip(where, err if as_json else out)
    try:
        made = _run(trip)
    finally:
        if not keep:
            trip.stop()
    if not keep:
        trip.show.say(
            "\n(everything is stopped; `locus demo --keep` leaves the cloud and daemon up)"
        )
    if keep:
        names = ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                 "LOCUS_SOCKET", "PYTHON_KEYRING_BACKEND")  # fmt: skip
        made["environment"] = {name: trip.env[name] for name in names}
        exports = " ".join(f"{name}={trip.env[name]}" for name in names)
        trip.show.say(
            f"\nTo look around: export {exports}; then locus status, locus runs, locus audit"
        )
    if as_json:
        print_json(made)
    sys.exit(OK)


def _run(trip: Trip) -> dict[str, Any]:
    """The trip, step by step; what it made (for ``--json``)."""
    say = trip.show.say
    trip.step("a Locus Cloud on SQLite (no accounts to create)")
    url, token = trip.start_cloud()
    say(f"cloud at {url} — admin token printed by its first start")

    trip.step("a sample project with a failing test")
    repo = trip.where / "sample-repo"
    shutil.copytree(EXAMPLES / "sample-repo", repo)
    sample = Repository.init(repo, "main")
    for args in (
        ("add", "-A"),
        (
            "-c",
            "user.name=Locus Demo",
            "-c",
            "user.email=demo@localhost",
            "commit",
            "-qm",
            "sample",
        ),
        ("remote", "add", "origin", REMOTE),
        ("config", "user.name", "Locus Demo"),
        ("config", "user.email", "demo@localhost"),
    ):
        sample.output(*args)
    trip.api(url, token, "PATCH", "/projects/1", {"remotes": [REMOTE]})

    config = trip.where / "config" / "locus" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("ANTHROPIC_API_KEY"):
        say("model: Anthropic (ANTHROPIC_API_KEY is set)")
    else:
        transcript = EXAMPLES / "fix-median.jsonl"
        config.write_text(f'[agent]\nprovider = "replay"\nreplay = "{transcript}"\n')
        say(
            (
                "model: none configured — replaying a recorded session"
                f" ({transcript.name}); set ANTHROPIC_API_KEY to use a real model",
                "yellow",
            )
        )

    trip.step("log the daemon in (it starts by itself)")
    status = trip.locus("login", "--cloud", url, "--token", token)
    say(f"logged in as {status['identity']} ({status['store']})")

    trip.step("a task in the cloud")
    task = (EXAMPLES / "fix-median.task").read_text().strip()
    created = trip.locus("tasks", "create", "--project", "1", "--title", task)
    say(f"task #{created['id']}: {created['status']}")

    trip.step("the agent works on it, in a worktree of its own")
    (run,) = trip.locus("run", "--once", "--repo", str(repo))
    say(f"run {run['run_id']}: {run['state']} — {run['summary']}")

    trip.step("the review")
    view = trip.locus("review", run["run_id"], "--no-interactive")
    for file in view["files"]:
        for hunk in file["hunks"]:
            say((file["path"], "bold"), f" {hunk['header']}")
            say(diff_lines(hunk["lines"]))

    trip.step("accept, commit, report")
    committed = trip.locus("review", run["run_id"], "--accept-all", "--commit")
    say(f"commit {committed['commit'][:12]} on {committed['branch']}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the outbox delivers in the background
        shown = trip.api(url, token, "GET", f"/tasks/{created['id']}")
        if shown["status"] == "verification":
            break
        time.sleep(0.2)
    say(f"the cloud says: task #{created['id']} is ", (shown["status"], "bold"))
    audit = trip.locus("audit")
    say(f"{len(audit['entries'])} uploads left this machine (locus audit lists them)")
    login = re.search(r"sign in:\s+\S+ as (\S+) / (\S+)", (trip.where / "cloud.log").read_text())
    who = f" as {login.group(1)} / {login.group(2)}" if login else ""
    err.say(f"\ndashboard: {url}/ (sign in{who}); REST API: {url}/api/v1")
    return {
        "dir": str(trip.where),
        "cloudUrl": url,
        "dashboard": f"{url}/",
        "taskId": created["id"],
        "taskStatus": shown["status"],
        "runId": run["run_id"],
        "runState": run["state"],
        "commit": committed["commit"],
        "branch": committed["branch"],
        "uploads": len(audit["entries"]),
    }
