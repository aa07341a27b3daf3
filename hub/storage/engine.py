"""The database engine and Alembic migrations (SQLite for the embedded default, Postgres else)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import filemodes
from hub.settings import Settings
from hub.storage import tenancy  # noqa: F401  (row-level security: its listener scopes each transaction)

MIGRATIONS = Path(__file__).parent / "migrations"


def private_sqlite(settings: Settings) -> None:
    """The SQLite file, and its -wal and -shm if there, readable by their owner only; the data
    directory too when the file is in it (another directory named by DATABASE_URL is made
    0700 if missing, but left as it is if it exists)."""
    path = Path(settings.database_url.split("///", 1)[1])
    if path.name in ("", ":memory:"):
        return
    if path.parent.resolve() == settings.data_dir.resolve():
        filemodes.private_dir(path.parent)
    else:
        path.parent.mkdir(mode=filemodes.PRIVATE_DIR, parents=True, exist_ok=True)
    filemodes.private_file(path)  # SQLite gives -wal and -shm the database file's mode
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists():
            filemodes.tighten(extra, filemodes.PRIVATE_FILE)


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        private_sqlite(settings)
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(
        settings.database_url, pool_size=10, max_overflow=10, pool_pre_ping=True
    )


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = settings.database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """Upgrade the schema (blocking; call from a thread inside a running loop)."""
    if settings.is_sqlite:
        private_sqlite(settings)
    command.upgrade(alembic_config(settings), revision)


async def migrate_async(settings: Settings) -> None:
    await asyncio.to_thread(migrate, settings)
