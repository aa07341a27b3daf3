"""Where Web Push may go (`hub.notify.push`): https on a public address; loopback (and plain
http to it) only when allowed, and never another private address, by literal or by name."""

from __future__ import annotations

import asyncio

import pytest

from hub.notify.push import InvalidPushEndpoint, check_endpoint, loopback_resolver, payload
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
