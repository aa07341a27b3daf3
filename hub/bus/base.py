"""The bus contract: per-workspace event streams, shared by web nodes and workers.

Two implementations keep this contract: `RedisBus` (Redis Streams, production) and
`MemoryBus` (one process, the embedded default). `tests/test_bus_contract.py` runs
the same suite against both.

Contract
--------
- Each workspace has one append-only stream. `publish` appends an event and returns
  its id, a stream entry id ``"<ms>-<seq>"``; ids increase strictly within a stream and
  are what clients see as event ids and resume cursors.
- `publish(..., lean=text)` keeps protocol v2's data of the event (`schemas.lean`) on the same
  entry, next to `data`: `Event.lean` on every read, "" when none was given. It lives and dies
  with its entry (trim, purge, retention); workers read `data` only.
- `publish(..., dedupe_key=k)` appends at most once per key within `dedupe_ttl_s`:
  a repeated key appends nothing and answers the first event's id with
  ``duplicate=True``. Check and append are one atomic step.
- Streams are trimmed to about `stream_maxlen` entries. `read(w, after)` answers the
  events with id > `after` in order, or raises `CursorTooOld` when any event after
  `after` is no longer kept (trimmed or deleted) or when `after` is beyond the newest
  id the stream ever had (the stream was lost): never a silent gap.
- `tail(positions, ...)` blocks until any of the given workspaces has events after its
  position (or `block_ms` passes, or `wake()` is called) and answers them; this is the
  one reader a web node runs for all its rooms.
- Consumer groups give at-least-once processing to workers: `read_group` hands each
  new event to one consumer of the group; it stays pending until `ack`; `autoclaim`
  hands events pending longer than `min_idle_ms` to another consumer. A group created
  by `ensure_group` starts at the beginning of the stream, so nothing published before
  the first worker started is missed. `handled_up_to(group, w)` answers the id of the newest
  kept entry up to which the group has acked every entry (the one before its oldest pending
  entry, else the last it was handed); None when the stream has no such group or no such
  entry is kept.
- `workspaces()` lists every workspace that has published at least once.
- A stream that is new (never had an event, or was lost and re-created) treats every id
  before its first event as deleted: an old cursor gets `CursorTooOld`, not a gap. Only
  `0-0` ("seen nothing yet", the cursor of an empty stream) reads from the start, as long
  as nothing was ever trimmed.
- `remember(w, key, value, ttl_s)` / `recall(w, key)`: a small per-workspace directory
  shared by all processes (facts the hot path needs without asking the database, such
  as which channel a conversation belongs to). `recall` answers None for an unknown or
  expired key. With `only_new`, `remember` stores nothing over a live key and answers
  False: a claim that exactly one process wins.
- `forget(w, keys)` removes remembered keys at once (a key never remembered is no error).
- `purge(w, ids, up_to=...)` deletes the stream entries with id <= `up_to` that mention any
  of `ids` (an id mentions an entry when it is the entry's conversation id or one of the
  strings, keys or values, of its JSON data), in batches, and answers how many it deleted.
  It is for erasing a person: deleted entries are gone for `read`, `tail` and the consumer
  groups (an entry a consumer has read but not acked is never handed out again), and, like
  trimmed ones, make `read` from a cursor before the newest of them raise `CursorTooOld`.
  Running it again deletes nothing more.
- `trim_before(w, ms)` deletes every stream entry whose id's millisecond part is below
  `ms` (ids are publish times: it is the retention sweep's cut) and answers how many it
  deleted. Like trimmed and purged entries they are gone for `read`, `tail` and the groups,
  and a cursor before the newest of them (or `0-0`) makes `read` raise `CursorTooOld`.
- `count(w, key, window_s)` adds one to a per-workspace counter and answers its new value.
  The first increment starts a fixed window of `window_s` seconds; when it ends the counter
  is gone and the next increment answers 1 again. Increment and expiry are one atomic step,
  so concurrent callers on any process see distinct values and a counter never outlives its
  window (rate limits across nodes).
- `epochs(token)` writes `token` as the bus's epoch where it has none (one per shard: a
  list) and answers what each held before, None where it was not there. A process that saw an
  epoch and later finds it gone or changed knows the bus lost its data (`hub.web.epoch`).
  `record_loss(fields)` keeps such a loss for operators (the first detection's fields win),
  `loss()` answers it (None: none), `acknowledge_loss()` clears it and answers what it was.
- `settle(workspace_ids)` returns once every event published before it to those workspaces
  is durable as the bus was configured (`hub.bus.durable`; at once when no stricter mode is
  on, and always on the in-process bus, which keeps nothing across a crash), else raises
  `NotDurable`. The paths that ack to a client or a platform call it once per batch.
- `stats(workspace_ids)` answers how many entries the given streams keep (every workspace's,
  up to `max_streams` of them, when None) and, per consumer group, its lag (entries not yet
  handed to the group) and pending count (handed out, not acked), summed over the streams.
  It is for monitoring: bounded work, read at scrape time, never on the hot path.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from hub.errors import BadFrame
from schemas.events import EventData, MessageCreated, parse_event

ZERO_ID = "0-0"
_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


def parse_id(event_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair; `BadFrame` if it is not one."""
    match = _ID.fullmatch(event_id) if isinstance(event_id, str) else None
    if match is None:
        raise BadFrame("A cursor is a stream id such as '1718000000000-0'.")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    name: str
    data: str  # JSON text of an object
    conversation_id: str = ""
    lean: str = ""  # protocol v2's data when it differs from `data` (`schemas.lean`), else ""

    def frame(self, version: int = 1) -> str:
        """The `event` frame of a protocol version, built without re-encoding the data: v2
        carries the lean data when the event has one, and is v1's frame otherwise."""
        data = self.lean if version >= 2 and self.lean else self.data
        return (
            '{"type":"event","id":"'
            + self.id
            + '","name":'
            + json.dumps(self.name)
            + ',"data":'
            + data
            + "}"
        )

    def frames(self) -> tuple[str, str]:
        """The frames of v1 and v2, each built once (the same string when there is no lean
        data): what the fan-out hands each socket, by its version."""
        v1 = self.frame(1)
        return v1, (self.frame(2) if self.lean else v1)

    def typed(self) -> EventData:
        """The data as its event's model (`schemas.events`); ValueError when it does not fit.
        For consumers: the fan-out forwards `data` as it is, never parsed."""
        return parse_event(self.name, self.data)

    def created(self, log: logging.Logger, mentioning: str | None = None) -> MessageCreated | None:
        """The data of a `message.created` (logged and None when it does not fit), or None
        for any other event; with `mentioning`, also None without parsing when the text
        does not hold that string (a cheap test before the parse, for groups that want few
        of the messages)."""
        if self.name != "message.created" or (mentioning and mentioning not in self.data):
            return None
        data = self.typed_or_none(log)
        return data if isinstance(data, MessageCreated) else None

    def typed_or_none(self, log: logging.Logger) -> EventData | None:
        """`typed()`, or None (logged) when the data does not fit: one malformed event must
        not stop a consumer group on it and on every event behind it."""
        try:
            return self.typed()
        except ValueError:
            log.warning("event %s (%s) does not fit its model; skipped", self.id, self.name)
            return None


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def mentions(event: Event, ids: frozenset[str]) -> bool:
    """Whether one of `ids` is the event's conversation id or a whole string of its data
    (the purge rule; ids with quotes or backslashes never match)."""
    return event.conversation_id in ids or names_any(event.data, ids)


