"""Fan-out on one web node: one bus reader for all rooms, and bounded per-socket outboxes.

A room is a workspace that has sockets on this node. One task tails every room's
stream (`Bus.tail`) and hands each event's frame, encoded once per protocol version
(`Event.frames`: v2's lean data was made at publish), to the room's live sockets:
every agent, and the visitors of the event's conversation.

Backpressure: a socket's outbox holds at most `outbox_max_frames` frames. Offering
one more never waits: `Outlet.overflow` closes that socket with 1013 (reconnect and
resume) and the room carries on. Nothing else in this module can block on a socket.

Resume: a socket joins as "catching up" from its cursor, reads the stream itself
until it has reached the room's position, and only then turns live; the comparison
and the switch happen without an await in between, so no event is missed or sent
twice. See `Fanout.join`.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hub.bus import Bus, Event, parse_id
from hub.errors import CursorTooOld, HubError, TooSlow, outage
from hub.errors import SessionEnded as SessionEndedError
from hub.realtime.wire import SharedFrame
from hub.web.metrics import Delivery
from schemas.events import MemberRemoved, SessionEnded

SESSION_ENDED = SessionEnded.NAME
MEMBER_REMOVED = MemberRemoved.NAME
INTERNAL = frozenset({SESSION_ENDED, MEMBER_REMOVED})  # for the fan-out itself, not for clients

log = logging.getLogger("hub.fanout")

READ_BATCH = 500
RECENT_EVENTS = 10_000  # per room, for resumes from memory (about 1 KB each)
RECENT_MS = 60_000
ROOM_LINGER_S = 30.0
# Under load the tail gathers (see `Fanout._run`): above this many events a second read by
# the process, a round that found events is followed by a pause of GATHER_S.
GATHER_ABOVE = 1500.0
GATHER_S = 0.001
GATHER_WINDOW_S = 0.1  # how often the rate is judged


class Sink(Protocol):
    """Where an outlet's frames go: the socket's sending half (`hub.realtime.sending`)."""

    def write(self, frame: str) -> bool:
        """Send `frame` at once, if nothing waits before it; False if it must be queued."""
        ...

    def pump(self) -> None:
        """Start sending the outbox (and the close, once closing)."""
        ...


def shared_frames(event: Event) -> tuple[SharedFrame, SharedFrame]:
    """The event's frames of v1 and v2 (`Event.frames`) for a whole room: each one's websocket
    encoding is made on its first direct write and reused for the room's other sockets; one
    encoding serves both versions when their frames are the same."""
    v1, v2 = event.frames()
    first = SharedFrame(v1)
    return first, (first if v2 is v1 else SharedFrame(v2))


class Outlet:
    """The sending half of one socket as the fan-out sees it: a bounded outbox, and the `sink`
    the socket sets. A frame goes to the sink at once when nothing is queued before it and the
    socket takes it; otherwise it is queued, and the sink is pumped. An idle socket has no
    task of its own waiting here: the sink runs one only while frames wait."""

    __slots__ = (
        "closing",
        "conversation_id",
        "error",
        "limit",
        "outbox",
        "session_id",
        "sink",
        "user_id",
        "version",
        "workspace_id",
    )

    def __init__(
        self, limit: int, workspace_id: str = "", conversation_id: str | None = None
    ) -> None:
        self.outbox: list[str] = []  # short as a rule, and small when empty (a deque is not)
        self.limit = limit
        self.sink: Sink | None = None
        self.closing = False
        self.error: HubError | None = None
        self.workspace_id = workspace_id
        self.conversation_id = conversation_id  # None: an agent, who sees the whole workspace
        self.session_id: str | None = None  # an agent's sign-in session, if it came from one
        self.user_id: str | None = None  # an agent's user (a session's or an API token's)
        self.version = 1  # the protocol version of its frames, as its hello asked

    def offer(self, frame: str) -> None:
        if self.closing:
            return
        sink = self.sink
        if not self.outbox and sink is not None and sink.write(frame):
            return
        if len(self.outbox) >= self.limit:
            self.overflow()
            return
        self.outbox.append(frame)
        if sink is not None:
            sink.pump()

    def overflow(self) -> None:
        """The overflow policy: drop what is queued and close with 1013 so the client resumes."""
        self.outbox.clear()
        self.fail(TooSlow())

    def fail(self, error: HubError) -> None:
        """Send what is queued, then the error frame, then close with the error's code."""
        if self.closing:
            return
        frame = {"type": "error", "code": error.code, "message": error.message}
        self.outbox.append(json.dumps(frame))
        self.shut(error)

    def shut(self, error: HubError) -> None:
        if not self.closing:
            self.closing = True
            self.error = error
            if self.sink is not None:
                self.sink.pump()

    def sees(self, event: Event) -> bool:
        if event.name in INTERNAL:
            return False
        return self.conversation_id is None or event.conversation_id == self.conversation_id


