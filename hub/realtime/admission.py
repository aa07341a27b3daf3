"""How many sockets one client address may hold on a node (`max_sockets_per_address`).

Agents' and visitors' sockets count together, from the handshake to the socket's end. One more
is refused before its handshake completes, with HTTP 429 `too_many_connections` and
Retry-After (the ASGI websocket denial response), so it costs the node no socket and its
owner's other sockets carry on. A browser sees a refused handshake as close 1006 and retries
with its backoff, as after any failed connect.

The address is the client's as uvicorn gives it: behind a trusted proxy (FORWARDED_ALLOW_IPS)
the X-Forwarded-For client, else the TCP peer, counted by `hub.web.addresses.client_key` (an
IPv6 client by its /64). The count is per node: behind a load balancer that spreads one
address over N nodes, it may hold up to N times the cap.
"""

from __future__ import annotations

import logging
import time

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from hub.errors import TooManyConnections
from hub.web.addresses import client_key
from schemas.codes import CloseCode

log = logging.getLogger("hub.guard")

RETRY_AFTER_S = 5
LOG_EVERY_S = 60.0  # one warning line at most this often, with a count: an attack must not flood
DENIAL = "websocket.http.response"  # the ASGI extension that lets a handshake be answered


class SocketQuota:
    """Open sockets by client address; plain integers, taken and given back on one loop."""

    __slots__ = ("counts", "logged_at", "max_per_address", "refused")

    def __init__(self, max_per_address: int) -> None:
        self.max_per_address = max_per_address
        self.counts: dict[str, int] = {}
        self.refused = 0
        self.logged_at = -LOG_EVERY_S

    def take(self, address: str) -> bool:
        key = client_key(address)  # an IPv6 client by its /64
        held = self.counts.get(key, 0)
        if held >= self.max_per_address:
            self.refused += 1
            if time.monotonic() - self.logged_at >= LOG_EVERY_S:
                self.logged_at = time.monotonic()
                log.warning("sockets refused (sockets_per_address): %d so far", self.refused)
            return False
        self.counts[key] = held + 1
        return True

    def give_back(self, address: str) -> None:
        key = client_key(address)
        held = self.counts.get(key, 0)
        if held > 1:
            self.counts[key] = held - 1
        else:
            self.counts.pop(key, None)


async def refuse(websocket: WebSocket) -> None:
    error = TooManyConnections()
    if DENIAL in websocket.scope.get("extensions", {}):
        answer = JSONResponse(
            {"error": error.as_dict()},
            status_code=error.status,
            headers={"retry-after": str(RETRY_AFTER_S), "cache-control": "no-store"},
        )
        await websocket.send_denial_response(answer)
    else:  # a server without the extension: a close before the accept (HTTP 403 there)
        await websocket.close(CloseCode.TOO_SLOW, error.code)
