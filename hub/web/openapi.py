"""The OpenAPI 3.1 document of the REST API, served at /api/openapi.json.

Request bodies are the pydantic models of `hub.web.http`; responses are the models below, which
mirror `conversation_json`, `message_json`, `channel_json` and `principal_json` (and are
checked against real answers in tests/test_openapi.py). The widget's endpoints are
described in `hub.webchat.openapi`. Starlette answers HEAD for every GET route on its own, and the
widget's OPTIONS (CORS preflights) are plumbing; neither is listed.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.accounts import openapi as accountdocs
from hub.accounts import routes as accounts
from hub.accounts import workspace
from hub.accounts.auth import SESSION_COOKIE
from hub.automation import routes as rulesapi
from hub.canned import routes as cannedapi
from hub.channels.oauth import AuthorizeBody
from hub.channels.options import ChannelPatch
from hub.channels.service import ConnectBody
from hub.conversations import routes as conversations
from hub.hooks import routes as hooksapi
from hub.privacy import openapi as privacydocs
from hub.reports import routes as reportsapi
from hub.routing.teams import TeamBody, TeamPatch
from hub.settings import Settings
from hub.web.http import SAFE_METHODS
from hub.webchat import openapi as widgetdocs
from schemas.frames import Cursor
from schemas.message import ChannelKind, Message, MessageKind

REF = "#/components/schemas/{model}"


# Response bodies


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Out):
    code: str = Field(description="Machine-readable: bad_request, unauthenticated, csrf_failed...")
    message: str


class ErrorBody(_Out):
    error: ErrorDetail


class User(_Out):
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: Literal["admin", "agent"]
    name: str


class LoginResult(_Out):
    user: User
    csrf_token: str = Field(description="Send it as X-CSRF-Token on unsafe requests")


class Me(_Out):
    user: User
    csrf_token: str | None = Field(default=None, description="Only for a cookie session")


class SocketToken(_Out):
    token: str = Field(description="The token of the websocket `hello` frame")
    expires_in_s: int


class CreatedToken(_Out):
    id: uuid.UUID
    name: str
    token: str = Field(pattern="^hubt_", description="Shown this once; only its hash is kept")


class ChannelOut(_Out):
    id: uuid.UUID
    kind: ChannelKind
    name: str
    public_key: str | None = Field(description="The web-chat widget's key; none for other kinds")
    allowed_origins: list[str]
    status: str
    has_secrets: bool = Field(description="Secrets themselves are never returned")
    last_event_at: datetime | None


class WebhookInfo(_Out):
    url: str = Field(description="Paste it as the callback URL in the platform's dashboard")
    verify_token: str | None = Field(default=None, description="Own-app Meta channels; shown once")
    secret_token: str | None = Field(
        default=None, description="Telegram's secret_token; shown once"
    )
    hosted_app: bool | None = Field(
        default=None, description="Delivered through the hub's Meta app"
    )


class ConnectedChannel(ChannelOut):
    webhook: WebhookInfo


class DataDeletion(_Out):
    id: uuid.UUID = Field(description="The deletion request: GET /api/deletions/{deletion_id}")
    status: str
    counts: dict[str, int] = Field(
        description="What it will erase: contacts (whole), contacts_kept (known on another "
        "channel too: only this channel's identity, conversations and messages go), "
        "conversations, messages"
    )


class DisconnectedChannel(ChannelOut):
    unsubscribed: bool | None = Field(
        description="Whether the platform confirmed it stops delivering (Graph subscribed_apps "
        "DELETE, Telegram deleteWebhook); false when it failed or could not be asked; none for "
        "a web chat"
    )
    unsubscribe_note: str | None = Field(description="Why not, when unsubscribed is false")
    data_deletion: DataDeletion | None = Field(
        default=None, description="With delete_data=true: the erasure started"
    )


class MessagingWindow(_Out):
    open: bool = Field(description="Whether a reply can be sent now")
    closes_at: datetime | None = Field(description="When it closes; none: no window here")
    human_agent: bool = Field(description="Past 24 h: sent with Meta's HUMAN_AGENT tag")


class ContactOut(_Out):
    id: uuid.UUID
    name: str | None
    username: str | None
    picture_url: str | None = Field(description="From the platform's profile; may expire")


class ListedContact(ContactOut):
    email: str | None
    created_at: datetime


class ContactPage(_Out):
    items: list[ListedContact] = Field(description="Newest first")
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")


class AuthorizeUrl(_Out):
    url: str = Field(description="Send the admin's browser here")
    scopes: list[str]


class ConversationOut(_Out):
    id: uuid.UUID
    contact: ContactOut
    unread: int = Field(ge=0, description="Contact messages after the caller's read position")
    channel_id: uuid.UUID
    channel_kind: ChannelKind | None
    last_inbound_at: datetime | None = Field(description="The person's latest message")
    window: MessagingWindow
    contact_id: uuid.UUID
    kind: MessageKind
    status: Literal["open", "pending", "resolved", "snoozed"]
    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None = Field(description="The team whose queue it is in")
    snoozed_until: datetime | None = Field(description="With status snoozed: when it reopens")
    labels: list[str] = Field(description="Lower-case, sorted")
    priority: Literal["low", "medium", "high", "urgent"] | None
    last_activity_at: datetime
    last_message_preview: str | None
    last_event_id: Cursor | None


class ReadPosition(_Out):
    user_id: uuid.UUID
    up_to: Cursor = Field(description="The event id the agent has read up to")
    up_to_at: datetime | None = Field(description="The time of that message")


class ConversationDetail(ConversationOut):
    reads: list[ReadPosition] = Field(description="How far each agent has read")


class PresenceOut(_Out):
    user_id: uuid.UUID
    state: Literal["online", "away", "offline"]


class PresenceList(_Out):
    items: list[PresenceOut] = Field(description="Every member of the workspace")


class StoredMessage(Message):
    """A message as history answers it: the normalized message and the id of its event."""

    event_id: Cursor | None = Field(description="The stream id of its message.created event")


class ChannelPage(_Out):
    items: list[ChannelOut]


class ConversationPage(_Out):
    items: list[ConversationOut]
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")


class MessagePage(_Out):
    items: list[StoredMessage] = Field(description="Oldest first")
    next_before: str | None = Field(description="The `before` of older messages; none at the start")


class SendResult(_Out):
    message_id: uuid.UUID
    event_id: Cursor
    duplicate: bool = Field(description="True when this client_id was sent before")


class ConversationChanged(_Out):
    event_id: Cursor
    changes: dict[str, Any] = Field(description="What was published as conversation.updated")


class Identity(_Out):
    channel_id: uuid.UUID
    platform_user_id: str


class ContactPanel(ContactOut):
    email: str | None
    identities: list[Identity] = Field(description="One per channel the contact wrote on")
    conversations: list[ConversationOut] = Field(description="Newest activity first")


class SearchResult(_Out):
    contacts: list[ContactOut]
    messages: list[StoredMessage] = Field(description="Newest first")


class ReactionResult(_Out):
    event_id: Cursor
    duplicate: bool = Field(description="True when this client_id was sent before")


class Health(_Out):
    bus: bool
    database: bool
    node: str


Check = Literal["ok", "error", "timeout"]


class ReadyChecks(_Out):
    redis: Check = Field(description="The bus answers PING (the in-process bus always does)")
    database: Check = Field(description="The database answers SELECT 1")


class Readiness(_Out):
    ready: bool
    checks: ReadyChecks = Field(description="Each check within 2 s: ok, error or timeout")
    error: ErrorDetail | None = Field(default=None, description="When not ready: `not_ready`")


# Operations

ERRORS = {
    400: "The body, a parameter or the cursor is malformed (`bad_request`)",
    401: "No valid session or bearer token (`unauthenticated`)",
    403: "Not allowed (`forbidden`, `csrf_failed`, `origin_not_allowed`, `identity_invalid`)",
    404: "No such resource in this workspace (`not_found`)",
    409: "Conflicts with what exists (`conflict`)",
    413: "The body is over HUB_MAX_BODY_BYTES (`too_big`)",
    429: "Too many attempts (`too_many_attempts`, `rate_limited`)",
}


@dataclass(frozen=True)
class _Op:
    summary: str
    ok: dict[int, tuple[str, type[BaseModel] | None]]
    errors: tuple[int, ...]
    body: type[BaseModel] | None = None
    params: tuple[dict[str, Any], ...] = ()
    auth: bool = True
    description: str = ""
    body_media: str = "application/json"  # or a form: application/x-www-form-urlencoded
    html: bool = False  # the 2xx answers are HTML too (for a browser), JSON when asked for


def _param(name: str, where: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


def _operations(page_max_items: int) -> dict[tuple[str, str], _Op]:
    conversation = _param(
        "conversation_id", "path", "A conversation id", {"type": "string", "format": "uuid"}
    )
    limit = _param(
        "limit",
        "query",
        "Page size",
        {"type": "integer", "minimum": 1, "maximum": page_max_items, "default": 50},
    )
    status = _param(
        "status",
        "query",
        "Only conversations in this status",
        {"type": "string", "enum": ["open", "pending", "resolved", "snoozed"]},
    )
    cursor = _param("cursor", "query", "`next_cursor` of the previous page", {"type": "string"})
    assignee = _param(
        "assignee",
        "query",
        "Only mine, only unassigned, or all",
        {"type": "string", "enum": ["me", "none", "any"], "default": "any"},
    )
    before = _param("before", "query", "`next_before` of the previous page", {"type": "string"})
    messages = "/api/conversations/{conversation_id}/messages"
    return {
        ("/healthz", "get"): _Op(
            "Liveness and readiness",
            {200: ("The bus answers", Health), 503: ("The bus is down", Health)},
            (),
            auth=False,
            description="`database` may be false while the bus is up: live traffic still flows.",
        ),
        ("/readyz", "get"): _Op(
            "Readiness: may this node take traffic",
            {
                200: ("The bus and the database answer", Readiness),
                503: ("A check failed (`not_ready`); `checks` names it", Readiness),
            },
            (),
            auth=False,
            description="For load balancers and orchestrators; /healthz only says the process "
            "is alive. Prometheus metrics are at /metrics (docs/operations.md).",
        ),
        ("/api/auth/login", "post"): _Op(
            "Log in with e-mail and password",
            {200: ("Logged in; sets the cookie", LoginResult)},
            (400, 401, 403, 413, 429),
            body=accounts.LoginBody,
            auth=False,
            description=f"Sets the `{SESSION_COOKIE}` session cookie (HttpOnly, SameSite=Lax). "
            "After 5 failed attempts for one e-mail (or 50 from one address) in 15 minutes, "
            "sign-in answers 429 `too_many_attempts` until the window has passed.",
        ),
        ("/api/auth/logout", "post"): _Op(
            "Log out", {204: ("Logged out; the cookie is cleared", None)}, (401, 403)
        ),
        ("/api/me", "get"): _Op(
            "The caller", {200: ("The user, and the CSRF token of a cookie session", Me)}, (401,)
        ),
        ("/api/agent/socket-token", "post"): _Op(
            "A short-lived token for the agent websocket",
            {200: ("The token", SocketToken)},
            (401, 403),
            description="For the `hello` frame of /ws/agent (docs/protocol.md); never in a URL.",
        ),
        ("/api/tokens", "post"): _Op(
            "Create an API bearer token",
            {201: ("Created", CreatedToken)},
            (400, 401, 403, 413),
            body=accounts.TokenBody,
        ),
        ("/api/channels", "get"): _Op(
            "The workspace's channels", {200: ("All channels", ChannelPage)}, (401,)
        ),
        ("/api/channels", "post"): _Op(
            "Connect a channel (admins)",
            {201: ("Connected; what to paste where", ConnectedChannel)},
            (400, 401, 403, 409, 413),
            body=ConnectBody,
            description="Secrets are stored encrypted and never returned; a generated verify "
            "token or Telegram secret token is shown in this answer only.",
        ),
        ("/api/channels/instagram/authorize", "post"): _Op(
            "Start connecting Instagram with Business Login (admins)",
            {200: ("Where to send the browser", AuthorizeUrl)},
            (400, 401, 403, 413),
            body=AuthorizeBody,
            description="The callback (/oauth/instagram/callback) checks the signed state, "
            "stores the account with its long-lived token and redirects to the inbox.",
        ),
        ("/api/channels/{channel_id}", "delete"): _Op(
            "Disconnect a channel (admins)",
            {200: ("Disconnected; its secrets are destroyed", DisconnectedChannel)},
            (400, 401, 403, 404),
            params=(
                _param("channel_id", "path", "A channel id", {"type": "string", "format": "uuid"}),
                _param(
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
        ("/api/conversations", "get"): _Op(
            "Conversations, newest activity first",
            {200: ("A page", ConversationPage)},
            (400, 401),
            params=(
                limit,
                cursor,
                status,
                assignee,
                _param(
                    "channel_id",
                    "query",
                    "Only this channel's",
                    {"type": "string", "format": "uuid"},
                ),
                _param("label", "query", "Only those with this label", {"type": "string"}),
                _param(
                    "priority",
                    "query",
                    "Only those of this priority (none: without one)",
                    {"type": "string", "enum": ["low", "medium", "high", "urgent", "none", "any"]},
                ),
                _param(
                    "team_id",
                    "query",
                    "Only this team's queue (a team id), only those in no team (none), or all",
                    {"type": "string", "default": "any"},
                ),
            ),
        ),
        ("/api/conversations/queue", "get"): _Op(
            "How many open conversations wait for an assignee",
            {200: ("In all and by team", Queue)},
            (401,),
            description="Routing (channel and team settings) assigns them as agents come "
            "online or have room; the rest wait here for someone to take them.",
        ),
        ("/api/conversations/{conversation_id}", "get"): _Op(
            "One conversation, with each agent's read position",
            {200: ("The conversation", ConversationDetail)},
            (401, 404),
            params=(conversation,),
        ),
        (messages, "get"): _Op(
            "A conversation's history",
            {200: ("A page, oldest first", MessagePage)},
            (400, 401, 404),
            params=(conversation, limit, before),
        ),
        (messages, "post"): _Op(
            "Send a text reply",
            {202: ("Accepted onto the stream", SendResult), 200: ("Sent before", SendResult)},
            (400, 401, 403, 404, 413),
            body=conversations.SendBody,
            params=(conversation,),
            description="Idempotent on `client_id`: a retry answers the first message's ids "
            "with `duplicate: true` and status 200.",
        ),
        ("/api/conversations/{conversation_id}", "patch"): _Op(
            "Resolve, reopen, snooze, (re)assign, move to a team or label a conversation",
            {202: ("Published to every agent; stored by the worker", ConversationChanged)},
            (400, 401, 403, 404, 413),
            body=conversations.ConversationPatch,
            params=(conversation,),
            description="A message from the contact reopens a resolved or snoozed conversation. "
            "A person's assignment always wins over routing, which only fills an empty one.",
        ),
        ("/api/conversations/{conversation_id}/reactions", "post"): _Op(
            "React to a message (WhatsApp)",
            {
                202: ("Accepted; shown at once, sent by the worker", ReactionResult),
                200: ("Sent before", ReactionResult),
            },
            (400, 401, 403, 404, 413),
            body=conversations.ReactionBody,
            params=(conversation,),
            description="An empty emoji takes the reaction back. If the platform refuses it, a "
            "`message.updated` takes it back in the inbox, with the reason.",
        ),
        ("/api/contacts", "get"): _Op(
            "Contacts, newest first",
            {200: ("A page", ContactPage)},
            (400, 401),
            params=(
                limit,
                cursor,
                _param(
                    "q",
                    "query",
                    "Only those whose name, e-mail or username holds this (case-insensitive)",
                    {"type": "string", "maxLength": 200},
                ),
            ),
        ),
        ("/api/contacts/{contact_id}", "get"): _Op(
            "A contact, their identity per channel and their conversations",
            {200: ("The contact panel", ContactPanel)},
            (401, 404),
            params=(
                _param("contact_id", "path", "A contact id", {"type": "string", "format": "uuid"}),
            ),
        ),
        ("/api/search", "get"): _Op(
            "Search contacts and messages",
            {200: ("Matches, newest first", SearchResult)},
            (400, 401),
            params=(
                _param("q", "query", "Text to find (2 to 200 characters)", {"type": "string"}),
                _param(
                    "limit",
                    "query",
                    "At most this many of each",
                    {"type": "integer", "minimum": 1, "maximum": page_max_items, "default": 20},
                ),
            ),
        ),
        ("/api/presence", "get"): _Op(
            "Every member's presence",
            {200: ("online, away or offline per member", PresenceList)},
            (401,),
            description="Live changes arrive as `presence` events on the agent socket.",
        ),
    }


# Assembly


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if self.schemas.setdefault(name, definition) != definition:
                raise ValueError(f"Two different schemas are named {name}.")
        return {"$ref": REF.format(model=model.__name__)}


def _security(method: str) -> list[dict[str, list[str]]]:
    unsafe = method.upper() not in SAFE_METHODS
    return [{"session": [], "csrf": []} if unsafe else {"session": []}, {"bearer": []}]


def _operation(components: _Components, path: str, method: str, op: _Op) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, model) in sorted(op.ok.items()):
        responses[str(status)] = {"description": description}
        if model is not None:
            schema = components.ref(model, "serialization")
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
            if op.html:
                responses[str(status)]["content"]["text/html"] = {"schema": {"type": "string"}}
    error = {"application/json": {"schema": components.ref(ErrorBody, "serialization")}}
    for status in op.errors:
        responses[str(status)] = {"description": ERRORS[status], "content": error}
    words = [w.strip("{}") for w in path.split("/") if w and w != "api"]
    operation: dict[str, Any] = {
        "operationId": "_".join([method, *words]).replace("-", "_").replace(".", "_"),
        "summary": op.summary,
        "parameters": list(op.params),
        "responses": responses,
        "security": _security(method) if op.auth else [],
    }
    if op.description:
        operation["description"] = op.description
    if op.body is not None:
        schema = components.ref(op.body, "validation")
        content = {op.body_media: {"schema": schema}}
        operation["requestBody"] = {"required": True, "content": content}
    return operation


@functools.cache
def document(page_max_items: int = Settings.page_max_items) -> dict[str, Any]:
    """The document (built once per page limit and cached: do not mutate it)."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    widget = {k: _Op(**v) for k, v in widgetdocs.operations(page_max_items).items()}
    account = {k: _Op(**v) for k, v in accountdocs.operations().items()}
    privacy = {k: _Op(**v) for k, v in privacydocs.operations(page_max_items).items()}
    operations = _operations(page_max_items) | widget | account | _admin_operations(page_max_items)
    operations |= privacy | {k: _Op(**v) for k, v in workspace.operations().items()}
    operations |= {k: _Op(**v) for k, v in cannedapi.operations().items()}
    operations |= {k: _Op(**v) for k, v in reportsapi.operations().items()}
    operations |= {k: _Op(**v) for k, v in hooksapi.operations().items()}
    operations |= {k: _Op(**v) for k, v in rulesapi.operations().items()}
    for (path, method), op in operations.items():
        paths.setdefault(path, {})[method] = _operation(components, path, method, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SosyoCRM hub",
            "version": "1",
            "description": "The REST API. Live events come over the websockets (docs/protocol.md).",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "Set by POST /api/auth/login",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The csrf_token of login or /api/me; sent with the "
                    "cookie on every unsafe method",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "hubt_...",
                    "description": "An API token from POST /api/tokens",
                },
            },
        },
    }


