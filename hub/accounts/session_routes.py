"""Sessions' REST API: a user lists their sessions and ends one or all the others; an admin
signs a member out. Sessions themselves are `hub.accounts.sessions`; one begins only through
`hub.accounts.routes.session_response`."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import SESSION_COOKIE
from hub.errors import NotFound
from hub.storage.models import UserSession
from hub.web.http import admin_actor, answer, authenticate, client_ip, parse_uuid, services
from hub.web.operation import Operation, id_param, route
from schemas.rest.accounts import SessionInfo, SessionList, SessionsEnded


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


_SESSION = id_param("session_id", "A session's id")
_USER = id_param("user_id", "A member's user id")

routes = [
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
