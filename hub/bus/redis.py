"""`RedisBus`: the bus contract of `hub.bus.base` on Redis Streams (Redis >= 7.0), on one
server or on a Redis Cluster (`cluster=True`, `HUB_REDIS_CLUSTER`).

Keys
----
All the keys of one workspace share a hash tag, so they share a slot and one Lua script (or
MULTI) may touch them together; no command ever spans two workspaces' keys except the blocking
reads below, and the publish script's append to the doorbell (a "changes" stream of the slot).

- Standalone: ``PREFIX:{w:<id>}:events`` (also ``:dedupe:K``, ``:kv:K``, ``:count:K``),
  ``PREFIX:workspaces``, the set of workspaces that published, and ``PREFIX:changes``.
- Cluster: ``PREFIX:{b<NN>}:w:<id>:events`` and so on, where ``NN`` is the workspace's bucket,
  CRC-32 of its id modulo `BUCKETS`: stable across processes and versions. A cluster has
  16384 slots; the buckets' tags land on `BUCKETS` of them, which `redis-cli --cluster create`
  (or a reshard) spreads over the shards, so workspaces spread with them. Many workspaces
  share a bucket, so a read over every room's stream is one command per bucket, never one
  per workspace. Tagging by workspace instead would make that one command per workspace.
  Each bucket has its changes stream, ``PREFIX:{b<NN>}:changes``.
  The standalone layout is kept as it was: moving a deployment onto a cluster means letting
  the workers drain, then starting on the cluster (clients resume with `CursorTooOld` and
  reload over REST, as after any loss of the streams).

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
import contextlib
import zlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, RedisError, ResponseError
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
from hub.bus.blocking import Command, Reads
from hub.errors import CursorTooOld

_MAX_PART = 2**64 - 1  # a stream id part is an unsigned 64-bit integer
PURGE_BATCH = 500
STATS_BATCH = 200  # streams per pipelined round trip of `stats` (concurrent calls on a cluster)
CLUSTER_STATS_BATCH = 50  # below the cluster client's 100 connections per node
MAX_CONNECTIONS = 200  # per process, to a standalone server; more callers wait their turn
CLUSTER_MAX_CONNECTIONS = 1000  # per process and node
BUCKETS = 64  # a cluster's slot buckets: the most shards workspaces spread over
LAG_COUNT_MAX = 10_000  # a lag Redis cannot tell is counted up to this many entries
DIRECT_ROOMS = 16  # a tail over more rooms reads the doorbell first (see above)
# The longest a blocking read may block, and how long its connection waits for the answer.
# redis-py 8's default socket timeout (5 s) raced the fan-out's 5 s block: an idle bucket's
# read failed, its connection was replaced and the whole tail backed off, stalling the busy
# rooms' deliveries for up to a second.
MAX_BLOCK_MS = 10_000
BLOCKING_SOCKET_TIMEOUT_S = MAX_BLOCK_MS / 1000 + 5
CHANGES_MAXLEN = 10_000  # entries a changes stream keeps, about
CHANGES_COUNT = 1000  # rings read per changes stream and call; a full reply reads every room

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

# KEYS: stream, changes [, dedupe]; ARGV: maxlen, ttl, name, conversation id, data, changes
# maxlen, workspace id. Answers {id, dup}. The ring goes with the event, never without it.
# The dedupe key is written last: a script that fails midway is not rolled back, and a key
# set before a failed XADD would answer "duplicate" with no event for the whole TTL.
# Redis 7.0 trimming does not advance max-deleted-entry-id (only XDEL does), so the script
# trims exactly and records the newest trimmed id itself; `read` relies on it to see gaps.
_PUBLISH = (
    _LIB
    + """
local stream, changes, dedupe = KEYS[1], KEYS[2], KEYS[3]
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
redis.call('XADD', changes, 'MAXLEN', '~', ARGV[6], '*', 'w', ARGV[7])
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


