"""A small HTTP client for tests and benchmarks: real aiohttp requests to a real server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def ok(self, status: int = 200) -> Any:
        assert self.status == status, f"expected {status}, got {self.status}: {self.body}"
        return self.body


class Api:
    """Requests under /api/v1 with a bearer token; answers are (status, parsed body)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None) -> None:
        self.session, self.base_url, self.token = session, base_url, token

    def as_(self, token: str | None) -> Api:
        return Api(self.session, self.base_url, token)

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if self.token:
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        url = path if path.startswith("http") else f"{self.base_url}/api/v1{path}"
        async with self.session.request(
            method, url, json=json, params=params, headers=hdrs, data=data
        ) as resp:
            raw = await resp.read()
            body: Any = None
            if raw:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            return Reply(resp.status, body, dict(resp.headers))

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, json if json is not None else {}, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.call("PATCH", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)


class Worker:
    """A worker identity: its token, its registration, and helpers for fenced writes."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.id: int | None = None

    @classmethod
    async def create(
        cls, admin: Api, project_id: int, name: str, repositories: list[str] | None = None
    ) -> Worker:
        token = (await admin.post(f"/projects/{project_id}/tokens", {"worker_name": name})).ok(201)
        worker = cls(admin.as_(token["token"]))
        reg = await worker.api.post(
            "/worker/register", {"host": name, "repositories": repositories or []}
        )
        worker.id = reg.ok()["id"]
        return worker

    async def claim(self, wait: float = 0) -> Reply:
        return await self.api.post("/worker/claim", {"wait_seconds": wait})

    async def heartbeat(self, claim: dict[str, Any]) -> Reply:
        return await self.api.post(f"/worker/tasks/{claim['task']['id']}/heartbeat", fence(claim))

    async def status(self, claim: dict[str, Any], status: str, **extra: Any) -> Reply:
        return await self.api.post(
            f"/worker/tasks/{claim['task']['id']}/status",
            {**fence(claim), "status": status, **extra},
        )


def fence(claim: dict[str, Any]) -> dict[str, Any]:
    return {"attempt": claim["attempt"], "claim_token": claim["claim_token"]}


async def new_user(admin: Api, email: str, password: str = "correct horse battery") -> Api:
    """Create a non-admin user with the admin's token and log them in (a real session)."""
    body = {"email": email, "name": email.split("@")[0], "password": password}
    (await admin.post("/users", body)).ok(201)
    login = (await admin.as_(None).post("/auth/login", {"email": email, "password": password})).ok()
    return admin.as_(login["token"])


async def every(api: Api, path: str) -> list[dict[str, Any]]:
    """Every item of a paged listing (all pages, in order)."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await api.get(path, params={"after": after, "limit": 200})).ok()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        after = page["next_cursor"]


async def timeline(api: Api, task_id: int) -> list[dict[str, Any]]:
    """Every event of a task, oldest first (all pages)."""
    return await every(api, f"/tasks/{task_id}/events")
