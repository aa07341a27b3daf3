"""The one I/O entry point for sending: build the request with the channel's adapter,
perform it on the client given, interpret the answer. Never raises for anything the
platform or the network does (`adapters.outbound`)."""

from __future__ import annotations

from typing import Any

import httpx

from adapters import registry
from adapters.outbound import (
    TIMEOUT_S,
    MissingSecret,
    Outcome,
    Outgoing,
    Platforms,
    Unsendable,
    redact,
)


async def send(
    client: httpx.AsyncClient, out: Outgoing, platforms: Platforms, *, timeout_s: float = TIMEOUT_S
) -> Outcome:
    """Build, perform, interpret. Never raises for the platform's or the network's doing."""
    adapter = registry.get(out.kind)
    if adapter is None:
        return Outcome.failed(f"{out.kind} is not sent to a platform", Unsendable.code)
    try:
        request = adapter.build_send(out, platforms)
    except MissingSecret as exc:
        return Outcome.needs_reconnect(str(exc), exc.code)
    except Unsendable as exc:
        return Outcome.failed(str(exc), exc.code)
    try:
        response = await client.request(
            request.method,
            request.url,
            json=request.json,
            data=request.form,
            headers=request.headers,
            timeout=timeout_s,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return Outcome.retry(redact(f"{type(exc).__name__}: {exc}"), "network")
    except httpx.TransportError:  # a read or write timeout, a connection lost mid-request
        return Outcome.failed(
            "The platform did not answer in time; it may have the message, so it is not "
            "sent again.",
            "unknown_outcome",
        )
    try:
        body: Any = response.json()
    except ValueError:  # an HTML error page from a proxy, an empty body
        body = None
    return adapter.interpret_send(response.status_code, body, response.headers)
