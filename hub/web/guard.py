"""Connections that have not yet sent their request's headers: how long they may take, and
how many one address may hold.

uvicorn reads headers with no deadline of its own (its keep-alive timer stops at the first
byte of a request), so a client that sends a header line every few seconds (slowloris) holds
a connection, and a file descriptor, for ever. `GuardedHttp` is uvicorn's httptools protocol
with two limits added, per node:

- `header_timeout_s`: a connection that has not completed a request's headers this long
  after it opened (or after that request's first byte, on a kept-alive connection) is closed,
  with no answer. The deadlines are kept in a table that one timer sweeps four times a
  header timeout, and at least once a second (a timer per request, set and cancelled, cost
  1.5 µs a request): a late connection is closed within `sweep_s` of its deadline;
- `max_pending`: a new connection from an address that already holds this many connections
  still waiting for their first request's headers is answered 429 `too_many_connections` with
  Retry-After, and closed at once.

The address here is the TCP peer, before any X-Forwarded-For: the guard runs before a request
exists. It is counted by `hub.web.addresses.client_key`: an IPv6 peer by its /64. A trusted
proxy (uvicorn's FORWARDED_ALLOW_IPS) speaks for many clients and sends each request's
headers at once, so it is not capped (its own header timeout protects it); the header timeout
still applies to it. A websocket upgrade leaves the guard when its headers are
complete: what a socket may do then is the realtime layer's business (`hub.realtime.admission`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.errors import TooManyConnections
from hub.web.addresses import client_key

log = logging.getLogger("hub.guard")

RETRY_AFTER_S = 5
SWEEP_MAX_S = 1.0  # the longest between two sweeps of the header deadlines
LOG_EVERY_S = 60.0  # one warning line per kind of refusal at most this often, with a count


class Pending:
    """How many connections each address holds that have not sent their first request's
    headers yet, and the limits; one per server, shared by its connections."""

    def __init__(
        self, *, header_timeout_s: float, max_per_address: int, trusted: Iterable[str] = ()
    ) -> None:
        self.header_timeout_s = header_timeout_s
        self.max_per_address = max_per_address
        self.counts: dict[str, int] = {}
        self.trust_all, self.trusted = _trusted(trusted)
        self.refused: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}
        # Connections waiting for a request's headers, by when they must have sent them (loop
        # time); one timer sweeps it while it holds any.
        self.waiting: dict[GuardedHttp, float] = {}
        self.sweep_s = min(SWEEP_MAX_S, header_timeout_s / 4)
        self._sweep: asyncio.TimerHandle | None = None

    def wait(self, connection: GuardedHttp, loop: asyncio.AbstractEventLoop) -> None:
        """Start `connection`'s header deadline."""
        self.waiting[connection] = loop.time() + self.header_timeout_s
        if self._sweep is None:
            self._sweep = loop.call_later(self.sweep_s, self._close_late, loop)

    def _close_late(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = [connection for connection, by in self.waiting.items() if by <= now]
        for connection in late:
            del self.waiting[connection]
            connection.too_slow()
        self._sweep = None
        if self.waiting:
            self._sweep = loop.call_later(self.sweep_s, self._close_late, loop)

    def admit(self, address: str) -> bool:
        if self.trust_all or _in(address, self.trusted):
            return True
        key = client_key(address)  # an IPv6 client by its /64
        held = self.counts.get(key, 0)
        if held >= self.max_per_address:
            self.note("pending_per_address")
            return False
        self.counts[key] = held + 1
        return True

    def leave(self, address: str) -> None:
        key = client_key(address)
        held = self.counts.get(key, 0)
        if held > 1:
            self.counts[key] = held - 1
        else:
            self.counts.pop(key, None)

    def note(self, kind: str) -> None:
        """Count a refusal, and say so in the log now and then (an attack must not flood it)."""
        self.refused[kind] = self.refused.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._logged_at.get(kind, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[kind] = now
            log.warning("connections refused or closed (%s): %d so far", kind, self.refused[kind])


def _trusted(entries: Iterable[str]) -> tuple[bool, list[Any]]:
    networks: list[Any] = []
    for entry in entries:
        entry = entry.strip()
        if entry == "*":
            return True, []
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a unix socket's name: not an address a TCP peer can have
    return False, networks


def _in(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _refusal() -> bytes:
    error = TooManyConnections()
    body = json.dumps({"error": error.as_dict()}).encode()
    return (
        b"HTTP/1.1 429 Too Many Requests\r\n"
        b"content-type: application/json\r\n"
        b"retry-after: " + str(RETRY_AFTER_S).encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


REFUSAL = _refusal()


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a cap on waiting connections
    per address (`Pending`); `protocol_class` binds it to one server's `Pending`."""

    pending: ClassVar[Pending]

    _address: str | None = None  # counted in `pending` until its first headers are complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        if address is not None:
            if not self.pending.admit(address):
                transport.write(REFUSAL)
                transport.close()
                return
            self._address = address
        self.pending.wait(self, self.loop)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self not in self.pending.waiting:  # a later request on a kept-alive connection
            self.pending.wait(self, self.loop)

    def on_headers_complete(self) -> None:
        self._headers_done()  # before uvicorn hands a websocket upgrade over
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _headers_done(self) -> None:
        self.pending.waiting.pop(self, None)
        if self._address is not None:
            self.pending.leave(self._address)
            self._address = None

    def too_slow(self) -> None:
        """Past the header deadline (`Pending` has already let it go)."""
        if not self.transport.is_closing():
            self.pending.note("header_timeout")
            self.transport.close()


def protocol_class(pending: Pending) -> type[GuardedHttp]:
    """A `GuardedHttp` for one server (uvicorn makes one protocol object per connection from
    the class it is given, with no room for arguments of ours)."""
    return type("GuardedHttp", (GuardedHttp,), {"pending": pending})
