"""A node's short-lived copy of rows it reads on every socket or webhook.

Channels, web-chat channels and conversations are read far more often than they change, so each
node keeps what it read for `ttl_s` (other nodes see a change within that time; the node that
made it forgets at once). Concurrent misses of one key share one load: after a reconnect storm
thousands of sockets find the same entry expired at the same moment, and they must make one
query between them, not one each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from hub.bus import Bus

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Cached(Generic[K, V]):
    """Values by key for `ttl_s` each, at most `max_entries` (the least recently used go)."""

    def __init__(self, ttl_s: float, max_entries: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loads: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The value while it is fresh, else None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic() + self.ttl_s, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        """The fresh value, else what `loader` gives (kept, unless it raises). Callers that miss
        while a load of the key is under way wait for that load; one caller's cancellation does
        not cancel it for the others."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            return entry[1]
        task = self._loads.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, loader))
            self._loads[key] = task
            task.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(task)

    async def _load(self, key: K, loader: Callable[[], Awaitable[V]]) -> V:
        value = await loader()
        if self._loads.get(key) is asyncio.current_task():  # not forgotten meanwhile
            self.put(key, value)
        return value

    def _loaded(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every caller was cancelled

    def forget(self, key: K) -> None:
        """Drop the key; a load of it under way is not kept."""
        self._entries.pop(key, None)
        self._loads.pop(key, None)

    def forget_where(self, stale: Callable[[V], bool]) -> None:
        """Drop every entry whose value is stale, and every load under way (its value may be)."""
        for key in [key for key, (_, value) in self._entries.items() if stale(value)]:
            del self._entries[key]
        self._loads.clear()


class Versioned(Generic[V]):
    """A worker's copy of a workspace's rarely changed settings (its automation rules, its
    webhook endpoints), kept under a version held on the bus at `key`: the change itself sets
    a new version after it commits (`changed`), and every reader compares versions (one bus
    read) before it trusts its copy, so a change applies to the next event on every worker
    without a query per batch. A lapsed version (`ttl_s`) is made anew, and everyone reads
    once more."""

    def __init__(self, bus: Bus, key: str, *, ttl_s: int = 7 * 24 * 3600) -> None:
        self.bus = bus
        self.key = key
        self.ttl_s = ttl_s
        self._copies: Cached[str, tuple[str, V]] = Cached(3600.0, 10_000)

    async def version(self, workspace_id: str) -> str:
        found = await self.bus.recall(workspace_id, self.key)
        if found is None:
            mine = uuid.uuid4().hex
            if await self.bus.remember(
                workspace_id, self.key, mine, ttl_s=self.ttl_s, only_new=True
            ):
                return mine
            found = await self.bus.recall(workspace_id, self.key)
        return found or ""

    async def changed(self, workspace_id: str) -> None:
        await self.bus.remember(workspace_id, self.key, uuid.uuid4().hex, ttl_s=self.ttl_s)

    async def load(self, workspace_id: str, loader: Callable[[], Awaitable[V]]) -> V:
        """The workspace's copy while its version stands, else what `loader` reads (kept
        under the version seen before it read)."""
        version = await self.version(workspace_id)
        kept = self._copies.get(workspace_id)
        if kept is not None and kept[0] == version:
            return kept[1]
        value = await loader()
        self._copies.put(workspace_id, (version, value))
        return value
