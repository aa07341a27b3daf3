"""Whether the hub may fetch or call a URL it was given rather than configured: an outbound
webhook's endpoint, or a media link in a platform's webhook. Such a URL must not reach into
the operator's own network (a metadata service, an admin port on loopback), so every address
its host resolves to must be public, checked before each request; and where the answer is
kept (a media file), the address actually connected to is checked again before its body is
read, so a name that resolves elsewhere the second time (DNS rebinding) gains nothing.

An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by the IPv4 address
it leads to: Python's `is_global` calls `64:ff9b::a9fe:a9fe` (the metadata service through a
NAT64 gateway) public. It also calls multicast and the reserved IPv4-compatible IPv6 block
(`::7f00:1`) global, so those are refused by name. A host written as an IPv4 number in one of
the resolver's other notations ("2130706433", "0177.0.0.1", "0x7f.1", "127.1") is read the
way the resolver reads it (`inet_aton`) before it is judged.

Outbound webhooks go further: their connection is made to the very address that was checked
(`hub.web.pinning`), so no second lookup can lead elsewhere.

Inbound, `client_key` is what the limits per client address count by (`hub.web.guard`,
`hub.realtime.admission`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_6TO4 = ipaddress.ip_network("2002::/16")


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NUMERIC_V4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names by itself (bracketed, with a zone id, or an IPv4 number in
    any notation the resolver accepts), or None for a name to look up."""
    host = host.strip().removeprefix("[").removesuffix("]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(host.removesuffix(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.removesuffix(".")))
        except OSError:
            return None
    return None


def public_ip(address: str | IPAddress) -> bool:
    ip = address if not isinstance(address, str) else literal_ip(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return public_ip(ip.ipv4_mapped)
        if any(ip in network for network in _NAT64):
            return public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _6TO4 and ip.sixtofour is not None:
            return public_ip(ip.sixtofour)
        if ip.teredo is not None:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


async def public_address(url: str, *, unresolved: bool = True) -> bool:
    """Whether every address the URL's host resolves to is public. A host that does not
    resolve counts as `unresolved` (an outbound webhook then fails on its own, as a refused
    connection; a media link is refused)."""
    host = urlsplit(url).hostname or ""
    literal = literal_ip(host)
    if literal is not None:
        return public_ip(literal)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return unresolved
    return bool(infos) and all(public_ip(str(info[4][0])) for info in infos)


def connected_to_public(extensions: dict[str, Any]) -> bool:
    """Whether the connection an httpx response came over leads to a public address."""
    stream = extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    return isinstance(peer, tuple) and bool(peer) and public_ip(str(peer[0]))


def client_key(address: str) -> str:
    """The key a client's address is counted under by the limits per address: an IPv6
    address by its /64, the block a provider gives one subscriber (a client free to pick any
    of its 2^64 addresses would otherwise escape every cap); an IPv4-mapped IPv6 address (a
    dual-stack socket's view of an IPv4 client) by that IPv4 address; an IPv4 address as
    itself. What is not an address (a unix socket's name) counts as itself."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def origin(url: str) -> tuple[str, str, int | None]:
    """A URL's scheme, host and port; a URL that cannot be read has an origin nothing else has."""
    try:
        parts = urlsplit(url)
        default = {"https": 443, "http": 80}.get(parts.scheme)
        return parts.scheme, (parts.hostname or "").lower(), parts.port or default
    except ValueError:
        return "invalid", url, None
