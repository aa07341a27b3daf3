"""The bus contract of `hub.bus.base`, run against `MemoryBus`, `RedisBus` on the real Redis and
`RedisBus` on a private three-shard Redis Cluster (`tests.rediscluster`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import Monitor
from redis.cluster import key_slot
from redis.exceptions import AskError, RedisError, ResponseError

from hub.bus.base import ZERO_ID, Batch, Bus, BusStats, Event, GroupStats, parse_id
from hub.bus.clients import QueuedPool, Script
from hub.bus.memory import MemoryBus
from hub.bus.redis import BUCKETS, DIRECT_ROOMS, RedisBus, bucket
from hub.errors import BadFrame, CursorTooOld
from tests.conftest import REDIS_URL, free_port
from tests.rediscluster import (  # noqa: F401 (redis_cluster_fixture: the fixture)
    PrivateCluster,
    need_binaries,
    private_cluster,
    redis_cluster_fixture,
)

MakeBus = Callable[..., Awaitable[Bus]]
# "-doorbell": a tail over even one room reads the changes streams first (see hub.bus.redis).
DOORBELL = [
    pytest.param("redis-doorbell", marks=pytest.mark.redis),
    pytest.param("cluster-doorbell", marks=pytest.mark.redis),
]
BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
    *DOORBELL,
]


@contextlib.asynccontextmanager
async def buses(request: pytest.FixtureRequest, kind: str) -> AsyncIterator[MakeBus]:
    url, prefix = REDIS_URL, ""
    if kind.startswith("redis"):
        prefix = request.getfixturevalue("redis_prefix")
    elif kind.startswith("cluster"):
        # The cluster is the session's own: a prefix keeps tests apart, nothing to clean.
        url, prefix = request.getfixturevalue("redis_cluster").url, "test-" + uuid.uuid4().hex[:12]
    made: list[Bus] = []

    async def make(stream_maxlen: int = 1000, dedupe_ttl_s: int = 600, **options: int) -> Bus:
        bus: Bus
        if kind != "memory":
            options.setdefault("direct_rooms", 0 if kind.endswith("-doorbell") else DIRECT_ROOMS)
            bus = RedisBus(
                url,
                prefix=prefix,
                stream_maxlen=stream_maxlen,
                dedupe_ttl_s=dedupe_ttl_s,
                cluster=kind.startswith("cluster"),
                **options,
            )
        else:
            bus = MemoryBus(stream_maxlen=stream_maxlen, dedupe_ttl_s=dedupe_ttl_s)
        await bus.start()
        made.append(bus)
        return bus

    try:
        yield make
    finally:
        for bus in made:
            await bus.close()


@pytest.fixture(params=BACKENDS)
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    async with buses(request, request.param) as make:
        yield make


@pytest.fixture(params=DOORBELL)
async def make_doorbell(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    async with buses(request, request.param) as make:
        yield make


@pytest.fixture
async def bus(make_bus: MakeBus) -> Bus:
    return await make_bus()


def data(i: int) -> str:
    return json.dumps({"i": i, "text": f"message {i} çğü"})


async def publish_many(bus: Bus, workspace_id: str, n: int, start: int = 0) -> list[Event]:
    events = []
    for i in range(start, start + n):
        conversation_id = f"c{i % 3}" if i % 2 else ""
        published = await bus.publish(
            workspace_id, f"event.{i}", data(i), conversation_id=conversation_id
        )
        assert not published.duplicate
        events.append(Event(published.id, f"event.{i}", data(i), conversation_id))
    return events


async def kept(bus: Bus, workspace_id: str) -> list[Event]:
    """Every event the stream still keeps (a tail from the very beginning)."""
    batch = await bus.tail({workspace_id: ZERO_ID}, count=100_000, block_ms=0)
    return [e for w, events in batch for e in events if w == workspace_id]


# --- publish and read ------------------------------------------------------------------


async def test_ids_increase_and_read_returns_everything_intact(bus: Bus) -> None:
    events = await publish_many(bus, "w1", 12)
    ids = [parse_id(e.id) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert await bus.read("w1", ZERO_ID, 100) == events
    with pytest.raises(CursorTooOld):  # from before the stream began: unknown, not "nothing lost"
        await bus.read("w1", "9-0", 100)
    assert await bus.last_id("w1") == events[-1].id
    assert json.loads((await bus.read("w1", ZERO_ID, 100))[1].data) == {
        "i": 1,
        "text": "message 1 çğü",
    }


async def test_read_from_a_cursor_returns_exactly_the_later_events(bus: Bus) -> None:
    events = await publish_many(bus, "w1", 10)
    assert await bus.read("w1", events[3].id, 100) == events[4:]
    assert await bus.read("w1", events[3].id, 2) == events[4:6]
    assert await bus.read("w1", ZERO_ID, 3) == events[:3]
    assert await bus.read("w1", events[-1].id, 100) == []


async def test_workspaces_have_separate_streams(bus: Bus) -> None:
    a = await publish_many(bus, "wa", 3)
    b = await publish_many(bus, "wb", 2, start=100)
    assert await bus.read("wa", ZERO_ID, 100) == a
    assert await bus.read("wb", ZERO_ID, 100) == b


async def test_unknown_workspace_is_empty_and_rejects_later_cursors(bus: Bus) -> None:
    assert await bus.last_id("nobody") == ZERO_ID
    assert await bus.read("nobody", ZERO_ID, 10) == []
    with pytest.raises(CursorTooOld):
        await bus.read("nobody", "1700000000000-0", 10)


# --- dedupe ----------------------------------------------------------------------------


async def test_dedupe_key_appends_once_and_answers_the_first_id(bus: Bus) -> None:
    first = await bus.publish("w1", "message.created", data(1), dedupe_key="ig:mid.1")
    again = await bus.publish("w1", "message.created", data(2), dedupe_key="ig:mid.1")
    assert not first.duplicate
    assert again.duplicate and again.id == first.id
    assert [(e.id, e.data) for e in await bus.read("w1", ZERO_ID, 10)] == [(first.id, data(1))]


async def test_concurrent_publishes_of_one_dedupe_key_append_one_event(bus: Bus) -> None:
    results = await asyncio.gather(
        *(bus.publish("w1", "message.created", data(i), dedupe_key="k") for i in range(50))
    )
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.id for r in results}) == 1
    assert [e.id for e in await bus.read("w1", ZERO_ID, 100)] == [results[0].id]


async def test_different_dedupe_keys_and_workspaces_are_independent(bus: Bus) -> None:
    a = await bus.publish("w1", "x", data(1), dedupe_key="k1")
    b = await bus.publish("w1", "x", data(2), dedupe_key="k2")
    c = await bus.publish("w2", "x", data(3), dedupe_key="k1")
    assert not (a.duplicate or b.duplicate or c.duplicate)
    assert a.id != b.id
    assert [e.id for e in await bus.read("w1", ZERO_ID, 10)] == [a.id, b.id]
    assert [e.id for e in await bus.read("w2", ZERO_ID, 10)] == [c.id]


# --- trimming and cursors --------------------------------------------------------------


async def test_trimmed_stream_rejects_old_cursors_and_serves_recent_ones(make_bus: MakeBus) -> None:
    bus = await make_bus(stream_maxlen=10)
    events = await publish_many(bus, "w1", 200)
    ids = [e.id for e in events]
    left = await kept(bus, "w1")
    assert 10 <= len(left) < 150  # "about stream_maxlen"
    assert left == events[-len(left) :]
    for cursor in (ZERO_ID, ids[0], ids[-len(left) - 2]):
        with pytest.raises(CursorTooOld):
            await bus.read("w1", cursor, 1000)
    # A cursor at the newest trimmed event misses nothing, so it is still good.
    assert await bus.read("w1", ids[-len(left) - 1], 1000) == left
    assert await bus.read("w1", ids[-4], 1000) == events[-3:]
    assert await bus.last_id("w1") == ids[-1]


async def test_cursor_beyond_the_newest_id_is_too_old(bus: Bus) -> None:
    events = await publish_many(bus, "w1", 3)
    ms, seq = parse_id(events[-1].id)
    for cursor in (f"{ms}-{seq + 1}", f"{ms + 1}-0", "99999999999999999999-0"):
        with pytest.raises(CursorTooOld):
            await bus.read("w1", cursor, 10)


@pytest.mark.parametrize("cursor", ["", "abc", "12", "1-2-3", "-1-0", "1-a", " 1-0"])
async def test_garbage_cursor_is_a_bad_frame(bus: Bus, cursor: str) -> None:
    await publish_many(bus, "w1", 1)
    with pytest.raises(BadFrame):
        await bus.read("w1", cursor, 10)


# --- tail ------------------------------------------------------------------------------


async def tail_ready(
    bus: Bus, positions: dict[str, str], count: int, expected: set[str]
) -> dict[str, list[Event]]:
    """What tails answer for streams that have events, over as many calls as `expected` takes:
    on a cluster each bucket's read answers on its own, so one call may bring only some."""
    got: dict[str, list[Event]] = {}
    for _ in range(10):
        for workspace_id, events in await bus.tail(positions, count=count, block_ms=1000):
            got.setdefault(workspace_id, events)
        if set(got) >= expected:
            break
    return got


