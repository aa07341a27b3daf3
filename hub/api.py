"""The REST API under /api (documented by /api/openapi.json, see `hub.openapi`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.window import window
from hub import channeldata, frames, lockout, tenancy
from hub.auth import API_TOKEN_PREFIX, SESSION_COOKIE, Principal, verify_password
from hub.channels import ConnectBody, webhook_info
from hub.errors import BadRequest, CsrfFailed, Forbidden, NotFound, TooBig, Unauthenticated
from hub.message import utc_now
from hub.models import Channel, Contact, Conversation, MessageRow
from hub.rules import PRIORITIES, Label, Priority
from hub.services import Services

M = TypeVar("M", bound=BaseModel)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenBody(_Body):
    name: str = Field(min_length=1, max_length=200)


class SendBody(_Body):
    client_id: str = Field(min_length=1, max_length=100)
    text: str | None = Field(default=None, max_length=100_000)
    private_reply: bool = Field(
        default=False,
        description="In a comment conversation: a private message, not a public reply",
    )
    reply_to: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The platform message id of the message this answers",
    )
    note: bool = Field(default=False, description="A private note for agents, never sent")


class ConversationPatch(_Body):
    status: Literal["open", "pending", "resolved", "snoozed"] | None = None
    snoozed_until: datetime | None = Field(
        default=None, description="Required with status snoozed; a time in the future"
    )
    assignee_id: uuid.UUID | None = Field(
        default=None, description="A member of the workspace; null unassigns (send it explicitly)"
    )
    team_id: uuid.UUID | None = Field(
        default=None, description="A team of the workspace; null takes it out of any team's queue"
    )
    labels: list[Label] | None = Field(
        default=None, max_length=20, description="The whole set of labels, replacing the old one"
    )
    priority: Priority | None = Field(
        default=None, description="low, medium, high or urgent; null clears it (send it explicitly)"
    )


class ReactionBody(_Body):
    client_id: str = Field(min_length=1, max_length=100)
    platform_message_id: str = Field(
        min_length=1, max_length=200, description="The message reacted to"
    )
    emoji: str = Field(max_length=16, description="An empty string takes the reaction back")


# Plumbing


def services(request: Request) -> Services:
    value: Services = request.app.state.services
    return value


async def read_raw(request: Request) -> bytes:
    """The body's bytes, refusing one over the limit before reading it whole."""
    limit = services(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooBig(f"Request bodies are limited to {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooBig(f"Request bodies are limited to {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, model: type[M]) -> M:
    """Parse a JSON body into `model`, with a machine-readable 400 for what does not fit."""
    body = await read_raw(request)
    if b"\\u0000" in body:
        try:
            body = frames.without_nul(body.decode()).encode()
        except UnicodeDecodeError:
            raise BadRequest("The body is not UTF-8.") from None
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"Invalid body at {where}: {first['msg']}") from None


async def authenticate(request: Request) -> Principal:
    svc = services(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        principal = (
            await svc.store.principal_for_api_token(token)
            if token.startswith(API_TOKEN_PREFIX)
            else None
        )
        if principal is None:
            raise Unauthenticated("The bearer token is not valid.")
        tenancy.act_for(principal.workspace_id)
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated()
    session = svc.signer.read_session(cookie)
    if request.method not in SAFE_METHODS and not svc.signer.check_csrf(
        session.nonce, request.headers.get("x-csrf-token")
    ):
        raise CsrfFailed()
    principal = await svc.store.principal(
        session.user_id, session.workspace_id, "session", password_mark=session.password_mark
    )
    if principal is None:
        raise Unauthenticated("The session has ended (membership removed or password changed).")
    tenancy.act_for(principal.workspace_id)
    return principal


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No such {what}.") from None


def page_limit(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit", str(default))
    maximum = services(request).settings.page_max_items
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}.")
    return int(raw)


def contact_json(contact_id: uuid.UUID, row: Contact | None) -> dict[str, Any]:
    return {
        "id": str(contact_id),
        "name": row.name if row else None,
        "username": row.username if row else None,
        "picture_url": row.picture_url if row else None,
    }


def conversation_json(
    row: Conversation,
    contact: Contact | None = None,
    unread: int = 0,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    open_window = window(row.channel_kind or "", row.last_inbound_at, utc_now())
    return {
        "unread": unread,
        "labels": labels or [],
        "snoozed_until": row.snoozed_until.isoformat() if row.snoozed_until else None,
        "contact": contact_json(row.contact_id, contact),
        "channel_kind": row.channel_kind,
        "last_inbound_at": row.last_inbound_at.isoformat() if row.last_inbound_at else None,
        "window": open_window.as_json(),
        "id": str(row.id),
        "channel_id": str(row.channel_id),
        "contact_id": str(row.contact_id),
        "kind": row.kind,
        "status": row.status,
        "assignee_id": str(row.assignee_id) if row.assignee_id else None,
        "team_id": str(row.team_id) if row.team_id else None,
        "priority": row.priority,
        "last_activity_at": row.last_activity_at.isoformat(),
        "last_message_preview": row.last_message_preview,
        "last_event_id": row.last_event_id,
    }


def message_json(row: MessageRow) -> dict[str, Any]:
    sender = {"type": row.sender_type, "id": row.sender_id, "name": row.sender_name}
    return {
        "id": str(row.id),
        "workspace_id": str(row.workspace_id),
        "channel_id": str(row.channel_id),
        "conversation_id": str(row.conversation_id),
        "contact_id": str(row.contact_id),
        "channel_kind": row.channel_kind,
        "kind": row.kind,
        "direction": row.direction,
        "sender": {k: v for k, v in sender.items() if v is not None},
        "text": row.text,
        "attachments": row.attachments,
        "reply_to": row.reply_to,
        "reactions": row.reactions,
        "edited": row.edited,
        "deleted": row.deleted,
        "platform_message_id": row.platform_message_id,
        "client_id": row.client_id,
        "private_reply": row.private_reply,
        "note": row.note,
        "sent_at": row.sent_at.isoformat(),
        "status": row.status,
        "error": row.error,
        "raw": row.raw,
        "event_id": row.event_id,
    }


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


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "user_id": str(principal.user_id),
        "workspace_id": str(principal.workspace_id),
        "role": principal.role,
        "name": principal.name,
    }


# Endpoints


async def login(request: Request) -> Response:
    svc = services(request)
    body = await read_body(request, LoginBody)
    ip = client_ip(request)
    await lockout.refuse_if_locked(svc, body.email, ip)
    user = await svc.store.user_by_email(body.email) if "@" in body.email else None
    if not verify_password(user.password_hash if user else None, body.password) or user is None:
        await lockout.note_failure(svc, body.email, ip)
        await svc.store.audit(None, "anonymous", None, "login.failed", ip=ip)
        raise Unauthenticated("Wrong e-mail or password.")
    workspace_id = await svc.store.first_workspace(user.id)
    if workspace_id is None:
        raise Forbidden("This user belongs to no workspace.")
    principal = await svc.store.principal(user.id, workspace_id, "session")
    assert principal is not None
    await svc.store.audit(workspace_id, "user", str(user.id), "login.succeeded", ip=ip)
    return session_response(request, principal, user.password_hash)


def session_response(request: Request, principal: Principal, password_hash: str) -> Response:
    """A new session cookie for the principal, and its CSRF token in the body."""
    svc = services(request)
    cookie = svc.signer.session_cookie(principal.user_id, principal.workspace_id, password_hash)
    nonce = svc.signer.read_session(cookie).nonce
    response = JSONResponse(
        {"user": principal_json(principal), "csrf_token": svc.signer.csrf_token(nonce)}
    )
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
    principal = await authenticate(request)
    await services(request).store.audit(
        principal.workspace_id, "user", str(principal.user_id), "logout", ip=client_ip(request)
    )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: Request) -> Response:
    principal = await authenticate(request)
    body: dict[str, Any] = {"user": principal_json(principal)}
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and cookie:
        body["csrf_token"] = services(request).signer.csrf_token(
            services(request).signer.read_session(cookie).nonce
        )
    return JSONResponse(body)


async def socket_token(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    return JSONResponse(
        {
            "token": svc.signer.socket_token(principal),
            "expires_in_s": svc.settings.socket_token_max_age_s,
        }
    )


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
    return JSONResponse({"id": str(row.id), "name": row.name, "token": token}, status_code=201)


async def list_channels(request: Request) -> Response:
    principal = await authenticate(request)
    rows = await services(request).store.channels(principal.workspace_id)
    return JSONResponse({"items": [channel_json(r) for r in rows]})


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only admins may do this.")


def client_ip(request: Request) -> str | None:
    """The peer's address as the server saw it (behind a proxy, run uvicorn with
    --proxy-headers and --forwarded-allow-ips so that this is the client's)."""
    return request.client.host if request.client else None


def public_base(request: Request) -> str:
    return services(request).settings.public_url or str(request.base_url).rstrip("/")


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


async def list_conversations(request: Request) -> Response:
    principal = await authenticate(request)
    status = request.query_params.get("status")
    if status is not None and status not in ("open", "pending", "resolved", "snoozed"):
        raise BadRequest("status must be open, pending, resolved or snoozed.")
    assignee: uuid.UUID | str | None = "any"
    wanted = request.query_params.get("assignee")
    if wanted == "me":
        assignee = principal.user_id
    elif wanted == "none":
        assignee = None
    elif wanted not in (None, "any"):
        raise BadRequest("assignee must be me, none or any.")
    channel = request.query_params.get("channel_id")
    team: uuid.UUID | str | None = "any"
    wanted_team = request.query_params.get("team_id")
    if wanted_team == "none":
        team = None
    elif wanted_team not in (None, "any"):
        team = parse_uuid(wanted_team, "team")
    label = request.query_params.get("label", "").strip().lower() or None
    if label is not None and "\x00" in label:  # Postgres text holds no NUL
        raise BadRequest("label may not contain NUL.")
    priority: str | None = request.query_params.get("priority", "any")
    if priority == "none":
        priority = None
    elif priority not in ("any", *PRIORITIES):
        raise BadRequest("priority must be low, medium, high, urgent, none or any.")
    rows, cursor = await services(request).store.conversations(
        principal.workspace_id,
        status=status,
        limit=page_limit(request),
        cursor=request.query_params.get("cursor"),
        assignee=assignee,
        channel_id=parse_uuid(channel, "channel") if channel else None,
        label=label,
        team=team,
        priority=priority,
    )
    store = services(request).store
    ids = [r.id for r in rows]
    contacts = await store.contacts(principal.workspace_id, [r.contact_id for r in rows])
    unread = await store.unread(principal.workspace_id, principal.user_id, ids)
    labels = await store.labels(principal.workspace_id, ids)
    items = [
        conversation_json(r, contacts.get(r.contact_id), unread.get(r.id, 0), labels.get(r.id))
        for r in rows
    ]
    return JSONResponse({"items": items, "next_cursor": cursor})


async def get_conversation(request: Request) -> Response:
    principal = await authenticate(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    row = await services(request).store.conversation(principal.workspace_id, conversation_id)
    if row is None:
        raise NotFound("No such conversation.")
    store = services(request).store
    contacts = await store.contacts(principal.workspace_id, [row.contact_id])
    unread = await store.unread(principal.workspace_id, principal.user_id, [row.id])
    labels = await store.labels(principal.workspace_id, [row.id])
    reads = await store.reads(principal.workspace_id, row.id)
    body = conversation_json(
        row, contacts.get(row.contact_id), unread.get(row.id, 0), labels.get(row.id)
    )
    body["reads"] = [
        {
            "user_id": str(r.user_id),
            "up_to": r.up_to,
            "up_to_at": r.up_to_at.isoformat() if r.up_to_at else None,
        }
        for r in reads
    ]
    return JSONResponse(body)


async def presence(request: Request) -> Response:
    """Every member's presence: online, away, or offline (no live socket)."""
    principal = await authenticate(request)
    svc = services(request)
    members = await svc.store.member_ids(principal.workspace_id)
    states = await svc.ingress.presences(principal.workspace_id, members)
    return JSONResponse({"items": [{"user_id": k, "state": v} for k, v in states.items()]})


async def queue(request: Request) -> Response:
    """The open conversations nobody has been assigned, in all and by team."""
    principal = await authenticate(request)
    waiting = await services(request).store.queue(principal.workspace_id)
    return JSONResponse(
        {
            "unassigned": sum(waiting.values()),
            "teams": [
                {"team_id": str(team) if team else None, "unassigned": count}
                for team, count in waiting.items()
            ],
        }
    )


async def list_messages(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    if await svc.store.conversation(principal.workspace_id, conversation_id) is None:
        raise NotFound("No such conversation.")
    rows, before = await svc.store.messages(
        principal.workspace_id,
        conversation_id,
        limit=page_limit(request),
        before=request.query_params.get("before"),
    )
    return JSONResponse({"items": [message_json(r) for r in rows], "next_before": before})


async def send_message(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, SendBody)
    text = body.text.strip() if body.text else None
    if not text:
        raise BadRequest("A message needs text.")
    limit = services(request).settings.max_message_chars
    if len(text) > limit:
        raise TooBig(f"Messages are limited to {limit} characters.")
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    message_id, published = await services(request).ingress.agent_message(
        principal,
        conversation_id,
        body.client_id,
        text,
        [],
        body.private_reply,
        body.reply_to,
        body.note,
    )
    return JSONResponse(
        {"message_id": str(message_id), "event_id": published.id, "duplicate": published.duplicate},
        status_code=200 if published.duplicate else 202,
    )


async def change_conversation(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, ConversationPatch)
    svc = services(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    changes: dict[str, object] = {}
    if body.status is not None:
        changes["status"] = body.status
        if body.status == "snoozed":
            until = body.snoozed_until
            if until is None or until.tzinfo is None or until <= utc_now():
                raise BadRequest("Snoozing needs snoozed_until, a time in the future with a zone.")
            changes["snoozed_until"] = until.isoformat()
    if "assignee_id" in body.model_fields_set:
        if body.assignee_id is not None and not await svc.store.is_member(
            principal.workspace_id, body.assignee_id
        ):
            raise BadRequest("The assignee is not a member of this workspace.")
        changes["assignee_id"] = str(body.assignee_id) if body.assignee_id else None
    if "team_id" in body.model_fields_set:
        if body.team_id is not None and not await svc.teams.exists(
            principal.workspace_id, body.team_id
        ):
            raise BadRequest("The team is not a team of this workspace.")
        changes["team_id"] = str(body.team_id) if body.team_id else None
    if body.labels is not None:
        changes["labels"] = sorted(set(body.labels))
    if "priority" in body.model_fields_set:
        changes["priority"] = body.priority
    if not changes:
        raise BadRequest(
            "Nothing to change: give status, assignee_id, team_id, labels or priority."
        )
    published = await svc.ingress.change_conversation(principal, conversation_id, changes)
    return JSONResponse({"event_id": published.id, "changes": changes}, status_code=202)


async def list_contacts(request: Request) -> Response:
    """The workspace's contacts, newest first; `q` narrows them by name, e-mail or username."""
    principal = await authenticate(request)
    text = request.query_params.get("q", "").strip() or None
    if text is not None and (len(text) > 200 or "\x00" in text):  # Postgres text holds no NUL
        raise BadRequest("q must be at most 200 characters.")
    rows, cursor = await services(request).store.contacts_page(
        principal.workspace_id,
        text=text,
        limit=page_limit(request),
        cursor=request.query_params.get("cursor"),
    )
    items = [
        contact_json(c.id, c) | {"email": c.email, "created_at": c.created_at.isoformat()}
        for c in rows
    ]
    return JSONResponse({"items": items, "next_cursor": cursor})


async def get_contact(request: Request) -> Response:
    """The contact panel: who this is on each channel, and their conversations."""
    principal = await authenticate(request)
    contact_id = parse_uuid(request.path_params["contact_id"], "contact")
    found = await services(request).store.contact_panel(principal.workspace_id, contact_id)
    if found is None:
        raise NotFound("No such contact.")
    contact, identities, conversations = found
    return JSONResponse(
        contact_json(contact.id, contact)
        | {
            "email": contact.email,
            "identities": [
                {"channel_id": str(i.channel_id), "platform_user_id": i.platform_user_id}
                for i in identities
            ],
            "conversations": [conversation_json(c, contact) for c in conversations],
        }
    )


async def search(request: Request) -> Response:
    principal = await authenticate(request)
    text = request.query_params.get("q", "").strip()
    if not 2 <= len(text) <= 200 or "\x00" in text:  # Postgres text holds no NUL
        raise BadRequest("q must be 2 to 200 characters.")
    contacts, messages = await services(request).store.search(
        principal.workspace_id, text, page_limit(request, default=20)
    )
    return JSONResponse(
        {
            "contacts": [contact_json(c.id, c) for c in contacts],
            "messages": [message_json(m) for m in messages],
        }
    )


async def react(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, ReactionBody)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    published = await services(request).ingress.agent_reaction(
        principal, conversation_id, body.client_id, body.platform_message_id, body.emoji
    )
    return JSONResponse(
        {"event_id": published.id, "duplicate": published.duplicate},
        status_code=200 if published.duplicate else 202,
    )


routes = [
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/agent/socket-token", socket_token, methods=["POST"]),
    Route("/api/tokens", create_token, methods=["POST"]),
    Route("/api/channels", list_channels, methods=["GET"]),
    Route("/api/channels", connect_channel, methods=["POST"]),
    Route("/api/channels/{channel_id}", disconnect_channel, methods=["DELETE"]),
    Route("/api/conversations", list_conversations, methods=["GET"]),
    # Before the conversation id route, which it would otherwise match.
    Route("/api/conversations/queue", queue, methods=["GET"]),
    Route("/api/conversations/{conversation_id}", get_conversation, methods=["GET"]),
    Route("/api/conversations/{conversation_id}", change_conversation, methods=["PATCH"]),
    Route("/api/conversations/{conversation_id}/messages", list_messages, methods=["GET"]),
    Route("/api/conversations/{conversation_id}/messages", send_message, methods=["POST"]),
    Route("/api/conversations/{conversation_id}/reactions", react, methods=["POST"]),
    Route("/api/contacts", list_contacts, methods=["GET"]),
    Route("/api/contacts/{contact_id}", get_contact, methods=["GET"]),
    Route("/api/search", search, methods=["GET"]),
    Route("/api/presence", presence, methods=["GET"]),
]
