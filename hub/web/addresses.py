"""Whether the hub may fetch or call a URL it was given rather than configured: an outbound
webhook's endpoint, or a media link in a platform's webhook. Such a URL must not reach into
the operator's own network (a metadata service, an admin port on loopback), so every address
its host resolves to must be public, checked before each request; and where the answer is
kept (a media file), the address actually connected to is checked again before its body is
read, so a name that resolves elsewhere the second time (DNS rebinding) gains nothing.

An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by the IPv4 address
it leads to: Python's `is_global` calls `64:ff9b::a9fe:a9fe` (the metadata service through a
NAT64 gateway) public.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_6TO4 = ipaddress.ip_network("2002::/16")


def public_ip(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.is_global
        if any(ip in network for network in _NAT64):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF).is_global
        if ip in _6TO4 and ip.sixtofour is not None:
            return ip.sixtofour.is_global
        if ip.teredo is not None:
            return False
    return ip.is_global


async def public_address(url: str, *, unresolved: bool = True) -> bool:
    """Whether every address the URL's host resolves to is public. A host that does not
    resolve counts as `unresolved` (an outbound webhook then fails on its own, as a refused
    connection; a media link is refused)."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return public_ip(host)
    except ValueError:
        pass
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


def origin(url: str) -> tuple[str, str, int | None]:
    """A URL's scheme, host and port; a URL that cannot be read has an origin nothing else has."""
    try:
        parts = urlsplit(url)
        default = {"https": 443, "http": 80}.get(parts.scheme)
        return parts.scheme, (parts.hostname or "").lower(), parts.port or default
    except ValueError:
        return "invalid", url, None
