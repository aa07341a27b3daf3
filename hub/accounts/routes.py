"""Accounts' REST API: signing in and out, the caller's own credentials (password, API
tokens, socket tokens), the workspace's members, and the audit log as admins read it. The
sign-in lockout is `hub.accounts.lockout`; listing and ending sessions is
`hub.accounts.session_routes`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts import lockout
from hub.accounts.auth import SESSION_COOKIE, Principal, Session, verify_password
from hub.accounts.members import AuditFilter, Member
from hub.accounts.passwords import MAX_PASSWORD_CHARS, check_new_password
from hub.accounts.twofactor import Tickets, second_step
from hub.errors import BadRequest, Forbidden, NotFound, Unauthenticated, outage
from hub.routing import teams
from hub.storage.models import ApiToken, AuditEvent
from hub.web.http import (
    Body,
    admin_actor,
    answer,
    authenticate,
    client_ip,
    page_limit,
    parse_uuid,
    read_body,
    services,
)
from hub.web.operation import Operation, cursor_param, id_param, limit_param, param, route
from schemas.rest.accounts import (
    AuditEntry,
    AuditPage,
    CreatedToken,
    LoginResult,
    Me,
    MemberOut,
    MemberPage,
    MyWorkspace,
    NewSession,
    SocketToken,
    TokenInfo,
    TokenList,
    User,
)
from schemas.rest.notify import LogoutBody
from schemas.rest.twofactor import LoginAnswer


class LoginBody(Body):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    workspace_id: uuid.UUID | None = Field(
        default=None,
        description="Sign in to this workspace (one of the account's, as GET /api/me lists "
        "them); without it, the oldest membership's",
    )


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=200)


class PasswordBody(Body):
    current_password: str = Field(min_length=1, max_length=1024)
    # The rule itself (hub.accounts.passwords) answers `weak_password` with its reason.
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


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


def user_of(principal: Principal) -> User:
    return User(
        user_id=principal.user_id,
        workspace_id=principal.workspace_id,
        role=principal.role,
        name=principal.name,
    )


def token_info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        user_id=row.user_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def member_out(member: Member) -> MemberOut:
    return MemberOut(
        id=member.user.id,
        name=member.user.name,
        email=member.user.email,
        role=member.membership.role,
        capacity=member.membership.capacity,
        created_at=member.membership.created_at,
        two_factor=member.user.two_factor_enabled_at is not None,
    )


def audit_entry(row: AuditEvent, actor_name: str | None) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        actor_name=actor_name,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        ip=row.ip,
        detail=row.detail,
    )


async def login(request: Request) -> Response:
    svc = services(request)
    body = await read_body(request, LoginBody)
    ip = client_ip(request)
    await lockout.refuse_if_locked(svc.bus, svc.settings.secret_key, body.email, ip)
    user = await svc.store.user_by_email(body.email) if "@" in body.email else None
    if not verify_password(user.password_hash if user else None, body.password) or user is None:
        await lockout.note_failure(svc.bus, svc.settings.secret_key, body.email, ip)
        await svc.store.audit(None, "anonymous", None, "login.failed", ip=ip)
        raise Unauthenticated("Wrong e-mail or password.")
    workspace_id = body.workspace_id or await svc.store.first_workspace(user.id)
    if workspace_id is None:
        raise Forbidden("This user belongs to no workspace.")
    if body.workspace_id is not None and not await svc.store.is_member(workspace_id, user.id):
        raise NotFound("No such workspace.")  # as for an id that does not exist
    principal = await svc.store.principal(user.id, workspace_id, "session")
    assert principal is not None
    workspace = await svc.store.workspace(workspace_id)
    challenge = second_step(Tickets(svc.settings.secret_key), user, workspace, principal)
    if challenge is not None:  # no session yet: the code step (or enrolment) comes first
        return answer(challenge)
    await svc.store.audit(workspace_id, "user", str(user.id), "login.succeeded", ip=ip)
    return await session_response(request, principal, user.password_hash)


async def session_response(
    request: Request,
    principal: Principal,
    password_hash: str,
    *,
    same_session: Session | None = None,
) -> Response:
    """THE one way a session cookie is issued: a new session kept on the server
    (`hub.accounts.sessions`), its cookie for the principal, and its CSRF token in the body.
    With `same_session` (the caller's own, after a password change), that session goes on
    under a new cookie instead."""
    svc = services(request)
    if same_session is None:
        row, secret = await svc.user_sessions.open(
            principal.user_id,
            principal.workspace_id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        session_id = row.id
    else:
        session_id, secret = same_session.session_id, same_session.secret
    cookie = svc.signer.session_cookie(
        principal.user_id, principal.workspace_id, password_hash, session_id, secret
    )
    nonce = svc.signer.read_session(cookie).nonce
    response = answer(LoginResult(user=user_of(principal), csrf_token=svc.signer.csrf_token(nonce)))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=svc.settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=(svc.settings.public_url or "").startswith("https://"),
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """Ends this session everywhere: the cookie, the socket tokens minted from it and its
    open sockets (closed with 4410). With a bearer token there is no session to end. The
    body may name this browser's push endpoint: that subscription goes too."""
    principal = await authenticate(request)
    svc = services(request)
    body = await read_body(request, LogoutBody)
    if body.push_endpoint:  # this browser's notices stop with its session
        await svc.subscriptions.remove(
            principal.workspace_id, principal.user_id, body.push_endpoint.strip()
        )
    if principal.session_id is not None:
        await svc.user_sessions.end(principal.workspace_id, principal.user_id, principal.session_id)
    await svc.store.audit(
        principal.workspace_id, "user", str(principal.user_id), "logout", ip=client_ip(request)
    )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: Request) -> Response:
    principal = await authenticate(request)
    try:
        mine = await services(request).store.workspaces_of(principal.user_id)
    except Exception as exc:  # during a database outage /api/me still answers, without them
        if not outage(exc):
            raise
        mine = []
    body = Me(
        user=user_of(principal),
        workspaces=[MyWorkspace(id=w.id, name=w.name, role=role) for w, role in mine],
    )
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and cookie:
        body.csrf_token = services(request).signer.csrf_token(
            services(request).signer.read_session(cookie).nonce
        )
    return answer(body)  # without csrf_token for a bearer token


