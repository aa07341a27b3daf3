"""The web-chat widget's public REST API under /api/widget: its configuration, visitor tokens,
what a visitor says about itself, and its own history.

Every endpoint is public and checks the request's Origin against the channel's allowed
origins; CORS lets that page (only) read the answers, and answers preflights. The visitor
token travels in JSON bodies, never in a URL.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import VisitorClaims
from hub.channels.options import widget_settings
from hub.errors import BadRequest, TooBig, Unauthenticated
from hub.media.uploads import MAX_FILES, is_multipart, read_form
from hub.storage.models import MessageRow
from hub.web.http import Body, answer, read_body, services
from hub.web.operation import PAGE_MAX, Operation, param, route
from hub.webchat.service import WebChannel
from schemas.message import utc_now
from schemas.rest.webchat import (
    VisibleError,
    VisibleMessage,
    VisibleSender,
    VisitorHistory,
    VisitorSent,
    VisitorToken,
    WidgetConfig,
    WidgetHours,
    WidgetLimits,
    WidgetPrechat,
)

DEFAULT_COLOUR = "#4f46e5"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class VisitorTokenBody(Body):
    channel: str = Field(min_length=1, max_length=64, description="The channel's public key")
    token: str | None = Field(default=None, max_length=4096, description="A previous visitor token")
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Identity verification: the site's id of its signed-in user",
    )
    user_hash: str | None = Field(
        default=None,
        max_length=128,
        description="Hex HMAC-SHA256 of user_id under the channel's identity secret",
    )


class ProfileBody(Body):
    token: str = Field(min_length=1, max_length=4096, description="The visitor token")
    name: Name | None = Field(default=None, description="Null leaves the name as it is")
    email: str | None = Field(
        default=None, max_length=320, description="Null leaves the e-mail as it is"
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not EMAIL.fullmatch(value):
            raise ValueError("not an e-mail address")
        return value


class VisitorSendForm(Body):
    client_id: str = Field(min_length=1, max_length=100, description="Makes a retry idempotent")
    text: str | None = Field(default=None, max_length=100_000, description="A caption")
    attachments: list[bytes] = Field(
        default_factory=list,
        max_length=10,
        description="The files (up to 10), each a part with its file name",
        json_schema_extra={"items": {"type": "string", "format": "binary"}},
    )


class HistoryBody(Body):
    token: str = Field(min_length=1, max_length=4096, description="The visitor token")
    before: str | None = Field(
        default=None, max_length=200, description="`next_before` of the previous page"
    )
    limit: int | None = Field(default=None, description="Page size (default 50)")


def cors(
    response: Response, origin: str | None, *, preflight: bool = False, methods: str = "POST"
) -> Response:
    # What is refused to a foreign origin is refused by the Origin check itself; CORS only
    # lets the allowed page read the answer.
    if origin:
        response.headers["access-control-allow-origin"] = origin
        response.headers["vary"] = "Origin"
    if preflight:
        response.headers["access-control-allow-methods"] = methods
        response.headers["access-control-allow-headers"] = "content-type, authorization"
        response.headers["access-control-max-age"] = "600"
    return response


def preflight(request: Request, methods: str = "POST") -> Response | None:
    if request.method != "OPTIONS":
        return None
    return cors(
        Response(status_code=204), request.headers.get("origin"), preflight=True, methods=methods
    )


async def _visitor(request: Request, token: str) -> VisitorClaims:
    return await services(request).webchat.authenticate(token, request.headers.get("origin"))


async def visitor_from_header(request: Request) -> VisitorClaims:
    """The visitor whose token is in `Authorization: Bearer` (where a GET carries it)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise Unauthenticated("Send the visitor token as Authorization: Bearer <token>.")
    return await _visitor(request, header[7:].strip())


# Endpoints


async def widget_config(request: Request) -> Response:
    """Public: how the widget of a channel looks and behaves; no secrets."""
    if (early := preflight(request, "GET")) is not None:
        return early
    svc = services(request)
    origin = request.headers.get("origin")
    channel = await svc.webchat.by_public_key(request.query_params.get("channel", "")[:64])
    # Browsers send no Origin on a same-origin GET: a page served by the hub itself.
    channel.check_origin(origin or f"{request.url.scheme}://{request.url.netloc}")
    response = answer(
        widget_config_of(
            channel, svc.settings.max_message_chars, svc.settings.visitor_messages_per_minute
        )
    )
    response.headers["cache-control"] = "no-store"
    return cors(response, origin)


