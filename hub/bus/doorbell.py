"""`tail` for `hub.bus.redis.RedisBus`: the fan-out's read of every room's stream.

Blocking reads (`tail`, `read_group`) go through `hub.bus.blocking.Reads`: one XREAD or
XREADGROUP per slot group, on connections of their own: on a standalone server one group
holds every stream (one command, as ever); on a cluster one group per bucket, sent to the
node that holds its slot. The cost of a round is bounded by `BUCKETS`, not by the number of
workspaces. On a cluster a `tail` answers the buckets that have answered when it returns; the
events of the others come with the next call. A read's MOVED (a reshard) is raised to the
caller, which retries as it does for any Redis error, by then with the new slot map.

The doorbell
------------
Redis spends time on every stream an XREAD names, at every call: about 1 ms for a thousand
streams, so a node with a thousand quiet rooms would read slowly even for its one busy room.
So every publish that is not a duplicate also appends ``w <workspace id>`` (nothing else: no
personal data, so erasure and retention need not touch it) to its slot's changes stream, in
the same script, trimmed to about `CHANGES_MAXLEN` entries. A `tail` over at most
`direct_rooms` rooms blocks on the rooms' streams as above (one round trip for a busy room).
Over more, it is in doorbell mode, with a cursor per changes stream and the set of rooms it
has *covered* (read since their slot group's cursor was set), and each call:

1. reads the changes streams of the slot groups that have rooms, from their cursors, through
   `Reads` (blocking, unless some room is not covered yet or after a `wake`);
2. picks the rooms named there, and the rooms not covered; a reply of `changes_count` entries
   may mean the node fell behind by more than the stream keeps, so then every room of that
   group; rooms whose read below comes back full stay uncovered, as do those of a read that
   fails: their rings are spent;
3. reads just those rooms' streams from their positions, one non-blocking XREAD per group.

Why no event is missed: an event and its ring are appended atomically, and a ring is either
still after its group's cursor (it is read by a later call) or was in a reply, after which
the call reads its room. Within a call the changes stream is read before the rooms' streams,
so an event published after a room's read rings after the cursor, and one published between
the two reads is read now and rings again later (the fan-out skips events at or before a
room's position, see `Fanout.dispatch`). A cursor starts at the end of its changes stream
(``$``), set before any room stream of its group is read, and that group's rooms start
uncovered: every room is read once from its position. Rooms that leave are no longer
covered, so a room that comes back is read from its new position. Entering or leaving
doorbell mode starts afresh; entering, it wakes the read of the rooms left in flight (only
those rooms' events would end it); leaving, the changes read in flight ends with the next
event of any room of its group. A ring trimmed away before it was read is seen by the full
reply: the stream keeps at least `changes_maxlen` >= `changes_count` entries, so a cursor
trimmed past has a full reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AskError
from redis.typing import KeyT, StreamIdT

from hub.bus.base import Batch, parse_id
from hub.bus.blocking import Command, Reads
from hub.bus.clients import MAX_BLOCK_MS, Connected, events_of

DIRECT_ROOMS = 16  # a tail over more rooms reads the doorbell first (see above)
CHANGES_MAXLEN = 10_000  # entries a changes stream keeps, about
CHANGES_COUNT = 1000  # rings read per changes stream and call; a full reply reads every room


def _xread(keys: dict[KeyT, StreamIdT], count: int) -> Command:
    async def command(client: Redis, block: int | None) -> Any:
        return await client.xread(keys, count=count, block=block)

    return command


class Tailing(Connected):
    """The tail's state: its blocking reads, and in doorbell mode the cursors and rooms."""

    def __init__(
        self, url: str, *, prefix: str, cluster: bool, direct_rooms: int, changes_count: int
    ) -> None:
        super().__init__(url, prefix=prefix, cluster=cluster)
        self.direct_rooms = direct_rooms
        self.changes_count = changes_count
        self._tail: Reads | None = None
        # The tail's doorbell mode (see above): per slot group, the changes read up to.
        self._doorbell = False
        self._cursors: dict[int, str] = {}
        self._rooms_of: frozenset[str] = frozenset()  # the rooms of the last call, by group:
        self._rooms: dict[int, set[str]] = {}
        self._uncovered: set[str] = set()  # of those, the rooms not covered
        self._woken = False  # since the last `tail` returned

    async def tail(self, positions: Mapping[str, str], *, count: int, block_ms: int) -> Batch:
        doorbell = len(positions) > self.direct_rooms
        if doorbell != self._doorbell:
            self._reset(doorbell=doorbell)
            if doorbell and self._tail is not None:
                # A read of the rooms left in flight would hold its group's line, and only
                # some rooms' events end it. (Leaving, the changes read in flight ends with
                # the next event of any room of its group.)
                self._tail.wake()
        try:
            if doorbell:
                return await self._ring(positions, count, block_ms)
            return await self._direct(positions, count, block_ms)
        finally:
            self._woken = False

    async def _direct(self, positions: Mapping[str, str], count: int, block_ms: int) -> Batch:
        for position in positions.values():
            parse_id(position)
        commands = {
            group: (await self._c.server(str(next(iter(keys)))), _xread(keys, count))
            for group, keys in self._streams(positions).items()
        }
        assert self._tail is not None
        # A read left in flight by an earlier call may answer with older positions, or for a
        # workspace no longer asked for: the fan-out skips what it has dispatched already.
        return self._batch(await self._blocking(self._tail, commands, block_ms))

    async def _ring(self, positions: Mapping[str, str], count: int, block_ms: int) -> Batch:
        """`tail` in doorbell mode: see "The doorbell" above. Rounds until there are events,
        `block_ms` passed or `wake()` was called: a round that reads uncovered rooms does not
        block, and finds nothing as a rule."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(block_ms, 0) / 1000
        while True:
            batch = await self._ring_once(positions, count, round((deadline - loop.time()) * 1000))
            if batch or self._woken or loop.time() >= deadline:
                return batch

    async def _ring_once(self, positions: Mapping[str, str], count: int, block_ms: int) -> Batch:
        # Work per call in proportion to the rooms is what the doorbell saves Redis: here too
        # only set operations in C touch every room, unless the rooms changed.
        if positions.keys() != self._rooms_of:
            rooms_of = frozenset(positions)
            # Rooms that left are forgotten, new ones (or back again) are not covered.
            self._uncovered = (self._uncovered & rooms_of) | (rooms_of - self._rooms_of)
            self._rooms_of, self._rooms = rooms_of, {}
            for workspace_id in positions:
                self._rooms.setdefault(self._slot_group(workspace_id), set()).add(workspace_id)
            self._cursors = {g: c for g, c in self._cursors.items() if g in self._rooms}
        rooms = self._rooms
        for group, members in rooms.items():
            if group not in self._cursors:  # before any of the group's streams is read
                key = self._changes_key(group)
                self._cursors[group] = str(await self._c.last_id(keys=[key]))
                self._uncovered |= members
        wanted = set(self._uncovered)
        commands: dict[int, tuple[Hashable, Command]] = {}
        for group, since in self._cursors.items():
            key = self._changes_key(group)
            commands[group] = (await self._c.server(key), _xread({key: since}, self.changes_count))
        assert self._tail is not None
        replies = await self._blocking(self._tail, commands, 0 if wanted else block_ms)
        batch = self._batch(replies)  # rooms' events from a read of direct mode still in flight
        for reply in replies:
            for key, entries in reply or ():
                if not (entries and key.endswith(":changes")):
                    continue  # a room's stream: answered above
                ring = self._changes_group(key)
                cursor = self._cursors.get(ring)
                if cursor is None:
                    continue  # a read from before the group's rooms all left
                if parse_id(entries[-1][0]) > parse_id(cursor):
                    self._cursors[ring] = entries[-1][0]
                if len(entries) >= self.changes_count:  # perhaps trimmed past the cursor
                    wanted |= rooms[ring]
                else:
                    wanted |= {f["w"] for _, f in entries if f.get("w") in positions}
        # Uncovered until read: the rings of a read that fails are spent.
        self._uncovered |= wanted
        reads = self._streams({w: positions[w] for w in wanted})
        for keys in reads.values():
            for position in keys.values():
                parse_id(str(position))
        redis = self._c.redis
        found = self._batch(
            await asyncio.gather(*(redis.xread(keys, count=count) for keys in reads.values()))
        )
        # A room read in full may have more events, with no ring left for them.
        self._uncovered -= wanted - {w for w, events in found if len(events) >= count}
        return batch + found

    def _reset(self, *, doorbell: bool) -> None:
        self._doorbell, self._cursors = doorbell, {}
        self._rooms_of, self._rooms, self._uncovered = frozenset(), {}, set()

    def _streams(self, positions: Mapping[str, str]) -> dict[int, dict[KeyT, StreamIdT]]:
        """The rooms' streams and positions, by slot group."""
        streams: dict[int, dict[KeyT, StreamIdT]] = {}
        for workspace_id, position in positions.items():
            group = streams.setdefault(self._slot_group(workspace_id), {})
            group[self._key(workspace_id)] = position
        return streams

    def _batch(self, replies: Iterable[Any]) -> Batch:
        """The events in XREAD replies; the doorbell's rings are left out."""
        return [
            (self._owner(key), events_of(entries))
            for reply in replies
            for key, entries in reply or ()
            if entries and key.endswith(":events")
        ]

    async def _blocking(
        self, reads: Reads, commands: Mapping[int, tuple[Hashable, Command]], block_ms: int
    ) -> list[Any]:
        try:
            return await reads.read(commands, min(block_ms, MAX_BLOCK_MS))
        except AskError:
            # MOVED or ASK: a slot moved (a reshard or a failover). The next call asks the new
            # map where its buckets are; until then the caller backs off.
            if isinstance(self._c.redis, RedisCluster):
                await self._c.redis.nodes_manager.initialize()
            raise

    def wake(self) -> None:
        self._woken = True
        if self._tail is not None:
            self._tail.wake()
