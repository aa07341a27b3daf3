"""The in-process bus of the embedded default, with the contract of `hub.bus.base`."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hub.bus.base import (
    STATS_MAX_STREAMS,
    ZERO_ID,
    Batch,
    BusStats,
    Event,
    GroupStats,
    Published,
    mentions,
    parse_id,
)
from hub.errors import CursorTooOld


def _position(event: Event) -> tuple[int, int]:
    return parse_id(event.id)


@dataclass
class _Group:
    next_index: int = 0  # absolute index of the next never-delivered entry
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (consumer, t)


@dataclass
class _Stream:
    entries: deque[Event] = field(default_factory=deque)
    first_index: int = 0  # absolute index of entries[0]
    last_id: str = ZERO_ID
    max_deleted_id: str = ZERO_ID
    purged: int = 0  # entries deleted by `purge`: "0-0" no longer reads the whole stream
    groups: dict[str, _Group] = field(default_factory=dict)


class MemoryBus:
    def __init__(self, *, stream_maxlen: int, dedupe_ttl_s: int) -> None:
        self.stream_maxlen = stream_maxlen
        self.dedupe_ttl_s = dedupe_ttl_s
        self._streams: dict[str, _Stream] = {}
        # Ordered by expiry (one TTL for all keys), so expiring pops from the front only.
        self._dedupe: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._published: set[str] = set()  # ensure_group also creates streams
        self._kv: dict[tuple[str, str], tuple[str, float]] = {}
        self._counters: dict[tuple[str, str], tuple[int, float]] = {}
        self._changed = asyncio.Condition()
        self._woken = False
        self._epoch: str | None = None
        self._loss: dict[str, str] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.wake()

    async def settle(self, workspace_ids: Iterable[str]) -> None:
        return None  # nothing here outlives the process: there is nothing to wait for

    async def ping(self) -> bool:
        return True

    async def epochs(self, token: str) -> list[str | None]:
        # One process holds the streams: they can only be lost with it, never under it.
        before, self._epoch = self._epoch, self._epoch or token
        return [before]

    async def record_loss(self, fields: Mapping[str, str]) -> None:
        for name, value in fields.items():
            self._loss.setdefault(name, value)

    async def loss(self) -> dict[str, str] | None:
        return dict(self._loss) or None

    async def acknowledge_loss(self) -> dict[str, str] | None:
        found, self._loss = self._loss, {}
        return found or None

    def _stream(self, workspace_id: str) -> _Stream:
        stream = self._streams.get(workspace_id)
        if stream is None:
            stream = self._streams[workspace_id] = _Stream()
        return stream

    def _next_id(self, stream: _Stream) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = parse_id(stream.last_id)
        if ms > last_ms:
            return f"{ms}-0"
        return f"{last_ms}-{last_seq + 1}"

    async def publish(
        self,
        workspace_id: str,
        name: str,
        data: str,
        *,
        conversation_id: str = "",
        dedupe_key: str | None = None,
        lean: str = "",
    ) -> Published:
        now = time.monotonic()
        if dedupe_key is not None:
            seen = self._dedupe.get((workspace_id, dedupe_key))
            if seen is not None and seen[1] > now:
                return Published(seen[0], duplicate=True)
        stream = self._stream(workspace_id)
        event = Event(self._next_id(stream), name, data, conversation_id, lean)
        if stream.last_id == ZERO_ID:
            # A new stream (after a restart, say): cursors from before it are unknown and
            # must get CursorTooOld rather than a silent gap.
            stream.max_deleted_id = event.id.split("-")[0] + "-0"
        stream.entries.append(event)
        stream.last_id = event.id
        self._published.add(workspace_id)
        if dedupe_key is not None:
            self._expire_dedupe(now)
            self._dedupe[(workspace_id, dedupe_key)] = (event.id, now + self.dedupe_ttl_s)
            self._dedupe.move_to_end((workspace_id, dedupe_key))
        while len(stream.entries) > self.stream_maxlen:
            dropped = stream.entries.popleft()
            stream.first_index += 1
            stream.max_deleted_id = dropped.id
            for group in stream.groups.values():
                group.pending.pop(dropped.id, None)
        async with self._changed:
            self._changed.notify_all()
        return Published(event.id)

    def _expire_dedupe(self, now: float) -> None:
        while self._dedupe and next(iter(self._dedupe.values()))[1] <= now:
            self._dedupe.popitem(last=False)

    async def remember(
        self,
        workspace_id: str,
        key: str,
        value: str,
        *,
        ttl_s: int,
        only_new: bool = False,
        unless: str | None = None,
    ) -> bool:
        now = time.monotonic()
        found = self._kv.get((workspace_id, key))
        if only_new and found is not None and found[1] > now:
            return False
        if unless is not None and await self.recall(workspace_id, unless) is not None:
            return False
        self._kv[(workspace_id, key)] = (value, now + ttl_s)
        if len(self._kv) > 4 * self.stream_maxlen:
            for stale in [k for k, (_, until) in self._kv.items() if until <= now]:
                del self._kv[stale]
        return True

    async def recall(self, workspace_id: str, key: str, *, unless: str | None = None) -> str | None:
        if unless is not None and await self.recall(workspace_id, unless) is not None:
            return None
        found = self._kv.get((workspace_id, key))
        return found[0] if found is not None and found[1] > time.monotonic() else None

    async def forget(self, workspace_id: str, keys: Iterable[str]) -> None:
        for key in keys:
            self._kv.pop((workspace_id, key), None)

    async def purge(self, workspace_id: str, ids: Iterable[str], *, up_to: str) -> int:
        wanted = frozenset(i for i in ids if i)
        limit = parse_id(up_to)
        stream = self._streams.get(workspace_id)
        if stream is None or not wanted:
            return 0
        kept: deque[Event] = deque()
        deleted = 0
        for index, event in enumerate(stream.entries):
            if parse_id(event.id) > limit or not mentions(event, wanted):
                kept.append(event)
                continue
            deleted += 1
            if parse_id(event.id) > parse_id(stream.max_deleted_id):
                stream.max_deleted_id = event.id
            absolute = stream.first_index + index
            for group in stream.groups.values():
                group.pending.pop(event.id, None)
                # Indexes after the deleted entry shift down by one.
                if group.next_index > absolute - (deleted - 1):
                    group.next_index -= 1
        stream.entries = kept
        stream.purged += deleted
        return deleted

    async def trim_before(self, workspace_id: str, ms: int) -> int:
        stream = self._streams.get(workspace_id)
        if stream is None:
            return 0
        trimmed = 0
        while stream.entries and parse_id(stream.entries[0].id)[0] < ms:
            dropped = stream.entries.popleft()
            stream.first_index += 1
            trimmed += 1
            if parse_id(dropped.id) > parse_id(stream.max_deleted_id):
                stream.max_deleted_id = dropped.id
            for group in stream.groups.values():
                group.pending.pop(dropped.id, None)
        return trimmed

    async def count(self, workspace_id: str, key: str, *, window_s: int) -> int:
        now = time.monotonic()
        found = self._counters.get((workspace_id, key))
        value, until = (found[0] + 1, found[1]) if found and found[1] > now else (1, now + window_s)
        self._counters[(workspace_id, key)] = (value, until)
        if len(self._counters) > 4 * self.stream_maxlen:
            for stale in [k for k, (_, end) in self._counters.items() if end <= now]:
                del self._counters[stale]
        return value

    async def last_id(self, workspace_id: str) -> str:
        stream = self._streams.get(workspace_id)
        return stream.last_id if stream else ZERO_ID

    def _after(self, stream: _Stream, after: str, count: int) -> list[Event]:
        cursor = parse_id(after)
        # 0-0 ("I have seen nothing") stays good while nothing was ever trimmed.
        whole = cursor == (0, 0) and stream.first_index == 0 and not stream.purged
        if (cursor < parse_id(stream.max_deleted_id) and not whole) or cursor > parse_id(
            stream.last_id
        ):
            raise CursorTooOld()
        return self._slice_after(stream, cursor, count)

    @staticmethod
    def _slice_after(stream: _Stream, cursor: tuple[int, int], count: int) -> list[Event]:
        entries = stream.entries
        lo, hi = 0, len(entries)
        while lo < hi:  # first entry with id > cursor
            mid = (lo + hi) // 2
            if parse_id(entries[mid].id) <= cursor:
                lo = mid + 1
            else:
                hi = mid
        return [entries[i] for i in range(lo, min(lo + count, len(entries)))]

    async def read(self, workspace_id: str, after: str, count: int) -> list[Event]:
        stream = self._streams.get(workspace_id)
        if stream is None:
            if parse_id(after) > (0, 0):
                raise CursorTooOld()
            return []
        return self._after(stream, after, count)

    def _ready(self, positions: Mapping[str, str], count: int) -> Batch:
        batch: Batch = []
        for workspace_id, position in positions.items():
            stream = self._streams.get(workspace_id)
            if stream is None:
                continue
            events = self._slice_after(stream, parse_id(position), count)
            if events:
                batch.append((workspace_id, events))
        return batch

    async def tail(self, positions: Mapping[str, str], *, count: int, block_ms: int) -> Batch:
        deadline = time.monotonic() + block_ms / 1000
        async with self._changed:
            while True:
                batch = self._ready(positions, count)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._woken:
                    self._woken = False
                    return batch
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    pass

    def wake(self) -> None:
        self._woken = True
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def workspaces(self) -> set[str]:
        return set(self._published)

    async def ensure_group(self, group: str, workspace_ids: Iterable[str]) -> None:
        for workspace_id in workspace_ids:
            stream = self._stream(workspace_id)
            stream.groups.setdefault(group, _Group(next_index=stream.first_index))

    async def read_group(
        self, group: str, consumer: str, workspace_ids: Iterable[str], *, count: int, block_ms: int
    ) -> Batch:
        ids = list(workspace_ids)
        deadline = time.monotonic() + block_ms / 1000
        async with self._changed:
            while True:
                batch = self._deliver(group, consumer, ids, count)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0:
                    return batch
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    pass

    def _deliver(self, group: str, consumer: str, workspace_ids: list[str], count: int) -> Batch:
        batch: Batch = []
        now = time.monotonic()
        for workspace_id in workspace_ids:
            stream = self._streams.get(workspace_id)
            state = stream.groups.get(group) if stream else None
            if stream is None or state is None:
                continue
            start = max(state.next_index, stream.first_index) - stream.first_index
            end = min(start + count, len(stream.entries))
            events = [stream.entries[i] for i in range(start, end)]
            if events:
                state.next_index = stream.first_index + start + len(events)
                for event in events:
                    state.pending[event.id] = (consumer, now)
                batch.append((workspace_id, events))
        return batch

    async def ack(self, group: str, workspace_id: str, ids: Iterable[str]) -> None:
        stream = self._streams.get(workspace_id)
        state = stream.groups.get(group) if stream else None
        if state is not None:
            for event_id in ids:
                state.pending.pop(event_id, None)

    async def handled_up_to(self, group: str, workspace_id: str) -> str | None:
        stream = self._streams.get(workspace_id)
        state = stream.groups.get(group) if stream else None
        if stream is None or state is None:
            return None
        handed = min(state.next_index - stream.first_index, len(stream.entries))
        if state.pending:
            oldest = parse_id(min(state.pending, key=parse_id))
            handed = min(handed, bisect.bisect_left(stream.entries, oldest, key=_position))
        return stream.entries[handed - 1].id if handed > 0 else None

    async def autoclaim(
        self, group: str, consumer: str, workspace_id: str, *, min_idle_ms: int, count: int
    ) -> list[Event]:
        stream = self._streams.get(workspace_id)
        state = stream.groups.get(group) if stream else None
        if stream is None or state is None:
            return []
        now = time.monotonic()
        pending = sorted(state.pending.items(), key=lambda kv: parse_id(kv[0]))
        idle = [event_id for event_id, (_, since) in pending if (now - since) * 1000 >= min_idle_ms]
        idle = idle[:count]
        by_id = {e.id: e for e in stream.entries} if idle else {}
        claimed = []
        for event_id in idle:
            state.pending[event_id] = (consumer, now)
            if event_id in by_id:
                claimed.append(by_id[event_id])
        return claimed

    async def stats(
        self, workspace_ids: Iterable[str] | None = None, *, max_streams: int = STATS_MAX_STREAMS
    ) -> BusStats:
        ids = sorted(self._published) if workspace_ids is None else list(workspace_ids)
        entries = 0
        lag: dict[str, int] = {}
        pending: dict[str, int] = {}
        for workspace_id in ids[:max_streams]:
            stream = self._streams.get(workspace_id)
            if stream is None:
                continue
            entries += len(stream.entries)
            end = stream.first_index + len(stream.entries)
            for name, group in stream.groups.items():
                behind = end - max(group.next_index, stream.first_index)
                lag[name] = lag.get(name, 0) + behind
                pending[name] = pending.get(name, 0) + len(group.pending)
        groups = {name: GroupStats(lag[name], pending[name]) for name in lag}
        return BusStats(min(len(ids), max_streams), entries, groups, len(ids) > max_streams)
