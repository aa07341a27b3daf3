"""Against a real uvicorn (`hub demo` on loopback): limits enforced by the server itself, bad
clients that disturb nobody else, and a reader that stops reading being cut off with 1013."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.servers import HubProcess, base_env, demo, demo_seed


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[HubProcess, dict[str, str], str]]:
    process = demo(tmp_path)
    process.env = base_env(
        HUB_OUTBOX_MAX_FRAMES="64",
        HUB_HELLO_TIMEOUT_S="1",
        HUB_VISITOR_MESSAGES_PER_MINUTE="5000",  # one visitor floods the room below
    )
    await asyncio.to_thread(process.start)
    try:
        seed = demo_seed(tmp_path)
        async with httpx.AsyncClient(base_url=process.base_url) as http:
            login = await http.post(
                "/api/auth/login", json={"email": seed["email"], "password": seed["password"]}
            )
            csrf = login.json()["csrf_token"]
            created = await http.post(
                "/api/tokens", json={"name": "t"}, headers={"x-csrf-token": csrf}
            )
        yield process, seed, created.json()["token"]
    finally:
        output = await asyncio.to_thread(process.stop)
        assert "Traceback" not in output, output


async def visitor_token(process: HubProcess, seed: dict[str, str]) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            process.base_url + "/api/widget/token",
            json={"channel": seed["public_key"]},
            headers={"origin": process.base_url},
        )
        return str(response.json()["token"])


async def connect(process: HubProcess, path: str, **kw: Any) -> Any:
    return await websockets.connect(process.ws_url + path, origin=process.base_url, **kw)  # type: ignore[arg-type]


async def close_code(ws: Any, timeout_s: float = 10) -> int:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return int(closed.rcvd.code)


async def until(ws: Any, predicate: Any, timeout_s: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return dict(frame)


async def test_bad_clients_get_their_close_codes_and_disturb_nobody(
    server: tuple[HubProcess, dict[str, str], str],
) -> None:
    process, seed, api_token = server
    agent = await connect(process, "/ws/agent")
    await agent.send(json.dumps({"type": "hello", "token": api_token}))
    await until(agent, lambda f: f["type"] == "welcome")

    async def bad(frame: str | bytes | None) -> int:
        ws = await connect(process, "/ws/visitor", max_size=None)
        if frame is not None:
            await ws.send(frame)
        return await close_code(ws)

    codes = await asyncio.gather(
        bad("{oops"),  # malformed JSON
        bad('{"type":"subscribe"}'),  # unknown frame type
        bad("x" * 70_000),  # over the frame limit: the server cuts it
        bad(b"\x00\x01"),  # binary
        bad('{"type":"hello","token":"forged.token.value"}'),  # bad token
        bad(None),  # no hello in time
    )
    assert codes == [4400, 4400, 1009, 4400, 4401, 4408]

    visitor = await connect(process, "/ws/visitor")
    await visitor.send(json.dumps({"type": "hello", "token": await visitor_token(process, seed)}))
    await until(visitor, lambda f: f["type"] == "welcome")
    await visitor.send(
        json.dumps({"type": "message.send", "client_id": "ok", "text": "still here"})
    )
    event = await until(agent, lambda f: f.get("name") == "message.created")
    assert event["data"]["message"]["text"] == "still here"
    await agent.close()
    await visitor.close()


async def test_a_reader_that_stops_is_closed_1013_while_the_room_carries_on(
    server: tuple[HubProcess, dict[str, str], str],
) -> None:
    process, seed, api_token = server
    # A small receive buffer and max_queue=1 with no recv(): the client stops reading, TCP
    # fills, the server's writes block and its outbox for this socket overflows.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, or autotuning wins
    sock.connect(("127.0.0.1", process.port))
    stalled = await websockets.connect(process.ws_url + "/ws/agent", sock=sock, max_queue=1)
    await stalled.send(json.dumps({"type": "hello", "token": api_token}))
    reader = await connect(process, "/ws/agent")
    await reader.send(json.dumps({"type": "hello", "token": api_token}))
    await until(reader, lambda f: f["type"] == "welcome")
    visitor = await connect(process, "/ws/visitor")
    await visitor.send(json.dumps({"type": "hello", "token": await visitor_token(process, seed)}))
    await until(visitor, lambda f: f["type"] == "welcome")

    async def drain(ws: Any) -> None:
        async for _ in ws:
            pass

    draining = asyncio.create_task(drain(visitor))  # the visitor gets its own messages too
    text = "y" * 9000
    for chunk in range(20):  # paced, so the reader that keeps up never holds more than a chunk
        for i in range(50):
            await visitor.send(
                json.dumps({"type": "message.send", "client_id": f"f{chunk}-{i}", "text": text})
            )
        for _ in range(50):
            await until(reader, lambda f: f.get("name") == "message.created")
    # The reader got all 1,000; the stalled client, when it reads again, finds the 1013 close.
    saw_too_slow = False
    received = 0
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(30):
            while True:
                frame = json.loads(await stalled.recv())
                received += frame.get("name") == "message.created"
                saw_too_slow = saw_too_slow or frame.get("code") == "too_slow"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert saw_too_slow and received < 1000
    await reader.close()
    await visitor.close()
    await draining
