"""What a reconnect needs during a database outage: members, API tokens and web-chat channels
as last read (`hub.storage.lastknown`), shared between nodes through the bus, and forgotten by
every revocation. Two nodes share one database and one bus; the second node's database
connection is cut (it never read anything itself before)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from hub.accounts.auth import Principal, Signer, password_mark
from hub.bus.memory import MemoryBus
from hub.errors import OriginNotAllowed
from hub.settings import Settings
from hub.storage.engine import make_engine, sessionmaker
from hub.storage.lastknown import LastKnown
from hub.storage.models import User
from hub.storage.store import Store
from hub.storage.vault import Vault
from hub.webchat.service import WebChat
from tests.conftest import make_settings
from tests.helpers import ORIGIN, Tenant, prepare


class Unreachable:
    """A session factory whose database refuses the connection, as asyncpg reports it."""

    def __call__(self) -> Unreachable:
        return self

    async def __aenter__(self) -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class Nodes:
    def __init__(self, settings: Settings, bus: MemoryBus) -> None:
        self.engine = make_engine(settings)
        self.bus = bus
        self.signer = Signer(settings)
        vault = Vault(settings.encryption_keys)
        # Changes hold the copy back for a second only, so that a test can wait it out.
        self.up = Store(
            sessionmaker(self.engine), last_known=LastKnown(bus, ttl_s=3600, change_hold_s=1)
        )
        self.down = Store(Unreachable(), last_known=LastKnown(bus, ttl_s=3600))  # type: ignore[arg-type]
        self.chat_up = WebChat(
            self.up, self.signer, vault, cache_ttl_s=30, last_known=self.up.last_known
        )
        self.chat_down = WebChat(
            self.down, self.signer, vault, cache_ttl_s=30, last_known=self.down.last_known
        )


def run(settings: Settings, test: object) -> None:
    async def main() -> None:
        nodes = Nodes(settings, MemoryBus(stream_maxlen=1000, dedupe_ttl_s=60))
        try:
            await test(nodes)  # type: ignore[operator]
        finally:
            await nodes.engine.dispose()

    asyncio.run(main())


@pytest.fixture
def tenant_settings(tmp_path: Path) -> tuple[Settings, Tenant]:
    settings = make_settings(tmp_path)
    (tenant,) = prepare(settings, "acme")
    return settings, tenant


async def mark_of(nodes: Nodes, tenant: Tenant) -> str:
    async with nodes.up.sessions() as s:
        user = await s.get(User, tenant.admin_id)
        assert user is not None
        return password_mark(user.password_hash)


def test_an_agent_read_on_one_node_is_known_on_another_while_the_database_is_away(
    tenant_settings: tuple[Settings, Tenant],
) -> None:
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        mark = await mark_of(nodes, tenant)
        ids = (tenant.admin_id, tenant.workspace_id)
        # Nothing read yet: the outage is the database's error.
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal(*ids, "socket")
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal_for_api_token(tenant.api_token)

        writes = 0
        remember = nodes.bus.remember

        async def counted(*args: object, **kwargs: object) -> bool:
            nonlocal writes
            writes += 1
            return await remember(*args, **kwargs)  # type: ignore[arg-type]

        nodes.bus.remember = counted  # type: ignore[method-assign]
        for _ in range(20):
            assert await nodes.up.principal(*ids, "session", password_mark=mark) is not None
        assert writes == 1  # kept once, not on every read
        await nodes.up.principal_for_api_token(tenant.api_token)

        session = await nodes.down.principal(*ids, "session", password_mark=mark)
        assert session == Principal(*ids, "admin", "session", "acme admin")
        assert await nodes.down.principal(*ids, "session", password_mark="0" * 16) is None
        assert await nodes.down.principal(*ids, "socket") == Principal(
            *ids, "admin", "socket", "acme admin"
        )
        token = await nodes.down.principal_for_api_token(tenant.api_token)
        assert token == Principal(*ids, "admin", "token", "acme admin")
        with pytest.raises(ConnectionRefusedError):  # a token never read is not guessed
            await nodes.down.principal_for_api_token("hubt_" + uuid.uuid4().hex)

    run(settings, test)


def test_revocations_reach_the_fallback_of_every_node(
    tenant_settings: tuple[Settings, Tenant],
) -> None:
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        ids = (tenant.admin_id, tenant.workspace_id)
        admin = Principal(*ids, "admin", "session")
        _, second = await nodes.up.create_api_token(admin, "second")
        for token in (tenant.api_token, second):
            assert await nodes.up.principal_for_api_token(token) is not None
        mark = await mark_of(nodes, tenant)

        (row,) = [
            t for t in await nodes.up.api_tokens(tenant.workspace_id, None) if t.name == "second"
        ]
        await nodes.up.revoke_api_token(tenant.workspace_id, row.id, None)
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal_for_api_token(second)
        assert await nodes.down.principal_for_api_token(tenant.api_token) is not None

        await nodes.up.set_password(tenant.admin_id, "new-" + uuid.uuid4().hex)
        with pytest.raises(ConnectionRefusedError):  # the old sessions end with the change
            await nodes.down.principal(*ids, "session", password_mark=mark)
        await nodes.up.principal(*ids, "socket")
        with pytest.raises(ConnectionRefusedError):  # not kept while the change's marker lives
            await nodes.down.principal(*ids, "socket")
        await asyncio.sleep(1.1)
        await nodes.up.principal(*ids, "socket")  # then the new value is kept again
        assert await nodes.down.principal(*ids, "socket") is not None

        await nodes.up.forget_member(*reversed(ids))  # as after a removal or a role change
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal(*ids, "socket")
        with pytest.raises(ConnectionRefusedError):  # the member's tokens go with it
            await nodes.down.principal_for_api_token(tenant.api_token)

    run(settings, test)


def test_visitors_connect_and_get_tokens_but_an_identified_one_waits(
    tenant_settings: tuple[Settings, Tenant],
) -> None:
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        with pytest.raises(ConnectionRefusedError):  # nothing read yet, anywhere
            await nodes.chat_down.issue(tenant.public_key, ORIGIN, None)
        token, claims = await nodes.chat_up.issue(tenant.public_key, ORIGIN, None)

        assert await nodes.chat_down.authenticate(token, ORIGIN) == claims
        with pytest.raises(OriginNotAllowed):  # the origins are still checked
            await nodes.chat_down.authenticate(token, "https://elsewhere.example")
        with pytest.raises(OriginNotAllowed):
            await nodes.chat_down.issue(tenant.public_key, "https://elsewhere.example", None)
        renewed, again = await nodes.chat_down.issue(tenant.public_key, ORIGIN, token)
        assert again == claims and nodes.signer.read_visitor_token(renewed) == claims
        _, new = await nodes.chat_down.issue(tenant.public_key, ORIGIN, None)
        assert new.channel_id == claims.channel_id and new.visitor_id != claims.visitor_id
        with pytest.raises(ConnectionRefusedError):  # an identified visitor needs the secret
            await nodes.chat_down.issue(tenant.public_key, ORIGIN, token, user_id="u1")
        with pytest.raises(ConnectionRefusedError):  # a key never read is not guessed
            await nodes.chat_down.issue("wc_" + uuid.uuid4().hex, ORIGIN, None)

        await nodes.chat_up.forget(tenant.workspace_id, tenant.channel_id)  # a change, e.g. off
        with pytest.raises(ConnectionRefusedError):
            await nodes.chat_down.authenticate(token, ORIGIN)
        with pytest.raises(ConnectionRefusedError):
            await nodes.chat_down.issue(tenant.public_key, ORIGIN, token)

    run(settings, test)


def test_nothing_is_answered_from_memory_when_the_bus_is_away_too(
    tenant_settings: tuple[Settings, Tenant],
) -> None:
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        await nodes.up.principal(tenant.admin_id, tenant.workspace_id, "socket")

        async def away(*args: object, **kwargs: object) -> str | None:
            raise ConnectionResetError(104, "Connection reset by peer")

        nodes.bus.recall = away  # type: ignore[method-assign]
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal(tenant.admin_id, tenant.workspace_id, "socket")

    run(settings, test)


def test_a_value_is_not_kept_when_the_bus_is_away_and_the_read_still_answers(
    tenant_settings: tuple[Settings, Tenant],
) -> None:
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        async def away(*args: object, **kwargs: object) -> bool:
            raise ConnectionResetError(104, "Connection reset by peer")

        nodes.bus.remember = away  # type: ignore[method-assign]
        principal = await nodes.up.principal(tenant.admin_id, tenant.workspace_id, "socket")
        assert principal is not None and principal.role == "admin"
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal(tenant.admin_id, tenant.workspace_id, "socket")

    run(settings, test)


def test_a_copy_read_before_a_revocation_and_written_after_it_is_never_used(
    tenant_settings: tuple[Settings, Tenant],
) -> None:
    """Node B reads from the database, node A revokes (commit, then the bus), node B writes
    what it read: no node may answer from that copy during an outage."""
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        other = Store(
            sessionmaker(nodes.engine), last_known=LastKnown(nodes.bus, ttl_s=3600)
        )  # node A
        read, revoked = asyncio.Event(), asyncio.Event()
        remember = nodes.bus.remember

        async def late(
            workspace_id: str, key: str, value: str, **kwargs: Any
        ) -> bool:  # node B's write waits for node A's revocation
            if key.startswith("known:") and not revoked.is_set():
                read.set()
                await revoked.wait()
            return await remember(workspace_id, key, value, **kwargs)

        nodes.bus.remember = late  # type: ignore[method-assign]
        ids = (tenant.admin_id, tenant.workspace_id)

        reading = asyncio.create_task(nodes.up.principal_for_api_token(tenant.api_token))
        await read.wait()
        (row,) = await other.api_tokens(tenant.workspace_id, None)
        await other.revoke_api_token(tenant.workspace_id, row.id, None)
        revoked.set()
        assert await reading is not None  # read before the revocation: still answered
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal_for_api_token(tenant.api_token)

        revoked.clear()
        reading = asyncio.create_task(nodes.up.principal(*ids, "socket"))
        await read.wait()
        await other.forget_member(*ids[::-1], removed=True)
        revoked.set()
        assert await reading is not None
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal(*ids, "socket")

        # A copy the deletion missed (the bus failed between marker and delete) is ignored.
        await nodes.bus.remember(str(tenant.workspace_id), f"known:member:{ids[0]}", "x", ttl_s=60)
        with pytest.raises(ConnectionRefusedError):
            await nodes.down.principal(*ids, "socket")

    run(settings, test)


def test_a_revocation_succeeds_when_the_bus_is_away(
    tenant_settings: tuple[Settings, Tenant], caplog: pytest.LogCaptureFixture
) -> None:
    """The database is the truth while it answers: the bus being away fails no revocation."""
    settings, tenant = tenant_settings

    async def test(nodes: Nodes) -> None:
        async def away(*args: object, **kwargs: object) -> bool:
            raise ConnectionResetError(104, "Connection reset by peer")

        nodes.bus.remember = away  # type: ignore[method-assign]
        nodes.bus.forget = away  # type: ignore[method-assign]
        (row,) = await nodes.up.api_tokens(tenant.workspace_id, None)
        with caplog.at_level(logging.WARNING, logger="hub.lastknown"):
            revoked = await nodes.up.revoke_api_token(tenant.workspace_id, row.id, None)
            await nodes.up.forget_member(tenant.workspace_id, tenant.admin_id, removed=True)
        assert revoked.revoked_at is not None
        assert await nodes.up.principal_for_api_token(tenant.api_token) is None
        lines = [r.getMessage() for r in caplog.records if "revoked" in r.getMessage()]
        assert len(lines) == 2 and all("\n" not in line for line in lines)

    run(settings, test)
