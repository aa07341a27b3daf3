"""Platform webhooks: `/webhooks/meta` (the hosted Meta app, routed by account id),
`/webhooks/meta/{channel_id}` (a channel with its own Meta app) and
`/webhooks/telegram/{channel_id}`.

The signature is checked over the raw bytes before anything is parsed; a delivery is
answered 200 as soon as its events are on the workspace streams (no database write on
this path: channels are resolved from a cache, ids are derived). Events that belong to
no connected channel, and dashboard test events, are acknowledged and counted, never
retried into an outage.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable
from typing import Any

import pydantic_core
from pydantic_core import from_json
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters import registry
from adapters.meta import templates as wa_templates
from adapters.meta import webhook as meta
from adapters.protocol import Adapter
from hub.channels.service import Resolved
from hub.errors import BadRequest, Forbidden, NoSuchChannel, Unauthenticated
from hub.web.http import parse_uuid, read_raw, services

log = logging.getLogger("hub.webhooks")


class BadSignature(Unauthenticated):
    code = "bad_signature"
    default_message = "Missing or wrong X-Hub-Signature-256."


class BadSecretToken(Unauthenticated):
    code = "bad_secret_token"
    default_message = "Missing or wrong X-Telegram-Bot-Api-Secret-Token."


async def _last_known(
    request: Request, key: object, lookup: Awaitable[Resolved | None]
) -> Resolved | None:
    """A channel as the cache resolves it. When the cache's entry has expired while the
    database is away, the resolution this node last made: nothing on the webhook path may
    wait on Postgres (an outage would otherwise refuse every webhook once the cache expires)."""
    known: dict[object, Resolved] | None = getattr(request.app.state, "webhook_channels", None)
    if known is None:
        known = request.app.state.webhook_channels = {}
    try:
        resolved = await lookup
    except (OSError, TimeoutError, sa_exc.SQLAlchemyError):
        if key not in known:
            raise
        log.warning("database unavailable; webhook routed by the last known channel")
        return known[key]
    if resolved is None:
        known.pop(key, None)
    else:
        known[key] = resolved
    return resolved


async def _channel(request: Request, family: str) -> tuple[Resolved, Adapter]:
    """The channel of the path, when its adapter's webhooks arrive on this `family`'s route."""
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    resolved = await _last_known(request, channel_id, services(request).channels.by_id(channel_id))
    adapter = registry.get(resolved.context.kind) if resolved is not None else None
    if resolved is None or adapter is None or adapter.family != family:
        raise NoSuchChannel()
    return resolved, adapter


def _json(body: bytes) -> Any:
    """The body as Postgres can store it. The parser refuses what no platform sends and
    `json.loads` lets through: invalid UTF-8, lone surrogates, NaN, nesting past a bound
    (`json.loads` would raise RecursionError). One unstorable value would otherwise stop the
    persist group on that event, and every event behind it."""
    try:
        parsed = from_json(body, allow_inf_nan=False)
    except ValueError:
        raise BadRequest("The body is not JSON.") from None
    return _storable(parsed) if _may_be_unstorable(body) else parsed


# What may hold an unstorable value, so the walk below runs only on such bodies (10 µs of a
# Messenger text's CPU; these checks, 1.5 µs). The parser refuses raw control characters, so a
# NUL reaches a string only as the escape \u0000. A float beyond a double's range (1.8e308)
# needs 300 digits or more in a row, or an exponent of two digits or more: fewer than 300
# integer digits times at most 1e9 stays below 1e308. Text that merely looks like either costs
# the walk. Both are looked for in the body's shape, every digit written 0 and every exponent
# e+ or e: substring searches, where a regular expression tried a match at every digit.
_SHAPE = bytes.maketrans(b"123456789E-", b"000000000e+")
_DIGITS = b"0" * 300


def _may_be_unstorable(body: bytes) -> bool:
    if b"\\u0000" in body:
        return True
    shape = body.translate(_SHAPE)
    return b"0e00" in shape or b"0e+00" in shape or _DIGITS in shape


def _storable(value: Any) -> Any:
    """NUL characters (which no Postgres text or jsonb holds) become U+FFFD; a number out of
    float range (1e999 parses as infinity) is refused."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest("A number in the body is out of range.")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


async def meta_hosted(request: Request) -> Response:
    settings = services(request).settings
    if request.method == "GET":
        return _handshake(request, [settings.meta_verify_token or ""])
    if not settings.meta_app_secret:
        raise Forbidden("The hosted Meta app is not configured on this hub.")
    body = await read_raw(request)
    if not meta.signature_ok(
        body, request.headers.get(meta.SIGNATURE_HEADER), [settings.meta_app_secret]
    ):
        raise BadSignature()
    return await _deliver_meta(request, _json(body), only=None)