async def endpoint(request: Request) -> Response:
    return JSONResponse(document(request.app.state.services.settings.page_max_items))


# The admin console (hub.accounts.admin)


class MemberOut(_Out):
    id: uuid.UUID = Field(description="The user's id")
    name: str
    email: str
    role: Literal["admin", "agent"]
    capacity: int | None = Field(
        description="At most this many open conversations from routing; none: no limit"
    )
    created_at: datetime = Field(description="When they joined this workspace")


class MemberPage(_Out):
    items: list[MemberOut] = Field(description="Oldest membership first")


class AddedMember(MemberOut):
    existing_user: bool = Field(
        description="The e-mail already had an account (another workspace): it keeps its "
        "password, and the one given was not used"
    )


class TeamOut(_Out):
    id: uuid.UUID
    name: str
    assignment: Literal["manual", "round_robin", "least_busy"]
    member_ids: list[uuid.UUID] = Field(description="Sorted")


class TeamPage(_Out):
    items: list[TeamOut] = Field(description="By name")


class QueueCount(_Out):
    team_id: uuid.UUID | None = Field(description="None: in no team's queue")
    unassigned: int = Field(ge=0)


class Queue(_Out):
    unassigned: int = Field(ge=0, description="Open conversations nobody is assigned, in all")
    teams: list[QueueCount] = Field(description="The same by team; a team with none is left out")


