"""Which addresses the hub treats as public (hub.web.addresses): outbound webhooks and media
links from webhooks must not reach into the operator's network. And what the limits per
client address count by (`client_key`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.hooks.service import InvalidHookUrl, check_url
from hub.realtime.admission import SocketQuota
from hub.web.addresses import (
    client_key,
    connected_to_public,
    literal_ip,
    origin,
    public_address,
    public_ip,
)
from hub.web.guard import Pending

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
        ("[fe80::1%25eth0]", False),  # bracketed, with a zone id as a URL writes it
        ("[::1]", False),
        ("not an address", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("224.0.0.1", False),  # multicast, which Python calls global
        ("ff0e::1", False),
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::7f00:1", False),  # IPv4-compatible IPv6 (reserved), which Python calls global
        ("192.0.2.1", False),  # documentation
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("2001:db8::1", False),
        ("198.18.0.1", False),  # benchmarking
        ("::ffff:10.0.0.1", False),
        ("::ffff:224.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # loopback through NAT64
        ("64:ff9b::a00:1", False),
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("2002:5db8:d822::", True),  # 6to4 of a public address
        # IPv4 numbers in the resolver's other notations (inet_aton), all 127.0.0.1
        ("2130706433", False),
        ("0177.0.0.1", False),
        ("0x7f.1", False),
        ("0x7f000001", False),
        ("127.1", False),
        ("0x7F.0.0.1", False),
        ("1572395042", True),  # 93.184.216.34 as one number
    ],
)
def test_public_ip(address: str, public: bool) -> None:
    assert public_ip(address) is public


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("example.com", None),
        ("0x7g.1", None),
        ("1.2.3.4.5", None),
    ],
)
def test_literal_addresses_are_read_as_the_resolver_reads_them(
    host: str, address: str | None
) -> None:
    found = literal_ip(host)
    assert (str(found) if found is not None else None) == address


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "0x7f000001",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::7f00:1]",
        "[fe80::1%25eth0]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::]",
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "0.0.0.0",
        "192.0.2.1",
        "10.0.0.1",
    ],
)
def test_webhook_urls_on_private_addresses_are_refused_in_every_notation(host: str) -> None:
    url = f"https://{host}/hook"
    # A literal address is refused when the URL is given; a name when it is looked up.
    if literal_ip(host.removeprefix("[").removesuffix("]")) is not None:
        with pytest.raises(InvalidHookUrl):
            check_url(url, allow_private=False)
    assert asyncio.run(public_address(url)) is False


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


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # the same subscriber's other address
        ("2001:DB8:1:3::1", "2001:db8:1:3::/64"),  # the next /64 is someone else
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # a dual-stack socket's view of an IPv4 client
        ("::1", "::/64"),
        ("/run/hub.sock", "/run/hub.sock"),  # not an address: itself
        ("", ""),
    ],
)
def test_limits_count_an_ipv6_client_by_its_64(address: str, key: str) -> None:
    assert client_key(address) == key


def test_a_client_rotating_through_its_64_stays_under_one_cap() -> None:
    """Every address of one /64 shares the cap of sockets and of waiting connections; the
    next /64, and the IPv4 client a mapped address names, are counted apart."""
    quota = SocketQuota(max_per_address=2)
    pending = Pending(header_timeout_s=10, max_per_address=2)
    for limit in (quota.take, pending.admit):
        assert limit("2001:db8:0:1::1") and limit("2001:db8:0:1::2")
        assert not limit("2001:db8:0:1:ffff::3")  # a third address of the same /64
        assert limit("2001:db8:0:2::1")  # another subscriber
        assert limit("::ffff:192.0.2.1") and limit("192.0.2.1")
        assert not limit("192.0.2.1")  # the same IPv4 client, however written
    quota.give_back("2001:db8:0:1::2")
    pending.leave("2001:db8:0:1::2")
    assert quota.take("2001:db8:0:1::9") and pending.admit("2001:db8:0:1::9")
    assert (
        quota.counts
        == pending.counts
        == {
            "2001:db8:0:1::/64": 2,
            "2001:db8:0:2::/64": 1,
            "192.0.2.1": 2,
        }
    )