def names_any(text: str, ids: frozenset[str]) -> bool:
    """Whether one of `ids` is a whole string (a key or a value) of this JSON text."""
    return any(found in ids for found in _STRING.findall(text))


@dataclass(frozen=True, slots=True)
class Published:
    id: str
    duplicate: bool = False


Batch = list[tuple[str, list[Event]]]  # (workspace_id, events in order)

STATS_MAX_STREAMS = 1000  # `stats()` of every workspace looks at no more streams than this


@dataclass(frozen=True, slots=True)
class GroupStats:
    lag: int  # entries of the streams not yet handed to the group
    pending: int  # handed to a consumer, not yet acked


@dataclass(frozen=True, slots=True)
class BusStats:
    streams: int  # how many workspace streams were looked at
    entries: int  # entries they keep
    groups: dict[str, GroupStats]  # per consumer group, summed over the streams
    capped: bool = False  # there were more streams than `max_streams`


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def publish(
        self,
        workspace_id: str,
        name: str,
        data: str,
        *,
        conversation_id: str = "",
        dedupe_key: str | None = None,
        lean: str = "",
    ) -> Published: ...

    async def settle(self, workspace_ids: Iterable[str]) -> None: ...

    async def remember(
        self,
        workspace_id: str,
        key: str,
        value: str,
        *,
        ttl_s: int,
        only_new: bool = False,
        unless: str | None = None,
    ) -> bool: ...

    async def recall(
        self, workspace_id: str, key: str, *, unless: str | None = None
    ) -> str | None: ...

    async def forget(self, workspace_id: str, keys: Iterable[str]) -> None: ...

    async def purge(self, workspace_id: str, ids: Iterable[str], *, up_to: str) -> int: ...

    async def trim_before(self, workspace_id: str, ms: int) -> int: ...

    async def count(self, workspace_id: str, key: str, *, window_s: int) -> int: ...

    async def last_id(self, workspace_id: str) -> str: ...

    async def read(self, workspace_id: str, after: str, count: int) -> list[Event]: ...

    async def tail(self, positions: Mapping[str, str], *, count: int, block_ms: int) -> Batch: ...

    def wake(self) -> None: ...

    async def workspaces(self) -> set[str]: ...

    async def epochs(self, token: str) -> list[str | None]: ...

    async def record_loss(self, fields: Mapping[str, str]) -> None: ...

    async def loss(self) -> dict[str, str] | None: ...

    async def acknowledge_loss(self) -> dict[str, str] | None: ...

    async def ensure_group(self, group: str, workspace_ids: Iterable[str]) -> None: ...

    async def read_group(
        self, group: str, consumer: str, workspace_ids: Iterable[str], *, count: int, block_ms: int
    ) -> Batch: ...

    async def ack(self, group: str, workspace_id: str, ids: Iterable[str]) -> None: ...

    async def handled_up_to(self, group: str, workspace_id: str) -> str | None: ...

    async def autoclaim(
        self, group: str, consumer: str, workspace_id: str, *, min_idle_ms: int, count: int
    ) -> list[Event]: ...

    async def stats(
        self, workspace_ids: Iterable[str] | None = None, *, max_streams: int = STATS_MAX_STREAMS
    ) -> BusStats: ...
