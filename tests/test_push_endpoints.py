"""Where Web Push may go (`hub.notify.push`): https on a public address; loopback (and plain
http to it) only when allowed, and never another private address, by literal or by name."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.notify.push import (
    InvalidPushEndpoint,
    InvalidPushKeys,
    Pusher,
    b64,
    check_endpoint,
    check_keys,
    loopback_resolver,
    payload,
)
from hub.web.pinning import Refused

pytestmark = pytest.mark.unit


def test_endpoints_are_https_on_public_addresses() -> None:
    assert check_endpoint(" https://push.example.com/a ", False) == "https://push.example.com/a"
    for url in (
        "http://push.example.com/a",
        "https://127.0.0.1/a",
        "https://0x7f.1/a",
        "https://10.0.0.1/a",
        "https://[::1]/a",
        "https://u:p@push.example.com/a",
        "javascript:alert(1)",
    ):
        with pytest.raises(InvalidPushEndpoint):
            check_endpoint(url, False)


def test_loopback_only_when_allowed_and_no_other_private_address() -> None:
    assert check_endpoint("http://127.0.0.1:9/a", True) == "http://127.0.0.1:9/a"
    assert check_endpoint("http://localhost:9/a", True) == "http://localhost:9/a"
    for url in ("http://10.0.0.1/a", "https://192.168.1.1/a", "http://push.example.com/a"):
        with pytest.raises(InvalidPushEndpoint):
            check_endpoint(url, True)


def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    async def answers(host: str, port: int) -> list[str]:
        return {"lan.example": ["10.0.0.7"], "lo.example": ["127.0.0.1"]}[host]

    resolve = loopback_resolver(answers)
    assert asyncio.run(resolve("lo.example", 443)) == ["127.0.0.1"]
    with pytest.raises(Refused):
        asyncio.run(resolve("lan.example", 443))


def test_the_payload_carries_a_short_preview_only() -> None:
    import json
    import uuid

    conversation = uuid.uuid4()
    data = json.loads(payload("assigned", conversation, "  Merhaba\n\n" + "ş" * 200))
    assert set(data) == {"kind", "conversation_id", "preview"}
    assert data["preview"].startswith("Merhaba ş") and len(data["preview"]) == 80


def test_the_production_client_refuses_a_name_that_leads_to_a_private_address() -> None:
    """The pusher's own client (no loopback allowed), its resolver given: a public-looking
    name that resolves to a private address is never connected to."""
    asked: list[str] = []

    async def answers(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["10.0.0.7"]

    async def post() -> None:
        pusher = Pusher(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            contact="mailto:ops@example.com",
            allow_loopback=False,
            resolve=answers,
        )
        try:
            with pytest.raises(httpx.ConnectError):
                await pusher.client.post("https://push.lan.example/send/1", content=b"x")
        finally:
            await pusher.stop()

    asyncio.run(post())
    assert asked == ["push.lan.example"]


def test_keys_must_be_a_p256_point_and_a_16_byte_secret() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = b64(b"s" * 16)
    check_keys(b64(point), auth)
    for p256dh, secret in (
        (b64(b"\x04" + b"\x01" * 64), auth),  # 65 bytes, on no curve
        (b64(point[:33]), auth),  # too short
        (b64(point), b64(b"s" * 20)),
        (b64(point), "!!!!"),
    ):
        with pytest.raises(InvalidPushKeys):
            check_keys(p256dh, secret)
