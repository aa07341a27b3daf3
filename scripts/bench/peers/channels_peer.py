"""Django Channels on channels_redis's RedisChannelLayer: one group per room, and the
publisher's group_send reaches every consumer of the group through Redis.

    uvicorn peers.channels_peer:server --factory --port PORT --ws websockets

Django is configured on import (no settings module): the harness's publisher process is
forked from a process that imported this, so it starts publishing with Django set up.
"""

from __future__ import annotations

import functools
from typing import Any

import django
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import BaseChannelLayer, get_channel_layer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.urls import path
from websockets.asyncio.client import ClientConnection, connect

from peers import REDIS_URL, room_of, with_room

CAPACITY = 100_000  # a consumer's backlog before group_send drops for it; the default is 100


class Room(AsyncWebsocketConsumer):
    room = ""

    async def connect(self) -> None:
        self.room = room_of(self.scope["query_string"].decode())
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["d"])


def server() -> ProtocolTypeRouter:
    return ProtocolTypeRouter({"websocket": URLRouter([path("ws/", Room.as_asgi())])})


@functools.cache  # one layer per (publisher) process, made on first use
def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    assert layer is not None
    return layer


async def publish(room: str, payload: str) -> None:
    await _layer().group_send(room, {"type": "chat.message", "d": payload})


async def open_subscriber(url: str, room: str) -> ClientConnection:
    return await connect(with_room(url, room), compression=None, max_size=None, ping_interval=None)


async def extract(frame: str) -> str | None:
    return frame


if not settings.configured:
    settings.configure(
        SECRET_KEY="fan-out benchmark",
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "capacity": CAPACITY, "prefix": "bench:channels"},
            }
        },
    )
    django.setup()
