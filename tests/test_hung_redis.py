"""A Redis that stops answering (hung, or cut off without a reset) fails the tail's blocking
read by its block time plus `ANSWER_SLACK_S`, so the fan-out notices the outage and backs off:
the read's connection has no socket timeout of its own (it cost a task and two timers a round).
The shared client's commands keep their socket timeout, for the send too, without a task each
(and without a timer, for a send that cannot wait).
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
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from hub.bus.base import ZERO_ID
from hub.bus.blocking import ANSWER_SLACK_S
from hub.bus.clients import Clients, TimedConnection
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


async def test_a_send_that_cannot_wait_sets_no_timer(redis_prefix: str) -> None:
    """A command whose bytes fit under the transport's high-water mark cannot wait in its
    drain, so its send is not timed: a publish starts one timer (its read's), not two."""
    bus = RedisBus(REDIS_URL, prefix=redis_prefix, stream_maxlen=100, dedupe_ttl_s=60)
    await bus.start()
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at

    def counting(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(when)
        return call_at(when, *args, **kwargs)

    try:
        await bus.publish("w-timers", "test.ping", "{}")  # the pool's connection is open
        loop.call_at = counting  # type: ignore[method-assign]
        try:
            for n in range(10):
                await bus.publish("w-timers", "test.ping", f'{{"n": {n}}}')
        finally:
            del loop.call_at
        assert len(timers) == 10
    finally:
        await bus.close()


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
