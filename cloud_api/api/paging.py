"""Keyset pagination by id: stable under inserts, and cheap at any depth."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud_api.schemas.common import Page, PageQuery

M = TypeVar("M", bound=BaseModel)


async def page(
    conn: AsyncConnection, query: Select[Any], id_column: Any, params: PageQuery, model: type[M]
) -> Page[M]:
    rows = (
        await conn.execute(
            query.where(id_column > params.after).order_by(id_column).limit(params.limit + 1)
        )
    ).all()
    items = [model.model_validate(row._mapping) for row in rows[: params.limit]]
    more = len(rows) > params.limit
    return Page[model](items=items, next_cursor=items[-1].id if more and items else None)  # type: ignore[valid-type,attr-defined]
