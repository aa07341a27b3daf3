"""The inbox's REST API: conversations, their messages and reactions, contacts, search and
the members' presence."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal
from hub.attributes.filters import ATTRIBUTE_PARAM, attribute_filters
from hub.attributes.service import Attributes
from hub.automation.bodies import PRIORITIES, Label, Priority
from hub.bus import Bus
from hub.contacts.merge import pending_out
from hub.conversations.views import contact_out, conversation_out, stored_message
from hub.errors import OUTAGES, BadRequest, NotFound, TooBig
from hub.media.uploads import MAX_FILES, UploadedFile, is_multipart, read_form
from hub.search import routes as search_routes
from hub.storage.models import Conversation
from hub.storage.store import Store
from hub.web.http import (
    Body,
    answer,
    authenticate,
    page_limit,
    parse_uuid,
    read_body,
    services,
)
from hub.web.operation import Operation, cursor_param, id_param, limit_param, param, route
from hub.workers.runner import PERSIST_GROUP
from schemas.events import VisitorInfo
from schemas.message import utc_now
from schemas.rest.conversations import (
    ContactPage,
    ContactPanel,
    ConversationChanged,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    Identity,
    ListedContact,
    MessagePage,
    PresenceList,
    PresenceOut,
    ReactionResult,
    ReadPosition,
    SendResult,
)

log = logging.getLogger("hub.conversations")


class SendBody(Body):
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
    mentions: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=20,
        description="In a note: the members @mentioned (others are ignored)",
    )


class SendForm(SendBody):
    """The multipart form of a reply with files."""

    attachments: list[bytes] = Field(
        default_factory=list,
        max_length=10,
        description="The files (up to 10), each a part with its file name",
        json_schema_extra={"items": {"type": "string", "format": "binary"}},
    )


class ConversationPatch(Body):
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


class ReactionBody(Body):
    client_id: str = Field(min_length=1, max_length=100)
    platform_message_id: str = Field(
        min_length=1, max_length=200, description="The message reacted to"
    )
    emoji: str = Field(max_length=16, description="An empty string takes the reaction back")


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
    where = await Attributes(services(request).store.sessions).filters(
        principal.workspace_id, attribute_filters(request.query_params)
    )
    mentioned = request.query_params.get("mentions")
    if mentioned not in (None, "me"):
        raise BadRequest("mentions must be me.")
    # A socket joins after a first page: the pages after it answer no position (one round trip
    # to Redis less each).
    first_page = request.query_params.get("cursor") is None
    workspace = str(principal.workspace_id)
    resume_from = await _stored_up_to(services(request).bus, workspace) if first_page else None
    rows, cursor = await services(request).store.conversations(
        principal.workspace_id,
        where=where,
        status=status,
        limit=page_limit(request),
        cursor=request.query_params.get("cursor"),
        assignee=assignee,
        channel_id=parse_uuid(channel, "channel") if channel else None,
        label=label,
        team=team,
        priority=priority,
        mentioned=principal.user_id if mentioned else None,
    )
    items = await _as_seen(services(request).store, principal, rows)
    return answer(ConversationPage(items=items, next_cursor=cursor, resume_from=resume_from))


async def _stored_up_to(bus: Bus, workspace_id: str) -> str | None:
    """Where an agent socket opened after this list resumes so that nothing is missed: the
    persist group's position, read before the list's query. Every event up to it is stored
    (a batch is acked after its transaction commits), so the query sees it; every event
    after it is replayed, and one also stored by the time of the query is merged by id.
    Read after the query instead, an event stored in between would be neither. Not the
    stream's newest id: an event published but not stored yet is before it, and would be
    neither listed nor replayed. Not the newest stored event either: several workers, and a
    claimed batch, store out of stream order. None (the page joins at "now") when unknown."""
    try:
        return await bus.handled_up_to(PERSIST_GROUP, workspace_id)
    except OUTAGES as exc:  # Redis away: the list still answers (docs/operations.md)
        log.warning("the persist group's position is unknown: %s", exc)
        return None


async def _as_seen(
    store: Store, principal: Principal, rows: list[Conversation]
) -> list[ConversationOut]:
    """The conversations as the caller sees them: with their contact, the caller's unread
    count and the labels (three reads for the whole page)."""
    ids = [r.id for r in rows]
    contacts = await store.contacts(principal.workspace_id, [r.contact_id for r in rows])
    unread = await store.unread(principal.workspace_id, principal.user_id, ids)
    labels = await store.labels(principal.workspace_id, ids)
    return [
        conversation_out(r, contacts.get(r.contact_id), unread.get(r.id, 0), labels.get(r.id))
        for r in rows
    ]


async def get_conversation(request: Request) -> Response:
    principal = await authenticate(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    row = await services(request).store.conversation(principal.workspace_id, conversation_id)
    if row is None:
        raise NotFound("No such conversation.")
    store = services(request).store
    [conversation] = await _as_seen(store, principal, [row])
    reads = await store.reads(principal.workspace_id, row.id)
    return answer(
        ConversationDetail(
            **dict(conversation),
            reads=[
                ReadPosition(user_id=r.user_id, up_to=r.up_to, up_to_at=r.up_to_at) for r in reads
            ],
        )
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
    return answer(ConversationChanged(event_id=published.id, changes=changes), 202)


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
    return answer(MessagePage(items=[stored_message(r) for r in rows], next_before=before))


async def send_message(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    files: list[UploadedFile] = []
    if is_multipart(request):
        ref = await svc.ingress.conversation(principal.workspace_id, conversation_id)
        body, files = await read_form(
            request,
            SendBody,
            max_files=MAX_FILES,
            max_file_bytes=svc.settings.max_media_bytes,
        )
    else:
        body = await read_body(request, SendBody)
    text = body.text.strip() if body.text else None
    if not text and not files:
        raise BadRequest("A message needs text or files.")
    limit = svc.settings.max_message_chars
    if text and len(text) > limit:
        raise TooBig(f"Messages are limited to {limit} characters.")
    if not files:
        message_id, published = await svc.ingress.agent_message(
            principal,
            conversation_id,
            body.client_id,
            text,
            [],
            body.private_reply,
            body.reply_to,
            body.note,
        )
        if body.note and body.mentions and not published.duplicate:
            await svc.mentions.record(
                principal.workspace_id,
                principal.user_id,
                conversation_id,
                message_id,
                body.mentions,
                text,
            )
    else:
        if body.note:
            raise BadRequest("A note holds text only.")
        if ref.kind == "comment":
            raise BadRequest("Files cannot be sent in a comment thread; reply with text.")
        async with svc.library.kept(
            ref.workspace_id,
            ref.id,
            ref.channel_kind,
            [(f.name, f.data) for f in files],
            seed=(principal.user_id, body.client_id),
        ) as upload:
            message_id, published = await svc.ingress.agent_message(
                principal,
                conversation_id,
                body.client_id,
                text,
                [a.model_dump(exclude_none=True) for a in upload.attachments],
                body.private_reply,
                body.reply_to,
                body.note,
            )
        if published.duplicate:  # sent before: what this retry added is no one's
            await svc.library.forget_files(ref.workspace_id, ref.id, upload.added)
    await svc.ingress.settle(principal.workspace_id)
    return answer(
        SendResult(message_id=message_id, event_id=published.id, duplicate=published.duplicate),
        200 if published.duplicate else 202,
    )


async def react(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, ReactionBody)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    published = await services(request).ingress.agent_reaction(
        principal, conversation_id, body.client_id, body.platform_message_id, body.emoji
    )
    return answer(
        ReactionResult(event_id=published.id, duplicate=published.duplicate),
        200 if published.duplicate else 202,
    )


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
        ListedContact(**dict(contact_out(c.id, c)), email=c.email, created_at=c.created_at)
        for c in rows
    ]
    return answer(ContactPage(items=items, next_cursor=cursor))


async def get_contact(request: Request) -> Response:
    """The contact panel: who this is on each channel, and their conversations."""
    principal = await authenticate(request)
    contact_id = parse_uuid(request.path_params["contact_id"], "contact")
    found = await services(request).store.contact_panel(principal.workspace_id, contact_id)
    if found is None:
        raise NotFound("No such contact.")
    contact, identities, conversations = found
    return answer(
        ContactPanel(
            **dict(contact_out(contact.id, contact)),
            email=contact.email,
            phone=contact.phone,
            company=contact.company,
            notes=contact.notes,
            visitor=VisitorInfo.model_validate(contact.visitor) if contact.visitor else None,
            identities=[
                Identity(channel_id=i.channel_id, platform_user_id=i.platform_user_id)
                for i in identities
            ],
            conversations=[conversation_out(c, contact) for c in conversations],
            merge=await pending_out(
                services(request).store.sessions, principal.workspace_id, contact_id
            ),
        )
    )


async def presence(request: Request) -> Response:
    """Every member's presence: online, away, or offline (no live socket)."""
    principal = await authenticate(request)
    svc = services(request)
    members = await svc.store.member_ids(principal.workspace_id)
    states = await svc.ingress.presences(principal.workspace_id, members)
    return answer(PresenceList(items=[PresenceOut(user_id=k, state=v) for k, v in states.items()]))


