"""`RedisBus`: the bus contract of `hub.bus.base` on Redis Streams (Redis >= 7.0).

Every key of a workspace carries the hash tag ``{w:<id>}`` so a workspace's stream and
dedupe keys share a cluster slot and one Lua script may touch them together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError
from redis.typing import KeyT, StreamIdT

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

_MAX_PART = 2**64 - 1  # a stream id part is an unsigned 64-bit integer
PURGE_BATCH = 500
STATS_BATCH = 200  # streams per pipelined round trip of `stats`
LAG_COUNT_MAX = 10_000  # a lag Redis cannot tell is counted up to this many entries

# Ids are compared as digit strings: Lua numbers are doubles and lose sequence numbers past 2^53.
_LIB = """
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function info(key)
  local raw, f = redis.call('XINFO', 'STREAM', key), {}
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  return f
end
"""

# KEYS: stream [, dedupe]; ARGV: maxlen, ttl, name, conversation id, data. Answers {id, dup}.
# The dedupe key is written last: a script that fails midway is not rolled back, and a key
# set before a failed XADD would answer "duplicate" with no event for the whole TTL.
# Redis 7.0 trimming does not advance max-deleted-entry-id (only XDEL does), so the script
# trims exactly and records the newest trimmed id itself; `read` relies on it to see gaps.
_PUBLISH = (
    _LIB
    + """
local stream, dedupe = KEYS[1], KEYS[2]
if dedupe then
  local seen = redis.call('GET', dedupe)
  if seen then return {seen, 1} end
end
local length = redis.call('XLEN', stream)
-- XINFO only for an empty stream: it doubles the script's cost if run on every publish.
local fresh = length == 0 and (redis.call('EXISTS', stream) == 0
  or tonumber(info(stream)['entries-added']) == 0)
local excess = length + 1 - tonumber(ARGV[1])
local trimmed = false
if excess > 0 then
  local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
  if #old > 0 then trimmed = old[#old][1] end
end
local id = redis.call('XADD', stream, 'MAXLEN', ARGV[1], '*',
  'n', ARGV[3], 'c', ARGV[4], 'd', ARGV[5])
if trimmed and less(info(stream)['max-deleted-entry-id'], trimmed) then
  redis.call('XSETID', stream, id, 'MAXDELETEDID', trimmed)
elseif fresh then
  -- A new stream (or one lost and re-created): cursors from before it are unknown, so they
  -- must get CursorTooOld rather than a silent gap. Everything before it counts as deleted.
  redis.call('XSETID', stream, id, 'MAXDELETEDID', string.match(id, '^(%d+)-') .. '-0')
end
if dedupe then redis.call('SET', dedupe, id, 'EX', ARGV[2]) end
return {id, 0}
"""
)

# KEYS: stream; ARGV: after (canonical id), count. Nil means CursorTooOld. The check and
# the range run in one script so no trim can fall between them.
_READ = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[1] == '0-0' then return {} end
  return false
end
local f = info(KEYS[1])
local last = f['last-generated-id']
-- 0-0 ("I have seen nothing") stays good while nothing was ever deleted.
local whole = ARGV[1] == '0-0' and tonumber(f['entries-added']) == tonumber(f['length'])
if (less(ARGV[1], f['max-deleted-entry-id']) and not whole) or less(last, ARGV[1]) then
  return false
end
if ARGV[1] == last then return {} end
return redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
"""
)

# KEYS: stream; ARGV: the first id kept ("<ms>-0"). Answers how many entries went. As in
# _PUBLISH, XTRIM does not advance max-deleted-entry-id on Redis 7.0: the script records the
# newest trimmed id itself, so `read` refuses the cursors before it.
_TRIM = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local newest = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '-', 'COUNT', 1)
if #newest == 0 then return 0 end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
local f = info(KEYS[1])
if less(f['max-deleted-entry-id'], newest[1][1]) then
  redis.call('XSETID', KEYS[1], f['last-generated-id'], 'MAXDELETEDID', newest[1][1])
