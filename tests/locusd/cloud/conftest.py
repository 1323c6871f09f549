"""A logged-in user and a registered worker on the real cloud, as the daemon would have them;
and running the outbox's drainer for the length of a block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from cloud_api.schemas.workers import ClaimOut
from locusd.cloud.client import CloudClient
from locusd.cloud.outbox import Outbox, Sender
from tests.conftest import Cloud


@asynccontextmanager
async def draining(outbox: Outbox, sender: Sender) -> AsyncIterator[None]:
    """Run the drainer for the block, then stop it and surface any crash of it."""
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.drain_forever(sender, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def settled(outbox: Outbox) -> None:
    """Until nothing is pending (bounded, so a stuck outbox fails the test)."""
    await asyncio.wait_for(outbox.wait_empty(), 30)


@dataclass
class Clients:
    cloud: Cloud
    user: CloudClient
    worker: CloudClient
    project_id: int

    async def claimed(self, title: str = "fix the bug") -> ClaimOut:
        """A new queued task, claimed by the worker."""
        task = await self.user.create_task(self.project_id, title, queued=True)
        claim = await self.worker.claim()
        assert claim is not None and claim.task.id == task.id
        return claim


@pytest.fixture
async def clients(cloud: Cloud) -> AsyncIterator[Clients]:
    first = cloud.first_start
    login = await CloudClient.login(cloud.url, first.email, first.password)
    async with CloudClient(cloud.url, login.token) as user:
        secret = await user.create_worker_token(cloud.project_id, "box-1")
        async with CloudClient(cloud.url, secret.token) as worker:
            await worker.register("box-1.local", 2, [], "0.1.0")
            yield Clients(cloud, user, worker, cloud.project_id)
