"""Channels' REST API: the list, connecting and disconnecting (admins), each channel's
settings and health, and a web chat's identity secret. Every change is audited with the
caller's IP."""

from __future__ import annotations

from datetime import datetime

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.channels import purge as channeldata
from hub.channels.options import (
    ChannelPatch,
    last_events,
    rotate_identity_secret,
    update_channel,
)
from hub.channels.service import ConnectBody, webhook_info
from hub.errors import BadRequest
from hub.routing import teams
from hub.storage.models import Channel
from hub.templates.service import has_templates
from hub.web.http import (
    admin_actor,
    answer,
    as_json,
    authenticate,
    client_ip,
    parse_uuid,
    public_base,
    read_body,
    require_admin,
    services,
)
from hub.web.operation import Operation, id_param, param, route
from schemas.rest.channels import (
    ChannelDetail,
    ChannelHealthPage,
    ChannelOut,
    ChannelPage,
    ConnectedChannel,
    DataDeletion,
    DisconnectedChannel,
    IdentitySecret,
)


def channel_out(row: Channel) -> ChannelOut:
    # Secrets never leave the server; only whether the channel has them.
    return ChannelOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        public_key=row.public_key,
        allowed_origins=row.allowed_origins,
        status=row.status,
        has_secrets=row.secrets is not None,
        last_event_at=row.last_event_at,
    )


def channel_detail(row: Channel, last_event_at: datetime | None = None) -> ChannelDetail:
    # Channel.settings holds the widget's look and public account details, never secrets.
    latest = max((t for t in (row.last_event_at, last_event_at) if t is not None), default=None)
    return ChannelDetail(
        **(dict(channel_out(row)) | {"last_event_at": latest}), settings=row.settings
    )


async def list_channels(request: Request) -> Response:
    principal = await authenticate(request)
    rows = await services(request).store.channels(principal.workspace_id)
    return answer(ChannelPage(items=[channel_out(r) for r in rows]))


