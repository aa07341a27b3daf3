"""Redis losing the hub's data, in process: the workers' workspace set comes back with the next
publish (whichever bus instance publishes), the epoch that tells a loss, the watch that notices
it once and reports it until acknowledged, and the fan-out telling its sockets 4409. The same on
real processes with a Redis restarted empty is in tests/test_redisloss.py."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from hub.bus.base import Bus
from hub.bus.memory import MemoryBus
from hub.bus.redis import BUCKETS, RedisBus
from hub.errors import CursorTooOld
from hub.realtime.fanout import Fanout, Outlet
from hub.web.epoch import EpochWatch
from hub.web.metrics import Metrics, Snapshot
from tests.conftest import REDIS_URL
from tests.rediscluster import (  # noqa: F401 (redis_cluster_fixture: the fixture)
    PrivateCluster,
    redis_cluster_fixture,
)

REDIS_KINDS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
]


@pytest.fixture
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two buses on one prefix (two processes), standalone or on the private cluster; the
    in-process bus is one and the same."""
    kind = request.param
    if kind == "memory":
        bus = MemoryBus(stream_maxlen=10, dedupe_ttl_s=60)
        yield bus, bus
        return
    if kind == "redis":
        url, prefix, cluster = REDIS_URL, request.getfixturevalue("redis_prefix"), False
    else:
        found: PrivateCluster = request.getfixturevalue("redis_cluster")
        url, prefix, cluster = found.url, "test-" + uuid.uuid4().hex[:12], True
    buses: list[Bus] = [
        RedisBus(url, prefix=prefix, stream_maxlen=1000, dedupe_ttl_s=600, cluster=cluster)
        for _ in range(2)
    ]
    for bus in buses:
        await bus.start()
    try:
        yield buses[0], buses[1]
    finally:
        for bus in buses:
            await bus.close()


async def delete(bus: RedisBus, keys: list[str]) -> None:
    """What a Redis that lost its data no longer has (each key on its own: a cluster's keys
    are on several nodes)."""
    for key in keys:
        await bus._c.redis.delete(key)


def redis_of(bus: Bus) -> RedisBus:
    assert isinstance(bus, RedisBus)
    return bus


@pytest.mark.parametrize("pair", REDIS_KINDS, indirect=True)
async def test_a_lost_workspace_set_is_back_with_the_next_publish(pair: tuple[Bus, Bus]) -> None:
    one, two = pair
    await one.publish("w1", "message.created", "{}")
    await two.publish("w2", "message.created", "{}")
    assert await one.workspaces() == {"w1", "w2"}
    await delete(redis_of(one), redis_of(one)._workspaces_keys())
    assert await two.workspaces() == set()
    # The same processes publish again: no process-wide memory keeps them from announcing.
    await one.publish("w1", "message.created", "{}")
    await two.publish("w2", "message.created", "{}", dedupe_key="k")
    assert await two.workspaces() == {"w1", "w2"}
    assert (await one.stats()).streams == 2


@pytest.mark.parametrize("pair", ["memory", *REDIS_KINDS], indirect=True)
async def test_epochs_and_the_recorded_loss(pair: tuple[Bus, Bus]) -> None:
    bus = pair[0]
    shards = BUCKETS if isinstance(bus, RedisBus) and bus.cluster else 1
    first = await bus.epochs("a")
    assert first == [None] * shards
    assert await bus.epochs("b") == ["a"] * shards  # written once, never overwritten
    assert await bus.loss() is None
    await bus.record_loss({"detected_at": "t1", "node": "n1"})
    await bus.record_loss({"detected_at": "t2", "node": "n2"})  # a later node: the first wins
    assert await bus.loss() == {"detected_at": "t1", "node": "n1"}
    assert await bus.acknowledge_loss() == {"detected_at": "t1", "node": "n1"}
    assert await bus.loss() is None
    assert await bus.acknowledge_loss() is None