async def test_tail_returns_events_after_each_position(make_bus: MakeBus) -> None:
    bus = await make_bus()
    a = await publish_many(bus, "wa", 3)
    b = await publish_many(bus, "wb", 2, start=10)
    positions = {"wa": a[0].id, "wb": ZERO_ID, "wc": ZERO_ID, "wd": b[-1].id}
    assert await tail_ready(bus, positions, 100, {"wa", "wb"}) == {"wa": a[1:], "wb": b}
    # Another process: a read `bus` left in flight (on a cluster) answers with the first count.
    other = await make_bus() if isinstance(bus, RedisBus) else bus
    assert await tail_ready(other, positions, 1, {"wa", "wb"}) == {"wa": a[1:2], "wb": b[:1]}


async def test_tail_blocks_until_something_is_published(bus: Bus) -> None:
    a = await publish_many(bus, "wa", 1)
    started = time.monotonic()
    tail = asyncio.create_task(bus.tail({"wa": a[0].id, "wb": ZERO_ID}, count=100, block_ms=5000))
    await asyncio.sleep(0.1)
    assert not tail.done()
    published = await bus.publish("wb", "typing", data(7), conversation_id="c1")
    batch = await asyncio.wait_for(tail, 1)
    assert time.monotonic() - started < 1
    assert batch == [("wb", [Event(published.id, "typing", data(7), "c1")])]


async def test_tail_times_out_empty(bus: Bus) -> None:
    started = time.monotonic()
    assert await bus.tail({"wa": ZERO_ID}, count=10, block_ms=100) == []
    assert await bus.tail({}, count=10, block_ms=100) == []
    assert 0.15 < time.monotonic() - started < 2


@pytest.mark.parametrize("positions", [{"wa": ZERO_ID}, {}], ids=["rooms", "no-rooms"])
async def test_wake_returns_a_blocked_tail_promptly(bus: Bus, positions: dict[str, str]) -> None:
    tail = asyncio.create_task(bus.tail(positions, count=10, block_ms=5000))
    await asyncio.sleep(0.1)
    assert not tail.done()
    woken = time.monotonic()
    bus.wake()
    assert await asyncio.wait_for(tail, 2) == []
    assert time.monotonic() - woken < 0.5


async def test_wake_just_before_or_as_the_tail_starts_is_not_lost(bus: Bus) -> None:
    for settle in range(20):  # wake at different points of the tail getting under way
        tail = asyncio.create_task(bus.tail({"wa": ZERO_ID}, count=10, block_ms=5000))
        for _ in range(settle % 5):
            await asyncio.sleep(0)
        if settle >= 10:
            await asyncio.sleep(0.001 * (settle - 10))
        bus.wake()
        assert await asyncio.wait_for(tail, 0.5) == []
    bus.wake()  # woken while no tail runs: the next one does not block
    started = time.monotonic()
    assert await bus.tail({"wa": ZERO_ID}, count=10, block_ms=5000) == []
    assert time.monotonic() - started < 0.5


async def test_close_returns_a_blocked_tail(make_bus: MakeBus) -> None:
    bus = await make_bus()
    tail = asyncio.create_task(bus.tail({"wa": ZERO_ID}, count=10, block_ms=5000))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(bus.close(), 2)
    assert await asyncio.wait_for(tail, 1) == []


async def follow(
    bus: Bus,
    positions: dict[str, str],
    expected: dict[str, list[str]],
    *,
    count: int = 100,
    block_ms: int = 1000,
    calls: int = 20,
    seen: dict[str, list[str]] | None = None,
) -> dict[str, list[str]]:
    """Tail as the fan-out does until the ids seen are `expected`, and answer them."""
    seen = {} if seen is None else seen
    for _ in range(calls):
        if seen == expected:
            break
        dispatch(await bus.tail(positions, count=count, block_ms=block_ms), positions, seen)
    return seen


def dispatch(batch: Batch, positions: dict[str, str], seen: dict[str, list[str]]) -> None:
    """As `Fanout.dispatch`: a room's position moves to the last event handed, earlier ones and
    those of rooms no longer there are skipped."""
    for workspace_id, events in batch:
        for event in events:
            if workspace_id in positions and parse_id(event.id) > parse_id(positions[workspace_id]):
                seen.setdefault(workspace_id, []).append(event.id)
                positions[workspace_id] = event.id


async def test_a_room_added_while_the_tail_blocks_gets_its_events(bus: Bus) -> None:
    positions = dict.fromkeys((f"w{i}" for i in range(40)), ZERO_ID)
    assert await bus.tail(positions, count=10, block_ms=0) == []
    for publish_first in (True, False):
        tail = asyncio.create_task(bus.tail(dict(positions), count=10, block_ms=5000))
        await asyncio.sleep(0.1)
        assert not tail.done()
        room = f"new-{publish_first}"
        positions[room] = await bus.last_id(room)  # as `Fanout.join`: its position, then wake
        ids = [(await bus.publish(room, "m", data(1))).id] if publish_first else []
        bus.wake()
        ids += [(await bus.publish(room, "m", data(2))).id]
        started = time.monotonic()
        assert await asyncio.wait_for(tail, 2) == []  # it tails the rooms it was given
        assert await follow(bus, positions, {room: ids}) == {room: ids}
        assert time.monotonic() - started < 1


