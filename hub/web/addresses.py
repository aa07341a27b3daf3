"""Whether the hub may fetch or call a URL it was given rather than configured: an outbound
webhook's endpoint, or a media link in a platform's webhook. Such a URL must not reach into
the operator's own network (a metadata service, an admin port on loopback), so every address
its host resolves to must be public; it is checked again at each request, so a name that later
points inside is refused then."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


async def public_address(url: str) -> bool:
    """Whether every address the URL's host resolves to is public. A host that does not
    resolve counts as public: the request then fails on its own, as a refused connection."""
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return True
    return all(ipaddress.ip_address(info[4][0]).is_global for info in infos)


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default
