"""Open event streams end when their caller loses access (token revoked, member removed, worker
token revoked) and when they reach their maximum lifetime; a reconnect resumes without loss.

Real streams off a real server. The re-check interval is set small so the tests run quickly,
but nothing here measures time: a stream must *end*, and the generous timeout only bounds a
broken one. Each test first sees the stream survive several re-checks (keepalives are written
only after a passed check), so a stream that ends for any other reason would not pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloud_api.api.verdicts import Verdicts
from tests.conftest import Cloud, Template, start_cloud
from tests.support.client import Api, Worker, new_user

END_TIMEOUT = 60.0
CHECKS = 3  # re-checks a stream must survive before access is taken away


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sse_recheck_seconds": 0.05, "sse_keepalive_seconds": 0.05}


class Lines:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def line(self) -> str | None:
        raw = await asyncio.wait_for(self.response.content.readline(), END_TIMEOUT)
        return raw.decode().rstrip("\r\n") if raw else None

    async def keepalives(self, n: int) -> None:
        """Read until ``n`` keepalives have come: the stream passed its re-checks meanwhile."""
        seen = 0
        while seen < n:
            line = await self.line()
            assert line is not None, "the stream ended while access was intact"
            seen += line == ": keepalive"

    async def until(self, prefix: str) -> str:
        while True:
            line = await self.line()
            assert line is not None, f"the stream ended before a line starting {prefix!r}"
            if line.startswith(prefix):
                return line

    async def ends(self) -> None:
        """Read to the end of the stream (the timeout only bounds a stream that never ends)."""

        async def drain() -> None:
            while await self.line() is not None:
                pass

        try:
            await asyncio.wait_for(drain(), END_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"the stream was still open {END_TIMEOUT} s after access was taken away")


@asynccontextmanager
async def opened(api: Api, path: str, last_event_id: int | None = None) -> AsyncIterator[Lines]:
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=END_TIMEOUT * 2)
    async with api.session.get(
        f"{api.base_url}/api/v1{path}", headers=headers, timeout=timeout
    ) as response:
        assert response.status == 200, await response.text()
        yield Lines(response)


async def _org_of(cloud: Cloud) -> int:
    org_id: int = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    return org_id


async def _viewer(cloud: Cloud) -> tuple[Api, int]:
    viewer = await new_user(cloud.api, "vera@example.com")
    member = {"email": "vera@example.com", "role": "viewer"}
    (await cloud.api.post(f"/orgs/{await _org_of(cloud)}/members", member)).ok(201)
    me = (await viewer.get("/me")).ok()
    return viewer, me["user"]["id"]


async def _ends_when(lines: Lines, take_away: Callable[[], Awaitable[None]]) -> None:
    await lines.keepalives(CHECKS)
    await take_away()
    await lines.ends()


async def test_stream_ends_when_its_token_is_revoked(cloud: Cloud) -> None:
    viewer, _ = await _viewer(cloud)
    async with opened(viewer, f"/projects/{cloud.project_id}/events/stream") as lines:

        async def logout() -> None:
            assert (await viewer.post("/auth/logout")).status == 204

        await _ends_when(lines, logout)
    assert (await viewer.get(f"/projects/{cloud.project_id}")).status == 401


async def test_stream_ends_when_the_member_is_removed(cloud: Cloud) -> None:
    viewer, user_id = await _viewer(cloud)
    tid = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", {"title": "t"})).ok(201)[
        "id"
    ]
    org_id = await _org_of(cloud)
    for path in (f"/tasks/{tid}/events/stream", f"/projects/{cloud.project_id}/events/stream"):
        async with opened(viewer, path) as lines:
            await lines.until("id:")  # the task's "created" event: the stream is live

            async def remove() -> None:
                assert (await cloud.api.delete(f"/orgs/{org_id}/members/{user_id}")).status == 204

            await _ends_when(lines, remove)
        # Back in the organisation for the next stream.
        member = {"email": "vera@example.com", "role": "viewer"}
        (await cloud.api.post(f"/orgs/{org_id}/members", member)).ok(201)


async def test_stream_ends_when_a_worker_token_is_revoked(cloud: Cloud) -> None:
    pid = cloud.project_id
    worker = await Worker.create(cloud.api, pid, "w")
    tokens = (await cloud.api.get(f"/projects/{pid}/tokens")).ok()["items"]
    token_id = next(t["id"] for t in tokens if t["worker_name"] == "w")
    async with opened(worker.api, f"/projects/{pid}/events/stream") as lines:

        async def revoke() -> None:
            (await cloud.api.post(f"/projects/{pid}/tokens/{token_id}/revoke")).ok()

        await _ends_when(lines, revoke)


async def test_a_demoted_member_who_may_still_read_keeps_the_stream(cloud: Cloud) -> None:
    """Losing a role that the stream does not need ends nothing (the check is the route's)."""
    viewer, user_id = await _viewer(cloud)
    org_id = await _org_of(cloud)
    (await cloud.api.patch(f"/orgs/{org_id}/members/{user_id}", {"role": "member"})).ok()
    async with opened(viewer, f"/projects/{cloud.project_id}/events/stream") as lines:
        await lines.keepalives(CHECKS)
        (await cloud.api.patch(f"/orgs/{org_id}/members/{user_id}", {"role": "viewer"})).ok()
        await lines.keepalives(CHECKS)


async def test_stream_ends_at_its_maximum_lifetime_and_resumes(
    template: Template, tmp_path: Path
) -> None:
    runner, url, _app = await start_cloud(
        template.new_url(tmp_path), sse_max_seconds=0.5, sse_recheck_seconds=0.05
    )
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, url, template.first_start.token)
            pid = template.first_start.project_id
            tid = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)["id"]
            path = f"/tasks/{tid}/events/stream"
            async with opened(api, path) as lines:
                first = int((await lines.until("id:")).removeprefix("id: "))
                await lines.ends()  # nobody lost access: the lifetime ended it
            (await api.post(f"/tasks/{tid}/comments", {"body": "meanwhile"})).ok(201)
            async with opened(api, path, last_event_id=first) as lines:
                resumed = int((await lines.until("id:")).removeprefix("id: "))
                assert "comment" in await lines.until("event:")
            events = (await api.get(f"/tasks/{tid}/events")).ok()["items"]
            assert [e["id"] for e in events] == [first, resumed]
    finally:
        await runner.cleanup()


