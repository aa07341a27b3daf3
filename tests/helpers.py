"""Seeding workspaces for app tests (through the store, the way `hub create-admin` does)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass

import pytest

from hub.accounts.auth import Principal
from hub.settings import Settings
from hub.storage.engine import make_engine, migrate, sessionmaker
from hub.storage.store import Store

ORIGIN = "https://shop.example"

# A password that follows the password rule, new on every run (no fixed value in the tests).
STRONG_PASSWORD = "Pw-" + secrets.token_urlsafe(18)
OTHER_STRONG_PASSWORD = "Pw-" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Tenant:
    workspace_id: uuid.UUID
    admin_id: uuid.UUID
    email: str
    password: str
    public_key: str
    channel_id: uuid.UUID
    api_token: str


async def make_tenant(
    settings: Settings, name: str = "acme", origins: list[str] | None = None
) -> Tenant:
    engine = make_engine(settings)
    try:
        store = Store(sessionmaker(engine))
        email = f"admin-{uuid.uuid4().hex[:8]}@{name}.example"
        password = "pw-" + uuid.uuid4().hex
        workspace, user = await store.create_workspace_with_admin(
            name, email, password, f"{name} admin"
        )
        channel = await store.create_channel(
            workspace.id, "webchat", "Site", allowed_origins=origins or [ORIGIN]
        )
        _, token = await store.create_api_token(
            Principal(user.id, workspace.id, "admin", "token"), "tests"
        )
        assert channel.public_key is not None
        return Tenant(workspace.id, user.id, email, password, channel.public_key, channel.id, token)
    finally:
        await engine.dispose()


def prepare(settings: Settings, *names: str) -> list[Tenant]:
    migrate(settings)
    return [asyncio.run(make_tenant(settings, name)) for name in names]


def backends(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The settings for the fixture's param: "sqlite" is the embedded default (SQLite and the
    in-process bus); "postgres" is the test run's Postgres database with the real Redis under
    this test's own key prefix."""
    if request.param != "postgres":
        return settings
    from tests.conftest import REDIS_URL

    url = request.getfixturevalue("postgres_database")
    return settings.with_overrides(
        database_url="postgresql+asyncpg://" + url.split("://", 1)[1],
        redis_url=REDIS_URL,
        redis_prefix=request.getfixturevalue("redis_prefix"),
    )