class AuditEntry(_Out):
    id: int
    at: datetime
    actor_type: Literal["user", "system", "platform", "anonymous"]
    actor_id: str | None
    actor_name: str | None = Field(description="The user's name, when the actor is a user")
    action: str = Field(description="login.succeeded, member.added, channel.updated...")
    target_type: str | None
    target_id: str | None
    ip: str | None = Field(description="The client's address as the hub saw it")
    detail: dict[str, Any] = Field(description="Ids, roles, field names; no personal data")


class AuditPage(_Out):
    items: list[AuditEntry] = Field(description="Newest first")
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")


class ChannelDetail(ChannelOut):
    settings: dict[str, Any] = Field(
        description="Web chat: the widget settings of PATCH (title, greeting, colour, locale, "
        "position, prechat, consent_required, hours); Instagram: the account's username and "
        "picture. Never secrets"
    )


class IdentitySecret(_Out):
    identity_secret: str = Field(description="Shown this once; stored encrypted")


class ChannelHealthPage(_Out):
    items: list[ChannelDetail]


class SocketCounts(_Out):
    agent: int = Field(ge=0)
    visitor: int = Field(ge=0)


class EventRate(_Out):
    delivered: int = Field(ge=0, description="Event frames handed to sockets since start")
    per_s: float = Field(ge=0, description="Frames per second over `window_s`")
    window_s: float = Field(description="About the last minute; since start until then")