async def test_streams_of_one_caller_and_path_share_one_check() -> None:
    """Verdicts: concurrent askers share the one check in flight and its answer while it is
    valid; another key, an expired verdict or a failed check runs a new one."""
    verdicts = Verdicts()
    calls: list[str] = []
    release = asyncio.Event()

    async def check(name: str, answer: bool = True) -> bool:
        calls.append(name)
        await release.wait()
        return answer

    key = (1, "/api/v1/projects/1/events/stream")
    askers = [
        asyncio.create_task(verdicts.check(key, 60, lambda: check("shared"))) for _ in range(50)
    ]
    other = asyncio.create_task(verdicts.check((2, key[1]), 60, lambda: check("other", False)))
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*askers)
    assert calls.count("shared") == 1 and all(allowed for allowed, _ in answers)
    assert len({expires for _, expires in answers}) == 1  # all next checks when it expires
    assert (await other)[0] is False
    # Expired at once (valid for 0 s): the next asker checks again.
    assert (await verdicts.check(key, 0, lambda: check("again")))[0]
    assert calls == ["shared", "other", "again"]

    async def broken() -> bool:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        await verdicts.check((3, "/x"), 60, broken)
    assert (await verdicts.check((3, "/x"), 60, lambda: check("retried")))[0]
    assert calls[-1] == "retried"
