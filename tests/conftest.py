"""Shared fixtures: the real Redis and Postgres, each test run on its own key prefix and database.

Outside CI a missing server skips the tests that need it; with CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hub.settings import Settings

pytest_plugins = ["tests.tiers", "tests.servers", "tests.browserkit"]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _need(service: str, host: str, port: int) -> None:
    from tests.tiers import require  # loaded first as a plugin (pytest_plugins)

    require(service.lower().replace("postgresql", "postgres"), service)
    if _answers(host, port):
        return
    message = f"{service} is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: tests that need it fail instead of skipping)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    env = {
        "HUB_SECRET_KEY": "test-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HUB_DATA_DIR": str(tmp_path),
    }
    return Settings.from_env(env, **overrides)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    _need("Redis", "127.0.0.1", 6379)
    prefix = "test-" + uuid.uuid4().hex[:12]
    yield prefix
    forget_redis_prefix(prefix)


def forget_redis_prefix(prefix: str) -> None:
    """Delete every key under the prefix."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + ":*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def admin_sql(statement: str) -> None:
    """One statement as the superuser on the server's `postgres` database (CREATE DATABASE...)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test run's own on the real Postgres, dropped at the end."""
    _need("PostgreSQL", "127.0.0.1", 5432)
    name = "hub_test_" + uuid.uuid4().hex[:12]
    admin_sql(f'CREATE DATABASE "{name}"')
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def anyio_backend() -> AsyncIterator[str]:
    yield "asyncio"
