"""Channels' REST API: the list, connecting and disconnecting (admins), each channel's
settings and health, and a web chat's identity secret. Every change is audited with the
caller's IP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
from hub.web.http import (
    admin_actor,
    authenticate,
    client_ip,
    parse_uuid,
    public_base,
    read_body,
    require_admin,
    services,
)


def channel_json(row: Channel) -> dict[str, Any]:
    # Secrets never leave the server; only whether the channel has them.
    return {
        "id": str(row.id),
        "kind": row.kind,
        "name": row.name,
        "public_key": row.public_key,
        "allowed_origins": row.allowed_origins,
        "status": row.status,
        "has_secrets": row.secrets is not None,
        "last_event_at": row.last_event_at.isoformat() if row.last_event_at else None,
    }


def channel_detail(row: Channel, last_event_at: datetime | None = None) -> dict[str, Any]:
    # Channel.settings holds the widget's look and public account details, never secrets.
    latest = max((t for t in (row.last_event_at, last_event_at) if t is not None), default=None)
    return channel_json(row) | {
        "settings": row.settings,
        "last_event_at": latest.isoformat() if latest else None,
    }


async def list_channels(request: Request) -> Response:
    principal = await authenticate(request)
    rows = await services(request).store.channels(principal.workspace_id)
    return JSONResponse({"items": [channel_json(r) for r in rows]})


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
    answer = channel_json(channel) | {"webhook": webhook_info(channel, public_base(request), shown)}
    return JSONResponse(answer, status_code=201)


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
    svc.webchat.forget(channel_id)
    await svc.ingress.channel_updated(principal.workspace_id, channel_id, "disconnected")
    answer = channel_json(channel) | unsubscribed.as_json()
    if delete_data == "false":
        return JSONResponse(answer)
    row, counts = await channeldata.file(
        svc.deletions, principal.workspace_id, channel_id, principal.user_id, ip=client_ip(request)
    )
    answer["data_deletion"] = {"id": str(row.id), "status": row.status, "counts": counts}
    return JSONResponse(answer, background=BackgroundTask(channeldata.run, svc.deletions, row.id))


async def channel_health(request: Request) -> Response:
    """Every channel with its settings and when it last received something."""
    principal = await authenticate(request)
    store = services(request).store
    rows = await store.channels(principal.workspace_id)
    last = await last_events(store, principal.workspace_id)
    return JSONResponse({"items": [channel_detail(row, last.get(row.id)) for row in rows]})


async def _detail(request: Request, row: Channel) -> dict[str, Any]:
    last = await last_events(services(request).store, row.workspace_id)
    return channel_detail(row, last.get(row.id))


async def get_channel(request: Request) -> Response:
    principal = await authenticate(request)
    channel_id = parse_uuid(request.path_params["channel_id"], "channel")
    row = await services(request).store.existing_channel(principal.workspace_id, channel_id)
    return JSONResponse(await _detail(request, row))


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
    svc.webchat.forget(channel_id)
    if body.routing is not None:
        await teams.announce(svc.bus, principal.workspace_id, actor.user_id)
    return JSONResponse(await _detail(request, row))


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
    svc.webchat.forget(channel_id)
    return JSONResponse({"identity_secret": secret}, status_code=201)


routes = [
    Route("/api/channels", list_channels, methods=["GET"]),
    Route("/api/channels", connect_channel, methods=["POST"]),
    Route("/api/channels/health", channel_health, methods=["GET"]),
    Route("/api/channels/{channel_id}", get_channel, methods=["GET"]),
    Route("/api/channels/{channel_id}", change_channel, methods=["PATCH"]),
    Route("/api/channels/{channel_id}", disconnect_channel, methods=["DELETE"]),
    Route("/api/channels/{channel_id}/identity-secret", new_identity_secret, methods=["POST"]),
]
