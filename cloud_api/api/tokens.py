"""Worker tokens: created per project by its owners (or an admin), shown once, revocable."""

from __future__ import annotations

from sqlalchemy import select, update

from cloud_api.api.context import Ctx
from cloud_api.api.errors import not_found
from cloud_api.api.paging import page
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.domain.permissions import Action
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.schemas.tokens import TokenCreate, TokenCreated, TokenOut
from cloud_api.store import tokens as token_store
from cloud_api.store.db import Database
from cloud_api.store.tables import api_tokens
from cloud_api.store.types import db_now

router = Router("tokens")
MANAGE = Permission(Action.MANAGE, on="project_id")


async def create_worker_token(
    db: Database, project_id: int, body: TokenCreate, created_by: int | None
) -> TokenCreated:
    """Also used by `locus-cloud token create`."""
    days = body.expires_in_days
    async with db.write() as tx:
        token, row = await token_store.issue(
            tx,
            "worker",
            expires_in_seconds=None if days is None else days * 86400,
            project_id=project_id,
            worker_name=body.worker_name,
            label=body.label,
            created_by=created_by,
        )
    return TokenCreated.model_validate({**row._mapping, "token": token})


@router.post(
    "/projects/{project_id}/tokens",
    summary="Create a worker token (owners); the token is in this response only",
    status=201,
    secret_response=True,
    permission=MANAGE,
)
async def create_token(ctx: Ctx, project_id: int, body: TokenCreate) -> TokenCreated:
    return await create_worker_token(ctx.db, project_id, body, ctx.me.user_id)


@router.get(
    "/projects/{project_id}/tokens",
    summary="Worker tokens of a project (owners)",
    permission=MANAGE,
)
async def list_tokens(ctx: Ctx, project_id: int, query: PageQuery) -> Page[TokenOut]:
    async with ctx.db.read() as conn:
        stmt = select(api_tokens).where(
            api_tokens.c.project_id == project_id, api_tokens.c.scope == "worker"
        )
        return await page(conn, stmt, api_tokens.c.id, query, TokenOut)


@router.post(
    "/projects/{project_id}/tokens/{token_id}/revoke",
    summary="Revoke a worker token (owners)",
    permission=MANAGE,
)
async def revoke_token(ctx: Ctx, project_id: int, token_id: int) -> TokenOut:
    async with ctx.db.write() as tx:
        await tx.conn.execute(
            update(api_tokens)
            .where(
                api_tokens.c.id == token_id,
                api_tokens.c.project_id == project_id,
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=db_now())
        )
        row = (
            await tx.conn.execute(
                select(api_tokens).where(
                    api_tokens.c.id == token_id, api_tokens.c.project_id == project_id
                )
            )
        ).first()
    if row is None:
        raise not_found(f"token {token_id}")
    return TokenOut.model_validate(row._mapping)