async def meta_channel(request: Request) -> Response:
    resolved, adapter = await _channel(request, "meta")
    if request.method == "GET":
        return _answer(adapter.handshake(request.query_params, resolved.secrets))
    body = await read_raw(request)
    if not adapter.verify(request.headers, body, resolved.secrets):
        raise BadSignature()
    return await _deliver_meta(request, _json(body), only=resolved)


def _handshake(request: Request, tokens: list[str]) -> Response:
    return _answer(meta.handshake(request.query_params, tokens))


def _answer(challenge: str | None) -> Response:
    if challenge is None:
        raise Forbidden("Wrong hub.mode or hub.verify_token.")
    return PlainTextResponse(challenge)


async def _deliver_meta(request: Request, body: Any, only: Resolved | None) -> Response:
    svc = services(request)
    split = meta.split(body)
    accepted, ignored = 0, split.ignored
    workspaces: set[str] = set()
    for piece in split.pieces:
        adapter = registry.adapter_for(piece.kind)
        if adapter.sends_templates and wa_templates.is_status_change(piece.entry):
            applied = await _template_statuses(request, piece.entry, only)
            accepted += applied
            ignored += 0 if applied else 1
            continue
        if only is not None:
            resolved: Resolved | None = (
                only
                if piece.account_id == only.context.account_id and piece.kind is only.context.kind
                else None
            )
        else:
            resolved = await _last_known(
                request,
                (piece.kind, piece.account_id),
                svc.channels.by_account(piece.kind, piece.account_id),
            )
        if resolved is None:
            ignored += 1
            log.info("webhook for an unconnected %s account ignored", piece.kind.value)
            continue
        result = registry.adapter_for(piece.kind).parse(piece.entry, resolved.context)
        ignored += result.ignored
        for event in result.events:
            await svc.ingress.publish_parsed(resolved.context, event)
            workspaces.add(str(resolved.context.workspace_id))
            accepted += 1
    await svc.ingress.settle(*workspaces)  # the 200 is the ack: once for the whole delivery
    return _counted(accepted, ignored)


def _counted(accepted: int, ignored: int) -> Response:
    """A delivery's answer, written by pydantic's serializer: Starlette's JSONResponse builds a
    `json` encoder for each answer (3% of a webhook's CPU). The same bytes."""
    answer = pydantic_core.to_json({"accepted": accepted, "ignored": ignored})
    return Response(answer, media_type="application/json")


async def _template_statuses(request: Request, entry: Any, only: Resolved | None) -> int:
    """A WABA's template status changes (`message_template_status_update`), written to the
    stored lists at once. They are rare and belong to no conversation, so they skip the
    stream; a failure here is logged and answered 200 anyway, since the periodic sync reads
    the same statuses again (`hub.templates.service.TemplateRefresher`)."""
    svc = services(request)
    updates = wa_templates.parse_status(entry)
    if not updates:
        return 0
    try:
        await svc.templates().apply_statuses(
            updates, only.context.channel_id if only is not None else None
        )
    except (OSError, TimeoutError, sa_exc.SQLAlchemyError):
        log.warning("template status webhook not applied; the next sync will", exc_info=True)
        return 0
    return len(updates)


async def telegram_channel(request: Request) -> Response:
    resolved, adapter = await _channel(request, "telegram")
    # The secret token is a header: a stranger's request is refused before its body is read.
    if not adapter.verify(request.headers, b"", resolved.secrets):
        raise BadSecretToken()
    update = _json(await read_raw(request))
    if not isinstance(update, dict):
        raise BadRequest("A Telegram update is a JSON object.")
    result = adapter.parse(update, resolved.context)
    for event in result.events:
        await services(request).ingress.publish_parsed(resolved.context, event)
    if result.events:
        await services(request).ingress.settle(resolved.context.workspace_id)
    if result.answer is not None:  # Telegram calls it: the body is the method's parameters
        return JSONResponse(result.answer)
    return _counted(len(result.events), result.ignored)


routes = [
    Route("/webhooks/meta", meta_hosted, methods=["GET", "POST"]),
    Route("/webhooks/meta/{channel_id}", meta_channel, methods=["GET", "POST"]),
    Route("/webhooks/telegram/{channel_id}", telegram_channel, methods=["POST"]),
]