def widget_config_of(channel: WebChannel, max_message_chars: int, per_minute: int) -> WidgetConfig:
    widget = widget_settings(channel.settings)
    hours: WidgetHours | None = None
    if widget.hours is not None:
        business, now = widget.hours.business_hours(), utc_now()
        open_now = business.is_open(now)
        hours = WidgetHours(
            open_now=open_now,
            offline_message=widget.hours.offline_message,
            next_open_at=None if open_now else business.next_open(now),
            timezone=widget.hours.timezone,
        )
    prechat = widget.prechat
    return WidgetConfig(
        title=widget.title or None,  # unset: the widget's own, in the visitor's language
        greeting=widget.greeting,
        colour=widget.colour or DEFAULT_COLOUR,
        position=widget.position or "right",
        locale=widget.locale,
        prechat=WidgetPrechat(
            enabled=prechat.enabled if prechat else False,
            require_email=prechat.require_email if prechat else False,
        ),
        consent_required=bool(widget.consent_required),
        identity=channel.has_identity_secret,
        hours=hours,
        limits=WidgetLimits(max_message_chars=max_message_chars, messages_per_minute=per_minute),
        visitor_info=widget.visitor_info is not False,
    )


async def visitor_token(request: Request) -> Response:
    """Public: the widget asks for a visitor token for its channel's public key."""
    if (early := preflight(request)) is not None:
        return early
    svc = services(request)
    origin = request.headers.get("origin")
    body = await read_body(request, VisitorTokenBody)
    token, claims = await svc.webchat.issue(
        body.channel, origin, body.token, user_id=body.user_id, user_hash=body.user_hash
    )
    conversation = svc.ingress.visitor_conversation(claims)
    issued = VisitorToken(
        token=token,
        visitor_id=claims.visitor_id,
        conversation_id=conversation.id,
        identified=body.user_id is not None,
    )
    return cors(answer(issued), origin)


async def visitor_profile(request: Request) -> Response:
    """Public: the visitor's name and e-mail (the pre-chat form), for the agents."""
    if (early := preflight(request)) is not None:
        return early
    body = await read_body(request, ProfileBody)
    claims = await _visitor(request, body.token)
    if body.name is not None or body.email is not None:
        await services(request).ingress.visitor_profile(claims, body.name, body.email)
    return cors(Response(status_code=204), request.headers.get("origin"))


async def visitor_history(request: Request) -> Response:
    """Public: the visitor's own conversation, oldest first, as the visitor may see it."""
    if (early := preflight(request)) is not None:
        return early
    svc = services(request)
    body = await read_body(request, HistoryBody)
    limit = 50 if body.limit is None else body.limit
    if not 1 <= limit <= svc.settings.page_max_items:
        raise BadRequest(f"limit must be an integer from 1 to {svc.settings.page_max_items}.")
    claims = await _visitor(request, body.token)
    conversation = svc.ingress.visitor_conversation(claims)
    rows, before = await svc.store.messages(
        claims.workspace_id, conversation.id, limit=limit, before=body.before, notes=False
    )
    page = VisitorHistory(
        items=[visible_message(r) for r in rows],
        next_before=before,
        agent_read_up_to=await svc.webchat.agent_read_up_to(claims.workspace_id, conversation.id),
    )
    return cors(answer(page), request.headers.get("origin"))


async def visitor_send(request: Request) -> Response:
    """Public: a visitor's message with files (text goes over the socket, or here as a
    caption). The token, the Origin and the visitor's rate are checked before the body is
    read; the files are checked and kept like an agent's, within the same limits."""
    if (early := preflight(request)) is not None:
        return early
    svc = services(request)
    if not is_multipart(request):
        raise BadRequest("Send the files as multipart/form-data.")
    claims = await visitor_from_header(request)
    await svc.ingress.limit_visitor(claims, svc.settings.visitor_messages_per_minute)
    body, files = await read_form(
        request, VisitorSendForm, max_files=MAX_FILES, max_file_bytes=svc.settings.max_media_bytes
    )
    text = body.text.strip() if body.text else None
    if not files:
        raise BadRequest("Send at least one file in `attachments`; text alone goes by socket.")
    if text and len(text) > svc.settings.max_message_chars:
        raise TooBig(f"Messages are limited to {svc.settings.max_message_chars} characters.")
    conversation = svc.ingress.visitor_conversation(claims)
    async with svc.library.kept(
        claims.workspace_id,
        conversation.id,
        conversation.channel_kind,
        [(f.name, f.data) for f in files],
        seed=(claims.visitor_id, body.client_id),
    ) as upload:
        attachments = [a.model_dump(exclude_none=True) for a in upload.attachments]
        message_id, published = await svc.ingress.visitor_message(
            claims, body.client_id, text, attachments
        )
    if published.duplicate:  # sent before: what this retry added is no one's
        await svc.library.forget_files(claims.workspace_id, conversation.id, upload.added)
    await svc.ingress.settle(claims.workspace_id)
    result = VisitorSent(
        message_id=message_id, event_id=published.id, duplicate=published.duplicate
    )
    status = 200 if published.duplicate else 202
    return cors(answer(result, status), request.headers.get("origin"))


