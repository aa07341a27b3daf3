"""The hub's plugin for the fan-out harness (`fanout.py hub URL`, HUB_PLUGIN=fanout_plugin).

- `publish` pushes each payload through the hub's real ingress: `Ingress.visitor_message`, the
  code path of a web-chat visitor's `message.send` (normalized `Message`, dedupe key, the publish
  Lua script on the workspace's stream) and the wait a strict HUB_BUS_DURABLE_ACK adds before
  the ack, on a `RedisBus` built from the same settings as the server (REDIS_URL,
  HUB_REDIS_PREFIX, HUB_BUS_DURABLE_ACK). The payload is the message text.
- `open_subscriber` opens an agent socket on /ws/agent, authenticated with an API token in hello,
  speaking the protocol version HUB_BENCH_PROTOCOL says (1 or 2, default 2: lean frames).
- `extract` answers the text of `message.created` event frames and None for anything else
  (welcome, presence of the other subscribers), without parsing the rest of the frame.

Configuration comes from the environment that `scripts/bench/run` sets: the hub's own variables
(REDIS_URL, HUB_REDIS_PREFIX, HUB_SECRET_KEY, HUB_ENCRYPTION_KEYS, DATABASE_URL) and
HUB_BENCH_WORKSPACE, HUB_BENCH_CHANNEL, HUB_BENCH_TOKEN. A harness room name maps to one
visitor, so each room is one conversation of the benchmark workspace.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sys
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from hub.accounts.auth import VisitorClaims
from hub.bus.redis import RedisBus
from hub.realtime.ingress import Ingress
from hub.settings import Settings, SettingsError
from hub.storage.engine import make_engine, sessionmaker
from hub.storage.store import Store

_ingress: Ingress | None = None
_counter = itertools.count()
_run = uuid.uuid4().hex[:8]  # client ids unique per publisher run: no dedupe hits across runs


def _store(settings: Settings) -> Store:
    # visitor_message does not use the store; the engine connects only when first used.
    return Store(sessionmaker(make_engine(settings)))


async def _get_ingress() -> Ingress:
    """Built on the first publish. The harness stamps a payload before publishing it, so what
    can be done at import (settings, the engine and the imports behind it) is done there."""
    global _ingress
    if _ingress is None:
        settings = _SETTINGS or Settings.from_env()
        if settings.redis_url is None:
            raise RuntimeError("REDIS_URL is not set: the benchmark needs the hub's Redis bus")
        bus = RedisBus(
            settings.redis_url,
            prefix=settings.redis_prefix,
            stream_maxlen=settings.stream_maxlen,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            durable_ack=settings.bus_durable_ack,
            durable_replicas=settings.bus_durable_replicas,
            durable_timeout_ms=settings.bus_durable_timeout_ms,
        )
        await bus.start()
        _ingress = Ingress(bus, _STORE or _store(settings), cache_ttl_s=settings.cache_ttl_s)
    return _ingress


try:
    _SETTINGS: Settings | None = Settings.from_env()
    _STORE: Store | None = _store(_SETTINGS)
except SettingsError:  # imported without the hub's environment: fail on first use instead
    _SETTINGS = _STORE = None


@functools.cache  # a visitor's socket holds its claims: parsing them per message is not hub work
def _claims(room: str) -> VisitorClaims:
    return VisitorClaims(
        uuid.UUID(os.environ["HUB_BENCH_WORKSPACE"]),
        uuid.UUID(os.environ["HUB_BENCH_CHANNEL"]),
        f"bench-{room}",
    )


async def publish(room: str, payload_str: str) -> None:
    ingress = await _get_ingress()
    claims = _claims(room)
    await ingress.visitor_message(claims, f"{_run}-{next(_counter)}", payload_str, [])
    await ingress.settle(claims.workspace_id)  # as a socket send does before its ack


async def close() -> None:
    """Closes the publisher's bus (for in-process use; the harness's publisher just exits)."""
    global _ingress
    if _ingress is not None:
        await _ingress.bus.close()
        _ingress = None


async def open_subscriber(url: str, room: str) -> ClientConnection:
    ws = await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=30)
    version = int(os.environ.get("HUB_BENCH_PROTOCOL", "2"))
    await ws.send(
        json.dumps({"type": "hello", "token": os.environ["HUB_BENCH_TOKEN"], "v": version})
    )
    while True:
        frame: dict[str, Any] = json.loads(await ws.recv())
        if frame.get("type") == "welcome":
            return ws
        if frame.get("type") == "error":
            await ws.close()
            raise RuntimeError(f"the hub refused the subscriber: {frame}")


async def extract(frame_str: str) -> str | None:
    """The message's text, read straight out of the frame: the hub's frame carries the whole
    normalized message and its contact, and parsing all of it cost the harness's subscriber
    process (one process for every subscriber, on the same two cores as the hub) twice the
    floor's CPU per frame, time that showed up as everyone's latency."""
    if '"message.created"' not in frame_str:
        if '"type":"error"' in frame_str:  # e.g. too_slow before a 1013 close: shows up as loss
            print(f"fanout_plugin: subscriber got {frame_str}", file=sys.stderr)
        return None
    at = frame_str.find('"text":', frame_str.find('"message":'))
    if at < 0:
        return None
    text, _ = _DECODER.raw_decode(frame_str, at + len('"text":'))
    return text if isinstance(text, str) else None


_DECODER = json.JSONDecoder()
