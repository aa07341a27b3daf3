"""Limits per client address against a real `hub demo` on loopback (uvicorn, httptools): the
sockets one address may hold, the connections it may keep waiting for their headers, and the
time headers may take. Every refusal leaves other addresses served: Linux answers on the
whole of 127.0.0.0/8, so a client bound to 127.0.0.2 is another address. 127.0.0.1 is the
proxy uvicorn trusts by default (FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.servers import HubProcess, base_env, demo, demo_seed

SOCKETS, PENDING, HEADER_TIMEOUT_S = 3, 3, 2.0
OTHER = "127.0.0.2"
THIRD = "127.0.0.3"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("limits")
    process = demo(tmp)
    process.env = base_env(
        HUB_MAX_SOCKETS_PER_ADDRESS=str(SOCKETS),
        HUB_MAX_PENDING_PER_ADDRESS=str(PENDING),
        HUB_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
    )
    process.start()
    try:
        yield process, demo_seed(tmp)
    finally:
        output = process.stop()
        assert "Traceback" not in output, output


async def visitor_token(process: HubProcess, seed: dict[str, str]) -> str:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            process.base_url + "/api/widget/token",
            json={"channel": seed["public_key"]},
            headers={"origin": process.base_url},
        )
        return str(answer.json()["token"])


async def open_socket(process: HubProcess, path: str, source: str = "127.0.0.1", **kw: Any) -> Any:
    return await websockets.connect(  # type: ignore[call-arg]
        process.ws_url + path, origin=process.base_url, local_addr=(source, 0), **kw
    )


async def welcomed(ws: Any, token: str) -> None:
    await ws.send(json.dumps({"type": "hello", "token": token}))
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] != "welcome":
            pass


async def raw(process: HubProcess, source: str) -> tuple[asyncio.StreamReader, Any]:
    assert process.port is not None
    return await asyncio.open_connection("127.0.0.1", process.port, local_addr=(source, 0))


async def read_all(reader: asyncio.StreamReader, within_s: float = 10) -> bytes:
    async with asyncio.timeout(within_s):
        return await reader.read()  # to EOF: the server closed the connection


def healthz_from(process: HubProcess, source: str) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=5) as http:
        return http.get(process.base_url + "/healthz").status_code


def refusals(process: HubProcess, reason: str) -> int:
    """This node's count of refusals for a reason, from /metrics (open to loopback)."""
    text = httpx.get(process.base_url + "/metrics", timeout=5).text
    found = re.search(rf'^hub_connections_refused_total{{reason="{reason}"}} (\S+)$', text, re.M)
    assert found is not None, text
    return int(float(found.group(1)))


async def test_one_address_holds_at_most_its_sockets_and_others_are_served(
    hub: tuple[HubProcess, dict[str, str]],
) -> None:
    process, seed = hub
    before = refusals(process, "sockets_per_address")
    async with AsyncExitStack() as held:
        # Agents' and visitors' sockets count together.
        for path in ("/ws/visitor", "/ws/visitor", "/ws/agent"):
            held.push_async_callback((await open_socket(process, path)).close)
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(process, "/ws/visitor")
        answer = refused.value.response
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) >= 1
        assert json.loads(answer.body or b"{}")["error"]["code"] == "too_many_connections"
        assert refusals(process, "sockets_per_address") == before + 1

        # Another address is served, to the welcome.
        other = await open_socket(process, "/ws/visitor", OTHER)
        held.push_async_callback(other.close)
        await welcomed(other, await visitor_token(process, seed))
        # So is a client the trusted proxy (127.0.0.1) forwards: counted as itself.
        forwarded = await open_socket(
            process, "/ws/visitor", additional_headers={"x-forwarded-for": "203.0.113.7"}
        )
        held.push_async_callback(forwarded.close)
        await welcomed(forwarded, await visitor_token(process, seed))

    # The sockets closed, their address may open as many again.
    async with AsyncExitStack() as again:
        for _ in range(SOCKETS):
            ws = await open_socket(process, "/ws/visitor")
            again.push_async_callback(ws.close)
        await welcomed(ws, await visitor_token(process, seed))


