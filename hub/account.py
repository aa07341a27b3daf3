"""A member's own credentials: password change and API tokens (the sign-in lockout is
`hub.lockout`)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.api import (
    _Body,
    authenticate,
    client_ip,
    parse_uuid,
    read_body,
    services,
    session_response,
)
from hub.auth import verify_password
from hub.errors import Unauthenticated

MIN_PASSWORD_CHARS = 12


class PasswordBody(_Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=1024)


async def change_password(request: Request) -> Response:
    """Needs the current password; every other session of this user ends, this one goes on
    with a new cookie."""
    principal = await authenticate(request)
    if principal.via != "session":
        raise Unauthenticated("Change a password from a signed-in session.")
    body = await read_body(request, PasswordBody)
    svc = services(request)
    user = await svc.store.user_by_id(principal.user_id)
    if user is None or not verify_password(user.password_hash, body.current_password):
        raise Unauthenticated("The current password is wrong.")
    password_hash = await svc.store.set_password(principal.user_id, body.new_password)
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "password.changed",
        "user",
        str(principal.user_id),
        ip=client_ip(request),
    )
    return session_response(request, principal, password_hash)


def token_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "user_id": str(row.user_id),
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


async def list_tokens(request: Request) -> Response:
    """Admins see every token of the workspace, agents their own; never the token itself."""
    principal = await authenticate(request)
    mine = None if principal.is_admin else principal.user_id
    rows = await services(request).store.api_tokens(principal.workspace_id, mine)
    return JSONResponse({"items": [token_json(r) for r in rows]})


async def revoke_token(request: Request) -> Response:
    principal = await authenticate(request)
    token_id: uuid.UUID = parse_uuid(request.path_params["token_id"], "API token")
    mine = None if principal.is_admin else principal.user_id
    svc = services(request)
    row = await svc.store.revoke_api_token(principal.workspace_id, token_id, mine)
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "api_token.revoked",
        "api_token",
        str(row.id),
        ip=client_ip(request),
    )
    return JSONResponse(token_json(row))


routes = [
    Route("/api/me/password", change_password, methods=["POST"]),
    Route("/api/tokens", list_tokens, methods=["GET"]),
    Route("/api/tokens/{token_id}", revoke_token, methods=["DELETE"]),
]