class Recent:
    """A room's latest events, as dispatched, so that a socket resuming from a recent cursor
    catches up from this node's memory instead of reading the stream (a reconnect storm
    would otherwise read it once per socket). Complete from `since` on; it keeps at most
    `RECENT_EVENTS` events and none older than `RECENT_MS`. Each conversation's events are
    also listed apart, for its visitors."""

    __slots__ = ("events", "ids", "since", "threads")

    def __init__(self, since: str) -> None:
        self.since = parse_id(since)
        self.events: list[Event] = []
        self.ids: list[tuple[int, int]] = []
        self.threads: dict[str, tuple[list[tuple[int, int]], list[Event]]] = {}

    def add(self, event: Event, position: tuple[int, int]) -> None:
        self.events.append(event)
        self.ids.append(position)
        self._thread(event, position)
        # Trimmed in steps, not on every event: once twice the count, or twice the age.
        if len(self.events) >= 2 * RECENT_EVENTS or position[0] - self.ids[0][0] > 2 * RECENT_MS:
            cut = max(
                len(self.events) - RECENT_EVENTS,
                bisect.bisect_left(self.ids, (position[0] - RECENT_MS, 0)),
            )
            self.since = self.ids[cut - 1]  # complete from the last event let go
            del self.events[:cut], self.ids[:cut]
            self.threads = {}
            for kept, at in zip(self.events, self.ids, strict=True):
                self._thread(kept, at)

    def _thread(self, event: Event, position: tuple[int, int]) -> None:
        if event.conversation_id:
            ids, events = self.threads.setdefault(event.conversation_id, ([], []))
            ids.append(position)
            events.append(event)

    def after(
        self, cursor: tuple[int, int], conversation_id: str | None
    ) -> tuple[int, list[Event]] | None:
        """How many events came after `cursor`, and those of them that a socket of
        `conversation_id` (None: an agent) sees; None if some may have gone from here."""
        if cursor < self.since:
            return None
        missed = len(self.events) - bisect.bisect_right(self.ids, cursor)
        if conversation_id is None:
            return missed, self.events[len(self.events) - missed :]
        ids, events = self.threads.get(conversation_id, ([], []))
        return missed, events[bisect.bisect_right(ids, cursor) :]


@dataclass
class Room:
    last_id: str | None = None  # None until the room knows its stream position
    recent: Recent | None = None  # from the room's first position on
    emptied_at: float = 0.0  # when its last socket left (see Fanout.linger_s)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    agents: set[Outlet] = field(default_factory=set)
    visitors: dict[str, set[Outlet]] = field(default_factory=dict)
    catching_up: set[Outlet] = field(default_factory=set)
    # Caught up past the room's position: live from the first event after their cursor.
    joining: dict[Outlet, tuple[int, int]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.agents or self.visitors or self.catching_up or self.joining)

    def agents_all(self) -> set[Outlet]:
        """Every agent socket of the room: live, catching up or joining."""
        pending = {o for o in (*self.catching_up, *self.joining) if o.conversation_id is None}
        return self.agents | pending

    def go_live(self, outlet: Outlet) -> None:
        self.catching_up.discard(outlet)
        self.joining.pop(outlet, None)
        if outlet.conversation_id is None:
            self.agents.add(outlet)
        else:
            self.visitors.setdefault(outlet.conversation_id, set()).add(outlet)

    def remove(self, outlet: Outlet) -> None:
        self.catching_up.discard(outlet)
        self.joining.pop(outlet, None)
        self.agents.discard(outlet)
        if outlet.conversation_id is not None:
            members = self.visitors.get(outlet.conversation_id)
            if members is not None:
                members.discard(outlet)
                if not members:
                    del self.visitors[outlet.conversation_id]


class Load:
    """Whether the tail reads more than `above` events a second, judged every
    `GATHER_WINDOW_S` over the window before."""

    __slots__ = ("above", "events", "loaded", "since")

    def __init__(self, above: float, now: float) -> None:
        self.above = above
        self.since = now
        self.events = 0
        self.loaded = False

    def heavy(self, events: int, now: float) -> bool:
        """Count a round's `events`; answer whether the tail is under load."""
        self.events += events
        if now - self.since >= GATHER_WINDOW_S:
            self.loaded = self.events > self.above * (now - self.since)
            self.since, self.events = now, 0
        return self.loaded


