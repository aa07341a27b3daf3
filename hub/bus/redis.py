"""`RedisBus`: the bus contract of `hub.bus.base` on Redis Streams (Redis >= 7.0), on one
server or on a Redis Cluster (`cluster=True`, `HUB_REDIS_CLUSTER`).

Keys
----
All the keys of one workspace share a hash tag, so they share a slot and one Lua script (or
MULTI) may touch them together; no command ever spans two workspaces' keys except the blocking
reads (`hub.bus.doorbell`), and the publish script's append to the doorbell (a "changes"
stream of the slot).

- Standalone: ``PREFIX:{w:<id>}:events`` (also ``:dedupe:K``, ``:kv:K``, ``:count:K``),
  ``PREFIX:workspaces``, the set of workspaces that published, and ``PREFIX:changes``;
  ``PREFIX:epoch`` and ``PREFIX:bus-loss`` (below).
- Cluster: ``PREFIX:{b<NN>}:w:<id>:events`` and so on, where ``NN`` is the workspace's bucket,
  CRC-32 of its id modulo `BUCKETS`: stable across processes and versions. A cluster has
  16384 slots; the buckets' tags land on `BUCKETS` of them, which `redis-cli --cluster create`
  (or a reshard) spreads over the shards, so workspaces spread with them. Many workspaces
  share a bucket, so a read over every room's stream is one command per bucket, never one
  per workspace. Tagging by workspace instead would make that one command per workspace.
  Each bucket has its changes stream, ``PREFIX:{b<NN>}:changes``, its workspace set,
  ``PREFIX:{b<NN>}:workspaces``, and its epoch, ``PREFIX:{b<NN>}:epoch``.
  The standalone layout is kept as it was: moving a deployment onto a cluster means letting
  the workers drain, then starting on the cluster (clients resume with `CursorTooOld` and
  reload over REST, as after any loss of the streams).

How workers find their streams
------------------------------
Workers consume the streams of the workspaces in the workspace set(s), and nothing else tells
them. The publish script adds the workspace to its set on every publish (one SADD inside the
script that appends the event: no round trip of its own, the hot path's cost unchanged), so a
Redis that restarted without its data has the set back with the first event published after its
return, whichever web node or worker publishes it and whether or not any process restarted.
Considered and not chosen: the web nodes' memory (what this replaced: once per process, so an
emptied Redis stayed without the set until a web node restarted); the Postgres workspaces
(the worker would depend on the database to learn which streams to drain, and every workspace,
active or not, would cost a read per round); SCAN for stream keys (a full keyspace walk per
refresh, and slow on a large Redis).

Data loss: the epoch
--------------------
`epochs` writes a random token under the epoch key(s) where none is (SET NX GET) and answers
what was there. `hub.web.epoch.EpochWatch` remembers the token(s) it saw at start and checks
every few seconds: a key that is gone, or holds another token, means Redis lost the hub's data
(a restart without persistence, a failover to an empty replica, a flush). The first process to
notice records it in ``PREFIX:bus-loss`` (`record_loss`), which /readyz and the status page show
until an operator runs `hub bus acknowledge-loss` (`acknowledge_loss`). A Redis lost while no hub
process was running cannot be told from a first start: the streams still refuse the old
cursors (`read`, CursorTooOld).

Blocking reads (`tail`, `read_group`) and the doorbell that keeps a `tail` over many rooms
cheap are in `hub.bus.doorbell`; the clients and the key names in `hub.bus.clients`; the Lua
scripts in `hub.bus.lua`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
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
from hub.bus.blocking import Command, Reads
from hub.bus.clients import BUCKETS, Clients, bucket, event_of, events_of
from hub.bus.doorbell import CHANGES_COUNT, CHANGES_MAXLEN, DIRECT_ROOMS, Tailing
from hub.bus.durable import Settler, persistence_warning
from hub.errors import CursorTooOld

__all__ = ["BUCKETS", "DIRECT_ROOMS", "RedisBus", "bucket"]

_MAX_PART = 2**64 - 1  # a stream id part is an unsigned 64-bit integer
PURGE_BATCH = 500
STATS_BATCH = 200  # streams per pipelined round trip of `stats` (concurrent calls on a cluster)
CLUSTER_STATS_BATCH = 50  # below the cluster client's 100 connections per node
LAG_COUNT_MAX = 10_000  # a lag Redis cannot tell is counted up to this many entries


class RedisBus(Tailing):
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
        durable_ack: str = "off",
        durable_replicas: int = 1,
        durable_timeout_ms: int = 2000,
    ) -> None:
        if stream_maxlen < 1 or dedupe_ttl_s < 1 or changes_maxlen < 1:
            raise ValueError("stream_maxlen, dedupe_ttl_s and changes_maxlen must be positive")
        # At most what the stream keeps: a cursor trimmed away must show as a full reply.
        changes_count = min(CHANGES_COUNT, changes_maxlen)
        super().__init__(
            url,
            prefix=prefix,
            cluster=cluster,
            direct_rooms=direct_rooms,
            changes_count=changes_count,
        )
        self.stream_maxlen = stream_maxlen
        self.dedupe_ttl_s = dedupe_ttl_s
        self.changes_maxlen = changes_maxlen
        # The publish script's limits, as the bytes it is sent (`publish`).
        self._limits = tuple(b"%d" % n for n in (stream_maxlen, dedupe_ttl_s, changes_maxlen))
        self._group_reads: dict[tuple[str, str], Reads] = {}  # per (group, consumer)
        if cluster and durable_ack != "off":
            raise ValueError("a durable ack is not supported on a Redis Cluster")
        self._settler = Settler(
            durable_ack, replicas=durable_replicas, timeout_ms=durable_timeout_ms
        )

    async def start(self) -> None:
        if self._clients is None:
            clients = self._clients = Clients(self.url, cluster=self.cluster)
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
        lean: str = "",
    ) -> Published:
        group = self._slot_group(workspace_id)
        keys = [self._key(workspace_id), self._changes_key(group), self._workspaces_key(group)]
        if dedupe_key is not None:
            keys.append(f"{self.prefix}:{self._tag(workspace_id)}:dedupe:{dedupe_key}")
        # Every key and argument goes as bytes: redis-py's encoder passes bytes on at once and
        # asks four questions of anything else, which on these 12 values were about 60 of a
        # webhook's 830 function calls.
        maxlen, ttl, changes_maxlen = self._limits
        args = [
            maxlen,
            ttl,
            name.encode(),
            conversation_id.encode(),
            data.encode(),
            changes_maxlen,
            workspace_id.encode(),
            lean.encode(),
        ]
        event_id, duplicate = await self._c.publish(keys=[k.encode() for k in keys], args=args)
        return Published(str(event_id), bool(duplicate))

    async def settle(self, workspace_ids: Iterable[str]) -> None:
        """Return once what was published before is durable as `durable_ack` asks (nothing to
        wait for when it is off), else raise `NotDurable`: once per batch, whatever its size,
        on one server (`hub.bus.durable`)."""
        if self._settler.mode != "off" and any(True for _ in workspace_ids):
            redis = cast(Redis, self._c.redis)  # standalone: the constructor refuses a cluster
            await self._settler.settle(redis, f"{self.prefix}:durable")

    async def persistence_warning(self) -> str | None:
        """What `hub serve` logs at start when this Redis does not persist its writes."""
        redis = self._c.redis
        if isinstance(redis, RedisCluster):
            return None  # each shard has its own settings; see docs/operations.md
        return await persistence_warning(redis, mode=self._settler.mode)

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
        """SET EX (NX with `only_new`); with `unless`, refused while that key exists, checked
        and written in one script (both keys share the workspace's tag, so its slot)."""
        name = self._kv_key(workspace_id, key)
        if unless is not None:
            if only_new:
                raise ValueError("only_new and unless do not go together")
            veto = self._kv_key(workspace_id, unless)
            return bool(await self._c.keep(keys=[name, veto], args=[value, ttl_s]))
        return bool(await self._c.redis.set(name, value, ex=ttl_s, nx=only_new))

    async def recall(self, workspace_id: str, key: str, *, unless: str | None = None) -> str | None:
        """GET; with `unless`, None while that key exists too (one MGET, one slot)."""
        if unless is None:
            value = await self._c.redis.get(self._kv_key(workspace_id, key))
            return None if value is None else str(value)
        value, veto = await self._c.redis.mget(
            self._kv_key(workspace_id, key), self._kv_key(workspace_id, unless)
        )
        return None if value is None or veto is not None else str(value)

    async def forget(self, workspace_id: str, keys: Iterable[str]) -> None:
        names = [self._kv_key(workspace_id, key) for key in keys]
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
            doomed = [i for i, fields in entries if mentions(event_of(i, fields), wanted)]
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
        return [event_of(i, dict(zip(f[::2], f[1::2], strict=True))) for i, f in entries]

    async def workspaces(self) -> set[str]:
        redis = self._c.redis
        if isinstance(redis, RedisCluster):  # one set per bucket: concurrent, each on its node
            found = await asyncio.gather(*(redis.smembers(k) for k in self._workspaces_keys()))
            return {str(w) for members in found for w in members}
        return cast(set[str], await redis.smembers(self._workspaces_key(0)))

    async def epochs(self, token: str) -> list[str | None]:
        """Write `token` under each epoch key that has none; answer what each held before
        (None: it was not there). One pipelined round trip."""
        async with self._c.redis.pipeline(transaction=False) as pipe:
            for key in self._epoch_keys():
                pipe.set(key, token, nx=True, get=True)
            return cast(list[str | None], await pipe.execute())

    async def record_loss(self, fields: Mapping[str, str]) -> None:
        """Record a data loss for operators, keeping the first detection's fields."""
        async with self._c.redis.pipeline(transaction=False) as pipe:
            for name, value in fields.items():
                pipe.hsetnx(self._loss_key, name, value)
            await pipe.execute()

    async def loss(self) -> dict[str, str] | None:
        """The data loss not yet acknowledged, or None."""
        found = cast(dict[str, str], await self._c.redis.hgetall(self._loss_key))
        return found or None

    async def acknowledge_loss(self) -> dict[str, str] | None:
        """Clear the recorded loss; answer what it was (None: there was none)."""
        async with self._c.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._loss_key)
            pipe.delete(self._loss_key)
            found, _ = await pipe.execute()
        return cast(dict[str, str], found) or None

    def _kv_key(self, workspace_id: str, key: str) -> str:
        return f"{self.prefix}:{self._tag(workspace_id)}:kv:{key}"

    @property
    def _loss_key(self) -> str:
        return f"{self.prefix}:bus-loss"

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
            (self._owner(key), events_of(entries))
            for reply in replies
            for key, entries in reply or ()
            if entries
        ]

    async def ack(self, group: str, workspace_id: str, ids: Iterable[str]) -> None:
        event_ids = list(ids)
        if event_ids:
            await self._c.redis.xack(self._key(workspace_id), group, *event_ids)

    async def handled_up_to(self, group: str, workspace_id: str) -> str | None:
        found = await self._c.handled_up_to(keys=[self._key(workspace_id)], args=[group])
        return str(found) if found else None

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
            claimed += events_of(reply[1])
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
            seen: set[str] = set()
            for key in self._workspaces_keys():
                async for workspace_id in redis.sscan_iter(key, count=500):
                    if workspace_id not in seen:
                        seen.add(workspace_id)
                        ids.append(str(workspace_id))
                        if len(ids) > max_streams:
                            break
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