def bucket(workspace_id: str) -> int:
    """A workspace's slot bucket on a cluster: the same in every process and version."""
    return zlib.crc32(workspace_id.encode()) % BUCKETS


def _xread(keys: dict[KeyT, StreamIdT], count: int) -> Command:
    async def command(client: Redis, block: int | None) -> Any:
        return await client.xread(keys, count=count, block=block)

    return command


def _events(entries: Sequence[tuple[str | None, dict[str, str] | None]]) -> list[Event]:
    # Entries deleted while pending come back as (None, None) from XAUTOCLAIM on Redis < 7.
    return [_event(i, f) for i, f in entries if i is not None and f is not None]


class _QueuedPool(ConnectionPool):
    """redis-py's pool, except that a caller past `max_connections` waits for a connection
    instead of failing at once. (redis-py's BlockingConnectionPool also waits, but costs
    about 15 µs more per command.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(self.max_connections)

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        await self._slots.acquire()
        try:
            connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
                *args, **kwargs
            )
            return connection
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: AbstractConnection) -> None:
        try:
            await super().release(connection)
        finally:
            self._slots.release()


class _Clients:
    def __init__(self, url: str, *, cluster: bool) -> None:
        # No retries on the shared client: a publish without a dedupe key is not idempotent,
        # and every caller already retries with backoff.
        self.url = url
        self.pool: ConnectionPool | None = None
        self.redis: Redis | RedisCluster
        # A burst (a reconnect storm, say) may want more connections at once than a pool
        # holds: it waits for one (a blocking pool) rather than failing at once, redis-py's
        # default. The cluster client cannot wait, so it may open more per node.
        if cluster:
            self.redis = RedisCluster.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=5,
                max_connections=CLUSTER_MAX_CONNECTIONS,
            )
        else:
            self.pool = _QueuedPool.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=5,
                max_connections=MAX_CONNECTIONS,
            )
            self.redis = Redis(connection_pool=self.pool)
        self.publish: AsyncScript = self.redis.register_script(_PUBLISH)
        self.read: AsyncScript = self.redis.register_script(_READ)
        self.last_id: AsyncScript = self.redis.register_script(_LAST_ID)
        self.trim: AsyncScript = self.redis.register_script(_TRIM)
        self.stats: AsyncScript = self.redis.register_script(_STATS)
        self.touch: AsyncScript = self.redis.register_script(_TOUCH)

    async def server(self, key: str) -> Hashable:
        """Where a key lives: None on a standalone server, else its cluster node's address."""
        if isinstance(self.redis, RedisCluster):
            await self.redis.initialize()  # learns the slot map, if it has not (or lost it)
            node = self.redis.get_node_from_key(key)
            assert node is not None
            return (node.host, int(node.port))
        return None

    def connect(self, server: Hashable) -> Redis:
        """A client of one connection to `server`, for a blocking read that CLIENT UNBLOCK
        targets. XREAD and XREADGROUP are safe to repeat, so a connection that died between
        reads is replaced quietly."""
        url = self.url
        if server is not None:
            host, port = cast(tuple[str, int], server)
            parts = urlsplit(url)
            auth = parts.netloc.rpartition("@")[0]
            url = urlunsplit(
                parts._replace(netloc=f"{auth}@{host}:{port}" if auth else f"{host}:{port}")
            )
        pool = ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=BLOCKING_SOCKET_TIMEOUT_S,
            max_connections=1,
            retry=Retry(NoBackoff(), 1),
        )
        return Redis(connection_pool=pool, single_connection_client=True)

    async def unblock(self, server: Hashable, client_id: int) -> bool:
        if isinstance(self.redis, RedisCluster):
            host, port = cast(tuple[str, int], server)
            node = self.redis.get_node(host, port)
            if node is None:
                return False
            return bool(await self.redis.client_unblock(client_id, target_nodes=node))
        return bool(await self.redis.client_unblock(client_id))

    async def aclose(self) -> None:
        await self.redis.aclose()
        if self.pool is not None:
            await self.pool.aclose()


class RedisBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        stream_maxlen: int,
        dedupe_ttl_s: int,
        cluster: bool = False,
        direct_rooms: int = DIRECT_ROOMS,
        changes_maxlen: int = CHANGES_MAXLEN,
    ) -> None:
        if stream_maxlen < 1 or dedupe_ttl_s < 1 or changes_maxlen < 1:
            raise ValueError("stream_maxlen, dedupe_ttl_s and changes_maxlen must be positive")
        self.url = url
        self.prefix = prefix
        self.stream_maxlen = stream_maxlen
        self.dedupe_ttl_s = dedupe_ttl_s
        self.cluster = cluster
        self.direct_rooms = direct_rooms
        self.changes_maxlen = changes_maxlen
        # At most what the stream keeps: a cursor trimmed away must show as a full reply.
        self.changes_count = min(CHANGES_COUNT, changes_maxlen)
        self._clients: _Clients | None = None
        self._registered: set[str] = set()
        self._tail: Reads | None = None
        # The tail's doorbell mode (see above): per slot group, the changes read up to.
        self._doorbell = False
        self._cursors: dict[int, str] = {}
        self._rooms_of: frozenset[str] = frozenset()  # the rooms of the last call, by group:
        self._rooms: dict[int, set[str]] = {}
        self._uncovered: set[str] = set()  # of those, the rooms not covered
        self._woken = False  # since the last `tail` returned
        self._group_reads: dict[tuple[str, str], Reads] = {}  # per (group, consumer)

    @property
    def _c(self) -> _Clients:
        if self._clients is None:
            raise RuntimeError("RedisBus.start() was not awaited")
        return self._clients

    def _tag(self, workspace_id: str) -> str:
        """The part of a workspace's keys that names it, hash tag included (see above)."""
        if self.cluster:
            return f"{{b{bucket(workspace_id):02d}}}:w:{workspace_id}"
        return f"{{w:{workspace_id}}}"

    def _key(self, workspace_id: str) -> str:
        return f"{self.prefix}:{self._tag(workspace_id)}:events"

    def _slot_group(self, workspace_id: str) -> int:
        return bucket(workspace_id) if self.cluster else 0

    def _changes_key(self, group: int) -> str:
        tag = f"{{b{group:02d}}}:" if self.cluster else ""
        return f"{self.prefix}:{tag}changes"

    def _changes_group(self, key: str) -> int:
        return int(key[len(self.prefix) + 3 : -len("}:changes")]) if self.cluster else 0

    async def start(self) -> None:
        if self._clients is None:
            clients = self._clients = _Clients(self.url, cluster=self.cluster)
            self._registered.clear()
            self._tail = Reads(clients.connect, clients.unblock, linger=True)
            self._reset(doorbell=False)
            self._group_reads.clear()
            if isinstance(clients.redis, RedisCluster):
                # Learn the slot map now: commands that start together on a client that has
                # not, each (re)initialize it and may lose their connections (redis-py 8.1).
                # A cluster that is away is no error here: the first command tries again.
                with contextlib.suppress(RedisError, OSError):
                    await clients.redis.initialize()

    async def close(self) -> None:
        clients = self._clients
        if clients is None:
            return
        reads = [self._tail, *self._group_reads.values()]
        self._woken = True  # a doorbell tail in its rounds returns
        self._tail = None
        self._group_reads = {}
        await asyncio.gather(*(r.close() for r in reads if r is not None))
        self._clients = None
        await clients.aclose()

    async def ping(self) -> bool:
        """PING; on a cluster, to every node: one shard away is a bus that cannot serve."""
        try:
            async with asyncio.timeout(2):
                redis = self._c.redis
                if isinstance(redis, RedisCluster):
                    return bool(await redis.ping(target_nodes=RedisCluster.ALL_NODES))
                return bool(await redis.ping())
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
        keys = [self._key(workspace_id), self._changes_key(self._slot_group(workspace_id))]
        if dedupe_key is not None:
            keys.append(f"{self.prefix}:{self._tag(workspace_id)}:dedupe:{dedupe_key}")
        args: list[str | int] = [
            self.stream_maxlen,
            self.dedupe_ttl_s,
            name,
            conversation_id,
            data,
            self.changes_maxlen,
            workspace_id,
        ]
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
            f"{self.prefix}:{self._tag(workspace_id)}:kv:{key}", value, ex=ttl_s, nx=only_new
        )
        return bool(stored)

    async def recall(self, workspace_id: str, key: str) -> str | None:
        value = await self._c.redis.get(f"{self.prefix}:{self._tag(workspace_id)}:kv:{key}")
        return None if value is None else str(value)

    async def forget(self, workspace_id: str, keys: Iterable[str]) -> None:
        names = [f"{self.prefix}:{self._tag(workspace_id)}:kv:{key}" for key in keys]
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
        name = f"{self.prefix}:{self._tag(workspace_id)}:count:{key}"
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
            (self._owner(key), _events(entries))
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

    def _owner(self, key: str) -> str:
        """The workspace id in a stream key."""
        tag = key[len(self.prefix) + 1 : -len(":events")]
        return tag.split("}:w:", 1)[1] if self.cluster else tag[3:-1]

    def wake(self) -> None:
        self._woken = True
        if self._tail is not None:
            self._tail.wake()

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
        streams: dict[int, list[str]] = {}
        for workspace_id in workspace_ids:
            streams.setdefault(self._slot_group(workspace_id), []).append(workspace_id)
        if not streams:
            await asyncio.sleep(max(block_ms, 0) / 1000)
            return []

        def xreadgroup(ids: list[str]) -> Command:
            keys: dict[KeyT, StreamIdT] = {self._key(w): ">" for w in ids}

            async def command(client: Redis, block: int | None) -> Any:
                try:
                    return await client.xreadgroup(group, consumer, keys, count=count, block=block)
                except ResponseError as exc:
                    if not str(exc).startswith("NOGROUP"):
                        raise
                # The stream and its groups were lost (a flush, a restart without
                # persistence): recreate them instead of failing until the worker restarts.
                await self.ensure_group(group, ids)
                return await client.xreadgroup(group, consumer, keys, count=count, block=block)

            return command

        commands = {
            slot: (await self._c.server(self._key(ids[0])), xreadgroup(ids))
            for slot, ids in streams.items()
        }
        reads = self._group_reads.get((group, consumer))
        if reads is None:
            reads = Reads(self._c.connect, self._c.unblock, linger=False)
            self._group_reads[(group, consumer)] = reads
        replies = await self._blocking(reads, commands, block_ms)
        return [
            (self._owner(key), _events(entries))
            for reply in replies
            for key, entries in reply or ()
            if entries
        ]

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
        size = CLUSTER_STATS_BATCH if self.cluster else STATS_BATCH
        for start in range(0, len(ids), size):
            for reply in await self._stats_of(ids[start : start + size]):
                entries += int(reply[0])
                for i in range(1, len(reply), 3):
                    name = str(reply[i])
                    lag[name] = lag.get(name, 0) + int(reply[i + 1])
                    pending[name] = pending.get(name, 0) + int(reply[i + 2])
        groups = {name: GroupStats(lag[name], pending[name]) for name in lag}
        return BusStats(len(ids), entries, groups, capped)

    async def _stats_of(self, workspace_ids: list[str]) -> list[list[Any]]:
        keys = [self._key(w) for w in workspace_ids]
        redis = self._c.redis
        if isinstance(redis, RedisCluster):
            # A cluster pipeline refuses scripts: concurrent calls, each routed by its key.
            calls = (self._c.stats(keys=[key], args=[LAG_COUNT_MAX]) for key in keys)
            return list(await asyncio.gather(*calls))
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await self._c.stats(keys=[key], args=[LAG_COUNT_MAX], client=pipe)
            return cast(list[list[Any]], await pipe.execute())