_CONVERSATION = id_param("conversation_id", "A conversation id")
_MESSAGES = "/api/conversations/{conversation_id}/messages"

routes = [
    route(
        "/api/conversations",
        list_conversations,
        "GET",
        op=Operation(
            "Conversations, newest activity first",
            {200: ("A page", ConversationPage)},
            (400, 401),
            params=(
                limit_param(),
                cursor_param(),
                param(
                    "status",
                    "query",
                    "Only conversations in this status",
                    {"type": "string", "enum": ["open", "pending", "resolved", "snoozed"]},
                ),
                param(
                    "assignee",
                    "query",
                    "Only mine, only unassigned, or all",
                    {"type": "string", "enum": ["me", "none", "any"], "default": "any"},
                ),
                param(
                    "mentions",
                    "query",
                    "Only those where the caller was @mentioned in a note",
                    {"type": "string", "enum": ["me"]},
                ),
                param(
                    "channel_id",
                    "query",
                    "Only this channel's",
                    {"type": "string", "format": "uuid"},
                ),
                param("label", "query", "Only those with this label", {"type": "string"}),
                param(
                    "priority",
                    "query",
                    "Only those of this priority (none: without one)",
                    {"type": "string", "enum": ["low", "medium", "high", "urgent", "none", "any"]},
                ),
                param(
                    "team_id",
                    "query",
                    "Only this team's queue (a team id), only those in no team (none), or all",
                    {"type": "string", "default": "any"},
                ),
                ATTRIBUTE_PARAM,
            ),
        ),
    ),
    route(
        "/api/conversations/{conversation_id}",
        get_conversation,
        "GET",
        op=Operation(
            "One conversation, with each agent's read position",
            {200: ("The conversation", ConversationDetail)},
            (401, 404),
            params=(_CONVERSATION,),
        ),
    ),
    route(
        "/api/conversations/{conversation_id}",
        change_conversation,
        "PATCH",
        op=Operation(
            "Resolve, reopen, snooze, (re)assign, move to a team or label a conversation",
            {202: ("Published to every agent; stored by the worker", ConversationChanged)},
            (400, 401, 403, 404, 413),
            body=ConversationPatch,
            params=(_CONVERSATION,),
            description="A message from the contact reopens a resolved or snoozed conversation. "
            "A person's assignment always wins over routing, which only fills an empty one.",
        ),
    ),
    route(
        _MESSAGES,
        list_messages,
        "GET",
        op=Operation(
            "A conversation's history",
            {200: ("A page, oldest first", MessagePage)},
            (400, 401, 404),
            params=(
                _CONVERSATION,
                limit_param(),
                param("before", "query", "`next_before` of the previous page", {"type": "string"}),
            ),
        ),
    ),
    route(
        _MESSAGES,
        send_message,
        "POST",
        op=Operation(
            "Send a reply, with files or without",
            {202: ("Accepted onto the stream", SendResult), 200: ("Sent before", SendResult)},
            (400, 401, 403, 404, 413, 415),
            body=SendBody,
            form=SendForm,
            params=(_CONVERSATION,),
            description="Idempotent on `client_id`: a retry answers the first message's ids "
            "with `duplicate: true` and status 200. As `multipart/form-data`, the same fields "
            "and up to 10 files in `attachments` (the text is then optional, a caption where "
            "the platform takes one). Each file is typed from its bytes (415 "
            "`unsupported_media_type` outside the allowlist), checked against the channel's "
            "limits (413 `media_too_large`, 415 `media_refused_by_channel`), and images are "
            "kept without their metadata. A body cut short is 400 `upload_incomplete`.",
        ),
    ),
    route(
        "/api/conversations/{conversation_id}/reactions",
        react,
        "POST",
        op=Operation(
            "React to a message (WhatsApp)",
            {
                202: ("Accepted; shown at once, sent by the worker", ReactionResult),
                200: ("Sent before", ReactionResult),
            },
            (400, 401, 403, 404, 413),
            body=ReactionBody,
            params=(_CONVERSATION,),
            description="An empty emoji takes the reaction back. If the platform refuses it, a "
            "`message.updated` takes it back in the inbox, with the reason.",
        ),
    ),
    route(
        "/api/contacts",
        list_contacts,
        "GET",
        op=Operation(
            "Contacts, newest first",
            {200: ("A page", ContactPage)},
            (400, 401),
            params=(
                limit_param(),
                cursor_param(),
                param(
                    "q",
                    "query",
                    "Only those whose name, e-mail or username holds this (case-insensitive)",
                    {"type": "string", "maxLength": 200},
                ),
            ),
        ),
    ),
    route(
        "/api/contacts/{contact_id}",
        get_contact,
        "GET",
        op=Operation(
            "A contact, their identity per channel and their conversations",
            {200: ("The contact panel", ContactPanel)},
            (401, 404),
            params=(id_param("contact_id", "A contact id"),),
        ),
    ),
    route("/api/search", search_routes.search, "GET", op=search_routes.OPERATION),
    route(
        "/api/presence",
        presence,
        "GET",
        op=Operation(
            "Every member's presence",
            {200: ("online, away or offline per member", PresenceList)},
            (401,),
            description="Live changes arrive as `presence` events on the agent socket.",
        ),
    ),
]
