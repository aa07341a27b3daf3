"""The one I/O entry point for sending: build the request with the channel's adapter,
perform it on the client given, interpret the answer. Never raises for anything the
platform or the network does (`adapters.outbound`).

A file the platform wants uploaded first (WhatsApp) takes two calls, both made here: the
adapter builds the upload (`build_upload`), reads the media id from its answer
(`interpret_upload`), and builds the send naming it. Modelling the upload as one more pure
request, rather than an adapter function doing its own I/O, keeps every call of a send in
this one place, with the same timeout, redaction and mapping of network errors.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from adapters import registry
from adapters.outbound import (
    TIMEOUT_S,
    MissingSecret,
    Outcome,
    Outgoing,
    Platforms,
    Request,
    Unsendable,
    redact,
)

UPLOAD_TIMEOUT_S = 60.0  # a file of tens of megabytes, on an ordinary uplink


async def send(
    client: httpx.AsyncClient,
    out: Outgoing,
    platforms: Platforms,
    *,
    timeout_s: float = TIMEOUT_S,
    upload_timeout_s: float = UPLOAD_TIMEOUT_S,
) -> Outcome:
    """Build, perform, interpret. Never raises for the platform's or the network's doing.
    A call that carries a file has `upload_timeout_s`, the others `timeout_s`."""
    adapter = registry.get(out.kind)
    if adapter is None:
        return Outcome.failed(f"{out.kind} is not sent to a platform", Unsendable.code)
    try:
        upload = adapter.build_upload(out, platforms) if out.file is not None else None
    except MissingSecret as exc:
        return Outcome.needs_reconnect(str(exc), exc.code)
    except Unsendable as exc:
        return Outcome.failed(str(exc), exc.code)
    if upload is not None and out.file is not None:
        answered = await _perform(client, upload, upload_timeout_s, upload=True)
        if isinstance(answered, Outcome):
            return answered
        media_id = adapter.interpret_upload(*answered)
        if isinstance(media_id, Outcome):
            return media_id
        out = dataclasses.replace(out, file=dataclasses.replace(out.file, media_id=media_id))
    try:
        request = adapter.build_send(out, platforms)
    except MissingSecret as exc:
        return Outcome.needs_reconnect(str(exc), exc.code)
    except Unsendable as exc:
        return Outcome.failed(str(exc), exc.code)
    wait_s = upload_timeout_s if request.files else timeout_s
    answered = await _perform(client, request, wait_s, upload=False)
    if isinstance(answered, Outcome):
        return answered
    return adapter.interpret_send(*answered)


async def _perform(
    client: httpx.AsyncClient, request: Request, timeout_s: float, *, upload: bool
) -> tuple[int, Any, httpx.Headers] | Outcome:
    """The answer's status, decoded body and headers; or the outcome when there was none.
    An upload that got no answer reached no one, so it may be tried again; a send may have."""
    try:
        response = await client.request(
            request.method,
            request.url,
            json=request.json,
            data=request.form,
            files=request.files,
            headers=request.headers,
            timeout=timeout_s,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        return Outcome.retry(redact(f"{type(exc).__name__}: {exc}"), "network")
    except httpx.TransportError as exc:  # a read or write timeout, a connection lost
        if upload:
            return Outcome.retry(redact(f"{type(exc).__name__}: {exc}"), "network")
        return Outcome.failed(
            "The platform did not answer in time; it may have the message, so it is not "
            "sent again.",
            "unknown_outcome",
        )
    try:
        body: Any = response.json()
    except ValueError:  # an HTML error page from a proxy, an empty body
        body = None
    return response.status_code, body, response.headers
