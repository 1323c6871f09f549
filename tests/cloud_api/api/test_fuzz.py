"""Fuzz the whole REST API with schemathesis, on SQLite and on PostgreSQL.

schemathesis 4.x cannot drive an aiohttp app in-process, so the `st` CLI runs as a subprocess
against the real server on loopback while this test's event loop keeps serving it. Every
generated request must get a non-5xx answer that matches the OpenAPI document (status code,
content type, headers, body schema). A wrong token would turn every answer into a 401 and the
run would still "pass", so the auth-failure warnings are made fatal (`warnings.fail-on`) and
the test also counts the 2xx answers in schemathesis' NDJSON report itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cloud
from tests.support.client import Worker

SEED = 20240611
MAX_EXAMPLES = 15
RUN_TIMEOUT = 240.0
API = "/api/v1"
# Every check schemathesis has (no 5xx; status code, content type, headers and body as
# declared; schema-violating input refused; auth not ignored; 405 with Allow; deleted things
# gone) except positive_data_acceptance: the server rightly refuses some schema-valid bodies
# for reasons a schema cannot say (a slug that is taken, an Idempotency-Key reused with another
# body, a string that is not a git remote).
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
# Warnings that mean the run was misconfigured rather than the API broken: fail on them.
FAIL_ON = [
    "missing_auth",
    "base_url_mismatch",
    "unmatched_filter",
    "unresolvable_reference",
    "unused_openapi_auth",
]
# SSE streams never end; logout would revoke the token the rest of the run uses (it gets a
# run of its own); the /worker/* endpoints answer 403 to a user token (they get a worker run).
ADMIN_EXCLUDE = rf"/events/stream$|^{API}/worker/|^{API}/auth/logout$"
WORKER_INCLUDE = rf"^{API}/(worker/|me$)"


# Loaded by `st` (config `hooks`): a valid long-poll may wait up to 30 s, and schemathesis
# probes the bounds (29, 30) on purpose. Keep such waits real but short; out-of-range values
# are left alone, so the server still has to refuse them.
HOOKS = """
import schemathesis

CAP = 0.05