# --- consumer groups -------------------------------------------------------------------


async def drain(bus: Bus, group: str, consumer: str, workspace_id: str, count: int) -> list[Event]:
    batch = await bus.read_group(group, consumer, [workspace_id], count=count, block_ms=0)
    return [e for w, events in batch for e in events if w == workspace_id]


async def test_group_splits_events_between_consumers_from_the_start(bus: Bus) -> None:
    before = await publish_many(bus, "w1", 10)
    await bus.ensure_group("persist", ["w1"])
    after = await publish_many(bus, "w1", 10, start=10)
    got: dict[str, list[Event]] = {"c1": [], "c2": []}
    while True:
        one = await drain(bus, "persist", "c1", "w1", 3)
        two = await drain(bus, "persist", "c2", "w1", 4)
        got["c1"] += one
        got["c2"] += two
        if not one and not two:
            break
    ids = {c: [e.id for e in events] for c, events in got.items()}
    assert got["c1"] and got["c2"]
    assert not set(ids["c1"]) & set(ids["c2"])
    assert sorted(got["c1"] + got["c2"], key=lambda e: parse_id(e.id)) == before + after
    for events in ids.values():
        assert events == sorted(events, key=parse_id)

    await bus.ensure_group("persist", ["w1"])  # again: harmless, does not rewind
    assert await drain(bus, "persist", "c1", "w1", 100) == []
    await bus.ensure_group("audit", ["w1"])
    assert await drain(bus, "audit", "x", "w1", 100) == before + after


async def test_read_group_over_several_workspaces(bus: Bus) -> None:
    await bus.ensure_group("g", ["wa", "wb", "wc"])
    a = await publish_many(bus, "wa", 2)
    b = await publish_many(bus, "wb", 3, start=5)
    batch = await bus.read_group("g", "c1", ["wa", "wb", "wc"], count=100, block_ms=0)
    assert dict(batch) == {"wa": a, "wb": b}