def visible_message(row: MessageRow) -> VisibleMessage:
    """A message as its contact may see it: no ids of agents, no raw payload, no internals."""
    error = row.error if isinstance(row.error, dict) else None
    return VisibleMessage(
        id=row.id,
        direction=row.direction,
        text=row.text,
        attachments=row.attachments,
        sender=VisibleSender(type=row.sender_type, name=row.sender_name),
        sent_at=row.sent_at,
        status=row.status,
        error=VisibleError(code=str(error.get("code")), message=str(error.get("message")))
        if error
        else None,
        client_id=row.client_id,
        event_id=row.event_id,
        edited=row.edited,
        deleted=row.deleted,
    )


_ORIGIN = (
    " The request's Origin must be one of the channel's allowed origins (403 `origin_not_allowed`)."
)

routes = [
    route(
        "/api/widget/config",
        widget_config,
        "GET",
        "OPTIONS",
        op=Operation(
            "The web-chat widget's settings",
            {200: ("How the widget looks and behaves", WidgetConfig)},
            (403, 404),
            params=(
                param(
                    "channel",
                    "query",
                    "The channel's public key",
                    {"type": "string"},
                    required=True,
                ),
            ),
            auth=False,
            description="Public; never secrets." + _ORIGIN,
        ),
    ),
    route(
        "/api/widget/token",
        visitor_token,
        "POST",
        "OPTIONS",
        op=Operation(
            "A visitor token for the web-chat widget",
            {200: ("The token and the visitor's conversation", VisitorToken)},
            (400, 403, 404, 413, 503),
            body=VisitorTokenBody,
            auth=False,
            description="Public." + _ORIGIN + " Pass a previous `token` to keep the visitor and "
            "conversation. With `user_id` and its `user_hash` the visitor is that user of the "
            "site, the same on every device, and the previous token is ignored; a missing or "
            "wrong hash, or a channel without an identity secret, is 403 `identity_invalid`. "
            "While the database is away a previous anonymous token is still renewed; any other "
            "request is 503 `unavailable` with `Retry-After`.",
        ),
    ),
    route(
        "/api/widget/profile",
        visitor_profile,
        "POST",
        "OPTIONS",
        op=Operation(
            "The visitor's name and e-mail",
            {204: ("Published to the agents as `contact.updated`; stored by the worker", None)},
            (400, 401, 403, 413),
            body=ProfileBody,
            auth=False,
            description="Public, with the visitor token in the body." + _ORIGIN,
        ),
    ),
    route(
        "/api/widget/messages",
        visitor_send,
        "POST",
        "OPTIONS",
        op=Operation(
            "A visitor's message with files",
            {202: ("Accepted onto the stream", VisitorSent), 200: ("Sent before", VisitorSent)},
            (400, 401, 403, 413, 415, 429),
            form=VisitorSendForm,
            auth=False,
            description="Public, as `multipart/form-data`, with the visitor token in "
            "`Authorization: Bearer` (checked, with the Origin and the visitor's rate, before the "
            "body is read)."
            + _ORIGIN
            + " Up to 10 files in `attachments`, each typed from its bytes (415 outside the "
            "allowlist) and within the hub's size limit (413); images are kept without their "
            "metadata. Counts against the visitor's messages a minute (429). Idempotent on "
            "`client_id`.",
        ),
    ),
    route(
        "/api/widget/history",
        visitor_history,
        "POST",
        "OPTIONS",
        op=Operation(
            "The visitor's own conversation history",
            {200: ("A page, oldest first", VisitorHistory)},
            (400, 401, 403, 413),
            body=HistoryBody,
            auth=False,
            description="Public, with the visitor token in the body (never in a URL)."
            + _ORIGIN
            + f" `limit` is 1 to {PAGE_MAX} (default 50).",
        ),
    ),
]
