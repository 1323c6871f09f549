"""Smoke test for the real-PostgreSQL test helper."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import pytest

from tests.support.pgserver import PostgresServer, find_pg_bindir


async def _create_template_table(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL)")
        await conn.execute("INSERT INTO widgets VALUES (1, 'gear')")
    finally:
        await conn.close()


async def _check_copy(url: str) -> tuple[int, str]:
    conn = await asyncpg.connect(url)
    try:
        one = await conn.fetchval("SELECT 1")
        name = await conn.fetchval("SELECT name FROM widgets WHERE id = 1")
        return one, name
    finally:
        await conn.close()


def test_server_lifecycle_and_template_copy(tmp_path: Path) -> None:
    assert find_pg_bindir() is not None
    server = PostgresServer(tmp_path / "pg")
    with server:
        port = server.port
        assert server.url() == f"postgresql://postgres@127.0.0.1:{port}/postgres"

        tmpl_url = server.create_database("locus_tmpl")
        asyncio.run(_create_template_table(tmpl_url))  # connection closed: template copyable

        copy_url = server.create_database("locus_copy", template="locus_tmpl")
        assert copy_url == server.url("locus_copy")
        assert asyncio.run(_check_copy(copy_url)) == (1, "gear")

        server.drop_database("locus_copy")
        server.drop_database("locus_copy")  # IF EXISTS: idempotent
        with pytest.raises(ValueError):
            server.create_database('bad"; DROP DATABASE postgres; --')

    assert (tmp_path / "pg" / "postgres.log").exists()
    server.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    with pytest.raises(RuntimeError):
        _ = server.port