async def test_read_group_blocks_until_publish_and_runs_beside_a_blocked_tail(bus: Bus) -> None:
    await bus.ensure_group("g", ["w1"])
    tail = asyncio.create_task(bus.tail({"other": ZERO_ID}, count=10, block_ms=5000))
    reader = asyncio.create_task(bus.read_group("g", "c1", ["w1"], count=10, block_ms=5000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    started = time.monotonic()
    events = await publish_many(bus, "w1", 1)
    assert await asyncio.wait_for(reader, 1) == [("w1", events)]
    assert time.monotonic() - started < 1
    assert not tail.done()
    bus.wake()
    assert await asyncio.wait_for(tail, 1) == []


async def test_unacked_events_are_autoclaimed_after_min_idle(bus: Bus) -> None:
    await bus.ensure_group("g", ["w1"])
    events = await publish_many(bus, "w1", 5)
    assert await drain(bus, "g", "c1", "w1", 100) == events
    await bus.ack("g", "w1", [events[0].id, events[3].id])
    assert await bus.autoclaim("g", "c2", "w1", min_idle_ms=60_000, count=100) == []
    await asyncio.sleep(0.1)
    assert await bus.autoclaim("g", "c2", "w1", min_idle_ms=50, count=2) == [events[1], events[2]]
    # Claiming resets the idle time: c3 gets only the one c2 did not take.
    assert await bus.autoclaim("g", "c3", "w1", min_idle_ms=50, count=100) == [events[4]]
    await bus.ack("g", "w1", [e.id for e in events])
    await asyncio.sleep(0.1)
    assert await bus.autoclaim("g", "c4", "w1", min_idle_ms=50, count=100) == []
    assert await drain(bus, "g", "c1", "w1", 100) == []  # new deliveries only, none left


async def test_autoclaim_finds_idle_events_behind_many_busy_ones(bus: Bus) -> None:
    await bus.ensure_group("g", ["w1"])
    events = await publish_many(bus, "w1", 15)
    assert await drain(bus, "g", "c1", "w1", 100) == events
    await asyncio.sleep(0.1)
    assert await bus.autoclaim("g", "c2", "w1", min_idle_ms=50, count=12) == events[:12]
    # The first dozen are busy again (just claimed); the idle ones sit behind them.
    assert await bus.autoclaim("g", "c3", "w1", min_idle_ms=50, count=1) == [events[12]]


async def test_handled_up_to_is_the_entry_before_the_oldest_one_not_acked(bus: Bus) -> None:
    assert await bus.handled_up_to("g", "w1") is None  # no stream
    events = await publish_many(bus, "w1", 6)
    assert await bus.handled_up_to("g", "w1") is None  # no such group
    await bus.ensure_group("g", ["w1"])
    assert await bus.handled_up_to("g", "w1") is None  # handed nothing yet
    assert await drain(bus, "g", "c1", "w1", 2) == events[:2]
    assert await drain(bus, "g", "c2", "w1", 2) == events[2:4]
    assert await bus.handled_up_to("g", "w1") is None  # the first is pending
    # Acked out of stream order: the position stops at the oldest entry still pending.
    await bus.ack("g", "w1", [events[2].id, events[3].id])
    assert await bus.handled_up_to("g", "w1") is None
    await bus.ack("g", "w1", [events[0].id])
    assert await bus.handled_up_to("g", "w1") == events[0].id
    await bus.ack("g", "w1", [events[1].id])
    assert await bus.handled_up_to("g", "w1") == events[3].id  # not beyond what was handed
    assert await drain(bus, "g", "c1", "w1", 100) == events[4:]
    await bus.ack("g", "w1", [events[5].id])
    assert await bus.handled_up_to("g", "w1") == events[3].id
    await bus.ack("g", "w1", [events[4].id])
    assert await bus.handled_up_to("g", "w1") == events[5].id
    await bus.ensure_group("h", ["w1"])
    assert await bus.handled_up_to("h", "w1") is None  # each group its own


# --- registry, health ------------------------------------------------------------------


async def test_workspaces_lists_those_that_published(bus: Bus) -> None:
    assert await bus.workspaces() == set()
    await publish_many(bus, "wa", 2)
    await bus.publish("wb", "x", data(1), dedupe_key="k")
    await bus.publish("wb", "x", data(1), dedupe_key="k")
    await bus.ensure_group("g", ["wc"])  # a group alone is not a publish
    assert await bus.workspaces() == {"wa", "wb"}


async def test_ping(bus: Bus) -> None:
    assert await bus.ping() is True


async def test_a_value_is_not_written_nor_recalled_while_its_veto_lives(bus: Bus) -> None:
    assert await bus.remember("wa", "v", "1", ttl_s=60, unless="no")
    assert await bus.recall("wa", "v", unless="no") == "1"
    assert await bus.remember("wa", "no", "x", ttl_s=60)
    assert await bus.recall("wa", "v", unless="no") is None  # kept, and ignored
    assert await bus.recall("wa", "v") == "1"
    assert not await bus.remember("wa", "v", "2", ttl_s=60, unless="no")
    assert await bus.recall("wa", "v") == "1"
    assert await bus.remember("wb", "v", "3", ttl_s=60, unless="no")  # another workspace's
    await bus.forget("wa", ["no"])
    assert await bus.remember("wa", "v", "2", ttl_s=60, unless="no")
    assert await bus.recall("wa", "v", unless="no") == "2"


async def test_stats_sum_length_lag_and_pending_over_streams(make_bus: MakeBus) -> None:
    bus = await make_bus(stream_maxlen=5)
    assert await bus.stats() == BusStats(0, 0, {})
    await bus.ensure_group("g", ["wa", "wb"])
    await publish_many(bus, "wa", 3)
    await publish_many(bus, "wb", 7)  # trimmed to 5
    await bus.ensure_group("h", ["wa"])
    assert await bus.stats() == BusStats(
        2, 8, {"g": GroupStats(lag=8, pending=0), "h": GroupStats(lag=3, pending=0)}
    )
    [(_, handed)] = await bus.read_group("g", "c1", ["wa"], count=2, block_ms=0)
    await bus.ack("g", "wa", [handed[0].id])
    await bus.read_group("g", "c1", ["wb"], count=5, block_ms=0)
    assert await bus.stats() == BusStats(
        2, 8, {"g": GroupStats(lag=1, pending=6), "h": GroupStats(lag=3, pending=0)}
    )
    assert await bus.stats(["wa"]) == BusStats(
        1, 3, {"g": GroupStats(lag=1, pending=1), "h": GroupStats(lag=3, pending=0)}
    )
    capped = await bus.stats(max_streams=1)
    assert capped.streams == 1 and capped.capped and capped.entries in (3, 5)
    assert (await bus.stats(["nobody"])).entries == 0


# --- Redis only ------------------------------------------------------------------------


async def redis_bus(prefix: str, **kwargs: int) -> RedisBus:
    bus = RedisBus(
        REDIS_URL,
        prefix=prefix,
        stream_maxlen=kwargs.get("stream_maxlen", 1000),
        dedupe_ttl_s=kwargs.get("dedupe_ttl_s", 600),
    )
    await bus.start()
    return bus


@pytest.mark.redis
async def test_two_redis_buses_on_one_prefix_see_each_other(redis_prefix: str) -> None:
    one, two = await redis_bus(redis_prefix), await redis_bus(redis_prefix)
    try:
        tail = asyncio.create_task(one.tail({"w1": ZERO_ID}, count=10, block_ms=5000))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        events = await publish_many(two, "w1", 2)
        batch = await asyncio.wait_for(tail, 1)
        assert time.monotonic() - started < 1
        assert batch and batch[0][0] == "w1" and batch[0][1] == events[: len(batch[0][1])]
        assert await one.read("w1", ZERO_ID, 10) == events
        assert await one.last_id("w1") == events[-1].id
        dup = await one.publish("w1", "x", data(1), dedupe_key="k")
        assert (await two.publish("w1", "x", data(1), dedupe_key="k")).id == dup.id
        assert await one.workspaces() == {"w1"}
    finally:
        await one.close()
        await two.close()


@pytest.mark.redis
async def test_redis_key_layout(redis_prefix: str) -> None:
    bus = await redis_bus(redis_prefix, dedupe_ttl_s=300)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        published = await bus.publish(
            "w1", "message.created", data(1), conversation_id="c9", dedupe_key="ig:1"
        )
        stream = f"{redis_prefix}:{{w:w1}}:events"
        assert await client.xrange(stream) == [
            (published.id, {"n": "message.created", "c": "c9", "d": data(1)})
        ]
        dedupe = f"{redis_prefix}:{{w:w1}}:dedupe:ig:1"
        assert await client.get(dedupe) == published.id
        assert 0 < await client.ttl(dedupe) <= 300
        assert await client.smembers(f"{redis_prefix}:workspaces") == {"w1"}
    finally:
        await client.aclose()
        await bus.close()


@pytest.mark.redis
@pytest.mark.parametrize("on_pool", [True, False], ids=["own-connection", "through-client"])
async def test_a_script_the_server_does_not_know_is_loaded_on_its_first_call(on_pool: bool) -> None:
    """As after a Redis restart or a SCRIPT FLUSH: EVALSHA answers NOSCRIPT, the script is
    loaded and called. A source of its own (a fresh comment) is one this server never saw.
    Both ways of calling it: on a connection of its own from the pool (a standalone server)
    and through the client (a cluster's); the pool has its connection back either way."""
    pool = aioredis.ConnectionPool.from_url(REDIS_URL, decode_responses=True)
    client = aioredis.Redis(connection_pool=pool)
    try:
        source = f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1]}}"
        script = Script(client, source, pool if on_pool else None)
        assert await client.script_exists(script.registered.sha) == [False]
        assert await script([b"k"], [b"v"]) == ["k", "v"]
        assert await client.script_exists(script.registered.sha) == [True]
        assert await script([b"k2"], [b"2"]) == ["k2", "2"]
        failing = Script(client, "return redis.error_reply('boom')", pool if on_pool else None)
        for _ in range(2):  # loaded by the first call, if this server did not know it
            with pytest.raises(ResponseError, match="boom"):  # the server's error, as redis-py's
                await failing([], [])
        assert not pool._in_use_connections
        assert await client.ping()
    finally:
        await client.aclose()
        await pool.aclose()


@pytest.mark.redis
async def test_the_pool_queues_callers_past_its_size_and_replaces_a_lost_connection() -> None:
    """`QueuedPool`: six blocking commands on a pool of two all succeed, two at a time, none
    refused with "Too many connections"; an error reply leaves the connection in service; a
    connection the server closed is replaced on the next take."""
    pool = QueuedPool.from_url(REDIS_URL, decode_responses=True, max_connections=2)
    client = aioredis.Redis(connection_pool=pool)
    key = f"hub-test:queued:{uuid.uuid4().hex}"
    peak = 0

    async def blocked() -> Any:
        nonlocal peak
        peak = max(peak, len(pool._in_use_connections))
        return await client.blpop([key], timeout=0.2)

    try:
        started = time.monotonic()
        assert await asyncio.gather(*(blocked() for _ in range(6))) == [None] * 6
        assert time.monotonic() - started >= 0.55  # three rounds of two
        assert peak <= 2 and len(pool._available_connections) == 2
        assert not pool._in_use_connections
        with pytest.raises(ResponseError):
            await client.execute_command("NO-SUCH-COMMAND")
        assert await client.ping() and len(pool._available_connections) == 2
        for client_id in [await client.client_id() for _ in range(2)]:
            await client.client_kill_filter(_id=client_id)
        assert [await client.ping() for _ in range(3)] == [True] * 3
        assert not pool._in_use_connections
    finally:
        await client.aclose()
        await pool.aclose()