@pytest.mark.parametrize("pair", REDIS_KINDS, indirect=True)
async def test_the_watch_notices_a_loss_once_and_reports_it_until_acknowledged(
    pair: tuple[Bus, Bus], caplog: pytest.LogCaptureFixture
) -> None:
    one, two = pair
    m1, m2 = Metrics(), Metrics()
    told: list[str] = []
    w1 = EpochWatch(one, m1, node="node-1", on_loss=lambda: told.append("1"))
    w2 = EpochWatch(two, m2, node="node-2", on_loss=lambda: told.append("2"))
    assert not await w1.check() and not await w2.check()  # a first start is no loss
    assert not await w1.check() and m1.bus_loss is None
    # Redis loses its data (on a cluster: one shard's worth is enough).
    lost = redis_of(one)._epoch_keys()
    await delete(redis_of(one), lost[-1:] if len(lost) > 1 else lost)
    with caplog.at_level(logging.ERROR, logger="hub.bus"):
        assert await w1.check()
        assert not await w1.check()  # once per loss, not once per check
    lines = [r for r in caplog.records if "Redis lost the hub's data" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0].getMessage()
    assert await w2.check()  # the other process sees the epoch changed under it
    assert told == ["1", "2"]
    assert (m1.bus_losses, m2.bus_losses) == (1, 1)
    assert m1.bus_loss is not None and m1.bus_loss["node"] == "node-1"
    assert m2.bus_loss == m1.bus_loss  # every node reports the one recorded loss
    text = m2.exposition(Snapshot()).decode()
    assert "hub_bus_data_losses_total 1.0" in text
    assert "hub_bus_data_loss_unacknowledged 1.0" in text
    assert await two.acknowledge_loss() == m1.bus_loss
    assert not await w1.check() and not await w2.check()
    assert m1.bus_loss is None and m2.bus_loss is None
    assert "hub_bus_data_loss_unacknowledged 0.0" in m2.exposition(Snapshot()).decode()


async def test_a_loss_closes_every_socket_with_4409_and_forgets_the_rooms() -> None:
    bus = MemoryBus(stream_maxlen=100, dedupe_ttl_s=60)
    fanout = Fanout(bus, resume_max_events=100, block_ms=100)
    await fanout.start()
    try:
        agent, visitor = Outlet(100, "w"), Outlet(100, "w", conversation_id="c")
        for outlet in (agent, visitor):
            await fanout.join(outlet, None, lambda c, r: None)
        await bus.publish("w", "message.created", "{}", conversation_id="c")
        fanout.lost()
        for outlet in (agent, visitor):
            assert outlet.closing and isinstance(outlet.error, CursorTooOld)
            assert json.loads(outlet.outbox[-1])["code"] == "cursor_too_old"
        assert fanout.rooms == {} and fanout.positions == {}
        # A socket that comes back starts from the stream as it is now.
        again: list[tuple[str, bool]] = []
        await fanout.join(Outlet(100, "w"), None, lambda c, r: again.append((c, r)))
        assert again == [(await bus.last_id("w"), False)]
    finally:
        await fanout.stop()


@pytest.mark.parametrize("pair", [pytest.param("cluster", marks=pytest.mark.redis)], indirect=True)
async def test_processes_starting_together_on_a_cluster_report_no_loss(
    pair: tuple[Bus, Bus], caplog: pytest.LogCaptureFixture
) -> None:
    """Their writes of the per-bucket epochs interleave: each finds some buckets written by the
    other and some empty. That is a first start; a later loss is still seen by both."""
    one, two = pair
    m1, m2 = Metrics(), Metrics()
    w1 = EpochWatch(one, m1, node="node-1")
    w2 = EpochWatch(two, m2, node="node-2")
    keys = redis_of(two)._epoch_keys()
    for key in keys[::2]:  # node 2's writes that landed before node 1's
        await redis_of(two)._c.redis.set(key, "node-2-token")
    with caplog.at_level(logging.ERROR, logger="hub.bus"):
        assert not await w1.check()
        assert not await w2.check()
        assert not any(await asyncio.gather(w1.check(), w2.check()))
    assert not [r for r in caplog.records if "Redis lost the hub's data" in r.getMessage()]
    assert (m1.bus_losses, m2.bus_losses) == (0, 0) and await one.loss() is None

    await delete(redis_of(one), keys[:1])  # then one shard loses its data
    assert await w1.check() and await w2.check()
    assert (m1.bus_losses, m2.bus_losses) == (1, 1)
