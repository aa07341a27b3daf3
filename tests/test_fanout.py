"""Fan-out on one node over the in-process bus: resume exactness, visitor filtering and
backpressure."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from hub.bus import parse_id
from hub.bus.memory import MemoryBus
from hub.errors import CursorTooOld, SessionEnded, TooSlow
from hub.realtime.fanout import Fanout, Outlet
from schemas.events import MemberRemoved

pytestmark = pytest.mark.unit


@pytest.fixture
async def fanout() -> Fanout:
    bus = MemoryBus(stream_maxlen=10_000, dedupe_ttl_s=60)
    fan = Fanout(bus, resume_max_events=5_000, block_ms=200)
    await fan.start()
    yield fan
    await fan.stop()


def ids_of(outlet: Outlet) -> list[str]:
    return [json.loads(f)["id"] for f in outlet.outbox if json.loads(f)["type"] == "event"]


async def publish(
    bus: MemoryBus, n: int, conversation: str = "c1", workspace: str = "w"
) -> list[str]:
    return [
        (
            await bus.publish(
                workspace, "message.created", json.dumps({"i": i}), conversation_id=conversation
            )
        ).id
        for i in range(n)
    ]


async def settle(fan: Fanout, outlet: Outlet, count: int) -> None:
    for _ in range(200):
        if len(ids_of(outlet)) >= count:
            return
        await asyncio.sleep(0.01)


async def test_live_outlet_gets_every_event_once_in_order(fanout: Fanout) -> None:
    outlet = Outlet(10_000, "w")
    welcomed: list[tuple[str, bool]] = []
    await fanout.join(outlet, None, lambda c, r: welcomed.append((c, r)))
    assert welcomed == [("0-0", False)]
    sent = await publish(fanout.bus, 50)  # type: ignore[arg-type]
    await settle(fanout, outlet, 50)
    assert ids_of(outlet) == sent


async def test_resume_while_publishing_has_no_gap_and_no_duplicate(fanout: Fanout) -> None:
    bus = fanout.bus
    watcher = Outlet(100_000, "w")  # keeps the room alive and its position moving
    await fanout.join(watcher, None, lambda c, r: None)
    first = await publish(bus, 700)  # type: ignore[arg-type]
    cursor = first[99]

    async def keep_publishing() -> list[str]:
        out = []
        for _ in range(30):
            out += await publish(bus, 10)  # type: ignore[arg-type]
            await asyncio.sleep(0)
        return out

    resumer = Outlet(100_000, "w")
    later, _ = await asyncio.gather(
        keep_publishing(),
        fanout.join(
            resumer,
            cursor,
            lambda c, r: resumer.outbox.append(
                json.dumps({"type": "welcome", "cursor": c, "resumed": r})
            ),
        ),
    )
    expected = first[100:] + later
    await settle(fanout, resumer, len(expected))
    assert json.loads(resumer.outbox[0]) == {"type": "welcome", "cursor": cursor, "resumed": True}
    assert ids_of(resumer) == expected


async def test_visitor_sees_only_its_conversation(fanout: Fanout) -> None:
    visitor = Outlet(1000, "w", conversation_id="mine")
    agent = Outlet(1000, "w")
    await fanout.join(visitor, None, lambda c, r: None)
    await fanout.join(agent, None, lambda c, r: None)
    theirs = await publish(fanout.bus, 3, "theirs")  # type: ignore[arg-type]
    mine = await publish(fanout.bus, 2, "mine")  # type: ignore[arg-type]
    await fanout.bus.publish("w", "presence", "{}")
    await settle(fanout, agent, 6)
    assert ids_of(agent)[:5] == theirs + mine
    assert ids_of(visitor) == mine


async def test_other_workspaces_are_invisible(fanout: Fanout) -> None:
    outlet = Outlet(1000, "w")
    await fanout.join(outlet, None, lambda c, r: None)
    await publish(fanout.bus, 5, workspace="other")  # type: ignore[arg-type]
    mine = await publish(fanout.bus, 1)  # type: ignore[arg-type]
    await settle(fanout, outlet, 1)
    await asyncio.sleep(0.05)
    assert ids_of(outlet) == mine


async def test_a_removed_members_every_socket_closes_with_4410_and_no_one_elses(
    fanout: Fanout,
) -> None:
    """`member.removed` closes the user's agent sockets, whether a session (`session_id`) or
    an API token (none) opened them; other agents and visitors get the next event, and no
    socket is ever sent the notice itself."""
    removed, other = str(uuid.uuid4()), str(uuid.uuid4())
    by_session, by_token, others = Outlet(1000, "w"), Outlet(1000, "w"), Outlet(1000, "w")
    by_session.session_id, by_session.user_id = str(uuid.uuid4()), removed
    by_token.user_id, others.user_id = removed, other
    visitor = Outlet(1000, "w", conversation_id="c1")
    for outlet in (by_session, by_token, others, visitor):
        await fanout.join(outlet, None, lambda c, r: None)
    notice = MemberRemoved(user_id=uuid.UUID(removed))
    await fanout.bus.publish("w", notice.NAME, notice.dump())
    after = await publish(fanout.bus, 1)  # type: ignore[arg-type]
    await settle(fanout, others, 1)
    await settle(fanout, visitor, 1)
    for gone in (by_session, by_token):
        assert gone.closing and isinstance(gone.error, SessionEnded)
        assert gone.error.close_code == 4410
        assert [json.loads(f)["code"] for f in gone.outbox] == ["session_ended"]
    assert ids_of(others) == after and ids_of(visitor) == after
    assert not others.closing and not visitor.closing


async def test_slow_outlet_is_closed_with_1013_and_room_carries_on(fanout: Fanout) -> None:
    slow = Outlet(10, "w")
    fast = Outlet(10_000, "w")
    await fanout.join(slow, None, lambda c, r: None)
    await fanout.join(fast, None, lambda c, r: None)
    sent = await publish(fanout.bus, 100)  # type: ignore[arg-type]
    await settle(fanout, fast, 100)
    assert ids_of(fast) == sent
    assert slow.closing and isinstance(slow.error, TooSlow)
    assert slow.error.close_code == 1013
    assert len(slow.outbox) == 1 and json.loads(slow.outbox[0])["code"] == "too_slow"


async def test_resume_from_trimmed_cursor_is_too_old() -> None:
    bus = MemoryBus(stream_maxlen=10, dedupe_ttl_s=60)
    fan = Fanout(bus, resume_max_events=1000, block_ms=100)
    sent = await publish(bus, 30)
    welcomed: list[object] = []
    with pytest.raises(CursorTooOld):
        await fan.join(Outlet(100, "w"), sent[2], lambda c, r: welcomed.append(c))
    assert welcomed == []  # no welcome before the refusal
    assert fan.rooms == {}
    outlet = Outlet(100, "w")
    await fan.join(outlet, sent[25], lambda c, r: None)
    assert ids_of(outlet) == sent[26:]


class CountingBus(MemoryBus):
    """The in-process bus, counting the stream reads that resumes make."""

    reads = 0

    async def read(self, workspace_id: str, after: str, count: int) -> list:  # type: ignore[override]
        self.reads += 1
        return await super().read(workspace_id, after, count)


@pytest.fixture
async def counted() -> Fanout:
    fan = Fanout(CountingBus(stream_maxlen=10_000, dedupe_ttl_s=60), resume_max_events=5_000,
                 block_ms=200, linger_s=0.3)  # fmt: skip
    await fan.start()
    yield fan
    await fan.stop()


async def resume(fan: Fanout, outlet: Outlet, cursor: str) -> None:
    await fan.join(outlet, cursor, lambda c, r: None)


async def test_a_recent_cursor_is_caught_up_from_memory_without_reading_the_stream(
    counted: Fanout,
) -> None:
    bus: CountingBus = counted.bus  # type: ignore[assignment]
    agent = Outlet(100_000, "w")
    await counted.join(agent, None, lambda c, r: None)
    mine = await publish(bus, 20, "mine")
    theirs = await publish(bus, 300, "theirs")
    mine += await publish(bus, 5, "mine")
    await settle(counted, agent, 325)
    visitor, watcher = Outlet(1000, "w", conversation_id="mine"), Outlet(100_000, "w")
    await resume(counted, visitor, mine[9])
    await resume(counted, watcher, theirs[99])
    assert bus.reads == 0
    assert ids_of(visitor) == mine[10:]  # only its own conversation
    assert ids_of(watcher) == theirs[100:] + mine[20:]
    later = await publish(bus, 3, "mine")  # and then live, exactly once
    await settle(counted, visitor, len(mine) - 10 + 3)
    assert ids_of(visitor) == mine[10:] + later


async def test_too_much_to_replay_from_memory_is_read_from_the_stream() -> None:
    bus = CountingBus(stream_maxlen=10_000, dedupe_ttl_s=60)
    fan = Fanout(bus, resume_max_events=100, block_ms=200, linger_s=0.3)
    await fan.start()
    try:
        agent = Outlet(100_000, "w")
        await fan.join(agent, None, lambda c, r: None)
        sent = await publish(bus, 300)
        await settle(fan, agent, 300)
        many = Outlet(100_000, "w")  # 250 missed: more than resume_max_events to hold here
        await resume(fan, many, sent[49])
        assert bus.reads >= 1 and ids_of(many) == sent[50:]
        small = Outlet(40, "w")  # 30 missed: more than half its outbox
        sent_out: list[str] = []

        class Sink:  # a socket that sends its outbox at once
            def write(self, frame: str) -> bool:
                return False

            def pump(self) -> None:
                sent_out.extend(small.outbox)
                small.outbox.clear()

        small.sink = Sink()
        await resume(fan, small, sent[269])
        assert bus.reads >= 2
        assert [json.loads(f)["id"] for f in sent_out] == sent[270:]
    finally:
        await fan.stop()


async def test_an_erasure_is_never_replayed_from_memory(counted: Fanout) -> None:
    bus: CountingBus = counted.bus  # type: ignore[assignment]
    agent = Outlet(100_000, "w")
    await counted.join(agent, None, lambda c, r: None)
    kept = await publish(bus, 3, "kept")
    erased = await publish(bus, 4, "erased")
    await settle(counted, agent, 7)
    await bus.purge("w", ["erased"], up_to=erased[-1])  # what the erasure does, then announces
    deleted = await bus.publish("w", "contact.deleted", json.dumps({"conversation_ids": []}))
    await settle(counted, agent, 8)
    late = Outlet(1000, "w")
    with pytest.raises(CursorTooOld):  # from the stream: reload over REST
        await resume(counted, late, kept[0])
    assert bus.reads == 1 and ids_of(late) == []
    after = Outlet(1000, "w")  # a cursor from after the erasure is fine
    await resume(counted, after, deleted.id)
    assert ids_of(after) == []


async def test_a_room_outlives_its_last_socket_for_a_while(counted: Fanout) -> None:
    bus: CountingBus = counted.bus  # type: ignore[assignment]
    first = Outlet(1000, "w")
    await counted.join(first, None, lambda c, r: None)
    sent = await publish(bus, 10)
    await settle(counted, first, 10)
    counted.leave(first)
    more = await publish(bus, 5)  # while nobody is here: still tailed
    await asyncio.sleep(0.1)
    back = Outlet(1000, "w")
    await resume(counted, back, sent[-1])
    assert bus.reads == 0 and ids_of(back) == more
    counted.leave(back)
    await asyncio.sleep(0.5)
    assert counted.rooms == {}


def test_recent_events_keep_a_bounded_window_and_each_conversation_apart() -> None:
    from hub.bus import Event
    from hub.realtime.fanout import RECENT_EVENTS, RECENT_MS, Recent

    recent = Recent("1000-0")
    events = [
        Event(f"{1001 + i}-0", "message.created", "{}", f"c{i % 3}")
        for i in range(2 * RECENT_EVENTS)
    ]
    for event in events:
        recent.add(event, parse_id(event.id))
    kept = events[-RECENT_EVENTS:]  # trimmed once it held twice the count
    assert recent.after(parse_id(events[0].id), None) is None  # may have gone: read the stream
    cursor = kept[100].id
    assert recent.after(parse_id(cursor), None) == (RECENT_EVENTS - 101, kept[101:])
    missed, mine = recent.after(parse_id(cursor), "c1") or (0, [])
    assert missed == RECENT_EVENTS - 101
    assert mine == [e for e in kept[101:] if e.conversation_id == "c1"]
    late = Event(f"{1001 + 2 * RECENT_EVENTS + 3 * RECENT_MS}-0", "typing", "{}", "c1")
    recent.add(late, parse_id(late.id))  # far later: everything older than the age goes
    assert recent.after(parse_id(kept[-1].id), "c1") == (1, [late])
    assert recent.after(parse_id(cursor), None) is None


async def test_under_load_a_round_gathers_what_arrives_during_its_pause() -> None:
    """Above `gather_above` events/s the tail pauses after a round that found events, so the
    next round reads what arrived meanwhile; below it, each event is read as it comes. Every
    event reaches the socket once, in order, either way."""

    async def rounds_when_loaded(gather_above: float) -> int:
        bus = MemoryBus(stream_maxlen=10_000, dedupe_ttl_s=60)
        fan = Fanout(bus, resume_max_events=5_000, block_ms=200, gather_above=gather_above,
                     gather_s=0.02)  # fmt: skip
        await fan.start()
        try:
            outlet = Outlet(100_000, "w")
            await fan.join(outlet, None, lambda c, r: None)
            loop = asyncio.get_running_loop()
            sent: list[str] = []
            rounds_before = 0
            for phase_s in (0.15, 0.3):  # the rate is judged over the first; counted after
                end = loop.time() + phase_s
                while loop.time() < end:
                    sent += await publish(bus, 1)
                    await asyncio.sleep(0.002)
                if not rounds_before:
                    await settle(fan, outlet, len(sent))
                    rounds_before = fan.delivery.rounds
            await settle(fan, outlet, len(sent))
            assert ids_of(outlet) == sent
            assert fan.delivery.events == len(sent)
            return fan.delivery.rounds - rounds_before
        finally:
            await fan.stop()

    gathered = await rounds_when_loaded(0.0)  # any rate is load
    one_by_one = await rounds_when_loaded(float("inf"))  # never
    assert gathered <= 25 < 40 <= one_by_one  # 0.3 s: about 14 pauses, about 100 events
