"""Issuing API tokens: the one place a token is generated and only its hash is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from cloud_api.security import new_token
from cloud_api.store.db import Tx
from cloud_api.store.tables import api_tokens
from cloud_api.store.types import db_now


async def issue(
    tx: Tx, scope: str, *, expires_in_seconds: float | None, **columns: Any
) -> tuple[str, Row[Any]]:
    """Returns (the token, to show once; its stored row). Expiry runs on the database clock."""
    token, digest, prefix = new_token(scope)
    expires = None if expires_in_seconds is None else db_now(expires_in_seconds)
    row = (
        await tx.conn.execute(
            api_tokens.insert()
            .values(token_hash=digest, prefix=prefix, scope=scope, expires_at=expires, **columns)
            .returning(*api_tokens.c)
        )
    ).one()
    return token, row
