"""The websocket protocol the hub serves with (`hub/web/websocket.py`), on a real uvicorn in this
process: it behaves as uvicorn's own does, and an accepted socket keeps none of its parsed
handshake (docs/performance.md, Connections)."""

from __future__ import annotations

import asyncio
import gc
import socket
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from hub.web import serving
from hub.web.websocket import Gate, Inbox, WebSocketProtocol
from tests.conftest import make_settings

NEEDLE = "needle-4f1c9a"  # a header value only the handshake carries


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            if text == "bye":
                await websocket.close(4321, "asked")
                return
            await websocket.send_text("echo " + text)
    except WebSocketDisconnect:
        pass


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    app = Starlette(routes=[WebSocketRoute("/echo", echo)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = serving.config(app, make_settings(tmp_path), "127.0.0.1", port)
    config.lifespan = "off"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield server, f"ws://127.0.0.1:{port}/echo"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


CODE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


def reachable(root: Any, skip: set[int]) -> list[Any]:
    """Every object `root` holds on to, except through the objects in `skip` (by id) and
    through code (a function's module, a class's)."""
    seen: set[int] = set(skip)
    found, todo = [], [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, CODE):
            continue
        seen.add(id(obj))
        found.append(obj)
        todo.extend(gc.get_referents(obj))
    return found


async def test_the_server_speaks_websocket_as_before(served: tuple[uvicorn.Server, str]) -> None:
    _, url = served
    async with websockets.connect(url, compression=None) as ws:
        for i in range(5):  # sent at once: queued while the app is busy, received in order
            await ws.send(f"m{i}")
        assert [await ws.recv() for _ in range(5)] == [f"echo m{i}" for i in range(5)]
        await ws.send("x" * 60_000)  # a large frame (under the hub's 64 KiB) goes out whole
        assert len(await asyncio.wait_for(ws.recv(), 10)) == 60_005
        await ws.send("bye")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4321


async def test_an_accepted_socket_keeps_none_of_its_parsed_handshake(
    served: tuple[uvicorn.Server, str],
) -> None:
    server, url = served
    async with websockets.connect(url, additional_headers={"x-probe": NEEDLE}) as ws:
        await ws.send("hi")
        assert await ws.recv() == "echo hi"
        (protocol,) = [
            c for c in server.server_state.connections if isinstance(c, WebSocketProtocol)
        ]
        assert isinstance(protocol.queue, Inbox) and isinstance(protocol.writable, Gate)
        # What the app reads is in the scope; the protocol's own parts hold no copy.
        shared = [protocol.scope, protocol.config, protocol.app, protocol.loop, protocol.logger]
        held = reachable(protocol, {id(o) for o in [*shared, protocol.connections, protocol.tasks]})
        assert not [o for o in held if isinstance(o, str) and NEEDLE in o]
        assert not hasattr(protocol, "request") and not hasattr(protocol, "response")


async def test_an_inbox_hands_out_in_order_and_a_cancelled_reader_takes_nothing() -> None:
    inbox = Inbox()
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    first.cancel()  # woken for "a", cancelled before it ran: "a" goes to the next reader
    await asyncio.wait((first, second))
    assert first.cancelled() and second.result() == "a"
    assert inbox.empty() and not inbox.waiters
    inbox.put_nowait("b")
    inbox.put_nowait("c")
    assert [await inbox.get(), await inbox.get()] == ["b", "c"]
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.wait((waiting,))
    assert not inbox.waiters  # a reader that gave up is forgotten


async def test_a_gate_holds_writers_while_closed() -> None:
    gate = Gate()
    await asyncio.wait_for(gate.wait(), 1)  # open: no wait
    gate.clear()
    writers = [asyncio.ensure_future(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in writers)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*writers), 1)
    assert not gate.waiters