class LatencyFigures(_Out):
    count: int = Field(ge=0, description="Events delivered live since start")
    p50: float | None = Field(description="Seconds from publish to the sockets; none yet: null")
    p99: float | None


class OutboundCount(_Out):
    channel: str = Field(description="The channel kind")
    result: Literal["sent", "failed", "needs_reconnect", "retry"]
    code: str = Field(description="The error code (`none` when sent, `other` past the limit)")
    count: int = Field(ge=0)


class GroupFigures(_Out):
    lag: int = Field(ge=0, description="Stream entries not yet handed to the group")
    pending: int = Field(ge=0, description="Handed to a worker, not yet acknowledged")


class StreamFigures(_Out):
    entries: int = Field(ge=0, description="Entries the workspace's event stream keeps")
    groups: dict[str, GroupFigures] = Field(description="Per consumer group (persist, send...)")


class HubStatus(_Out):
    node: str = Field(description="The node that answered")
    uptime_s: float
    sockets: SocketCounts = Field(description="Open websockets on this node, every workspace")
    events: EventRate = Field(description="This node's delivery to sockets")
    latency_s: LatencyFigures = Field(description="Percentiles from the latency histogram")
    outbound: list[OutboundCount] = Field(description="Sends by this node's worker role")
    stream: StreamFigures | None = Field(description="This workspace's; null: bus down")
    channels: dict[str, int] | None = Field(
        description="This workspace's channels by status; null: database down"
    )