async def connect_channel(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_body(request, ConnectBody)
    channel, shown = await services(request).channels.connect(
        principal.workspace_id,
        principal.user_id,
        body,
        public_base(request),
        ip=client_ip(request),
    )
    # A web chat has no webhook ({}): the answer is the channel's JSON with what the service says.
    webhook = webhook_info(channel, public_base(request), shown)
    sync = None
    if has_templates(channel.kind) and body.business_account_id:  # its templates, once answered
        templates = services(request).templates()
        sync = BackgroundTask(templates.sync_quietly, principal.workspace_id, channel.id)
    subscription = {
        k: channel.settings[k] for k in ("subscribed", "subscribe_note") if k in channel.settings
    }
    return JSONResponse(
        as_json(channel_out(channel)) | {"webhook": webhook} | subscription,
        status_code=201,
        background=sync,
    )


async def disconnect_channel(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    delete_data = request.query_params.get("delete_data", "false")
    if delete_data not in ("true", "false"):
        raise BadRequest("delete_data must be true or false.")
    svc = services(request)
    channel, unsubscribed = await svc.channels.disconnect(
        principal.workspace_id, principal.user_id, channel_id, ip=client_ip(request)
    )
    await svc.webchat.forget(principal.workspace_id, channel_id)
    await svc.ingress.channel_updated(principal.workspace_id, channel_id, "disconnected")
    disconnected = DisconnectedChannel(**dict(channel_out(channel)), **unsubscribed.as_json())
    if delete_data == "false":
        return answer(disconnected)
    row, counts = await channeldata.file(
        svc.deletions, principal.workspace_id, channel_id, principal.user_id, ip=client_ip(request)
    )
    disconnected.data_deletion = DataDeletion(id=row.id, status=row.status, counts=counts)
    return answer(disconnected, background=BackgroundTask(channeldata.run, svc.deletions, row.id))


async def channel_health(request: Request) -> Response:
    """Every channel with its settings and when it last received something."""
    principal = await authenticate(request)
    store = services(request).store
    rows = await store.channels(principal.workspace_id)
    last = await last_events(store, principal.workspace_id)
    return answer(ChannelHealthPage(items=[channel_detail(row, last.get(row.id)) for row in rows]))


async def _detail(request: Request, row: Channel) -> ChannelDetail:
    last = await last_events(services(request).store, row.workspace_id)
    return channel_detail(row, last.get(row.id))


async def get_channel(request: Request) -> Response:
    principal = await authenticate(request)
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    row = await services(request).store.existing_channel(principal.workspace_id, channel_id)
    return answer(await _detail(request, row))


async def change_channel(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, ChannelPatch)
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    svc = services(request)
    if (
        body.routing is not None
        and body.routing.team_id is not None
        and not await svc.teams.exists(principal.workspace_id, body.routing.team_id)
    ):
        raise BadRequest("routing.team_id is not a team of this workspace.")
    row = await update_channel(
        svc.store,
        principal.workspace_id,
        channel_id,
        body,
        actor_id=actor.user_id,
        ip=actor.ip,
    )
    await svc.webchat.forget(principal.workspace_id, channel_id)
    if body.routing is not None:
        await teams.announce(svc.bus, principal.workspace_id, actor.user_id)
    sync = None
    if body.business_account_id is not None:  # its templates, once answered
        sync = BackgroundTask(svc.templates().sync_quietly, principal.workspace_id, channel_id)
    return answer(await _detail(request, row), background=sync)


async def new_identity_secret(request: Request) -> Response:
    """A web chat's identity-verification secret, made anew and shown this once."""
    principal, actor = await admin_actor(request)
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    svc = services(request)
    secret = await rotate_identity_secret(
        svc.store,
        svc.vault,
        principal.workspace_id,
        channel_id,
        actor_id=actor.user_id,
        ip=actor.ip,
    )
    await svc.webchat.forget(principal.workspace_id, channel_id)
    return answer(IdentitySecret(identity_secret=secret), 201)


_CHANNEL = id_param("channel_id", "A channel id")

routes = [
    route(
        "/api/channels",
        list_channels,
        "GET",
        op=Operation("The workspace's channels", {200: ("All channels", ChannelPage)}, (401,)),
    ),
    route(
        "/api/channels",
        connect_channel,
        "POST",
        op=Operation(
            "Connect a channel (admins)",
            {201: ("Connected; what to paste where", ConnectedChannel)},
            (400, 401, 403, 409, 413),
            body=ConnectBody,
            description="Secrets are stored encrypted and never returned; a generated verify "
            "token or Telegram secret token is shown in this answer only. A Meta token is "
            "checked against the platform and its Page, Instagram account or WABA subscribed "
            "to the app's webhooks (`subscribed`); a token Meta refuses is 400 "
            "`platform_refused` with Meta's `platform` {status, code, message}, one for "
            "another account 400 `wrong_account`.",
        ),
    ),
    route(
        "/api/channels/health",
        channel_health,
        "GET",
        op=Operation(
            "Every channel with its settings and health",
            {200: ("All channels", ChannelHealthPage)},
            (401,),
            description="`status` is connected, needs_reconnect (the platform refused the "
            "token) or disconnected; `last_event_at` is when it last received a message.",
        ),
    ),
    route(
        "/api/channels/{channel_id}",
        get_channel,
        "GET",
        op=Operation(
            "One channel, with its settings",
            {200: ("The channel", ChannelDetail)},
            (401, 404),
            params=(_CHANNEL,),
        ),
    ),
    route(
        "/api/channels/{channel_id}",
        change_channel,
        "PATCH",
        op=Operation(
            "Rename a channel, set its routing and business hours; a web chat's origins and "
            "widget settings (admins)",
            {200: ("The channel", ChannelDetail)},
            (400, 401, 403, 404, 413),
            body=ChannelPatch,
            params=(_CHANNEL,),
            description="400 `invalid_origin` for an origin that is not scheme://host[:port], "
            "`invalid_colour` for a colour that is not #rrggbb, `invalid_timezone` for a zone "
            "that is not an IANA name, `invalid_hours` for a range that is not HH:MM to a "
            "later HH:MM, `not_webchat` for web-chat fields on another kind, "
            "`unknown_placeholder` for an auto-reply with a placeholder the hub does not know, "
            "`bad_request` for a routing team that is not the workspace's, `not_whatsapp` for "
            "`business_account_id` on another kind (setting it syncs the channel's WhatsApp "
            "templates). Audited as `channel.updated` with the changed fields.",
        ),
    ),
    route(
        "/api/channels/{channel_id}",
        disconnect_channel,
        "DELETE",
        op=Operation(
            "Disconnect a channel (admins)",
            {200: ("Disconnected; its secrets are destroyed", DisconnectedChannel)},
            (400, 401, 403, 404),
            params=(
                _CHANNEL,
                param(
                    "delete_data",
                    "query",
                    "true: also erase all of the channel's conversations, messages and "
                    "identities (one deletion request)",
                    {"type": "string", "enum": ["true", "false"], "default": "false"},
                ),
            ),
            description="The platform is told to stop delivering, best effort: the channel is "
            "disconnected whatever it answers (`unsubscribed`). Audited as "
            "`channel.disconnected`, and `channel.data_deleted` with counts.",
        ),
    ),
    route(
        "/api/channels/{channel_id}/identity-secret",
        new_identity_secret,
        "POST",
        op=Operation(
            "Make a web chat's identity-verification secret anew (admins)",
            {201: ("The new secret, shown this once", IdentitySecret)},
            (400, 401, 403, 404),
            params=(_CHANNEL,),
            description="The site's server signs its user ids with it (hex HMAC-SHA256 of the "
            "user id) for `POST /api/widget/token`. The old secret stops working at once "
            "(other nodes within HUB_CACHE_TTL_S). 400 `not_webchat` for another kind. Audited "
            "as `channel.identity_secret_rotated`, without the secret.",
        ),
    ),
]