end
return trimmed
"""
)

_LAST_ID = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return '0-0' end
return info(KEYS[1])['last-generated-id']
"""
)


# KEYS: stream; ARGV: the most entries to count for one group. Answers {length, name, lag,
# pending, name, lag, pending...}. XINFO GROUPS knows a group's lag only while no entry was
# deleted past its position (our fresh-stream and trim bookkeeping moves that mark), so
# otherwise the entries after its last-delivered-id are counted, up to ARGV[1].
_STATS = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local out = {redis.call('XLEN', KEYS[1])}
local last = info(KEYS[1])['last-generated-id']
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = {}
  for i = 1, #raw, 2 do g[raw[i]] = raw[i + 1] end
  local lag = g['lag']
  if not lag then
    local seen = g['last-delivered-id']
    if less(seen, last) then
      lag = #redis.call('XRANGE', KEYS[1], '(' .. seen, '+', 'COUNT', ARGV[1])
    else
      lag = 0
    end
  end
  out[#out + 1] = g['name']
  out[#out + 1] = lag
  out[#out + 1] = g['pending']
end
return out
"""
)


# KEYS: stream; ARGV: group, consumer, first id, last id, ids... Resets the idle time of the
# listed entries that are still pending for this consumer (never takes another's), so a
# consumer that is busy with a long batch is not taken for a crashed one. Answers how many.
_TOUCH = """
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local mine = {}
-- Other entries of ours may lie between the first and last id: look a little further.
for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[4], 2 * (#ARGV - 4)
    + 100, ARGV[2])) do
  if wanted[p[1]] then mine[#mine + 1] = p[1] end
end
local n = #mine
if n > 0 then
  mine[n + 1] = 'JUSTID'  -- last: unpack() in the middle of a call gives only one value
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(mine))
end
return n
"""


def _event(event_id: str, fields: Mapping[str, str]) -> Event:
    return Event(event_id, fields.get("n", ""), fields.get("d", "{}"), fields.get("c", ""))


def _events(entries: Sequence[tuple[str | None, dict[str, str] | None]]) -> list[Event]:
    # Entries deleted while pending come back as (None, None) from XAUTOCLAIM on Redis < 7.
    return [_event(i, f) for i, f in entries if i is not None and f is not None]


class _Clients:
    def __init__(self, url: str) -> None:
        # No retries on the shared pool: a publish without a dedupe key is not idempotent, and
        # every caller already retries with backoff.
        self.pool = ConnectionPool.from_url(url, decode_responses=True, socket_connect_timeout=5)
        self.redis = Redis(connection_pool=self.pool)
        # The tail blocks in XREAD on a connection of its own, which CLIENT UNBLOCK targets.
        # XREAD is safe to repeat, so a connection that died between tails is replaced quietly.
        self.tail_pool = ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            max_connections=1,
            retry=Retry(NoBackoff(), 1),
        )
        self.tail = Redis(connection_pool=self.tail_pool, single_connection_client=True)
        self.publish: AsyncScript = self.redis.register_script(_PUBLISH)
        self.read: AsyncScript = self.redis.register_script(_READ)
        self.last_id: AsyncScript = self.redis.register_script(_LAST_ID)
        self.trim: AsyncScript = self.redis.register_script(_TRIM)
        self.stats: AsyncScript = self.redis.register_script(_STATS)
        self.touch: AsyncScript = self.redis.register_script(_TOUCH)


class RedisBus:
    def __init__(self, url: str, *, prefix: str, stream_maxlen: int, dedupe_ttl_s: int) -> None:
        if stream_maxlen < 1 or dedupe_ttl_s < 1:
            raise ValueError("stream_maxlen and dedupe_ttl_s must be positive")
        self.url = url
        self.prefix = prefix
        self.stream_maxlen = stream_maxlen
        self.dedupe_ttl_s = dedupe_ttl_s
        self._clients: _Clients | None = None
        self._registered: set[str] = set()
        self._tail_lock = asyncio.Lock()
        self._tail_id: int | None = None
        self._tailing = False  # an XREAD is in flight on the tail connection
        self._woken = asyncio.Event()
        self._unblocker: asyncio.Task[None] | None = None

    @property
    def _c(self) -> _Clients:
        if self._clients is None:
            raise RuntimeError("RedisBus.start() was not awaited")
        return self._clients

    def _key(self, workspace_id: str) -> str:
        return f"{self.prefix}:{{w:{workspace_id}}}:events"

    async def start(self) -> None:
        if self._clients is None:
            self._clients = _Clients(self.url)
            self._registered.clear()
            self._tail_id = None
            self._woken.clear()

    async def close(self) -> None:
        clients = self._clients
        if clients is None:
            return
        self.wake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1), self._tail_lock:
                pass  # a blocked tail returns before its connection goes away
        if self._unblocker is not None:
            self._unblocker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._unblocker
        self._clients = None
        await clients.tail.aclose()
        await clients.tail_pool.aclose()
        await clients.redis.aclose()
        await clients.pool.aclose()

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2):
                return bool(await self._c.redis.ping())
        except (RedisError, OSError, TimeoutError, RuntimeError):
            return False

    async def publish(
        self,
        workspace_id: str,
        name: str,
        data: str,
        *,
        conversation_id: str = "",
        dedupe_key: str | None = None,
    ) -> Published:
        keys = [self._key(workspace_id)]
        if dedupe_key is not None:
            keys.append(f"{self.prefix}:{{w:{workspace_id}}}:dedupe:{dedupe_key}")
        args: list[str | int] = [self.stream_maxlen, self.dedupe_ttl_s, name, conversation_id, data]
        event_id, duplicate = await self._c.publish(keys=keys, args=args)
        if workspace_id not in self._registered:
            # After the append: a failed publish must not list a workspace with no events.
            await self._c.redis.sadd(f"{self.prefix}:workspaces", workspace_id)
            self._registered.add(workspace_id)
        return Published(str(event_id), bool(duplicate))

    async def remember(
        self, workspace_id: str, key: str, value: str, *, ttl_s: int, only_new: bool = False
    ) -> bool:
        stored = await self._c.redis.set(
            f"{self.prefix}:{{w:{workspace_id}}}:kv:{key}", value, ex=ttl_s, nx=only_new
        )
        return bool(stored)

    async def recall(self, workspace_id: str, key: str) -> str | None:
        value = await self._c.redis.get(f"{self.prefix}:{{w:{workspace_id}}}:kv:{key}")
        return None if value is None else str(value)

    async def forget(self, workspace_id: str, keys: Iterable[str]) -> None:
        names = [f"{self.prefix}:{{w:{workspace_id}}}:kv:{key}" for key in keys]
        if names:
            await self._c.redis.delete(*names)

    async def purge(self, workspace_id: str, ids: Iterable[str], *, up_to: str) -> int:
        """XRANGE in batches up to `up_to`, matched here, XDEL per batch. XDEL moves the
        stream's max-deleted-entry-id forward, which is what makes `read` refuse the older
        cursors; entries pending in a group are dropped by XAUTOCLAIM, never handed out."""
        wanted = frozenset(i for i in ids if i)
        ms, seq = parse_id(up_to)
        if not wanted:
            return 0
        key, redis = self._key(workspace_id), self._c.redis
        start, deleted = "-", 0
        while True:
            entries = cast(
                list[tuple[str, dict[str, str]]],
                await redis.xrange(key, start, f"{ms}-{seq}", count=PURGE_BATCH),
            )
            doomed = [i for i, fields in entries if mentions(_event(i, fields), wanted)]
            if doomed:
                deleted += int(await redis.xdel(key, *doomed))
            if len(entries) < PURGE_BATCH:
                return deleted
            start = "(" + entries[-1][0]

    async def trim_before(self, workspace_id: str, ms: int) -> int:
        """XTRIM MINID in one script with the bookkeeping `read` relies on. Entries pending
        in a group go with the rest: XAUTOCLAIM drops them, never hands them out."""
        if ms <= 0:
            return 0
        return int(await self._c.trim(keys=[self._key(workspace_id)], args=[f"{ms}-0"]))

    async def count(self, workspace_id: str, key: str, *, window_s: int) -> int:
        name = f"{self.prefix}:{{w:{workspace_id}}}:count:{key}"
        # MULTI/EXEC: the increment and the window's expiry are applied together.
        async with self._c.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_s, nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def last_id(self, workspace_id: str) -> str:
        return str(await self._c.last_id(keys=[self._key(workspace_id)]))

    async def read(self, workspace_id: str, after: str, count: int) -> list[Event]:
        ms, seq = parse_id(after)
        if ms > _MAX_PART or seq > _MAX_PART:
            raise CursorTooOld()  # beyond any id a stream can ever have
        entries = await self._c.read(keys=[self._key(workspace_id)], args=[f"{ms}-{seq}", count])
        if entries is None:
            raise CursorTooOld()
        return [_event(i, dict(zip(f[::2], f[1::2], strict=True))) for i, f in entries]

    async def tail(self, positions: Mapping[str, str], *, count: int, block_ms: int) -> Batch:
        for position in positions.values():
            parse_id(position)
        streams: dict[KeyT, StreamIdT] = {self._key(w): p for w, p in positions.items()}
        owners = {self._key(w): w for w in positions}
        clients = self._c
        async with self._tail_lock:
            if not streams:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(block_ms, 0) / 1000):
                        await self._woken.wait()
                self._woken.clear()
                return []
            await self._connect_tail(clients)
            # A wake() from here on finds _tailing set and unblocks the XREAD (retrying until
            # it is blocked at the server); one from before makes this read non-blocking.
            woken = self._woken.is_set()
            self._tailing = not woken
            try:
                # decode_responses=True and RESP2: [[key, [(id, {field: value})]]]
                reply = cast(
                    list[Any],
                    await clients.tail.xread(
                        streams, count=count, block=None if woken or block_ms <= 0 else block_ms
                    ),
                )
            finally:
                self._tailing = False
                self._woken.clear()
        return [(owners[key], _events(entries)) for key, entries in reply if entries]

    async def _connect_tail(self, clients: _Clients) -> None:
        if clients.tail.connection is None:
            await clients.tail.initialize()
            assert clients.tail.connection is not None
            clients.tail.connection.register_connect_callback(self._on_tail_connect)
            self._tail_id = int(await clients.tail.client_id())

    async def _on_tail_connect(self, connection: AbstractConnection) -> None:
        # A reconnected tail is a new server client, with a new id for CLIENT UNBLOCK.
        await connection.send_command("CLIENT", "ID")
        self._tail_id = int(await connection.read_response())

    def wake(self) -> None:
        self._woken.set()
        if self._tailing and self._unblocker is None:
            self._unblocker = asyncio.get_running_loop().create_task(self._unblock())

    async def _unblock(self) -> None:
        try:
            while self._tailing and self._woken.is_set() and self._clients is not None:
                tail_id = self._tail_id
                if tail_id is not None and await self._clients.redis.client_unblock(tail_id):
                    return
                await asyncio.sleep(0.002)  # the XREAD has not reached the server yet
        except RedisError:
            pass  # the tail's own XREAD fails or times out by itself
        finally:
            self._unblocker = None

    async def workspaces(self) -> set[str]:
        return cast(set[str], await self._c.redis.smembers(f"{self.prefix}:workspaces"))

    async def ensure_group(self, group: str, workspace_ids: Iterable[str]) -> None:
        keys = [self._key(w) for w in workspace_ids]
        if not keys:
            return
        async with self._c.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xgroup_create(key, group, id=ZERO_ID, mkstream=True)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception) and not str(result).startswith("BUSYGROUP"):
                raise result

    async def read_group(
        self, group: str, consumer: str, workspace_ids: Iterable[str], *, count: int, block_ms: int
    ) -> Batch:
        ids = list(workspace_ids)
        if not ids:
            await asyncio.sleep(max(block_ms, 0) / 1000)
            return []
        streams: dict[KeyT, StreamIdT] = {self._key(w): ">" for w in ids}
        owners = {self._key(w): w for w in ids}
        block = block_ms if block_ms > 0 else None
        redis = self._c.redis
        for attempt in range(2):
            try:
                reply = cast(
                    list[Any],
                    await redis.xreadgroup(group, consumer, streams, count=count, block=block),
                )
                break
            except ResponseError as exc:
                if attempt or not str(exc).startswith("NOGROUP"):
                    raise
                # The stream and its groups were lost (a flush, a restart without
                # persistence): recreate them instead of failing until the worker restarts.
                await self.ensure_group(group, ids)
        return [(owners[key], _events(entries)) for key, entries in reply if entries]

    async def ack(self, group: str, workspace_id: str, ids: Iterable[str]) -> None:
        event_ids = list(ids)
        if event_ids:
            await self._c.redis.xack(self._key(workspace_id), group, *event_ids)

    async def touch(self, group: str, consumer: str, workspace_id: str, ids: Sequence[str]) -> int:
        """Keep this consumer's pending entries from looking abandoned while it works on them
        (XCLAIM to itself, idle time back to 0); entries another consumer took stay theirs."""
        if not ids:
            return 0
        ordered = sorted(ids, key=parse_id)
        args = [group, consumer, ordered[0], ordered[-1], *ordered]
        return int(await self._c.touch(keys=[self._key(workspace_id)], args=args))

    async def autoclaim(
        self, group: str, consumer: str, workspace_id: str, *, min_idle_ms: int, count: int
    ) -> list[Event]:
        claimed: list[Event] = []
        start = ZERO_ID
        while len(claimed) < count:
            try:
                reply: list[Any] = await self._c.redis.xautoclaim(
                    self._key(workspace_id),
                    group,
                    consumer,
                    min_idle_ms,
                    start_id=start,
                    count=count - len(claimed),
                )
            except ResponseError as exc:
                if str(exc).startswith("NOGROUP"):
                    return claimed
                raise
            claimed += _events(reply[1])
            start = reply[0]
            # One call scans a bounded slice of the pending list; go on until it wraps.
            if start == ZERO_ID:
                break
        return claimed

    async def stats(
        self, workspace_ids: Iterable[str] | None = None, *, max_streams: int = STATS_MAX_STREAMS
    ) -> BusStats:
        """One script per stream (XLEN and XINFO GROUPS), pipelined in batches; every
        workspace means the first `max_streams` of the workspace set's SSCAN."""
        redis = self._c.redis
        ids: list[str] = []
        if workspace_ids is None:
            async for workspace_id in redis.sscan_iter(f"{self.prefix}:workspaces", count=500):
                ids.append(str(workspace_id))
                if len(ids) > max_streams:
                    break
        else:
            ids = list(workspace_ids)
        capped, ids = len(ids) > max_streams, ids[:max_streams]
        entries = 0
        lag: dict[str, int] = {}
        pending: dict[str, int] = {}
        for start in range(0, len(ids), STATS_BATCH):
            async with redis.pipeline(transaction=False) as pipe:
                for workspace_id in ids[start : start + STATS_BATCH]:
                    await self._c.stats(
                        keys=[self._key(workspace_id)], args=[LAG_COUNT_MAX], client=pipe
                    )
                replies: list[list[Any]] = await pipe.execute()
            for reply in replies:
                entries += int(reply[0])
                for i in range(1, len(reply), 3):
                    name = str(reply[i])
                    lag[name] = lag.get(name, 0) + int(reply[i + 1])
                    pending[name] = pending.get(name, 0) + int(reply[i + 2])
        groups = {name: GroupStats(lag[name], pending[name]) for name in lag}
        return BusStats(len(ids), entries, groups, capped)