class Fanout:
    def __init__(
        self,
        bus: Bus,
        *,
        resume_max_events: int,
        block_ms: int = 5000,
        delivery: Delivery | None = None,
        linger_s: float = 0.0,
        gather_above: float = GATHER_ABOVE,
        gather_s: float = GATHER_S,
    ) -> None:
        self.bus = bus
        self.resume_max_events = resume_max_events
        self.block_ms = block_ms
        # How long a room outlives its last socket, tailed and with its recent events, for
        # sockets that come back (a node restart or a network blip drops them all at once).
        self.linger_s = linger_s
        self.delivery = delivery or Delivery()  # counted live deliveries (not resumes)
        self.gather_above = gather_above
        self.gather_s = gather_s
        self.rooms: dict[str, Room] = {}
        self.positions: dict[str, str] = {}  # each room's last_id, once it has one
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-fanout")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def join(
        self, outlet: Outlet, resume_from: str | None, welcome: Callable[[str, bool], None]
    ) -> None:
        """Attach a socket to its room. Calls `welcome(cursor, resumed)` once the start
        position is known to be good, then queues the missed events, then goes live.
        Raises `CursorTooOld` if `resume_from` was trimmed (before the welcome), or if more
        than `resume_max_events` would have to be replayed (the client reloads over REST)."""
        workspace_id = outlet.workspace_id
        room = self.rooms.get(workspace_id)
        if room is None:
            room = self.rooms[workspace_id] = Room()
            try:
                room.last_id = await self.bus.last_id(workspace_id)
            except BaseException:
                if self.rooms.get(workspace_id) is room:
                    del self.rooms[workspace_id]
                room.ready.set()
                raise
            room.ready.set()
            if self.rooms.get(workspace_id) is not room:  # forgotten meanwhile (`lost`)
                return await self.join(outlet, resume_from, welcome)
            room.recent = Recent(room.last_id)
            self.positions[workspace_id] = room.last_id
            self.bus.wake()
        elif not room.ready.is_set():
            await room.ready.wait()
            if self.rooms.get(workspace_id) is not room:
                return await self.join(outlet, resume_from, welcome)
        assert room.last_id is not None
        if resume_from is None:
            welcome(room.last_id, False)
            room.go_live(outlet)
            return
        if self._replay(room, outlet, resume_from, welcome):
            return
        room.catching_up.add(outlet)
        try:
            await self._catch_up(room, outlet, resume_from, welcome)
        except BaseException:
            self.leave(outlet)
            raise

    def _replay(
        self, room: Room, outlet: Outlet, cursor: str, welcome: Callable[[str, bool], None]
    ) -> bool:
        """Catch up from the room's recent events, if they hold everything after `cursor` and
        the socket's share fits its outbox; then live at once (no await: the room cannot move
        meanwhile). False if the stream must be read instead."""
        assert room.last_id is not None and room.recent is not None
        position = parse_id(cursor)
        if position > parse_id(room.last_id):
            return False
        found = room.recent.after(position, outlet.conversation_id)
        if found is None:
            return False
        missed, seen = found
        if missed > self.resume_max_events or len(seen) > outlet.limit // 2:
            return False
        welcome(cursor, True)
        for event in seen:
            outlet.offer(event.frame(outlet.version))
        room.go_live(outlet)
        return True

    async def _catch_up(
        self, room: Room, outlet: Outlet, cursor: str, welcome: Callable[[str, bool], None]
    ) -> None:
        read = 0
        welcomed = False
        while True:
            events = await self.bus.read(outlet.workspace_id, cursor, READ_BATCH)
            if not welcomed:
                welcome(cursor, True)
                welcomed = True
            for event in events:
                if outlet.sees(event):
                    outlet.offer(event.frame(outlet.version))
                cursor = event.id
            # A resume waits for its reader instead of overflowing; rare, so a poll costs
            # less than an event per socket.
            while len(outlet.outbox) > outlet.limit // 2 and not outlet.closing:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            if outlet.closing:
                return
            read += len(events)
            assert room.last_id is not None
            # No await between this comparison and the switch: the room cannot move meanwhile.
            if len(events) < READ_BATCH and parse_id(cursor) >= parse_id(room.last_id):
                if cursor == room.last_id:
                    room.go_live(outlet)
                else:  # read ahead of the room: skip what the room has yet to dispatch
                    room.catching_up.discard(outlet)
                    room.joining[outlet] = parse_id(cursor)
                return
            if read > self.resume_max_events or not events:
                raise CursorTooOld("Too many events to resume; reload over REST.")

    def lost(self) -> None:
        """The bus lost its data (`hub.web.epoch`): what the sockets were shown may exist
        nowhere now, and this node's recent events would resume them over a gap the streams
        no longer know. Every socket is closed with 4409 (reload over REST) and the rooms are
        forgotten; sockets that come back start from the streams as they are now."""
        error = CursorTooOld("The event bus lost its data; reload over REST.")
        for room in self.rooms.values():
            visitors = [o for members in room.visitors.values() for o in members]
            for outlet in {*room.agents, *visitors, *room.catching_up, *room.joining}:
                outlet.fail(error)
        self.rooms.clear()
        self.positions.clear()
        self.bus.wake()

    def leave(self, outlet: Outlet) -> None:
        room = self.rooms.get(outlet.workspace_id)
        if room is None:
            return
        room.remove(outlet)
        if room.empty() and room.ready.is_set():
            if self.linger_s <= 0:
                self._close(outlet.workspace_id)
                return
            loop = asyncio.get_running_loop()
            room.emptied_at = loop.time()
            loop.call_later(self.linger_s, self._close_if_idle, outlet.workspace_id, room)

    def _close_if_idle(self, workspace_id: str, room: Room) -> None:
        idle = asyncio.get_running_loop().time() - room.emptied_at
        if self.rooms.get(workspace_id) is room and room.empty() and idle >= self.linger_s:
            self._close(workspace_id)

    def _close(self, workspace_id: str) -> None:
        del self.rooms[workspace_id]
        self.positions.pop(workspace_id, None)

    def dispatch(self, workspace_id: str, events: list[Event]) -> None:
        room = self.rooms.get(workspace_id)
        if room is None or room.last_id is None:
            return
        position = parse_id(room.last_id)
        for event in events:
            at = parse_id(event.id)
            if at <= position:
                continue  # already dispatched (a room re-created while the tail was blocked)
            room.last_id = self.positions[workspace_id] = event.id
            position = at
            assert room.recent is not None
            if event.name in INTERNAL:
                self._end_sessions(room, event)
                continue
            if event.name == "contact.deleted":
                # An erasure has purged the stream: nothing from before it is replayed here.
                room.recent = Recent(event.id)
            else:
                room.recent.add(event, position)
            if room.joining:
                for outlet in [o for o, cursor in room.joining.items() if position > cursor]:
                    room.go_live(outlet)
            frames = shared_frames(event)  # per protocol version, each encoded once
            for outlet in room.agents:
                outlet.offer(frames[outlet.version - 1])
            handed = len(room.agents)
            if event.conversation_id:
                visitors = room.visitors.get(event.conversation_id, ())
                for outlet in visitors:
                    outlet.offer(frames[outlet.version - 1])
                handed += len(visitors)
            if handed:
                self.delivery.record(handed, event.id, time.time())

    @staticmethod
    def _end_sessions(room: Room, event: Event) -> None:
        """`session.ended`: close the agent sockets of those sessions with 4410;
        `member.removed`: close every agent socket of that user here with 4410, those opened
        with an API token too. Never sent to a client: they name other people's sessions."""
        model = SessionEnded if event.name == SESSION_ENDED else MemberRemoved
        try:
            data = model.model_validate_json(event.data)
        except ValueError:
            log.warning("event %s (%s) does not fit its model; skipped", event.id, event.name)
            return
        if isinstance(data, SessionEnded):
            sessions = {str(i) for i in data.session_ids}
            ended = [o for o in room.agents_all() if (o.session_id or "") in sessions]
        else:
            user_id = str(data.user_id)
            ended = [o for o in room.agents_all() if o.user_id == user_id]
        error = SessionEndedError()
        for outlet in ended:
            outlet.fail(error)

    async def _run(self) -> None:
        """The tail: read every room's new events in rounds, dispatch them.

        A round has a fixed cost (the read command and its reply, the event loop's wakeups)
        on top of its events'. Idle or lightly loaded, the tail reads again as soon as a round
        is done, so an event goes out the moment it arrives. Under load (more than
        `gather_above` events a second over the last `GATHER_WINDOW_S`), a round that found
        events is followed by a pause of `gather_s` (1 ms), so the next round carries what
        arrived meanwhile: at 3,000 events/s three or four a round instead of one, for at
        most a millisecond more latency. (docs/performance.md, "Gathering under load".)"""
        backoff = 0.1
        loop = asyncio.get_running_loop()
        load, pause = Load(self.gather_above, loop.time()), False
        while True:
            if pause:
                await asyncio.sleep(self.gather_s)
            positions = dict(self.positions)  # the rooms may change while the tail waits
            try:
                batch = await self.bus.tail(positions, count=1000, block_ms=self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "bus tail failed (%s); retrying in %.1fs",
                    type(exc).__name__,
                    backoff,
                    exc_info=not outage(exc),  # Redis away: one line each, no traceback
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            read = 0
            for workspace_id, events in batch:
                self.dispatch(workspace_id, events)
                read += len(events)
            if read:
                self.delivery.rounds += 1
                self.delivery.events += read
            pause = load.heavy(read, loop.time()) and read > 0
