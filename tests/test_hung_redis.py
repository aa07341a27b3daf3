"""A Redis that stops answering (hung, or cut off without a reset) fails the tail's blocking
read by its block time plus `ANSWER_SLACK_S`, so the fan-out notices the outage and backs off:
the read's connection has no socket timeout of its own (it cost a task and two timers a round).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from hub.bus.base import ZERO_ID
from hub.bus.blocking import ANSWER_SLACK_S
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