def _short(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if isinstance(value, bool) or not 0 < number <= 30:
        return value
    return min(number, CAP)


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, dict) and "wait_seconds" in case.body:
        case.body["wait_seconds"] = _short(case.body["wait_seconds"])
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = _short(case.query["wait"])
"""


def _st() -> str:
    """The `st` next to this interpreter (the project venv), else the one on PATH."""
    here = Path(sys.executable).parent / "st"
    found = str(here) if here.exists() else shutil.which("st")
    assert found, "schemathesis (`st`) is not installed"
    return found


def _toml(value: Any) -> str:
    """A TOML value: JSON spells strings, numbers, booleans and arrays the same way."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def _config(
    path: Path,
    dictionaries: dict[str, list[Any]],
    parameters: dict[str, Any],
    operations: list[dict[str, Any]] | None = None,
    fail_on: list[str] = FAIL_ON,
) -> Path:
    """Write a schemathesis.toml: fatal warnings, no example database or cache left behind,
    long-polls kept short (HOOKS), and the given value dictionaries."""
    hooks = path.with_suffix(".py")
    hooks.write_text(HOOKS)
    lines = [
        f"hooks = {_toml(str(hooks))}",
        "[generation]",
        'database = "none"',
        "[cache]",
        "enabled = false",
        "[warnings]",
        f"fail-on = {_toml(fail_on)}",
        "[dictionaries]",
        *(f"{name} = {_toml({'values': values})}" for name, values in dictionaries.items()),
        "[parameters]",
        *(f"{_toml(key)} = {_toml(value)}" for key, value in parameters.items()),
    ]
    for operation in operations or []:
        lines.append("[[operations]]")
        lines += [f"{_toml(key)} = {_toml(value)}" for key, value in operation.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Report:
    """What the server answered, per operation, read from schemathesis' NDJSON events."""

    output: str
    returncode: int
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    server_errors: list[str] = field(default_factory=list)

    def ok_operations(self) -> set[str]:
        return {op for op, codes in self.statuses.items() if any(200 <= c < 300 for c in codes)}

    def total(self, code: int) -> int:
        return sum(codes[code] for codes in self.statuses.values())

    def describe(self) -> str:
        rows = [f"{op}: {dict(codes)}" for op, codes in sorted(self.statuses.items())]
        return "\n".join([*rows, *self.server_errors, self.output[-6000:]])


def _read_report(path: Path, output: str, returncode: int) -> Report:
    report = Report(output, returncode)
    for line in path.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        for case_id, interaction in (recorder.get("interactions") or {}).items():
            response = interaction.get("response")
            if response is None:
                continue
            case = recorder["cases"][case_id]["value"]
            # Probes of undeclared methods get labels of their own (e.g. DELETE /api/v1/me).
            label = f"{case['method']} {case['path']}"
            status = response["status_code"]
            report.statuses[label][status] += 1
            if status >= 500:
                request = interaction["request"]
                body = (request.get("body") or {}).get("$base64", "")
                sent = base64.b64decode(body).decode("utf-8", "replace")
                report.server_errors.append(f"{status} {request['method']} {request['uri']} {sent}")
    return report


async def _fuzz(
    cloud: Cloud, tmp: Path, name: str, token: str, config: Path, *selection: str
) -> Report:
    """One `st run` over loopback as `token`; the subprocess is awaited without blocking the
    event loop, which is the one serving the API."""
    ndjson = tmp / f"{name}.ndjson"
    out = tmp / f"{name}.out"
    args = [
        _st(),
        "--config-file",
        str(config),
        "run",
        f"{cloud.url}{API}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        *CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--no-shrink",
        # One worker: with two, hypothesis describes filter lambdas via ast.parse from two
        # threads and CPython 3.11.7 races ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
        "--no-color",
        *selection,
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    with out.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=tmp, stdout=sink, stderr=asyncio.subprocess.STDOUT, env=env
        )
        try:
            returncode = await asyncio.wait_for(proc.wait(), RUN_TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    output = out.read_text(errors="replace")
    assert ndjson.exists(), f"schemathesis wrote no report (exit {returncode}):\n{output}"
    return _read_report(ndjson, output, returncode)


def _no_5xx(report: Report, caplog: pytest.LogCaptureFixture) -> None:
    """Exit status 0 (no failed check, no fatal warning), no 5xx, no server traceback."""
    crashes = [
        logging.Formatter().format(r)
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("cloud_api")
    ]
    assert not report.server_errors, report.describe()
    assert not crashes, "\n".join(crashes)
    assert report.returncode == 0, report.describe()


async def test_fuzz_as_admin(
    cloud: Cloud, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    first = cloud.first_start
    # Some ids that exist, so more requests get past the 404 and into the handlers.
    task = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", {"title": "seed"})).ok(201)
    config = _config(
        tmp_path / "admin.toml",
        {"emails": [first.email], "passwords": [first.password]},
        {},
        [
            {
                "include-path": f"{API}/auth/login",
                "parameters": {
                    "body.email": {"dictionary": "emails", "probability": 0.5},
                    "body.password": {"dictionary": "passwords", "probability": 0.5},
                },
            }
        ],
    )
    report = await _fuzz(
        cloud, tmp_path, "admin", first.token, config, "--exclude-path-regex", ADMIN_EXCLUDE
    )
    _no_5xx(report, caplog)
    # The token was right: most operations were served, and 401s are rare (only where
    # schemathesis itself drops or garbles the Authorization header).
    tested = {op for op, codes in report.statuses.items() if set(codes) != {405}}
    served = report.ok_operations()
    assert len(tested) >= 35, report.describe()
    assert len(served) >= 0.75 * len(tested), report.describe()
    for op in (
        f"GET {API}/me",
        f"POST {API}/auth/login",
        f"POST {API}/projects/{{project_id}}/tasks",
        f"PATCH {API}/tasks/{{task_id}}",
    ):
        assert op in served, report.describe()
    assert report.total(401) < 0.1 * sum(map(sum, report.statuses.values())), report.describe()
    assert (await cloud.api.get(f"/tasks/{task['id']}")).status == 200  # the token still works

    # Logout revokes the token it is sent with: fuzz it with a session of its own. Every call
    # after the first gets 401 by design, so the auth warning cannot be fatal here; the 204
    # below proves the token was good.
    login = await cloud.api.as_(None).post(
        "/auth/login", {"email": first.email, "password": first.password}
    )
    session = login.ok()["token"]
    logout = await _fuzz(
        cloud,
        tmp_path,
        "logout",
        session,
        _config(tmp_path / "logout.toml", {}, {}, fail_on=[]),
        "--include-path",
        f"{API}/auth/logout",
    )
    _no_5xx(logout, caplog)
    assert logout.statuses[f"POST {API}/auth/logout"][204] >= 1, logout.describe()
    assert (await cloud.api.as_(session).get("/me")).status == 401


async def test_fuzz_as_worker(
    cloud: Cloud, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    api, pid = cloud.api, cloud.project_id
    for title in ("one", "two", "three"):
        (await api.post(f"/projects/{pid}/tasks", {"title": title, "status": "queued"})).ok(201)
    worker = await Worker.create(api, pid, "fuzz")
    claim = (await worker.claim()).ok()
    assert worker.api.token
    # The fenced endpoints answer 409 to a made-up claim: hand the fuzzer the real one often.
    config = _config(
        tmp_path / "worker.toml",
        {
            "task_ids": [claim["task"]["id"]],
            "claim_tokens": [claim["claim_token"]],
            "attempts": [claim["attempt"]],
        },
        {
            "path.task_id": {"dictionary": "task_ids", "probability": 0.5},
            "body.claim_token": {"dictionary": "claim_tokens", "probability": 0.7},
            "body.attempt": {"dictionary": "attempts", "probability": 0.7},
        },
    )
    report = await _fuzz(
        cloud,
        tmp_path,
        "worker",
        worker.api.token,
        config,
        "--include-path-regex",
        WORKER_INCLUDE,
    )
    _no_5xx(report, caplog)
    served = report.ok_operations()
    for method, path in (
        ("POST", "/worker/register"),
        ("POST", "/worker/claim"),
        ("POST", "/worker/tasks"),
        ("GET", "/worker/signals"),
        ("POST", "/worker/tasks/{task_id}/heartbeat"),
        ("POST", "/worker/tasks/{task_id}/logs"),
        ("POST", "/worker/tasks/{task_id}/artifacts"),
        ("POST", "/worker/tasks/{task_id}/review"),
    ):
        assert f"{method} {API}{path}" in served, report.describe()
    assert report.total(403) == 0, report.describe()


async def test_inputs_the_fuzzer_found_get_a_4xx_naming_the_field(cloud: Cloud) -> None:
    """The crashes and contract gaps the fuzzer found, replayed by hand so a regression shows
    up every time, not only when the generator happens to draw the same input again."""
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "x", "status": "queued"})).ok(201)
    worker = await Worker.create(api, pid, "fuzz")
    claim = (await worker.claim()).ok()
    tid = claim["task"]["id"]

    # A non-ASCII claim token: secrets.compare_digest raised TypeError (500). Stale, so 409.
    fence = {"attempt": claim["attempt"], "claim_token": "é" * 8}
    for path, body in (
        ("heartbeat", {}),
        ("logs", {"seq": 0, "text": "x"}),
        ("artifacts", {"kind": "patch", "content": "x"}),
        ("status", {"status": "running"}),
        ("review", {"files": [{"path": "x", "rejected": 1, "comments": ["no"]}]}),
    ):
        (await worker.api.post(f"/worker/tasks/{tid}/{path}", {**fence, **body})).ok(409)

    # A NUL in any string: PostgreSQL refuses it in text (500 on that backend only).
    nul = "a\x00b"
    for reply, name in (
        (await api.post(f"/projects/{pid}/tasks", {"title": nul}), "title"),
        (await api.patch(f"/tasks/{task['id']}", {"labels": ["ok", nul]}), "labels.1"),
        (
            await api.post(f"/projects/{pid}/graph", {"nodes": [{"kind": "k", "key": nul}]}),
            "nodes.0.key",
        ),
        (await api.get(f"/tasks/{task['id']}/events", params={"kind": nul}), "kind"),
        (await worker.api.post("/worker/register", {"host": nul}), "host"),
    ):
        assert reply.status == 422, reply.body
        assert [e["field"] for e in reply.body["errors"]] == [name], reply.body

    # The wrong JSON type is refused, not coerced (`false` is not a number of seconds).
    for bad in (False, "1", [0]):
        reply = await worker.api.post("/worker/claim", {"wait_seconds": bad})
        assert reply.status == 422 and reply.body["errors"][0]["field"] == "wait_seconds"
    reply = await api.post(f"/projects/{pid}/tasks", {"title": "x", "priority": True})
    assert reply.status == 422 and reply.body["errors"][0]["field"] == "priority"

    # A body whose fields are all optional may be left out, as the OpenAPI document says.
    doc = (await api.get("/openapi.json")).ok()
    assert doc["paths"][f"{API}/tasks/{{task_id}}"]["patch"]["requestBody"]["required"] is False
    assert doc["paths"][f"{API}/projects"]["post"]["requestBody"]["required"] is True
    (await api.call("PATCH", f"/tasks/{task['id']}")).ok()