@pytest.mark.redis
async def test_redis_deleted_or_lost_events_are_never_a_silent_gap(redis_prefix: str) -> None:
    bus = await redis_bus(redis_prefix)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    stream = f"{redis_prefix}:{{w:w1}}:events"
    try:
        events = await publish_many(bus, "w1", 5)
        await bus.ensure_group("g", ["w1"])
        await client.xdel(stream, events[2].id)
        with pytest.raises(CursorTooOld):
            await bus.read("w1", events[1].id, 10)
        assert await bus.read("w1", events[2].id, 10) == events[3:]
        await client.delete(stream)  # the stream is lost, e.g. Redis restarted without AOF
        assert await bus.last_id("w1") == ZERO_ID
        with pytest.raises(CursorTooOld):
            await bus.read("w1", events[-1].id, 10)
        # The lost group is recreated instead of failing every read.
        fresh = await publish_many(bus, "w1", 1)
        assert await bus.read_group("g", "c1", ["w1"], count=10, block_ms=0) == [("w1", fresh)]
        assert await bus.autoclaim("nogroup", "c1", "w1", min_idle_ms=0, count=10) == []
    finally:
        await client.aclose()
        await bus.close()


def tail_id(bus: RedisBus) -> int | None:
    """The server's client id of the tail's connection (one slot group on a standalone Redis)."""
    assert bus._tail is not None
    return bus._tail._lines[0].client_id


@pytest.mark.redis
async def test_redis_wake_reaches_a_tail_that_reconnected(redis_prefix: str) -> None:
    bus = await redis_bus(redis_prefix)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert await bus.tail({"w1": ZERO_ID}, count=10, block_ms=1) == []
        for settle in range(8):  # wake at different points of the reconnect
            old_id = tail_id(bus)
            await client.client_kill_filter(_id=str(old_id))
            tail = asyncio.create_task(bus.tail({"w1": ZERO_ID}, count=10, block_ms=5000))
            for _ in range(settle):
                await asyncio.sleep(0)
            woken = time.monotonic()
            bus.wake()
            assert await asyncio.wait_for(tail, 2) == []
            assert time.monotonic() - woken < 0.5
            assert tail_id(bus) not in (None, old_id)
    finally:
        await client.aclose()
        await bus.close()


@pytest.mark.redis
async def test_redis_ping_is_false_when_unreachable() -> None:
    bus = RedisBus(
        f"redis://127.0.0.1:{free_port()}/0", prefix="x", stream_maxlen=10, dedupe_ttl_s=10
    )
    await bus.start()
    try:
        assert await bus.ping() is False
    finally:
        await bus.close()


# --- the doorbell (a tail over more than `direct_rooms` rooms) ---------------------------


