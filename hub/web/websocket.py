"""uvicorn's websocket protocol (websockets-sansio), made lighter for a socket that sits idle.

A web node holds thousands of sockets that mostly wait (docs/performance.md, Connections).
uvicorn's protocol gives each one an `asyncio.Queue` for what the client sends and an
`asyncio.Event` for "the transport takes writes": four deques of about 700 bytes each, for
a queue that holds one message at a time. And it keeps the parsed handshake, request and
response with their headers, for the socket's whole life though nothing reads them again
(the request's headers are in the ASGI scope too).

`WebSocketProtocol` is uvicorn's class with an `Inbox` and a `Gate` in their place (a list
and the futures of whoever waits, nothing while nobody waits) and the handshake let go once
answered. It behaves the same way: the same ASGI messages in the same order, reads paused
while a message waits to be received, sends held while the transport is paused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request


class Inbox:
    """What the client sent, until the app receives it: `asyncio.Queue`'s `put_nowait`,
    `get` and `empty`, unbounded, waking the earliest of the waiting readers. A reader
    cancelled while it waits takes nothing, and passes a wake-up it got on."""

    __slots__ = ("items", "waiters")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.waiters: list[asyncio.Future[None]] = []

    def empty(self) -> bool:
        return not self.items

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        self._wake_one()

    async def get(self) -> Any:
        while not self.items:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                elif self.items:  # it was woken for an item it will not take
                    self._wake_one()
                raise
        return self.items.pop(0)

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return


class Gate:
    """Open while the transport takes writes: `asyncio.Event`'s `set`, `clear`, `is_set` and
    `wait` (`hub.realtime.wire` asks `is_set` before it writes beside the protocol)."""

    __slots__ = ("open", "waiters")

    def __init__(self) -> None:
        self.open = True
        self.waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self.open = True
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self.open = False

    def is_set(self) -> bool:
        return self.open

    async def wait(self) -> None:
        if self.open:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope has what the app reads of the request. The websockets parser still holds
        # the request while it reads the socket's frames, so its headers are emptied.
        del self.request
        event.headers.clear()

    async def send(self, message: Any) -> None:
        answering = not self.handshake_complete
        await super().send(message)
        if answering and self.handshake_complete and hasattr(self, "response"):
            del self.response  # sent (or refused); only the handshake reads it
