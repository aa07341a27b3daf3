"""Which addresses the hub treats as public (hub.web.addresses): outbound webhooks and media
links from webhooks must not reach into the operator's network."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.web.addresses import connected_to_public, origin, public_address, public_ip

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),  # the cloud metadata service
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::a9fe:a9fe", False),  # the metadata service through a NAT64 gateway
        ("64:ff9b::5db8:d822", True),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("fe80::1%eth0", False),
        ("not an address", False),
    ],
)
def test_public_ip(address: str, public: bool) -> None:
    assert public_ip(address) is public


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    assert asyncio.run(public_address("https://localhost/x")) is False
    assert asyncio.run(public_address("https://127.0.0.1:8443/x")) is False
    unresolvable = "https://no-such-host.invalid/x"
    assert asyncio.run(public_address(unresolvable)) is True  # a webhook fails by itself
    assert asyncio.run(public_address(unresolvable, unresolved=False)) is False


class Stream:
    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def get_extra_info(self, name: str) -> Any:
        return self.peer if name == "server_addr" else None


def test_the_address_connected_to_is_checked() -> None:
    assert connected_to_public({"network_stream": Stream(("93.184.216.34", 443))})
    assert not connected_to_public({"network_stream": Stream(("127.0.0.1", 443))})
    assert not connected_to_public({"network_stream": Stream(None)})
    assert not connected_to_public({})


def test_an_unreadable_url_has_an_origin_of_its_own() -> None:
    assert origin("https://graph.example/v1") == ("https", "graph.example", 443)
    assert origin("http://127.0.0.1:8000/x") == ("http", "127.0.0.1", 8000)
    assert origin("https://x:99999/") == ("invalid", "https://x:99999/", None)
