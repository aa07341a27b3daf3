"""Frames written straight to a socket's transport (`hub.realtime.wire`, `hub.realtime.sending`),
against a real uvicorn configured as `hub serve` configures it, in this process: the server's
objects have the shape the wire relies on, frames keep their order when the transport pauses
and the outbox takes over, a reader that stops is closed with 1013, and a close goes out after
everything queued. Under a server the wire does not know, frames go through the ASGI send."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from hub.errors import TooSlow, Unavailable
from hub.realtime.fanout import Outlet
from hub.realtime.sending import Sender
from hub.realtime.wire import SharedFrame, Wire, encoded
from hub.settings import embedded
from hub.web import serving
from tests.servers import free_port

pytestmark = pytest.mark.unit

GONE = Unavailable("gone")  # as `Session`'s: the peer left, close nothing


@dataclass
class Socket:
    outlet: Outlet
    sender: Sender


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _endpoint(websocket: WebSocket) -> None:
    """What `Session.run` does around its sending half, and nothing else."""
    outlet = Outlet(int(websocket.query_params.get("limit", "100000")))
    sender = Sender(outlet, websocket, GONE)
    await websocket.accept()
    sender.pump()
    websocket.app.state.sockets.put_nowait(Socket(outlet, sender))
    try:
        while not outlet.closing:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        outlet.shut(GONE)
        await sender.finish(5)


class App(Starlette):
    """As `hub.web.app.HubApp`: the socket endpoint is called with the server's own `send`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await _endpoint(WebSocket(scope, receive, send))


@contextlib.asynccontextmanager
async def server(
    tmp_path: Path, **options: Any
) -> AsyncIterator[tuple[int, asyncio.Queue[Socket]]]:
    app = App()
    app.state.sockets = asyncio.Queue()
    port = free_port()
    config = serving.config(app, embedded(tmp_path), "127.0.0.1", port)
    config.lifespan = "off"
    for name, value in options.items():
        setattr(config, name, value)
    served = _Quiet(config)
    task = asyncio.create_task(served.serve())
    while not served.started:  # noqa: ASYNC110 (uvicorn has no event for it)
        await asyncio.sleep(0.01)
    try:
        yield port, app.state.sockets
    finally:
        served.should_exit = True
        await task