async def socket_token(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    return answer(
        SocketToken(
            token=svc.signer.socket_token(principal),
            expires_in_s=svc.settings.socket_token_max_age_s,
        )
    )


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
    check_new_password(body.new_password, email=user.email, name=user.name)
    password_hash = await svc.store.set_password(principal.user_id, body.new_password)
    ended = await svc.user_sessions.end_everywhere(principal.user_id, keep=principal.session_id)
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "password.changed",
        "user",
        str(principal.user_id),
        ip=client_ip(request),
        detail={"sessions_ended": ended},
    )
    # This browser's session goes on, under a cookie with the new password's mark.
    same = svc.signer.read_session(request.cookies[SESSION_COOKIE])
    return await session_response(request, principal, password_hash, same_session=same)


async def create_token(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, TokenBody)
    row, token = await services(request).store.create_api_token(principal, body.name)
    await services(request).store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "api_token.created",
        "api_token",
        str(row.id),
        ip=client_ip(request),
    )
    return answer(CreatedToken(id=row.id, name=row.name, token=token), 201)


async def list_tokens(request: Request) -> Response:
    """Admins see every token of the workspace, agents their own; never the token itself."""
    principal = await authenticate(request)
    mine = None if principal.is_admin else principal.user_id
    rows = await services(request).store.api_tokens(principal.workspace_id, mine)
    return answer(TokenList(items=[token_info(r) for r in rows]))


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
    return answer(token_info(row))


async def list_members(request: Request) -> Response:
    principal = await authenticate(request)
    members = await services(request).members.roster(principal.workspace_id)
    return answer(MemberPage(items=[member_out(m) for m in members]))


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
        await svc.store.forget_member(principal.workspace_id, user_id)
    return answer(member_out(member))


