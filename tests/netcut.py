"""A TCP proxy on loopback whose connections a test can cut, to drop a browser's websocket
for real (the server stays up, so the page must reconnect and resume)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cuttable:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self.transports: set[asyncio.BaseTransport] = set()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every connection now and refuse new ones until `restore`."""
        done = threading.Event()

        def abort() -> None:
            self.down = True
            for transport in list(self.transports):
                transport.abort()  # no FIN handshake: a reset, like a dropped network
            self.transports.clear()
            done.set()

        self.loop.call_soon_threadsafe(abort)
        done.wait(5)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "down", False)

    def close(self) -> None:
        self.cut()

        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(finish(), self.loop)
        self.thread.join(5)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = int(server.sockets[0].getsockname()[1])
        started.set()
        self.loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.transports.update((writer.transport, up_writer.transport))
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        self.transports.discard(writer.transport)
        self.transports.discard(up_writer.transport)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        writer.close()


@contextmanager
def cuttable(target_port: int) -> Iterator[Cuttable]:
    proxy = Cuttable(target_port)
    try:
        yield proxy
    finally:
        proxy.close()
