"""Idempotency-Keys are remembered for their retention, then forgotten (the table does not grow
with every POST ever made); both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cloud_api.dispatch.reaper import Reaper, prune_idempotency_keys
from cloud_api.store.db import Database
from cloud_api.store.tables import idempotency_keys
from cloud_api.store.types import db_now
from tests.conftest import Cloud


async def _create(cloud: Cloud, key: str) -> dict[str, Any]:
    reply = await cloud.api.post(
        f"/projects/{cloud.project_id}/tasks", {"title": key}, headers={"Idempotency-Key": key}
    )
    assert reply.status == 201, reply.body
    result: dict[str, Any] = reply.body
    return result


async def _keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(idempotency_keys.c.key))).scalars())


async def test_keys_older_than_the_retention_are_pruned(cloud: Cloud) -> None:
    old, fresh = await _create(cloud, "old-key"), await _create(cloud, "fresh-key")
    db = Database(cloud.db_url)
    try:
        async with db.write() as tx:
            await tx.conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == "old-key")
                .values(created_at=db_now(-2 * 86400))
            )
        assert await prune_idempotency_keys(db, 86400) == 1
        assert await _keys(db) == {"fresh-key"}
    finally:
        await db.close()
    # The fresh key still replays; the forgotten one is a new request again.
    assert (await _create(cloud, "fresh-key"))["id"] == fresh["id"]
    assert (await _create(cloud, "old-key"))["id"] != old["id"]


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
@pytest.mark.parametrize("settings_overrides", [{"idempotency_retention_hours": 1 / 3600}])
async def test_the_running_cloud_prunes_by_itself(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a one-second retention (and pruning every 50 ms) a key is gone soon after."""
    monkeypatch.setattr(Reaper, "PRUNE_EVERY", 0.05)
    await _create(cloud, "short-lived")
    db = Database(cloud.db_url)
    try:
        assert "short-lived" in await _keys(db)
        async with db.read() as conn:
            total = select(func.count()).select_from(idempotency_keys)
            for _ in range(600):  # up to 30 s: the retention is 1 s, the prune every 50 ms
                if (await conn.execute(total)).scalar_one() == 0:
                    break
                await conn.rollback()  # a fresh snapshot for the next look
                await asyncio.sleep(0.05)  # polling a background pass: it has no event to await
            else:
                raise AssertionError("the key was never pruned")
    finally:
        await db.close()
