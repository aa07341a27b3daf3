"""The systems the hub is measured against in the fan-out benchmark (fanout.py), one module
each: its server, and the client side the harness drives (publish, open_subscriber, extract).
All of them reach Redis at REDIS_URL (default redis://127.0.0.1:6379/0)."""

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def with_room(url: str, room: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}room={room}"


def room_of(query: str) -> str:
    """The `room` parameter of a query string: each peer's subscribers name their room there."""
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return params.get("room", "r0")


def run(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where installed, like the servers under uvicorn[standard]: the harness and
    every server of the benchmark run on the same kind of loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