def _admin_operations(page_max_items: int) -> dict[tuple[str, str], _Op]:
    user = _param("user_id", "path", "A member's user id", {"type": "string", "format": "uuid"})
    channel = _param("channel_id", "path", "A channel id", {"type": "string", "format": "uuid"})
    team = _param("team_id", "path", "A team id", {"type": "string", "format": "uuid"})
    when = {"type": "string", "format": "date-time"}
    return {
        ("/api/members", "get"): _Op(
            "The workspace's members",
            {200: ("Every member", MemberPage)},
            (401,),
            description="Any member may list them (to assign conversations).",
        ),
        ("/api/members", "post"): _Op(
            "Add a member with an initial password (admins)",
            {201: ("Added", AddedMember)},
            (400, 401, 403, 409, 413),
            body=accounts.NewMember,
            description="409 when the e-mail is already a member of this workspace. Audited "
            "as `member.added`.",
        ),
        ("/api/members/{user_id}", "patch"): _Op(
            "Change a member's role or routing capacity (admins)",
            {200: ("The member", MemberOut)},
            (400, 401, 403, 404, 409, 413),
            body=accounts.MemberPatch,
            params=(user,),
            description="409 `last_admin` when it would leave the workspace without an admin. "
            "Audited as `member.role_changed` and `member.capacity_changed`.",
        ),
        ("/api/teams", "get"): _Op(
            "The workspace's teams",
            {200: ("Every team", TeamPage)},
            (401,),
            description="Any member may list them (to move conversations between queues).",
        ),
        ("/api/teams", "post"): _Op(
            "Create a team (admins)",
            {201: ("Created", TeamOut)},
            (400, 401, 403, 409, 413),
            body=TeamBody,
            description="409 when the name is taken. Audited as `team.created`.",
        ),
        ("/api/teams/{team_id}", "patch"): _Op(
            "Rename a team, change its assignment or its members (admins)",
            {200: ("The team", TeamOut)},
            (400, 401, 403, 404, 409, 413),
            body=TeamPatch,
            params=(team,),
            description="Audited as `team.updated` with the changed fields.",
        ),
        ("/api/teams/{team_id}", "delete"): _Op(
            "Delete a team (admins)",
            {204: ("Deleted; its conversations keep their assignees and leave its queue", None)},
            (401, 403, 404),
            params=(team,),
            description="Audited as `team.deleted`.",
        ),
        ("/api/members/{user_id}", "delete"): _Op(
            "Remove a member (admins)",
            {204: ("Removed; their sessions and API tokens stop working here", None)},
            (401, 403, 404, 409),
            params=(user,),
            description="409 `last_admin` for the workspace's last admin. Audited as "
            "`member.removed`.",
        ),
        ("/api/audit", "get"): _Op(
            "The audit log, newest first (admins)",
            {200: ("A page", AuditPage)},
            (400, 401, 403),
            params=(
                _param(
                    "action", "query", "An action or its prefix (`member.`)", {"type": "string"}
                ),
                _param("actor_id", "query", "Only this actor's (a user id)", {"type": "string"}),
                _param("since", "query", "At or after this time (with a zone)", when),
                _param("until", "query", "Before this time (with a zone)", when),
                _param("cursor", "query", "`next_cursor` of the previous page", {"type": "string"}),
                _param(
                    "limit",
                    "query",
                    "Page size",
                    {"type": "integer", "minimum": 1, "maximum": page_max_items, "default": 50},
                ),
            ),
        ),
        ("/api/channels/health", "get"): _Op(
            "Every channel with its settings and health",
            {200: ("All channels", ChannelHealthPage)},
            (401,),
            description="`status` is connected, needs_reconnect (the platform refused the "
            "token) or disconnected; `last_event_at` is when it last received a message.",
        ),
        ("/api/status", "get"): _Op(
            "The hub's status figures (admins)",
            {200: ("Figures now", HubStatus)},
            (401, 403),
            description="The admin console's Status tab. Sockets, delivery and sends are this "
            "node's, counted since it started; `stream` and `channels` are the caller's "
            "workspace's. The same figures for every workspace, in Prometheus form, are at "
            "/metrics.",
        ),
        ("/api/channels/{channel_id}", "get"): _Op(
            "One channel, with its settings",
            {200: ("The channel", ChannelDetail)},
            (401, 404),
            params=(channel,),
        ),
        ("/api/channels/{channel_id}", "patch"): _Op(
            "Rename a channel, set its routing and business hours; a web chat's origins and "
            "widget settings (admins)",
            {200: ("The channel", ChannelDetail)},
            (400, 401, 403, 404, 413),
            body=ChannelPatch,
            params=(channel,),
            description="400 `invalid_origin` for an origin that is not scheme://host[:port], "
            "`invalid_colour` for a colour that is not #rrggbb, `invalid_timezone` for a zone "
            "that is not an IANA name, `invalid_hours` for a range that is not HH:MM to a "
            "later HH:MM, `not_webchat` for web-chat fields on another kind, "
            "`unknown_placeholder` for an auto-reply with a placeholder the hub does not know, "
            "`bad_request` for a routing team that is not the workspace's. Audited as "
            "`channel.updated` with the changed fields.",
        ),
        ("/api/channels/{channel_id}/identity-secret", "post"): _Op(
            "Make a web chat's identity-verification secret anew (admins)",
            {201: ("The new secret, shown this once", IdentitySecret)},
            (400, 401, 403, 404),
            params=(channel,),
            description="The site's server signs its user ids with it (hex HMAC-SHA256 of the "
            "user id) for `POST /api/widget/token`. The old secret stops working at once "
            "(other nodes within HUB_CACHE_TTL_S). 400 `not_webchat` for another kind. Audited "
            "as `channel.identity_secret_rotated`, without the secret.",
        ),
    }