async def remove_member(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    user_id = parse_uuid(request.path_params["user_id"], "member")
    erase = request.query_params.get("erase_account", "false").lower()
    if erase not in ("true", "false"):
        raise BadRequest("erase_account must be true or false.")
    svc = services(request)
    ended = await svc.members.remove(principal.workspace_id, actor, user_id, erase=erase == "true")
    await svc.store.forget_member(principal.workspace_id, user_id, removed=True)
    # Their sessions here went in the removal's transaction (with erase_account, the account
    # may have gone and its sessions with it): now every socket of theirs closes.
    await svc.user_sessions.member_removed(principal.workspace_id, user_id, ended)
    return Response(status_code=204)


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
    return answer(
        AuditPage(items=[audit_entry(row, name) for row, name in rows], next_cursor=cursor)
    )


_TOKEN = id_param("token_id", "An API token's id")
_USER = id_param("user_id", "A member's user id")
_WHEN = {"type": "string", "format": "date-time"}

routes = [
    route(
        "/api/auth/login",
        login,
        "POST",
        op=Operation(
            "Log in with e-mail and password",
            {200: ("Logged in and the cookie set, or the second step it needs", LoginAnswer)},
            (400, 401, 403, 404, 413, 429, 503),
            body=LoginBody,
            auth=False,
            description=f"Sets the `{SESSION_COOKIE}` session cookie (HttpOnly, SameSite=Lax). "
            "After 5 failed attempts for one e-mail (or 50 from one address) in 15 minutes, "
            "sign-in answers 429 `too_many_attempts` until the window has passed, with "
            "`Retry-After`: the seconds left. While the "
            "database is away, 503 `unavailable` with `Retry-After`. For an account with "
            "two-factor on, a right password answers `two_factor_required` with a ticket and "
            "no cookie: the session comes from POST /api/auth/login/two-factor. An admin of a "
            "workspace that requires two-factor, without it, gets `two_factor_setup_required`: "
            "the ticket may only enrol (POST /api/me/two-factor/setup and confirm). "
            "With `workspace_id`, the session is in that workspace (404 `not_found` when the "
            "account is not a member of it, as for one that does not exist); without it, in "
            "the account's oldest membership.",
        ),
    ),
    route(
        "/api/auth/logout",
        logout,
        "POST",
        op=Operation(
            "Log out",
            {204: ("Logged out; the cookie is cleared", None)},
            (400, 401, 403, 413),
            body=LogoutBody,
            description="Ends this session on the server: its cookie, the socket tokens "
            "minted from it and its open sockets (closed with 4410) stop working everywhere. "
            "An optional `push_endpoint` deletes the caller's push subscription of this "
            "browser, so a shared browser gets no notices of the agent who left.",
        ),
    ),
    route(
        "/api/me",
        me,
        "GET",
        op=Operation(
            "The caller",
            {200: ("The user, their workspaces, and the CSRF token of a cookie session", Me)},
            (401,),
        ),
    ),
    route(
        "/api/me/password",
        change_password,
        "POST",
        op=Operation(
            "Change my password",
            {200: ("Changed; a new session cookie for this browser", NewSession)},
            (400, 401, 403, 413),
            body=PasswordBody,
            description="Needs the current password (401 if wrong). The new one follows the "
            "password rule (at least 12 characters, not guessable from common passwords, "
            "patterns or the user's own e-mail and name): 400 `weak_password` with the reason "
            "otherwise. Every other session of this user, in every workspace, ends at once; "
            "this one goes on. Audited as `password.changed`.",
        ),
    ),
    route(
        "/api/agent/socket-token",
        socket_token,
        "POST",
        op=Operation(
            "A short-lived token for the agent websocket",
            {200: ("The token", SocketToken)},
            (401, 403),
            description="For the `hello` frame of /ws/agent (docs/protocol.md); never in a "
            "URL. Single-use: a hello consumes it, a second hello with it closes 4401. It stops "
            "working when the session it came from ends.",
        ),
    ),
    route(
        "/api/tokens",
        create_token,
        "POST",
        op=Operation(
            "Create an API bearer token",
            {201: ("Created", CreatedToken)},
            (400, 401, 403, 413),
            body=TokenBody,
        ),
    ),
    route(
        "/api/tokens",
        list_tokens,
        "GET",
        op=Operation(
            "API tokens",
            {200: ("Admins: every token of the workspace; agents: their own", TokenList)},
            (401,),
        ),
    ),
    route(
        "/api/tokens/{token_id}",
        revoke_token,
        "DELETE",
        op=Operation(
            "Revoke an API token",
            {200: ("Revoked", TokenInfo)},
            (401, 403, 404),
            params=(_TOKEN,),
            description="Agents may revoke their own tokens, admins any of the workspace. "
            "Audited as `api_token.revoked`.",
        ),
    ),
    route(
        "/api/members",
        list_members,
        "GET",
        op=Operation(
            "The workspace's members",
            {200: ("Every member", MemberPage)},
            (401,),
            description="Any member may list them (to assign conversations).",
        ),
    ),
    route(
        "/api/members/{user_id}",
        change_member,
        "PATCH",
        op=Operation(
            "Change a member's role or routing capacity (admins)",
            {200: ("The member", MemberOut)},
            (400, 401, 403, 404, 409, 413),
            body=MemberPatch,
            params=(_USER,),
            description="409 `last_admin` when it would leave the workspace without an admin. "
            "Audited as `member.role_changed` and `member.capacity_changed`.",
        ),
    ),
    route(
        "/api/members/{user_id}",
        remove_member,
        "DELETE",
        op=Operation(
            "Remove a member (admins)",
            {204: ("Removed; their sessions here end and API tokens stop working", None)},
            (400, 401, 403, 404, 409),
            params=(
                _USER,
                param(
                    "erase_account",
                    "query",
                    "Also delete their account data: this workspace's API tokens, personal "
                    "saved replies and read marks, and, when they belong to no other "
                    "workspace, the account itself (name, e-mail, password); their messages "
                    "stay, shown as a former member's",
                    {"type": "boolean", "default": False},
                ),
            ),
            description="Their sessions here end, and every agent socket of theirs here closes "
            "with 4410 (those opened with an API token too). 409 `last_admin` for the "
            "workspace's last admin. Audited as `member.removed` (with `erase_account`).",
        ),
    ),
    route(
        "/api/audit",
        audit_log,
        "GET",
        op=Operation(
            "The audit log, newest first (admins)",
            {200: ("A page", AuditPage)},
            (400, 401, 403),
            params=(
                param("action", "query", "An action or its prefix (`member.`)", {"type": "string"}),
                param("actor_id", "query", "Only this actor's (a user id)", {"type": "string"}),
                param("since", "query", "At or after this time (with a zone)", _WHEN),
                param("until", "query", "Before this time (with a zone)", _WHEN),
                cursor_param(),
                limit_param(),
            ),
        ),
    ),
]
