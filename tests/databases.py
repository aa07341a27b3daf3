"""A database of a test's own (SQLite in its data directory, or a fresh one on the real
Postgres), and ways to look inside it as an attacker with the disk or a superuser would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.settings import Settings
from tests.conftest import make_settings


def asyncpg_url(settings: Settings) -> str:
    return "postgresql://" + settings.database_url.split("://", 1)[1]


@contextmanager
def own_database(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Iterator[Settings]:
    if kind == "sqlite":
        yield make_settings(tmp_path)
        return
    import asyncpg

    base = request.getfixturevalue("postgres_database")  # skips (or fails in CI) without it
    admin = base.rsplit("/", 1)[0] + "/postgres"
    name = "hub_t_" + uuid.uuid4().hex[:10]

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        url = "postgresql+asyncpg://" + admin.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name
        yield make_settings(tmp_path, database_url=url)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def superuser(settings: Settings, *statements: str) -> None:
    """Run SQL past the application: asyncpg as the superuser, or plain sqlite3."""
    if settings.is_sqlite:
        import sqlite3

        conn = sqlite3.connect(settings.database_url.split("///", 1)[1])
        try:
            with conn:  # one transaction, committed
                for statement in statements:
                    conn.execute(statement)
        finally:
            conn.close()
        return
    import asyncpg

    conn = await asyncpg.connect(asyncpg_url(settings))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def dump(settings: Settings) -> bytes:
    """Everything the database holds: on SQLite the file's bytes (and its write-ahead log's),
    on Postgres every table's rows as text."""
    if settings.is_sqlite:
        path = Path(settings.database_url.split("///", 1)[1])
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())

    async def rows() -> bytes:
        import asyncpg

        conn = await asyncpg.connect(asyncpg_url(settings))
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
            out = []
            for table in tables:
                name = table["tablename"].replace('"', '""')
                for row in await conn.fetch(f'SELECT t::text AS row FROM "{name}" AS t'):
                    out.append(f"{table['tablename']}: {row['row']}")
            return "\n".join(out).encode()
        finally:
            await conn.close()

    return asyncio.run(rows())