async def xreads(monitor: Monitor, prefix: str, done: str) -> list[list[str]]:
    """The streams each XREAD on `prefix` named, as MONITOR shows them, up to GET `done`."""
    named: list[list[str]] = []
    while True:
        command = (await monitor.next_command())["command"].split()
        if command == ["GET", done]:
            return named
        if command[0].upper() == "XREAD":
            streams = command[command.index("STREAMS") + 1 :]
            if streams[0].startswith(prefix + ":"):
                named.append(streams[: len(streams) // 2])


@pytest.mark.redis
async def test_doorbell_tail_reads_only_the_streams_that_rang(redis_prefix: str) -> None:
    bus = RedisBus(REDIS_URL, prefix=redis_prefix, stream_maxlen=1000, dedupe_ttl_s=60)
    await bus.start()
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        positions = dict.fromkeys((f"w{i}" for i in range(1000)), ZERO_ID)
        assert len(positions) > bus.direct_rooms  # the defaults
        assert await bus.tail(positions, count=10, block_ms=0) == []  # reads each room once
        rung = ["w3", "w500", "w999"]
        published = {w: [(await bus.publish(w, "m", data(i))).id] for i, w in enumerate(rung)}
        done = f"{redis_prefix}:done"
        async with client.monitor() as monitor:
            watch = asyncio.create_task(xreads(monitor, redis_prefix, done))
            assert await follow(bus, positions, published) == published
            await client.get(done)
            named = await asyncio.wait_for(watch, 5)
        streams = {stream for command in named for stream in command}
        assert streams == {f"{redis_prefix}:changes"} | {bus._key(w) for w in rung}
        assert len(named) == 2  # the changes stream, then the three rung
    finally:
        await client.aclose()
        await bus.close()


def one_bucket(n: int) -> list[str]:
    """`n` workspaces in one bucket: on a cluster, their rings share a changes stream."""
    return [w for w in (f"w{i}" for i in range(100 * n)) if bucket(w) == bucket("w0")][:n]


async def test_doorbell_tail_that_fell_behind_the_changes_stream_misses_nothing(
    make_doorbell: MakeBus,
) -> None:
    bus = await make_doorbell(changes_maxlen=10)
    assert isinstance(bus, RedisBus)
    rooms = one_bucket(300)
    positions = dict.fromkeys(rooms, ZERO_ID)
    assert await bus.tail(positions, count=10, block_ms=0) == []
    published = {w: [(await bus.publish(w, "m", data(i))).id] for i, w in enumerate(rooms)}
    changes = bus._changes_key(bus._slot_group(rooms[0]))
    assert await bus._c.redis.xlen(changes) < len(rooms)  # the first rings were trimmed
    assert await follow(bus, positions, published, block_ms=200) == published


async def test_doorbell_tail_reads_on_a_room_that_answered_a_full_count(
    make_doorbell: MakeBus,
) -> None:
    bus = await make_doorbell()
    positions = {"w1": ZERO_ID, "w2": ZERO_ID}
    assert await bus.tail(positions, count=2, block_ms=0) == []
    published = {"w1": [e.id for e in await publish_many(bus, "w1", 5)]}
    # Five rings come at once; the room's events come two at a time.
    assert await follow(bus, positions, published, count=2, block_ms=200) == published


async def test_doorbell_tail_loses_nothing_as_it_enters_and_leaves(make_doorbell: MakeBus) -> None:
    bus = await make_doorbell(direct_rooms=2)
    positions: dict[str, str] = {}
    for rooms in (["w0"], ["w0", "w1", "w2"], ["w1"], ["w0", "w1", "w2", "w3"], ["w3"]):
        # A tail left blocked on the old rooms, as the fan-out's is when rooms come and go.
        blocked = asyncio.create_task(bus.tail(dict(positions), count=10, block_ms=5000))
        await asyncio.sleep(0.05)
        for workspace_id in set(positions) - set(rooms):
            del positions[workspace_id]
        for workspace_id in set(rooms) - set(positions):
            positions[workspace_id] = await bus.last_id(workspace_id)
        bus.wake()
        published = {w: [(await bus.publish(w, "m", data(i))).id] for i, w in enumerate(rooms)}
        seen: dict[str, list[str]] = {}
        dispatch(await asyncio.wait_for(blocked, 2), positions, seen)
        assert await follow(bus, positions, published, block_ms=500, seen=seen) == published


# --- Redis Cluster only ------------------------------------------------------------------


async def cluster_bus(cluster: PrivateCluster, direct_rooms: int = DIRECT_ROOMS) -> RedisBus:
    prefix = "test-" + uuid.uuid4().hex[:12]
    bus = RedisBus(
        cluster.url,
        prefix=prefix,
        stream_maxlen=1000,
        dedupe_ttl_s=600,
        cluster=True,
        direct_rooms=direct_rooms,
    )
    await bus.start()
    return bus


def calls(cluster: PrivateCluster, command: str) -> int:
    """How many times the cluster's nodes have run `command`, all together."""
    import redis

    total = 0
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            stats = node.info("commandstats").get(f"cmdstat_{command}", {})
            total += int(stats.get("calls", 0))
    return total


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_an_idle_blocking_read_outlasts_the_client_socket_timeout(
    request: pytest.FixtureRequest, kind: str
) -> None:
    """redis-py 8 gives up on a socket after 5 s by default, as long as the fan-out blocks: a
    quiet bucket's read failed the whole tail (and stalled the busy rooms' deliveries). A
    block longer than that, and a group read as long, end quietly with nothing."""
    async with buses(request, kind) as make:
        bus = await make()
        quiet, busy = "w-quiet", "w-busy"
        if kind == "cluster":  # the two rooms in two buckets: two blocking lines
            busy = next(f"w-busy{i}" for i in range(100) if bucket(f"w-busy{i}") != bucket(quiet))
        positions = {quiet: ZERO_ID, busy: ZERO_ID}
        assert await bus.tail(positions, count=10, block_ms=6000) == []
        published = await bus.publish(busy, "m", data(1))
        batch = await bus.tail(positions, count=10, block_ms=6000)
        assert [(w, [e.id for e in events]) for w, events in batch] == [(busy, [published.id])]
        await bus.ensure_group("g", [quiet])
        assert await bus.read_group("g", "c1", [quiet], count=10, block_ms=6000) == []


@pytest.mark.redis
async def test_cluster_keys_are_bucketed_and_workspaces_spread_over_every_shard(
    redis_cluster: PrivateCluster,
) -> None:
    bus = await cluster_bus(redis_cluster)
    client = aioredis.RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        workspaces = [f"w{i}" for i in range(30)]
        for workspace_id in workspaces:
            await bus.publish(workspace_id, "m", data(1), dedupe_key="k")
            await bus.remember(workspace_id, "conv:x", "1", ttl_s=60)
            await bus.count(workspace_id, "sends", window_s=60)
        tag = f"{{b{bucket('w1'):02d}}}:w:w1"
        for suffix in ("events", "dedupe:k", "kv:conv:x", "count:sends"):
            assert await client.exists(f"{bus.prefix}:{tag}:{suffix}") == 1
        # All of a workspace's keys are on one slot; the workspaces on every shard.
        shards = set()
        for workspace_id in workspaces:
            keys = [f"{bus.prefix}:{bus._tag(workspace_id)}:{s}" for s in ("events", "dedupe:k")]
            assert len({client.keyslot(key) for key in keys}) == 1
            node = client.get_node_from_key(keys[0])
            assert node is not None
            shards.add(node.port)
        assert shards == set(redis_cluster.ports)
    finally:
        await client.aclose()
        await bus.close()


@pytest.mark.redis
@pytest.mark.parametrize("doorbell", [False, True], ids=["direct", "doorbell"])
async def test_cluster_reads_over_many_workspaces_cost_one_command_per_bucket(
    redis_cluster: PrivateCluster, doorbell: bool
) -> None:
    bus = await cluster_bus(redis_cluster, direct_rooms=DIRECT_ROOMS if doorbell else 1000)
    try:
        workspaces = [f"w{i}" for i in range(1000)]
        busy = workspaces[::50]  # 20 workspaces, in several buckets
        published = {w: (await bus.publish(w, "m", data(i))).id for i, w in enumerate(busy)}
        positions = dict.fromkeys(workspaces, ZERO_ID)

        before = calls(redis_cluster, "xread")
        first = await bus.tail(positions, count=10, block_ms=2000)
        # Not one per workspace. The doorbell's first call also reads the changes streams.
        assert 1 < calls(redis_cluster, "xread") - before <= BUCKETS * (1 + doorbell)
        seen = {w: [e.id for e in events] for w, events in first}
        for _ in range(BUCKETS):  # the buckets that had not answered yet
            if len(seen) == len(busy):
                break
            seen |= {
                w: [e.id for e in events]
                for w, events in await bus.tail(positions, count=10, block_ms=2000)
            }
        assert seen == {w: [i] for w, i in published.items()}

        await bus.ensure_group("g", workspaces)
        before = calls(redis_cluster, "xreadgroup")
        batch = await bus.read_group("g", "c1", workspaces, count=10, block_ms=2000)
        assert 1 < calls(redis_cluster, "xreadgroup") - before <= BUCKETS
        assert {w: [e.id for e in events] for w, events in batch} == {
            w: [i] for w, i in published.items()
        }  # every bucket's reply is in the one batch: nothing left pending unseen
    finally:
        await bus.close()


@pytest.mark.redis
async def test_cluster_wake_returns_reads_blocked_on_every_shard(
    redis_cluster: PrivateCluster,
) -> None:
    bus = await cluster_bus(redis_cluster)
    try:
        positions = dict.fromkeys((f"w{i}" for i in range(100)), ZERO_ID)
        for _ in range(3):
            tail = asyncio.create_task(bus.tail(positions, count=10, block_ms=5000))
            await asyncio.sleep(0.1)
            assert not tail.done()
            woken = time.monotonic()
            bus.wake()
            assert await asyncio.wait_for(tail, 2) == []
            # Every read was unblocked, not only the first: none lingers into the next tail.
            for _ in range(BUCKETS):
                if not await bus.tail(positions, count=10, block_ms=0):
                    break
            # A read left blocked would hold a tail for its 5 s; a loaded machine needs ~1 s
            # for the follow-up tails over every shard (a full CI run took 1.03 s once).
            assert time.monotonic() - woken < 2.5
        published = await bus.publish("w7", "m", data(7))
        batch = await asyncio.wait_for(bus.tail(positions, count=10, block_ms=5000), 2)
        assert [(w, [e.id for e in events]) for w, events in batch] == [("w7", [published.id])]
    finally:
        await bus.close()


@pytest.mark.redis
def test_cluster_ping_is_false_when_a_shard_is_away() -> None:
    need_binaries()
    with private_cluster() as cluster:  # a cluster of its own, to break

        async def ping() -> bool:
            bus = await cluster_bus(cluster)
            try:
                return await bus.ping()
            finally:
                await bus.close()

        assert asyncio.run(ping()) is True
        cluster.procs[-1].kill()
        cluster.procs[-1].wait()
        assert asyncio.run(ping()) is False


@pytest.mark.redis
def test_cluster_reads_follow_a_bucket_moved_to_another_shard() -> None:
    need_binaries()
    with private_cluster() as cluster:  # a cluster of its own, to reshard

        async def run() -> None:
            bus = await cluster_bus(cluster)
            try:
                await bus.ensure_group("g", ["w1"])
                first = await bus.publish("w1", "m", data(1))
                assert await bus.read_group("g", "c1", ["w1"], count=10, block_ms=0)
                tail = asyncio.create_task(bus.tail({"w1": first.id}, count=10, block_ms=5000))
                await asyncio.sleep(0.1)
                slot = key_slot(bus._key("w1").encode())
                away = next(p for p in cluster.ports if p != cluster.owner(slot))
                await asyncio.to_thread(cluster.move_slot, slot, away)
                later = await bus.publish("w1", "m", data(2))  # the shared client follows MOVED
                with pytest.raises(AskError):  # the blocked read is answered MOVED
                    await asyncio.wait_for(tail, 3)
                for _ in range(5):  # the caller retries, as the fan-out and the consumers do
                    try:
                        batch = await bus.tail({"w1": first.id}, count=10, block_ms=1000)
                        group = await bus.read_group("g", "c1", ["w1"], count=10, block_ms=1000)
                        break
                    except RedisError:
                        await asyncio.sleep(0.1)
                ids = [[e.id for e in events] for _, events in batch]
                assert ids == [[later.id]]
                assert [[e.id for e in events] for _, events in group] == [[later.id]]
            finally:
                await bus.close()

        asyncio.run(run())


async def test_a_new_stream_refuses_cursors_from_before_it(make_bus: MakeBus) -> None:
    bus = await make_bus()
    # A cursor from an earlier life of the stream (before a restart or a loss): never a gap.
    old_cursor = f"{int(time.time() * 1000) - 60_000}-5"
    first = (await bus.publish("w-reborn", "m", "{}")).id
    await bus.publish("w-reborn", "m", "{}")
    with pytest.raises(CursorTooOld):
        await bus.read("w-reborn", old_cursor, 10)
    assert len(await bus.read("w-reborn", ZERO_ID, 10)) == 2  # "seen nothing": all of it
    assert len(await bus.read("w-reborn", first, 10)) == 1


async def test_a_stream_made_by_a_group_still_gets_its_baseline(make_bus: MakeBus) -> None:
    bus = await make_bus()
    await bus.ensure_group("g", ["w-grouped"])
    old_cursor = f"{int(time.time() * 1000) - 60_000}-0"
    await bus.publish("w-grouped", "m", "{}")
    with pytest.raises(CursorTooOld):
        await bus.read("w-grouped", old_cursor, 10)


async def test_remember_and_recall(make_bus: MakeBus) -> None:
    bus, other = await make_bus(), await make_bus()
    assert await bus.recall("w1", "conv:x") is None
    await bus.remember("w1", "conv:x", "a|b|webchat|dm", ttl_s=60)
    assert await bus.recall("w1", "conv:x") == "a|b|webchat|dm"
    assert await bus.recall("w2", "conv:x") is None
    if isinstance(bus, RedisBus):
        assert await other.recall("w1", "conv:x") == "a|b|webchat|dm"  # shared by processes
    await bus.remember("w1", "conv:x", "newer", ttl_s=1)
    await asyncio.sleep(1.2)
    assert await bus.recall("w1", "conv:x") is None


async def test_remember_only_new_is_a_claim_one_caller_wins(make_bus: MakeBus) -> None:
    bus = await make_bus()
    results = await asyncio.gather(
        *(bus.remember("w1", "claim:m1", f"worker-{i}", ttl_s=60, only_new=True) for i in range(20))
    )
    assert results.count(True) == 1
    winner = await bus.recall("w1", "claim:m1")
    assert winner == f"worker-{results.index(True)}"
    assert (
        await bus.remember("w1", "claim:m1", "late", ttl_s=60) is True
    )  # plain remember overwrites


# --- counters (rate limits) ------------------------------------------------------------


async def test_count_answers_each_increment_within_a_window(make_bus: MakeBus) -> None:
    bus, other = await make_bus(), await make_bus()
    assert [await bus.count("w1", "sends:v1", window_s=1) for _ in range(3)] == [1, 2, 3]
    assert await bus.count("w2", "sends:v1", window_s=1) == 1  # per workspace
    assert await bus.count("w1", "sends:v2", window_s=1) == 1  # per key
    if isinstance(bus, RedisBus):
        assert await other.count("w1", "sends:v1", window_s=1) == 4  # shared by processes
    await asyncio.sleep(1.2)
    assert await bus.count("w1", "sends:v1", window_s=1) == 1  # a new window


async def test_count_window_starts_at_the_first_increment_and_is_not_extended(bus: Bus) -> None:
    assert await bus.count("w1", "k", window_s=1) == 1
    await asyncio.sleep(0.6)
    assert await bus.count("w1", "k", window_s=1) == 2
    await asyncio.sleep(0.6)  # 1.2 s after the first: its window is over
    assert await bus.count("w1", "k", window_s=1) == 1


async def test_count_is_atomic_under_concurrency(bus: Bus) -> None:
    values = await asyncio.gather(*(bus.count("w1", "k", window_s=60) for _ in range(50)))
    assert sorted(values) == list(range(1, 51))


async def test_a_burst_of_concurrent_calls_waits_for_connections(bus: Bus) -> None:
    """More calls at once than a process keeps connections (a reconnect storm's resumes): they
    wait their turn instead of failing."""
    events = await publish_many(bus, "w1", 3)
    reads = await asyncio.gather(*(bus.read("w1", ZERO_ID, 10) for _ in range(600)))
    assert all(r == events for r in reads)


@pytest.mark.redis
async def test_redis_counter_key_layout_and_expiry(redis_prefix: str) -> None:
    bus = await redis_bus(redis_prefix)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await bus.count("w1", "sends:v1", window_s=60)
        await bus.count("w1", "sends:v1", window_s=60)
        key = f"{redis_prefix}:{{w:w1}}:count:sends:v1"
        assert await client.get(key) == "2"
        assert 0 < await client.ttl(key) <= 60
    finally:
        await client.aclose()
        await bus.close()


# --- erasure: purge and forget ---------------------------------------------------------


def about(i: int, person: str, conversation: str = "") -> str:
    return json.dumps({"i": i, "message": {"contact_id": person, "conversation_id": conversation}})


async def test_purge_deletes_the_entries_that_mention_the_ids_up_to_a_point(bus: Bus) -> None:
    published: list[Event] = []
    for i, (person, conversation, room) in enumerate(
        [("p1", "c1", "c1"), ("p2", "c2", "c2"), ("p1", "c1", ""), ("x", "", "c1"), ("p2", "", "")]
    ):
        data_i = about(i, person, conversation)
        done = await bus.publish("w1", "e", data_i, conversation_id=room)
        published.append(Event(done.id, "e", data_i, room))
    await publish_many(bus, "w2", 2)
    up_to = published[3].id
    later = await bus.publish("w1", "e", about(9, "p1", "c1"), conversation_id="c1")

    assert await bus.purge("w1", ["p1", "c1", ""], up_to=up_to) == 3  # by data and by room
    remaining = [published[1], published[4], Event(later.id, "e", about(9, "p1", "c1"), "c1")]
    assert await kept(bus, "w1") == remaining  # after `up_to` nothing was touched
    assert await bus.purge("w1", ["p1", "c1"], up_to=up_to) == 0  # again: nothing more
    assert await bus.purge("w1", ["nobody"], up_to=later.id) == 0
    assert len(await kept(bus, "w2")) == 2  # another workspace's stream is its own
    with pytest.raises(CursorTooOld):  # a reader from before a deleted entry: never a gap
        await bus.read("w1", published[2].id, 10)
    with pytest.raises(CursorTooOld):
        await bus.read("w1", ZERO_ID, 10)
    assert await bus.read("w1", published[3].id, 10) == remaining[1:]
    assert await bus.last_id("w1") == later.id


async def test_purged_entries_never_reach_a_consumer_group(bus: Bus) -> None:
    await bus.ensure_group("g", ["w1"])
    first = [await bus.publish("w1", "e", about(i, f"p{i % 2}")) for i in range(4)]
    assert [e.id for e in await drain(bus, "g", "c1", "w1", 2)] == [p.id for p in first[:2]]
    rest = [await bus.publish("w1", "e", about(i, f"p{i % 2}")) for i in range(4, 6)]
    assert await bus.purge("w1", ["p0"], up_to=rest[-1].id) == 3  # pending, new and newest
    await asyncio.sleep(0.1)
    claimed = await bus.autoclaim("g", "c2", "w1", min_idle_ms=50, count=10)
    assert [e.id for e in claimed] == [first[1].id]  # the pending p0 is gone
    delivered = await drain(bus, "g", "c1", "w1", 10)
    assert [e.id for e in delivered] == [first[3].id, rest[1].id]  # each kept one once
    assert await drain(bus, "g", "c1", "w1", 10) == []
    after = await bus.publish("w1", "e", about(7, "p0"))
    assert [e.id for e in await drain(bus, "g", "c1", "w1", 10)] == [after.id]


async def test_purge_goes_through_a_long_stream_in_batches(make_bus: MakeBus) -> None:
    bus = await make_bus(stream_maxlen=5000)
    ids = [
        (await bus.publish("w1", "e", about(i, "p" if i % 7 == 0 else "q"))).id for i in range(1100)
    ]
    assert await bus.purge("w1", ["p"], up_to=ids[-1]) == len(range(0, 1100, 7))
    assert [json.loads(e.data)["i"] for e in await kept(bus, "w1")] == [
        i for i in range(1100) if i % 7
    ]


async def test_forget_removes_remembered_keys(make_bus: MakeBus) -> None:
    bus, other = await make_bus(), await make_bus()
    await bus.remember("w1", "conv:a", "1", ttl_s=60)
    await bus.remember("w1", "conv:b", "2", ttl_s=60)
    await bus.remember("w2", "conv:a", "3", ttl_s=60)
    await bus.forget("w1", ["conv:a", "never-there"])
    await bus.forget("w1", [])
    assert await bus.recall("w1", "conv:a") is None
    assert await bus.recall("w1", "conv:b") == "2"
    assert await bus.recall("w2", "conv:a") == "3"
    if isinstance(bus, RedisBus):
        await other.forget("w1", ["conv:b"])  # shared by processes
        assert await bus.recall("w1", "conv:b") is None


# --- retention: trim_before ----------------------------------------------------------------


async def two_ages(bus: Bus, workspace_id: str) -> tuple[list[Event], list[Event], int]:
    """Three older events, then two newer ones whose millisecond is the cut between them."""
    older = await publish_many(bus, workspace_id, 3)
    await asyncio.sleep(0.005)
    newer = await publish_many(bus, workspace_id, 2, start=3)
    cut = parse_id(newer[0].id)[0]
    assert parse_id(older[-1].id)[0] < cut
    return older, newer, cut


async def test_trim_before_deletes_the_entries_older_than_a_millisecond(bus: Bus) -> None:
    older, newer, cut = await two_ages(bus, "w1")
    await publish_many(bus, "w2", 2)
    assert await bus.trim_before("w1", cut) == 3
    assert await kept(bus, "w1") == newer
    assert len(await kept(bus, "w2")) == 2  # another workspace's stream is its own
    with pytest.raises(CursorTooOld):  # a reader from before the cut: never a gap
        await bus.read("w1", older[1].id, 10)
    with pytest.raises(CursorTooOld):
        await bus.read("w1", ZERO_ID, 10)
    assert await bus.read("w1", older[-1].id, 10) == newer  # had read all that went
    assert await bus.read("w1", newer[0].id, 10) == newer[1:]
    assert await bus.trim_before("w1", cut) == 0  # again: nothing more
    assert await bus.trim_before("w1", 0) == 0
    assert await bus.trim_before("nowhere", cut) == 0
    assert await bus.last_id("w1") == newer[-1].id
    later = await bus.publish("w1", "e", data(9))
    assert [e.id for e in await bus.read("w1", newer[-1].id, 10)] == [later.id]


async def test_trimmed_entries_never_reach_a_consumer_group(bus: Bus) -> None:
    await bus.ensure_group("g", ["w1"])
    older, newer, cut = await two_ages(bus, "w1")
    assert [e.id for e in await drain(bus, "g", "c1", "w1", 2)] == [e.id for e in older[:2]]
    assert await bus.trim_before("w1", cut) == 3  # two pending, one never delivered
    await asyncio.sleep(0.1)
    assert await bus.autoclaim("g", "c2", "w1", min_idle_ms=50, count=10) == []
    assert [e.id for e in await drain(bus, "g", "c1", "w1", 10)] == [e.id for e in newer]


async def test_the_lean_data_travels_with_its_entry_and_goes_with_it(bus: Bus) -> None:
    """Protocol v2's data (`publish(lean=...)`) is read back with its entry by every reader,
    is "" for an entry published without one, and a purge or a trim takes it with the entry."""
    await bus.ensure_group("g", ["w"])
    full = await bus.publish("w", "message.created", '{"v":1,"who":"p1"}', lean='{"who":"p1"}')
    plain = await bus.publish("w", "presence", '{"v":1}')
    [read_full, read_plain] = await bus.read("w", ZERO_ID, 10)
    assert (read_full.data, read_full.lean) == ('{"v":1,"who":"p1"}', '{"who":"p1"}')
    assert (read_plain.id, read_plain.lean) == (plain.id, "")
    [(_, tailed)] = await bus.tail({"w": ZERO_ID}, count=10, block_ms=100)
    assert [e.lean for e in tailed] == ['{"who":"p1"}', ""]
    [(_, grouped)] = await bus.read_group("g", "c1", ["w"], count=10, block_ms=100)
    assert [e.lean for e in grouped] == ['{"who":"p1"}', ""]
    assert await bus.purge("w", ["p1"], up_to=plain.id) == 1
    assert [e.id for e in await bus.read("w", full.id, 10)] == [plain.id]
    assert all(not e.lean for e in await bus.read("w", full.id, 10))
