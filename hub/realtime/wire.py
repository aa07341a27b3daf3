"""Writing a frame straight to a socket's transport, under the server the hub runs on.

Why: a frame sent through the ASGI `send` goes through Starlette's `WebSocket.send`, uvicorn's
`send` (an await on its flow-control event, its state checks, the websocket protocol's own
encoding) to one `transport.write`; for a fan-out event that is paid once per socket, and
needs a task per socket to await it. Measured (docs/performance.md, Fan-out, fourth round),
that chain and the task came to about a third of the server's CPU per delivered frame. Here
the fan-out encodes an event's websocket frame once (`SharedFrame`) and writes those bytes
to each socket's transport itself while the transport takes them.

This reaches into one server's objects: uvicorn's sans-I/O websocket protocol (the `ws`
implementation `hub.web.serving` configures). `Wire.of` recognises it and checks that it has
the shape relied on here; under any other server, or one shaped otherwise, it returns None
and the socket sends through the ASGI `send` as before (`hub.realtime.sending`).
tests/test_wire.py fails if that shape changes.

What a direct write relies on: a text frame from the server is the same bytes for every
socket (no mask, and no extension: the hub turns compression off), and the websocket
protocol object keeps no state for a whole data frame it sends, so bytes written beside it
are a frame like one it wrote. `Wire.ready` says when a write is allowed: the handshake done,
no close sent or received, and the transport not paused by flow control.
"""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

# What `Wire` reads of the protocol object, each checked once per socket in `Wire.of`.
SHAPE = (
    "conn",
    "transport",
    "writable",
    "handshake_complete",
    "initial_response",
    "close_sent",
    "disconnected",
    "config",
)


class SharedFrame(str):
    """A frame's text sent to many sockets (one event to a room): its websocket encoding is
    made once, on the first direct write, and kept here for the others. One per event and
    protocol version."""

    encoding: bytes | None = None


def encoded(frame: str) -> bytes:
    """The websocket text frame that carries `frame`, as the server sends it."""
    if type(frame) is SharedFrame:
        data = frame.encoding
        if data is None:
            data = frame.encoding = _encode(frame)
        return data
    return _encode(frame)


def _encode(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class Wire:
    """One socket's protocol object under uvicorn, for writing frames beside it."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @classmethod
    def of(cls, websocket: WebSocket) -> Wire | None:
        """The socket's wire, or None if it is not served by a server known here."""
        send = getattr(websocket, "_send", None)  # the server's `send`, as the hub's app got it
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):  # the hub's own is one
            return None
        if not all(hasattr(protocol, name) for name in SHAPE):
            return None
        if protocol.config.ws_per_message_deflate:
            return None  # frames would have to be compressed for each socket
        return cls(protocol)

    def ready(self) -> bool:
        """Whether a frame written now goes out after everything the server sent before it,
        on an open socket whose transport is not paused."""
        protocol = self._protocol
        return (
            protocol.handshake_complete
            and protocol.initial_response is None
            and not protocol.close_sent
            and not protocol.disconnected
            and protocol.writable.is_set()
            and protocol.conn.state is State.OPEN
            and not protocol.conn.extensions
            and not protocol.transport.is_closing()
        )

    def write(self, frame: str) -> None:
        self._protocol.transport.write(encoded(frame))
