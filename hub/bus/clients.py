"""The Redis side of `hub.bus.redis.RedisBus`: its clients (one pool, or a cluster client,
with the Lua scripts registered), the connections of its blocking reads, and the layout of its
keys (see `hub.bus.redis`, "Keys")."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from hiredis import pack_command
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub.bus import lua
from hub.bus.base import Event

MAX_CONNECTIONS = 200  # per process, to a standalone server; more callers wait their turn
CLUSTER_MAX_CONNECTIONS = 1000  # per process and node
BUCKETS = 64  # a cluster's slot buckets: the most shards workspaces spread over
# The longest a blocking read may block. Its connection has no socket timeout: `Reads` gives
# each read its block time and 5 s more (`hub.bus.blocking`). redis-py 8's default socket
# timeout (5 s) raced the fan-out's 5 s block: an idle bucket's read failed, its connection
# was replaced and the whole tail backed off, stalling the busy rooms' deliveries for up to a
# second.
MAX_BLOCK_MS = 10_000


def event_of(event_id: str, fields: Mapping[str, str]) -> Event:
    return Event(
        event_id,
        fields.get("n", ""),
        fields.get("d", "{}"),
        fields.get("c", ""),
        fields.get("l", ""),
    )


def bucket(workspace_id: str) -> int:
    """A workspace's slot bucket on a cluster: the same in every process and version."""
    return zlib.crc32(workspace_id.encode()) % BUCKETS


def events_of(entries: Sequence[tuple[str | None, dict[str, str] | None]]) -> list[Event]:
    # Entries deleted while pending come back as (None, None) from XAUTOCLAIM on Redis < 7.
    return [event_of(i, f) for i, f in entries if i is not None and f is not None]


