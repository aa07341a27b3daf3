"""A node's cache of channels and conversations: one load per key however many callers miss."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.accounts.auth import Signer, VisitorClaims
from hub.bus.memory import MemoryBus
from hub.errors import Unauthenticated
from hub.storage.cache import Cached, Versioned
from hub.storage.engine import make_engine, sessionmaker
from hub.storage.store import API_TOKEN_CACHE_S, Store
from hub.storage.vault import Vault
from hub.webchat.service import WebChat
from tests.conftest import make_settings
from tests.helpers import ORIGIN, prepare


class Loader:
    """Counts its loads; each waits for `gate` so that callers pile up behind it."""

    def __init__(self, value: object = "v") -> None:
        self.calls = 0
        self.value = value
        self.gate = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        await self.gate.wait()
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def test_concurrent_misses_share_one_load() -> None:
    async def main() -> None:
        cache: Cached[str, object] = Cached(ttl_s=30)
        loader = Loader()
        callers = [asyncio.ensure_future(cache.load("k", loader)) for _ in range(500)]
        await asyncio.sleep(0)
        loader.gate.set()
        assert await asyncio.gather(*callers) == ["v"] * 500
        assert loader.calls == 1
        assert await cache.load("k", loader) == "v" and loader.calls == 1  # kept
        assert cache.get("k") == "v"

    asyncio.run(main())


def test_an_expired_entry_is_loaded_again() -> None:
    async def main() -> None:
        cache: Cached[str, object] = Cached(ttl_s=0.05)
        loader = Loader()
        loader.gate.set()
        await cache.load("k", loader)
        await asyncio.sleep(0.06)
        assert cache.get("k") is None
        loader.value = "w"
        assert await cache.load("k", loader) == "w"
        assert loader.calls == 2

    asyncio.run(main())


def test_a_failed_load_reaches_every_caller_and_is_not_kept() -> None:
    async def main() -> None:
        cache: Cached[str, object] = Cached(ttl_s=30)
        loader = Loader(LookupError("gone"))
        callers = [asyncio.ensure_future(cache.load("k", loader)) for _ in range(3)]
        await asyncio.sleep(0)
        loader.gate.set()
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert [type(r) for r in results] == [LookupError] * 3
        assert loader.calls == 1
        loader.value = "v"
        assert await cache.load("k", loader) == "v"
        assert loader.calls == 2

    asyncio.run(main())


def test_one_caller_cancelled_does_not_cancel_the_load_for_the_others() -> None:
    async def main() -> None:
        cache: Cached[str, object] = Cached(ttl_s=30)
        loader = Loader()
        first = asyncio.ensure_future(cache.load("k", loader))
        second = asyncio.ensure_future(cache.load("k", loader))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        loader.gate.set()
        assert await second == "v"
        assert first.cancelled()
        assert loader.calls == 1

    asyncio.run(main())


def test_forgetting_during_a_load_does_not_keep_its_value() -> None:
    """A change made while a load was reading the old row: the old row is not kept."""

    async def main() -> None:
        cache: Cached[str, object] = Cached(ttl_s=30)
        loader = Loader("old")
        caller = asyncio.ensure_future(cache.load("k", loader))
        await asyncio.sleep(0)
        cache.forget("k")
        loader.gate.set()
        assert await caller == "old"  # the caller that asked before the change
        assert cache.get("k") is None
        loader.value = "new"
        assert await cache.load("k", loader) == "new"

        cache.put("a", 1)
        cache.put("b", 2)
        cache.forget_where(lambda value: value == 1)
        assert cache.get("a") is None and cache.get("b") == 2

    asyncio.run(main())


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Cached[str, int] = Cached(ttl_s=30, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # used: "b" is now the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_a_reconnect_storm_reads_the_channel_once(tmp_path: Path) -> None:
    """Thousands of visitors say hello at once after the channel's entry expired: their
    tokens are checked against one read of the channel, not one each."""
    settings = make_settings(tmp_path)
    (tenant,) = prepare(settings, "acme")
    signer = Signer(settings)
    claims = VisitorClaims(tenant.workspace_id, tenant.channel_id, uuid.uuid4().hex)
    token = signer.visitor_token(claims)

    async def main() -> None:
        engine = make_engine(settings)
        channel_reads = 0

        def count(_conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
            nonlocal channel_reads
            channel_reads += statement.lstrip().upper().startswith("SELECT") and (
                "FROM channels" in statement
            )

        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            webchat = WebChat(
                Store(sessionmaker(engine)),
                signer,
                Vault(settings.encryption_keys),
                cache_ttl_s=0.2,
            )
            for _ in range(2):  # the second round finds the entry expired
                hellos = [webchat.authenticate(token, ORIGIN) for _ in range(2000)]
                assert all(c == claims for c in await asyncio.gather(*hellos))
                await asyncio.sleep(0.25)
            assert channel_reads == 2
            with pytest.raises(Unauthenticated):  # a token for another channel still fails
                other = VisitorClaims(tenant.workspace_id, uuid.uuid4(), "x")
                await webchat.authenticate(signer.visitor_token(other), ORIGIN)
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_api_tokens_are_read_once_per_window_and_revocation_reaches_every_node(
    tmp_path: Path,
) -> None:
    """Two nodes (two stores on one database): an integration's burst of calls costs one
    lookup; a revocation is seen at once by the node that made it, and within
    `API_TOKEN_CACHE_S` by the other."""
    settings = make_settings(tmp_path)
    (tenant,) = prepare(settings, "acme")

    async def main() -> None:
        engine = make_engine(settings)
        token_reads = 0

        def count(_conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
            nonlocal token_reads
            token_reads += "FROM api_tokens" in statement

        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            here, there = Store(sessionmaker(engine)), Store(sessionmaker(engine))
            burst = [here.principal_for_api_token(tenant.api_token) for _ in range(300)]
            principals = await asyncio.gather(*burst)
            assert {p.user_id if p else None for p in principals} == {tenant.admin_id}
            assert token_reads == 1
            assert await there.principal_for_api_token(tenant.api_token) is not None
            assert await here.principal_for_api_token("hubt_" + uuid.uuid4().hex) is None

            (listed,) = await here.api_tokens(tenant.workspace_id, None)
            await here.revoke_api_token(tenant.workspace_id, listed.id, None)
            assert await here.principal_for_api_token(tenant.api_token) is None  # at once
            await asyncio.sleep(API_TOKEN_CACHE_S)  # the other node's answer has run out
            assert await there.principal_for_api_token(tenant.api_token) is None
        finally:
            await engine.dispose()

    asyncio.run(main())


async def test_a_versioned_copy_is_read_again_only_after_a_change_on_any_node() -> None:
    """Two workers' copies of one workspace's settings (two `Versioned` on one bus): each
    reads once, keeps its copy while the version stands, and reads again after a change made
    through either; another workspace's change leaves them alone."""
    bus = MemoryBus(stream_maxlen=100, dedupe_ttl_s=60)
    rows = ["a"]
    reads: list[str] = []

    async def read() -> list[str]:
        reads.append("read")
        return list(rows)

    one, other = Versioned[list[str]](bus, "k:version"), Versioned[list[str]](bus, "k:version")
    assert await one.load("w1", read) == ["a"] and await other.load("w1", read) == ["a"]
    assert await one.load("w1", read) == ["a"] and len(reads) == 2
    await other.changed("w2")  # another workspace
    assert await one.load("w1", read) == ["a"] and len(reads) == 2
    rows.append("b")
    await other.changed("w1")
    assert await one.load("w1", read) == ["a", "b"] and await other.load("w1", read) == ["a", "b"]
    assert len(reads) == 4