async def client(port: int, query: str = "") -> ClientConnection:
    """A client whose kernel buffer is small and who queues one message at most before it
    stops reading from its socket: the server's transport pauses soon when it does not read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    url = f"ws://127.0.0.1:{port}/ws{query}"
    return await connect(url, sock=sock, max_size=None, max_queue=1, ping_interval=None)


def numbered(i: int) -> str:
    return json.dumps({"type": "event", "n": i, "pad": "x" * 900})  # about a message frame


async def fill_until_paused(socket_: Socket, start: int = 0) -> int:
    """Offers frames until the transport stops taking them; the number offered."""
    i = start
    wire = socket_.sender.wire
    assert wire is not None
    while wire.ready():
        socket_.outlet.offer(numbered(i))
        i += 1
        if i % 100 == 0:
            await asyncio.sleep(0)  # let the kernel move what it can
        assert i < 200_000, "the transport never paused"
    assert socket_.sender.task is None and not socket_.outlet.outbox  # all written directly
    return i


async def read_all(ws: ClientConnection) -> tuple[list[int], list[dict[str, Any]], int | None]:
    """Every frame until the close: the numbers, the other frames, the close code."""
    numbers: list[int] = []
    others: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(20):
            while True:
                frame = json.loads(await ws.recv())
                if "n" in frame:
                    numbers.append(frame["n"])
                else:
                    others.append(frame)
    except ConnectionClosed as closed:
        return numbers, others, closed.rcvd.code if closed.rcvd else None
    return numbers, others, None  # pragma: no cover


def test_a_shared_frame_is_encoded_once_as_the_websocket_protocol_would() -> None:
    frame = SharedFrame(numbered(1))
    data = encoded(frame)
    assert data == Frame(Opcode.TEXT, numbered(1).encode()).serialize(mask=False)
    assert encoded(frame) is data  # kept for the room's other sockets
    assert encoded("é") == Frame(Opcode.TEXT, "é".encode()).serialize(mask=False)


async def test_frames_go_straight_out_under_the_hub_server(tmp_path: Path) -> None:
    """Fails if uvicorn's websocket protocol changes shape (`wire.SHAPE`): `Wire.of` would
    then fall back to the ASGI send quietly, and the fan-out would be slower."""
    async with server(tmp_path) as (port, sockets):
        async with await client(port) as ws:
            accepted = await sockets.get()
            assert isinstance(accepted.sender.wire, Wire)
            for i in range(10):
                accepted.outlet.offer(SharedFrame(numbered(i)))
                assert accepted.sender.task is None  # no task per frame
            assert [json.loads(await ws.recv())["n"] for _ in range(10)] == list(range(10))


async def test_a_paused_transport_queues_and_nothing_overtakes(tmp_path: Path) -> None:
    async with server(tmp_path) as (port, sockets):
        async with await client(port) as ws:
            accepted = await sockets.get()
            direct = await fill_until_paused(accepted)
            for i in range(direct, direct + 50):  # the transport is paused: these queue
                accepted.outlet.offer(numbered(i))
            assert accepted.sender.task is not None and accepted.outlet.outbox
            received = [json.loads(await ws.recv())["n"] for _ in range(direct + 50)]
            assert received == list(range(direct + 50))
            while accepted.sender.task is not None:  # noqa: ASYNC110 (drained: direct again)
                await asyncio.sleep(0.01)
            accepted.outlet.offer(numbered(direct + 50))
            assert accepted.sender.task is None and not accepted.outlet.outbox
            assert json.loads(await ws.recv())["n"] == direct + 50


async def test_a_reader_that_stops_is_closed_1013_after_what_was_written(tmp_path: Path) -> None:
    async with server(tmp_path) as (port, sockets):
        async with await client(port, "?limit=20") as ws:
            accepted = await sockets.get()
            direct = await fill_until_paused(accepted)
            for i in range(direct, direct + 21):  # one more than the outbox holds
                accepted.outlet.offer(numbered(i))
            assert accepted.outlet.closing and isinstance(accepted.outlet.error, TooSlow)
            accepted.outlet.offer(numbered(direct + 21))  # nothing more after the overflow
            numbers, others, code = await read_all(ws)
    # Gap-free up to where it stopped, then the error frame, then 1013: the client resumes.
    assert numbers == list(range(len(numbers))) and len(numbers) >= direct
    assert [f["code"] for f in others] == ["too_slow"] and code == 1013


async def test_a_close_goes_out_after_the_queued_frames(tmp_path: Path) -> None:
    async with server(tmp_path) as (port, sockets):
        async with await client(port) as ws:
            accepted = await sockets.get()
            direct = await fill_until_paused(accepted)
            for i in range(direct, direct + 30):
                accepted.outlet.offer(numbered(i))
            accepted.outlet.fail(Unavailable("restarting"))
            accepted.outlet.offer(numbered(direct + 30))  # after the close: never sent
            numbers, others, code = await read_all(ws)
    assert numbers == list(range(direct + 30))
    assert [f["code"] for f in others] == ["unavailable"] and code == 1012


async def test_another_server_sends_through_the_asgi_send(tmp_path: Path) -> None:
    async with server(tmp_path, ws="websockets") as (port, sockets):  # uvicorn's other one
        async with await client(port) as ws:
            accepted = await sockets.get()
            assert accepted.sender.wire is None
            for i in range(200):
                accepted.outlet.offer(SharedFrame(numbered(i)))
            accepted.outlet.fail(Unavailable("restarting"))
            numbers, others, code = await read_all(ws)
    assert numbers == list(range(200))
    assert [f["code"] for f in others] == ["unavailable"] and code == 1012