async def test_a_slow_header_client_is_closed_after_the_timeout_while_others_are_served(
    hub: tuple[HubProcess, dict[str, str]],
) -> None:
    process, _ = hub
    before = refusals(process, "header_timeout")
    started = time.monotonic()
    reader, writer = await raw(process, OTHER)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n")

    async def trickle() -> None:  # a header line now and then does not extend the deadline
        for n in range(20):
            await asyncio.sleep(0.2)
            if writer.is_closing():
                return
            writer.write(b"X-Slow-%d: 1\r\n" % n)

    trickling = asyncio.create_task(trickle())
    silent_reader, silent = await raw(process, THIRD)  # connected, never a byte
    # Meanwhile, from the same address and another, requests are answered at once.
    assert await asyncio.to_thread(healthz_from, process, OTHER) == 200
    assert await asyncio.to_thread(healthz_from, process, "127.0.0.1") == 200
    assert time.monotonic() - started < HEADER_TIMEOUT_S

    assert await read_all(reader) == b""  # closed with no answer
    closed_after = time.monotonic() - started
    assert HEADER_TIMEOUT_S * 0.8 < closed_after < HEADER_TIMEOUT_S + 3
    assert await read_all(silent_reader) == b""
    assert refusals(process, "header_timeout") == before + 2
    trickling.cancel()
    writer.close()
    silent.close()


async def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(
    hub: tuple[HubProcess, dict[str, str]],
) -> None:
    process, _ = hub
    reader, writer = await raw(process, OTHER)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
    async with asyncio.timeout(5):
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next request's first line, then nothing
    started = time.monotonic()
    rest = await read_all(reader)
    assert b"HTTP/1.1" not in rest  # the first answer's tail at most; no second answer
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3
    writer.close()


async def test_too_many_waiting_connections_from_one_address_are_refused_alone(
    hub: tuple[HubProcess, dict[str, str]],
) -> None:
    process, _ = hub
    before = refusals(process, "pending_per_address")
    waiting = [await raw(process, OTHER) for _ in range(PENDING)]
    await asyncio.sleep(0.1)  # accepted and counted by the server
    reader, writer = await raw(process, OTHER)
    answer = await read_all(reader, within_s=HEADER_TIMEOUT_S / 2)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429")
    assert b"retry-after: " in head.lower()
    assert json.loads(body)["error"]["code"] == "too_many_connections"
    writer.close()
    assert refusals(process, "pending_per_address") == before + 1

    # Others are served meanwhile: another address, and the trusted proxy, which is not capped.
    assert await asyncio.to_thread(healthz_from, process, THIRD) == 200
    proxied = [await raw(process, "127.0.0.1") for _ in range(PENDING + 2)]
    await asyncio.sleep(0.1)
    assert await asyncio.to_thread(healthz_from, process, "127.0.0.1") == 200

    # A waiting connection that goes frees its place.
    waiting.pop()[1].close()
    await asyncio.sleep(0.1)
    assert await asyncio.to_thread(healthz_from, process, OTHER) == 200

    for _, w in waiting + proxied:
        w.close()


def test_the_limits_are_settings(tmp_path: Path) -> None:
    from hub.settings import Settings, SettingsError

    env = {"HUB_SECRET_KEY": "k" * 40, "HUB_DATA_DIR": str(tmp_path)}
    env["HUB_ENCRYPTION_KEYS"] = "A" * 43 + "="
    defaults = Settings.from_env(env)
    assert (defaults.max_sockets_per_address, defaults.max_pending_per_address) == (200, 100)
    assert defaults.header_timeout_s == 10.0
    tuned = Settings.from_env(
        env
        | {
            "HUB_MAX_SOCKETS_PER_ADDRESS": "5",
            "HUB_MAX_PENDING_PER_ADDRESS": "7",
            "HUB_HEADER_TIMEOUT_S": "2.5",
        }
    )
    assert (tuned.max_sockets_per_address, tuned.max_pending_per_address) == (5, 7)
    assert tuned.header_timeout_s == 2.5
    with pytest.raises(SettingsError, match="HUB_MAX_SOCKETS_PER_ADDRESS"):
        Settings.from_env(env | {"HUB_MAX_SOCKETS_PER_ADDRESS": "0"})
