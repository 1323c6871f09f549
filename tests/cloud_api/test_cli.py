"""`locus-cloud` as an operator runs it: real subprocesses on a temporary SQLite database, and a
real `serve` answering HTTP with the credentials it printed on first start."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click
from argon2 import PasswordHasher

from cloud_api.cli import main
from cloud_api.store.migrate import head_revision

#: The entry point next to the running interpreter, wherever its environment lives.
CLI = Path(sys.executable).with_name("locus-cloud")
#: Generous bounds on a process that normally starts in a second or two.
TIMEOUT = 120.0
PASSWORD = "correct horse battery"


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without LOCUS_CLOUD_* settings that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUS_CLOUD_")}
    return {**env, **extra}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=TIMEOUT,
        check=False,
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_migrate_json_creates_the_schema_and_is_repeatable(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "cloud.db"  # the parent directory does not exist yet
    assert ok_json(run("migrate", "--db", sqlite_url(db), "--json")) == {
        "migrated": True,
        "db": "sqlite",
    }
    with sqlite3.connect(db) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert revision == head_revision()
    assert {"users", "projects", "tasks", "task_events", "api_tokens"} <= tables
    assert ok_json(run("migrate", "--db", sqlite_url(db), "--json"))["migrated"] is True
    # The database can also come from the environment.
    human = run("migrate", LOCUS_CLOUD_DB=sqlite_url(db))
    assert human.returncode == 0 and "newest schema" in human.stdout


def test_user_create_json_takes_the_password_from_the_environment(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "cloud.db")
    ok_json(run("migrate", "--db", url, "--json"))
    created = ok_json(
        run(
            "user",
            "create",
            "--db",
            url,
            "--email",
            "Ada@Example.com",
            "--name",
            "Ada",
            "--json",
            LOCUS_CLOUD_PASSWORD=PASSWORD,
        )
    )
    assert (created["email"], created["name"], created["is_admin"]) == (
        "ada@example.com",
        "Ada",
        False,
    )
    with sqlite3.connect(tmp_path / "cloud.db") as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM users WHERE id = ?", (created["id"],)
        ).fetchone()
    assert stored.startswith("$argon2id$") and PasswordHasher().verify(stored, PASSWORD)
    again = run(
        "user",
        "create",
        "--db",
        url,
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        LOCUS_CLOUD_PASSWORD=PASSWORD,
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    short = run(
        "user", "create", "--db", url, "--email", "b@example.com", "--name", "B",
        LOCUS_CLOUD_PASSWORD="short",
    )  # fmt: skip
    assert short.returncode == 2 and "password" in short.stderr
    with sqlite3.connect(tmp_path / "cloud.db") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_bad_db_url_is_a_clear_error(tmp_path: Path) -> None:
    cases = [
        (["migrate"], "mysql://user@host/db", "unsupported database URL scheme 'mysql'"),
        (
            ["token", "create", "--project", "demo", "--worker", "w"],
            "nonsense",
            "not a database URL",
        ),
    ]
    for args, url, message in cases:
        result = run(*args, "--db", url)
        assert result.returncode == 2, (args, url, result.stderr)
        assert message in result.stderr and "--db" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    served = run("serve", "--db", "mysql://user@host/db", "--port", "0")
    assert served.returncode != 0 and "unsupported database URL scheme" in served.stderr
    assert "Traceback" not in served.stderr and "listening" not in served.stdout
    assert list(tmp_path.iterdir()) == []


@dataclass
class Served:
    url: str
    output: list[str]  # the lines printed before "listening"


@asynccontextmanager
async def serve(db_url: str, log: Path) -> AsyncIterator[Served]:
    """`locus-cloud serve --port 0` until its "listening" line; terminated on exit."""
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            str(CLI),
            "serve",
            "--db",
            db_url,
            "--port",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=clean_env(),
        )
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not lines or "listening" not in lines[-1]:
                raw = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
                assert raw, f"serve exited early: {lines} {log.read_text()}"
                lines.append(raw.decode().rstrip("\n"))
            found = re.search(r"listening on (http://\S+)", lines[-1])
            assert found, lines
            yield Served(found.group(1), lines)
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), TIMEOUT)


async def test_serve_first_start_prints_working_credentials(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    url = sqlite_url(db)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with (
        serve(url, tmp_path / "serve.log") as served,
        aiohttp.ClientSession(timeout=timeout) as http,
    ):
        text = "\n".join(served.output)
        login = re.search(r"sign in:\s+\S+ as (\S+) / (\S+)", text)
        token = re.search(r"token:\s+(lcu_\S+)", text)
        assert login and token, text
        assert served.url.startswith("http://127.0.0.1:") and not served.url.endswith(":0")
        assert f"{served.url}/api/v1/me" in text, "the printed curl line uses the real port"
        async with http.get(f"{served.url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        auth = {"Authorization": f"Bearer {token.group(1)}"}
        async with http.get(f"{served.url}/api/v1/me", headers=auth) as resp:
            me = await resp.json()
            assert resp.status == 200 and me["user"]["email"] == login.group(1)
            assert me["user"]["is_admin"] is True
        creds = {"email": login.group(1), "password": login.group(2)}
        async with http.post(f"{served.url}/api/v1/auth/login", json=creds) as resp:
            assert resp.status == 200 and (await resp.json())["token"].startswith("lcu_")

        # A worker token minted by the CLI, against the same database, works on the server.
        created = ok_json(
            await asyncio.to_thread(
                run, "token", "create", "--db", url, "--project", "demo", "--worker", "w1", "--json"
            )
        )
        assert created["worker_name"] == "w1" and created["token"].startswith("lcw_")
        worker = {"Authorization": f"Bearer {created['token']}"}
        async with http.post(
            f"{served.url}/api/v1/worker/register", json={"host": "w1"}, headers=worker
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["project_id"] == created["project_id"]
        async with http.get(f"{served.url}/api/v1/me", headers=worker) as resp:
            me = await resp.json()
            assert (me["token_scope"], me["worker_name"]) == ("worker", "w1")
        missing = await asyncio.to_thread(
            run, "token", "create", "--db", url, "--project", "nope", "--worker", "w2"
        )
        assert missing.returncode == 2 and "no single project matches 'nope'" in missing.stderr

    # A second start finds users and prints no new credentials.
    async with serve(url, tmp_path / "serve2.log") as again:
        assert len(again.output) == 1 and "token" not in again.output[0]


def test_every_command_takes_dash_h() -> None:
    """``-h`` is ``--help`` on ``locus-cloud`` and each of its commands, as on ``locus``."""
    assert isinstance(main, click.Group)
    for path in [(), *((name,) for name in main.list_commands(click.Context(main)))]:
        done = run(*path, "-h")
        assert done.returncode == 0 and done.stdout.startswith("Usage: locus-cloud"), (path, done)
