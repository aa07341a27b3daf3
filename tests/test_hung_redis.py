"""A Redis that stops answering (hung, or cut off without a reset) fails the tail's blocking
read by its block time plus `ANSWER_SLACK_S`, so the fan-out notices the outage and backs off:
the read's connection has no socket timeout of its own (it cost a task and two timers a round).
The shared client's commands keep their socket timeout, for the send and the read, without a
task or a timer each: the pool's deadlines, which one timer sweeps (`hub.bus.clients.Deadlines`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from hub.bus.base import ZERO_ID
from hub.bus.blocking import ANSWER_SLACK_S
from hub.bus.clients import Clients, QueuedPool, TimedConnection
from hub.bus.redis import RedisBus
from tests.conftest import REDIS_URL


class FreezingProxy:
    """Forwards TCP to Redis until `freeze()`; then passes nothing either way, and the
    connections stay open, as with a hung server."""

    def __init__(self) -> None:
        self.frozen = asyncio.Event()
        self.port = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                if self.frozen.is_set():
                    await asyncio.Event().wait()  # swallowed; the socket stays open
                writer.write(chunk)
                await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = urlsplit(REDIS_URL)
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield f"redis://127.0.0.1:{self.port}{urlsplit(REDIS_URL).path}"
            server.close()


@pytest.mark.redis
async def test_the_tail_fails_on_a_redis_that_stops_answering(redis_prefix: str) -> None:
    proxy = FreezingProxy()
    async with proxy.running() as url:
        bus = RedisBus(url, prefix=redis_prefix, stream_maxlen=100, dedupe_ttl_s=60)
        await bus.start()
        try:
            positions = {"w-hung": ZERO_ID}
            assert await bus.tail(positions, count=10, block_ms=50) == []
            proxy.frozen.set()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(ANSWER_SLACK_S + 5):  # the test's own bound
                    await bus.tail(positions, count=10, block_ms=200)
            # Failed by the read's own timer (0.2 s + the slack), not by the bound above.
            assert time.monotonic() - started < ANSWER_SLACK_S + 2
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await bus.close()


@pytest.mark.redis
async def test_a_publish_makes_no_task_and_still_times_out_on_a_hung_redis(
    redis_prefix: str,
) -> None:
    """redis-py bounds a send with `asyncio.wait_for`, a task per command on Python 3.11; the
    shared client's connections bound it in the caller's task. A send that cannot finish (the
    server reads nothing, the socket's buffers fill) still fails by the socket timeout, with
    redis-py's `TimeoutError`, and a read that gets no answer too."""
    proxy = FreezingProxy()
    async with proxy.running() as url:
        bus = RedisBus(url, prefix=redis_prefix, stream_maxlen=100, dedupe_ttl_s=60)
        await bus.start()
        loop = asyncio.get_running_loop()
        made: list[object] = []

        def counting(
            loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
        ) -> asyncio.Task[Any]:
            made.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        try:
            await bus.publish("w-hung", "test.ping", "{}")  # the pool's connection is open
            loop.set_task_factory(counting)
            try:
                for n in range(10):
                    await bus.publish("w-hung", "test.ping", f'{{"n": {n}}}')
            finally:
                loop.set_task_factory(None)
            assert made == []

            proxy.frozen.set()
            for data in ("{}", '"' + "x" * 64_000_000 + '"'):  # no answer; a send that blocks
                started = time.monotonic()
                with pytest.raises(redis.exceptions.TimeoutError):
                    async with asyncio.timeout(15):  # the test's own bound
                        await bus.publish("w-hung", "test.ping", data)
                assert time.monotonic() - started < 10  # the client's 5 s, not the bound
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await bus.close()


async def test_a_publish_sets_no_timer_of_its_own(redis_prefix: str) -> None:
    """A publish's send and read are bounded by the pool's deadlines: ten publishes set no
    timer (redis-py's read timeout set one each), beyond the sweep's, at most once (counted
    twice on asyncio's own loop, whose call_later calls call_at)."""
    bus = RedisBus(REDIS_URL, prefix=redis_prefix, stream_maxlen=100, dedupe_ttl_s=60)
    await bus.start()
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at, call_later = loop.call_at, loop.call_later

    def counting_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(when)
        return call_at(when, *args, **kwargs)

    def counting_later(delay: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(delay)
        return call_later(delay, *args, **kwargs)

    try:
        await bus.publish("w-timers", "test.ping", "{}")  # the pool's connection is open
        loop.call_at = counting_at  # type: ignore[method-assign]
        loop.call_later = counting_later  # type: ignore[method-assign]
        try:
            for n in range(10):
                await bus.publish("w-timers", "test.ping", f'{{"n": {n}}}')
        finally:
            del loop.call_at, loop.call_later
        assert len(timers) <= 2
    finally:
        await bus.close()


@pytest.mark.redis
async def test_a_read_past_its_deadline_fails_and_the_pool_goes_on(redis_prefix: str) -> None:
    """A command whose answer does not come (a BLPOP that blocks for ever, on the real server)
    fails with redis-py's TimeoutError between its socket timeout and a quarter of it later,
    its connection closed; the pool's next command is answered on a new one, and once nothing
    is busy the sweep's timer stops."""
    pool = QueuedPool.from_url(
        REDIS_URL, connection_class=TimedConnection, socket_timeout=0.4, decode_responses=True
    )
    client = Redis(connection_pool=pool)
    try:
        assert await client.ping()
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError, match="Timeout reading"):
            async with asyncio.timeout(5):  # the test's own bound
                await client.blpop(f"{redis_prefix}:never", 0)
        assert 0.4 <= time.monotonic() - started < 0.4 * 1.25 + 1  # not the test's bound
        assert await client.ping()
        assert pool.deadlines.busy == {}
        await asyncio.sleep(0.3)  # two sweeps: the first finds nothing busy and ends it
        assert not pool.deadlines.sweeping
    finally:
        await client.aclose()
        await pool.aclose()


@pytest.mark.unit
async def test_a_url_that_names_tls_or_a_unix_socket_keeps_its_connection_class() -> None:
    """The timed send is for plain TCP; a class given to redis-py would replace the URL's."""
    for url, kind in (
        ("redis://127.0.0.1:6379/0", TimedConnection),
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///run/redis.sock?db=0", UnixDomainSocketConnection),
    ):
        clients = Clients(url, cluster=False)
        assert clients.pool is not None and clients.pool.connection_class is kind
        await clients.aclose()
