"""The admin console's REST API: members, the audit log, channel settings and a web chat's
identity secret.

Admins only, except reading the member list and the channels with their settings and health
(agents assign conversations to members and see their channels). Every change is audited
with the caller's IP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import teams
from hub.api import (
    authenticate,
    channel_json,
    client_ip,
    page_limit,
    parse_uuid,
    read_body,
    require_admin,
    services,
)
from hub.auth import Principal
from hub.channelsettings import (
    ChannelPatch,
    last_events,
    rotate_identity_secret,
    update_channel,
)
from hub.errors import BadRequest, NotFound
from hub.members import Actor, AuditFilter
from hub.models import AuditEvent, Channel
from hub.teams import TeamBody, TeamPatch

MIN_PASSWORD_CHARS = 12


class NewMember(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Literal["admin", "agent"] = "agent"
    password: str = Field(
        min_length=MIN_PASSWORD_CHARS,
        max_length=1024,
        description="The initial password, which the admin hands over; ignored when the "
        "e-mail already has an account (in another workspace)",
    )


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "agent"] | None = None
    capacity: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="At most this many open conversations from routing; null: no limit "
        "(send it explicitly)",
    )


def channel_detail(row: Channel, last_event_at: datetime | None = None) -> dict[str, Any]:
    # Channel.settings holds the widget's look and public account details, never secrets.
    latest = max((t for t in (row.last_event_at, last_event_at) if t is not None), default=None)
    return channel_json(row) | {
        "settings": row.settings,
        "last_event_at": latest.isoformat() if latest else None,
    }


def audit_json(row: AuditEvent, actor_name: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "actor_name": actor_name,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "ip": row.ip,
        "detail": row.detail,
    }


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise BadRequest(f"{name} must be an ISO 8601 time with a zone, like 2026-01-31T09:00Z.")
    return value.astimezone(UTC)  # stored in UTC; SQLite compares them as text


async def admin_actor(request: Request) -> tuple[Principal, Actor]:
    """The caller, who must be an admin, and who they are for the audit log."""
    principal = await authenticate(request)
    require_admin(principal)
    return principal, Actor(principal.user_id, client_ip(request))


# Members


async def list_members(request: Request) -> Response:
    principal = await authenticate(request)
    members = await services(request).members.roster(principal.workspace_id)
    return JSONResponse({"items": [m.as_json() for m in members]})


async def add_member(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, NewMember)
    member, existed = await services(request).members.add(
        principal.workspace_id,
        actor,
        email=body.email,
        name=body.name,
        role=body.role,
        password=body.password,
    )
    return JSONResponse(member.as_json() | {"existing_user": existed}, status_code=201)


async def change_member(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, MemberPatch)
    user_id = parse_uuid(request.path_params["user_id"], "member")
    svc = services(request)
    if body.role is None and "capacity" not in body.model_fields_set:
        raise BadRequest("Nothing to change: give role or capacity.")
    if "capacity" in body.model_fields_set:
        member = await svc.members.set_capacity(
            principal.workspace_id, actor, user_id, body.capacity
        )
        await teams.announce(svc.bus, principal.workspace_id, actor.user_id)
    if body.role is not None:
        member = await svc.members.change_role(principal.workspace_id, actor, user_id, body.role)
        svc.store.forget_member(principal.workspace_id, user_id)
    return JSONResponse(member.as_json())


async def remove_member(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    user_id = parse_uuid(request.path_params["user_id"], "member")
    svc = services(request)
    await svc.members.remove(principal.workspace_id, actor, user_id)
    svc.store.forget_member(principal.workspace_id, user_id)
    return Response(status_code=204)


# Teams


async def list_teams(request: Request) -> Response:
    principal = await authenticate(request)
    return JSONResponse({"items": await services(request).teams.all(principal.workspace_id)})


async def create_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, TeamBody)
    team = await services(request).teams.create(principal.workspace_id, actor, body)
    return JSONResponse(team, status_code=201)


async def change_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, TeamPatch)
    team_id = parse_uuid(request.path_params["team_id"], "team")
    team = await services(request).teams.change(principal.workspace_id, actor, team_id, body)
    return JSONResponse(team)


async def delete_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    team_id = parse_uuid(request.path_params["team_id"], "team")
    await services(request).teams.delete(principal.workspace_id, actor, team_id)
    return Response(status_code=204)


# Audit log


async def audit_log(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    query = request.query_params
    action = query.get("action") or None
    if action is not None and len(action) > 60:
        raise BadRequest("action is an action or its prefix, at most 60 characters.")
    actor_id = query.get("actor_id") or None
    if actor_id is not None and len(actor_id) > 64:
        raise BadRequest("actor_id is at most 64 characters.")
    where = AuditFilter(action, actor_id, _time(request, "since"), _time(request, "until"))
    rows, cursor = await services(request).members.audit_page(
        principal.workspace_id,
        where,
        limit=page_limit(request),
        cursor=query.get("cursor") or None,
    )
    return JSONResponse(
        {"items": [audit_json(row, name) for row, name in rows], "next_cursor": cursor}
    )


# Channels


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
    row = await services(request).store.channel(principal.workspace_id, channel_id)
    if row is None:
        raise NotFound("No such channel.")
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
    Route("/api/members", list_members, methods=["GET"]),
    Route("/api/members", add_member, methods=["POST"]),
    Route("/api/members/{user_id}", change_member, methods=["PATCH"]),
    Route("/api/members/{user_id}", remove_member, methods=["DELETE"]),
    Route("/api/teams", list_teams, methods=["GET"]),
    Route("/api/teams", create_team, methods=["POST"]),
    Route("/api/teams/{team_id}", change_team, methods=["PATCH"]),
    Route("/api/teams/{team_id}", delete_team, methods=["DELETE"]),
    Route("/api/audit", audit_log, methods=["GET"]),
    # Before the channel id route, which it would otherwise match.
    Route("/api/channels/health", channel_health, methods=["GET"]),
    Route("/api/channels/{channel_id}", get_channel, methods=["GET"]),
    Route("/api/channels/{channel_id}", change_channel, methods=["PATCH"]),
    Route("/api/channels/{channel_id}/identity-secret", new_identity_secret, methods=["POST"]),
]
