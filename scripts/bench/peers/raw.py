"""The floor: a bare `websockets` server tailing one Redis stream per room and broadcasting
each entry to the room's sockets. No auth, no storage, no per-socket queue: the least work a
Python hub can do on this path, so the hub's figures are read against it.

    python -m peers.raw PORT
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.typing import KeyT, StreamIdT
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from peers import REDIS_URL, room_of, run, with_room

STREAM_MAXLEN = 10_000
READ_COUNT = 500
READ_BLOCK_MS = 100


def stream(room: str) -> str:
    return f"bench:{room}"


@functools.cache  # one client per (publisher) process, made on first use
def _client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


async def publish(room: str, payload: str) -> None:
    await _client().xadd(stream(room), {"d": payload}, maxlen=STREAM_MAXLEN, approximate=True)


async def open_subscriber(url: str, room: str) -> ClientConnection:
    return await connect(with_room(url, room), compression=None, max_size=None, ping_interval=None)


async def extract(frame: str) -> str | None:
    return frame


class Server:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.rooms: dict[str, set[ServerConnection]] = defaultdict(set)
        self.last: dict[str, str] = {}  # room: id of the last entry read

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        room = room_of(urlsplit(ws.request.path).query)
        if room not in self.last:
            # From the stream's current end, fixed now: an XREAD from "$" would skip whatever
            # arrives between two reads until the room's first entry.
            newest: Any = await self.client.xrevrange(stream(room), count=1)
            self.last.setdefault(room, newest[0][0].decode() if newest else "0-0")
        self.rooms[room].add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.rooms[room].discard(ws)

    async def tail(self) -> None:
        while True:
            if not self.last:
                await asyncio.sleep(0.01)
                continue
            streams: dict[KeyT, StreamIdT] = {stream(r): last for r, last in self.last.items()}
            read: Any = await self.client.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
            for key, entries in read or []:
                room = key.decode().split(":", 1)[1]
                for _, fields in entries:
                    broadcast(self.rooms[room], fields[b"d"].decode())
                self.last[room] = entries[-1][0].decode()


async def main(port: int) -> None:
    server = Server(redis.Redis.from_url(REDIS_URL))
    async with serve(server.handle, "127.0.0.1", port, compression=None):
        await server.tail()


if __name__ == "__main__":
    run(main(int(sys.argv[1])))