class QueuedPool(ConnectionPool):
    """redis-py's pool, except in two ways. A caller past `max_connections` waits for a
    connection instead of failing at once (redis-py's BlockingConnectionPool also waits, but
    costs about 15 µs more per command). And taking a connection and giving it back are a few
    list operations: redis-py 8's pool takes an asyncio lock around each (which guards no await
    in one event loop), records both moves for its OpenTelemetry metrics (not set up here) and
    dispatches a release event for its re-authenticating credential providers (none here):
    6.6 µs of CPU a command, against 1.6 here. What a taken connection is checked for is
    redis-py's (`ensure_connection`), and so is what a returned one is: one that must
    reconnect is closed first. Its `TimedConnection`s share one `Deadlines`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(self.max_connections)
        self.deadlines = Deadlines()

    def make_connection(self) -> AbstractConnection:
        connection: AbstractConnection = super().make_connection()  # type: ignore[no-untyped-call]
        if isinstance(connection, TimedConnection):
            connection.deadlines = self.deadlines
        return connection

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        await self._slots.acquire()
        try:
            connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        except BaseException:
            self._slots.release()
            raise
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        try:
            self._in_use_connections.remove(connection)
        except KeyError:
            return  # not taken from this pool, or given back twice: its slot is free already
        try:
            if connection.should_reconnect():  # type: ignore[no-untyped-call]
                await connection.disconnect()
        finally:
            self._available_connections.append(connection)
            self._slots.release()


class Deadlines:
    """When each busy connection of a pool must be done with its send or read (loop time), and
    one timer that sweeps them while any is busy. A connection past its deadline is aborted,
    which ends its send or read at once (`TimedConnection.expire`). redis-py bounds each read
    with a timer of its own (`asyncio.timeout`, about 5 µs of CPU a command measured alone,
    more on a webhook's cold path); here a command's deadline is a dict write and a delete, and
    a command that hangs fails between its timeout and a quarter of it later."""

    def __init__(self) -> None:
        self.busy: dict[TimedConnection, float] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, connection: TimedConnection, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.busy[connection] = loop.time() + timeout
        if self._sweep is None or self._loop is not loop:
            self._loop = loop
            self._sweep = loop.call_later(timeout / 4, self._expire_late, timeout / 4)

    def stop(self, connection: TimedConnection) -> None:
        self.busy.pop(connection, None)

    @property
    def sweeping(self) -> bool:
        return self._sweep is not None

    def _expire_late(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [connection for connection, by in self.busy.items() if by <= now]
        for connection in late:
            del self.busy[connection]
            connection.expire()
        self._sweep = loop.call_later(every, self._expire_late, every) if self.busy else None


class TimedConnection(Connection):
    """redis-py's TCP connection, except for how a command's send and read are bounded. redis-py
    bounds a send with `asyncio.wait_for`, which on Python 3.11 makes a task of it (about 15 µs
    of CPU a command), and a read with `asyncio.timeout`, a timer set and cancelled each time:
    on the shared client, whose every command is a round trip of a publish, a webhook or a
    socket's ack. Here both are bounded by the pool's `Deadlines`, with the socket timeout as
    before: a send or read past it is aborted, closing the connection, and raises redis-py's
    `TimeoutError`. A read given a timeout of its own, or one that must leave the connection
    open when it fails, is redis-py's. The send and the read each bound themselves inline: a
    coroutine shared by both, one more frame a command, cost a webhook 1.4% more CPU (9 paired
    runs at 1,000/s, dearer in 8)."""

    deadlines: Deadlines  # the pool's (`QueuedPool.make_connection`), else the connection's own

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = Deadlines()
        self.expired = False

    def expire(self) -> None:
        """Past its deadline: abort the socket, which fails the send or read waiting on it."""
        self.expired = True
        if self._writer is not None:
            self._writer.transport.abort()

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        timeout = self.socket_timeout
        if not timeout:
            return await super().send_packed_command(command, check_health)
        self.socket_timeout = None  # bounded by the deadline, not by a task of its own
        self.expired = False
        self.deadlines.start(self, timeout)
        try:
            await super().send_packed_command(command, check_health)
        except RedisConnectionError:
            if self.expired:
                raise RedisTimeoutError("Timeout writing to socket") from None
            raise
        finally:
            self.deadlines.stop(self)
            self.socket_timeout = timeout

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109  (redis-py's signature)
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        limit = self.socket_timeout
        if timeout is not None or not limit or not disconnect_on_error:
            return await super().read_response(
                disable_decoding,
                timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )
        self.socket_timeout = None  # bounded by the deadline, not by a timer of its own
        self.expired = False
        self.deadlines.start(self, limit)
        try:
            return await super().read_response(disable_decoding, push_request=push_request)
        except RedisConnectionError:
            if self.expired:
                raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from None
            raise
        finally:
            self.deadlines.stop(self)
            self.socket_timeout = limit


class Script:
    """A Lua script called as one EVALSHA, its keys and arguments all bytes, and loaded again
    when the server answers NOSCRIPT (a Redis restarted or flushed since). It is the publish
    script: the one round trip of a webhook, a visitor's message and an agent's reply.

    On a standalone server it takes a connection from the pool itself and sends the command
    packed by hiredis in one call: redis-py's `execute_command` would encode each argument
    (type questions on each, though all are bytes), wrap the call in its retry policy (none
    here) and its observability hooks, and look up a response callback (none for EVALSHA),
    about 18 µs of CPU a call. The connection, its bounded send and read (each closes the
    connection when it fails), and the pool are redis-py's. On a cluster the call goes through
    the client, which routes it by its keys' slot."""

    def __init__(self, redis: Redis | RedisCluster, source: str, pool: ConnectionPool | None):
        self.redis = redis
        self.registered = redis.register_script(source)
        self._pool = pool
        self._head = (b"EVALSHA", self.registered.sha.encode())

    async def __call__(self, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        try:
            if self._pool is None:
                sha = self.registered.sha  # the cluster client routes by the command's name
                return await self.redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            command = (*self._head, b"%d" % len(keys), *keys, *args)
            return await self._on_pool(self._pool, command)
        except NoScriptError:
            return await self.registered(keys, args)  # loads it, then calls it

    @staticmethod
    async def _on_pool(pool: ConnectionPool, command: tuple[bytes, ...]) -> Any:
        connection: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:  # a send or read that fails closes the connection itself (redis-py's own)
            packed = pack_command(command)  # type: ignore[arg-type]  # (its stub: a 1-tuple)
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        finally:
            await pool.release(connection)


class Clients:
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
            # A class given here would replace the one the URL names (TLS, a Unix socket).
            timed = {"connection_class": TimedConnection} if url.startswith("redis://") else {}
            self.pool = QueuedPool.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=5,
                max_connections=MAX_CONNECTIONS,
                **timed,
            )
            self.redis = Redis(connection_pool=self.pool)
        self.publish = Script(self.redis, lua.PUBLISH, self.pool)
        self.read: AsyncScript = self.redis.register_script(lua.READ)
        self.last_id: AsyncScript = self.redis.register_script(lua.LAST_ID)
        self.handled_up_to: AsyncScript = self.redis.register_script(lua.HANDLED_UP_TO)
        self.trim: AsyncScript = self.redis.register_script(lua.TRIM)
        self.stats: AsyncScript = self.redis.register_script(lua.STATS)
        self.touch: AsyncScript = self.redis.register_script(lua.TOUCH)
        self.keep: AsyncScript = self.redis.register_script(lua.KEEP)

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
            socket_timeout=None,  # `Reads` times each read: see `hub.bus.blocking`
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


class Connected:
    """A bus's clients, made by `start`, and the names of its keys."""

    def __init__(self, url: str, *, prefix: str, cluster: bool) -> None:
        self.url = url
        self.prefix = prefix
        self.cluster = cluster
        self._clients: Clients | None = None

    @property
    def _c(self) -> Clients:
        if self._clients is None:
            raise RuntimeError("RedisBus.start() was not awaited")
        return self._clients

    def _tag(self, workspace_id: str) -> str:
        """The part of a workspace's keys that names it, hash tag included (`hub.bus.redis`)."""
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

    def _workspaces_key(self, group: int) -> str:
        """The set of workspaces whose streams the workers read, per slot group: the publish
        script adds to it, so it must share the stream's slot on a cluster."""
        tag = f"{{b{group:02d}}}:" if self.cluster else ""
        return f"{self.prefix}:{tag}workspaces"

    def _workspaces_keys(self) -> list[str]:
        """Every workspace set; on a cluster also the one set of the layout before it was per
        bucket, which a deployment that upgraded may still hold."""
        if not self.cluster:
            return [self._workspaces_key(0)]
        return [f"{self.prefix}:workspaces", *map(self._workspaces_key, range(BUCKETS))]

    def _epoch_keys(self) -> list[str]:
        """The epoch, one per slot group: on a cluster a shard can lose its data alone."""
        if not self.cluster:
            return [f"{self.prefix}:epoch"]
        return [f"{self.prefix}:{{b{n:02d}}}:epoch" for n in range(BUCKETS)]

    def _changes_group(self, key: str) -> int:
        return int(key[len(self.prefix) + 3 : -len("}:changes")]) if self.cluster else 0

    def _owner(self, key: str) -> str:
        """The workspace id in a stream key."""
        tag = key[len(self.prefix) + 1 : -len(":events")]
        return tag.split("}:w:", 1)[1] if self.cluster else tag[3:-1]
