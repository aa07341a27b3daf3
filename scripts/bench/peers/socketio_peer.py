"""python-socketio's ASGI server on AsyncRedisManager, its documented setup for several
processes: the publisher emits through a write-only manager, the server relays from Redis
pub/sub to the room's sockets.

    uvicorn peers.socketio_peer:server --factory --port PORT --ws websockets
"""

from __future__ import annotations

import functools
import json
from typing import Any

import socketio
from websockets.asyncio.client import ClientConnection, connect

from peers import REDIS_URL, room_of, with_room

EVENT = "msg"


def server() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(REDIS_URL),
        cors_allowed_origins="*",
    )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: object) -> None:
        await sio.enter_room(sid, room_of(environ.get("QUERY_STRING", "")))

    return socketio.ASGIApp(sio)


@functools.cache  # one manager per (publisher) process, made on first use
def _manager() -> socketio.AsyncRedisManager:
    return socketio.AsyncRedisManager(REDIS_URL, write_only=True)


async def publish(room: str, payload: str) -> None:
    await _manager().emit(EVENT, payload, room=room, namespace="/")


async def open_subscriber(url: str, room: str) -> ClientConnection:
    """A raw Engine.IO v4 websocket, not python-socketio's client, so every system's
    subscribers cost the harness about the same: open packet, join "/", its ack."""
    ws = await connect(with_room(url, room), compression=None, max_size=None, ping_interval=None)
    await ws.recv()  # Engine.IO open
    await ws.send("40")  # Socket.IO connect to the default namespace
    await ws.recv()  # its ack
    return ws


async def extract(frame: str) -> str | None:
    if not frame.startswith("42"):  # a Socket.IO event; anything else is protocol
        return None
    name, payload = json.loads(frame[2:])
    return payload if name == EVENT else None


def answer(frame: str) -> str | None:
    """Engine.IO's pong to the server's ping, which would close a silent socket after 45 s."""
    return "3" if frame == "2" else None
