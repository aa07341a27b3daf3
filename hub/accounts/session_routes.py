"""Sessions' REST API: a user lists their sessions and ends one or all the others, and moves
their session to another of their workspaces; an admin signs a member out. Sessions
themselves are `hub.accounts.sessions`; one begins only through
`hub.accounts.routes.session_response`."""

from __future__ import annotations

import uuid

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import SESSION_COOKIE
from hub.accounts.routes import session_response
from hub.accounts.twofactor import Tickets, second_step
from hub.errors import NotFound, Unauthenticated
from hub.storage import tenancy
from hub.storage.models import UserSession
from hub.web.http import (
    Body,
    admin_actor,
    answer,
    authenticate,
    client_ip,
    parse_uuid,
    read_body,
    services,
)
from hub.web.operation import Operation, id_param, route
from schemas.rest.accounts import SessionInfo, SessionList, SessionsEnded
from schemas.rest.twofactor import LoginAnswer


class SwitchBody(Body):
    workspace_id: uuid.UUID = Field(description="One of the caller's workspaces (GET /api/me)")


def session_info(row: UserSession, current: uuid.UUID | None) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        ip=row.ip,
        user_agent=row.user_agent,
        current=row.id == current,
    )


async def my_sessions(request: Request) -> Response:
    principal = await authenticate(request)
    rows = await services(request).user_sessions.listing(principal.workspace_id, principal.user_id)
    return answer(SessionList(items=[session_info(r, principal.session_id) for r in rows]))


async def end_my_session(request: Request) -> Response:
    """End one of my sessions (this one too: that is signing out)."""
    principal = await authenticate(request)
    session_id = parse_uuid(request.path_params["session_id"], "session")
    svc = services(request)
    if not await svc.user_sessions.end(principal.workspace_id, principal.user_id, session_id):
        raise NotFound("No such session.")
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "session.ended",
        "session",
        str(session_id),
        ip=client_ip(request),
    )
    response = Response(status_code=204)
    if session_id == principal.session_id:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def end_my_other_sessions(request: Request) -> Response:
    """Every session of mine in this workspace but this one (all of them with a bearer
    token, which has none)."""
    principal = await authenticate(request)
    svc = services(request)
    ended = await svc.user_sessions.end_all(
        principal.workspace_id, principal.user_id, keep=principal.session_id
    )
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "session.ended_others",
        "user",
        str(principal.user_id),
        ip=client_ip(request),
        detail={"ended": ended},
    )
    return answer(SessionsEnded(ended=ended))


async def sign_out_member(request: Request) -> Response:
    """An admin ends every session of a member in this workspace."""
    principal, actor = await admin_actor(request)
    user_id = parse_uuid(request.path_params["user_id"], "member")
    svc = services(request)
    if not await svc.store.is_member(principal.workspace_id, user_id):
        raise NotFound("No such member.")
    ended = await svc.user_sessions.end_all(principal.workspace_id, user_id)
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(actor.user_id),
        "member.signed_out",
        "user",
        str(user_id),
        ip=actor.ip,
        detail={"ended": ended},
    )
    return answer(SessionsEnded(ended=ended))


async def switch_workspace(request: Request) -> Response:
    """This session ends and one in another of the user's workspaces begins. The second
    factor was asked for when this session began, and it is the user's, not a workspace's:
    with two-factor on, the switch asks for no code again. An admin of a target workspace
    that requires two-factor, without it, enrols first, as at sign-in (this session then goes
    on until they have)."""
    principal = await authenticate(request)
    if principal.via != "session" or principal.session_id is None:
        raise Unauthenticated("Switch workspaces from a signed-in session.")
    body = await read_body(request, SwitchBody)
    svc = services(request)
    target = body.workspace_id
    with tenancy.acting_for(target):  # the target's rows, for this member of it only
        member = await svc.store.principal(principal.user_id, target, "session")
        workspace = await svc.store.workspace(target) if member is not None else None
    user = await svc.store.user_by_id(principal.user_id)
    if member is None or workspace is None or user is None:
        raise NotFound("No such workspace.")  # not a member: as for one that does not exist
    if user.two_factor_enabled_at is None:
        challenge = second_step(Tickets(svc.settings.secret_key), user, workspace, member)
        if challenge is not None:
            return answer(challenge)
    ip = client_ip(request)
    response = await session_response(request, member, user.password_hash)
    await svc.user_sessions.end(principal.workspace_id, principal.user_id, principal.session_id)
    # A row in each workspace, neither naming the other: each admin sees only their own side.
    for workspace_id, direction in ((principal.workspace_id, "out"), (target, "in")):
        with tenancy.acting_for(workspace_id):
            await svc.store.audit(
                workspace_id,
                "user",
                str(principal.user_id),
                "session.switched",
                "user",
                str(principal.user_id),
                ip=ip,
                detail={"direction": direction},
            )
    return response


_SESSION = id_param("session_id", "A session's id")
_USER = id_param("user_id", "A member's user id")

routes = [
    route(
        "/api/auth/switch",
        switch_workspace,
        "POST",
        op=Operation(
            "Sign in to another of my workspaces",
            {200: ("Switched; a new session cookie, or the enrolment it needs", LoginAnswer)},
            (400, 401, 403, 404, 413),
            body=SwitchBody,
            description="From a cookie session only (401 with a bearer token). This session "
            "ends (its sockets close with 4410) and a new one begins in the named workspace, "
            "with a new cookie and CSRF token. 404 `not_found` when the caller is not a member "
            "of it, as for a workspace that does not exist. With two-factor on, no code is "
            "asked again: it was given when this session began. An admin of a workspace that "
            "requires two-factor, without it, gets `two_factor_setup_required` with a ticket "
            "(enrol with it, which signs in there) and this session goes on. Audited as "
            "`session.switched` in both workspaces (`direction` out and in).",
        ),
    ),
    route(
        "/api/me/sessions",
        my_sessions,
        "GET",
        op=Operation(
            "My sessions in this workspace",
            {200: ("Every live session, the most recently seen first", SessionList)},
            (401,),
            description="Each signed-in browser: when it signed in, when it was last seen "
            "(within a few minutes), its address and browser; `current` marks the session "
            "making the request.",
        ),
    ),
    route(
        "/api/me/sessions",
        end_my_other_sessions,
        "DELETE",
        op=Operation(
            "End my other sessions",
            {200: ("Every session of mine here but this one has ended", SessionsEnded)},
            (401, 403),
            description="Their cookies, socket tokens and open sockets stop working at once "
            "(sockets close with 4410). Audited as `session.ended_others`.",
        ),
    ),
    route(
        "/api/me/sessions/{session_id}",
        end_my_session,
        "DELETE",
        op=Operation(
            "End one of my sessions",
            {204: ("Ended; ending this session signs out", None)},
            (401, 403, 404),
            params=(_SESSION,),
            description="Audited as `session.ended`.",
        ),
    ),
    route(
        "/api/members/{user_id}/sign-out",
        sign_out_member,
        "POST",
        op=Operation(
            "Sign a member out (admins)",
            {200: ("Every session of the member in this workspace has ended", SessionsEnded)},
            (401, 403, 404),
            params=(_USER,),
            description="Their cookies, socket tokens and open sockets stop working here at "
            "once (sockets close with 4410); API tokens are revoked apart. Audited as "
            "`member.signed_out`.",
        ),
    ),
]
