"""The "persist" consumer group: applies tenant events to the database, idempotently.

Delivery is at-least-once (a batch may be applied again after a crash or a claim), so
every write is an insert that ignores a conflict or an update guarded to move forward
only; applying a batch twice leaves the same rows as applying it once.
Consecutive messages of a batch are written together, a few statements for all of them
(`_messages_created`).

An unsent message loses its stored files here (`_message_updated` names them; `_apply`
deletes them from the media store after the batch's statements, before the commit): should
the store fail, the batch rolls back and is retried with the row still naming its files;
should the commit fail, the retry deletes files already gone, which is a no-op. Deleted
after the commit instead, a store failure would leave files no row names any more.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import MISSING
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import hub.storage.models  # noqa: F401  (registers the tables)
from hub.bus import Event
from hub.media.library import MediaLibrary, files_of
from hub.reports import service as reports
from hub.routing import service as routing
from hub.routing.service import Router
from hub.search.columns import refold_contact
from hub.search.folding import folded
from hub.storage import tenancy
from hub.storage.store import Sessions
from hub.workers import labels, merged, receipts, waiting
from schemas.events import (
    ContactUpdated,
    ConversationChanges,
    ConversationUpdated,
    MessageCreated,
    MessageUpdated,
    parse_event,
)
from schemas.message import Message, SenderType, utc_now

PREVIEW_CHARS = 200
_TABLES = SQLModel.metadata.tables
CONTACTS = _TABLES["contacts"]
IDENTITIES = _TABLES["contact_identities"]
CONVERSATIONS = _TABLES["conversations"]
READS = _TABLES["conversation_reads"]
MESSAGES = _TABLES["messages"]
LABELS = _TABLES["conversation_labels"]


def _insert(session: AsyncConnection, table: Any) -> Any:
    return _dialect_insert(session.dialect.name)(table)


def _dialect_insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def apply(
    sessions: Sessions,
    workspace_id: str,
    events: Sequence[Event],
    router: Router | None = None,
    library: MediaLibrary | None = None,
    told: list[MessageUpdated] | None = None,
) -> list[dict[str, Any]]:
    """Apply a batch in one transaction; events this group does not store are skipped. With
    a router, the queue is drained after the batch's events, in the same transaction; the
    answer is the data of the `conversation.updated` events that announce what routing did
    (`ConversationUpdated`, as JSON values). With a library, the files of unsent messages
    are deleted from it. With `told`, the changes stored here that clients have not seen
    (`hub.workers.waiting`, `hub.workers.receipts`) are added to it, to publish after the commit."""
    with tenancy.acting_for(workspace_id):
        return await _apply(sessions, workspace_id, events, router, library, told)


async def _apply(
    sessions: Sessions,
    workspace_id: str,
    events: Sequence[Event],
    router: Router | None,
    library: MediaLibrary | None,
    told: list[MessageUpdated] | None = None,
) -> list[dict[str, Any]]:
    """Consecutive messages are written together, a few statements for the whole run (see
    `_messages_created`); any other event first flushes the messages before it, so each
    event sees the rows of the events before it, as if applied one at a time."""
    workspace = uuid.UUID(workspace_id)
    async with sessions() as orm, orm.begin():
        session = await orm.connection()
        plan = None
        if router is not None and events and any(routing.triggers(e) for e in events):
            plan = await router.plan(session, workspace)
            if plan.routed():
                await router.lock(session, workspace)  # before any row lock: no deadlock
                plan.declined = routing.declined(events)
            else:
                plan = None
        created: list[tuple[str, MessageCreated]] = []
        unkept: list[tuple[uuid.UUID, list[str]]] = []  # files of unsent messages
        told = [] if told is None else told
        for event in events:
            if event.name not in _STORED:
                continue
            data = event.typed()
            if isinstance(data, MessageCreated):
                created.append((event.id, data))
                continue
            unkept += await _created(session, workspace, created, told)
            created = []
            if isinstance(data, ContactUpdated):
                await _contact_updated(session, workspace, data)
            elif isinstance(data, MessageUpdated) and not data.stored:
                unkept += await _message_updated(session, workspace, data, event.id, told)
            elif isinstance(data, ConversationUpdated):
                await _conversation_updated(session, workspace, data, event.id)
                await receipts.apply(session, workspace, data, event.id, told)
        unkept += await _created(session, workspace, created, told)
        if library is not None:
            for conversation_id, files in unkept:
                await library.forget_files(workspace, conversation_id, files)
        if plan is None or router is None:
            return []
        announced = await router.drain(session, workspace, plan, as_of=events[-1].id)
        return [update.model_dump(mode="json") for update in announced]


async def _created(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    events: Sequence[tuple[str, MessageCreated]],
    told: list[MessageUpdated],
) -> list[tuple[uuid.UUID, list[str]]]:
    """New messages, then the changes that waited for them."""
    await _messages_created(session, events)
    keys = [(data.message.channel_id, data.message.platform_message_id) for _, data in events]
    return await _waited(session, workspace_id, keys, told)


async def _waited(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    messages: Sequence[tuple[uuid.UUID, str]],
    told: list[MessageUpdated],
) -> list[tuple[uuid.UUID, list[str]]]:
    """Apply the changes that waited for these messages, in the order they arrived."""
    unkept: list[tuple[uuid.UUID, list[str]]] = []
    for row in await waiting.take(session, workspace_id, messages):
        data = parse_event(row.name, json.dumps(row.data))
        if isinstance(data, MessageUpdated):
            unkept += await _message_updated(session, workspace_id, data, row.event_id, told, True)
        elif isinstance(data, ConversationUpdated):
            await receipts.apply(session, workspace_id, data, row.event_id, told)
    return unkept


async def _messages_created(
    session: AsyncConnection, events: Sequence[tuple[str, MessageCreated]]
) -> None:
    """New messages: their contacts and identities (the first one seen is kept), their
    conversations (upserted, the newest message wins) and the messages (the first copy is
    kept). One statement per table for all the messages, executed with one parameter set
    per message: the sets run in order, so the conversation upsert sees the same rows as
    when the messages are applied one at a time (a single multi-row upsert could not
    update one conversation twice)."""
    if not events:
        return
    contacts: list[dict[str, Any]] = []
    identities: list[dict[str, Any]] = []
    conversations: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    now = utc_now()
    into = await merged.redirects(session, [data.message for _, data in events])
    for event_id, data in events:
        message, contact = data.message, data.contact
        if message.contact_id in into:
            message = message.model_copy(update={"contact_id": into[message.contact_id]})
        contacts.append(
            dict(
                id=message.contact_id,
                workspace_id=message.workspace_id,
                name=contact.name if contact else None,
                email=None,
                search=folded(contact.name) if contact else None,
                created_at=now,
                updated_at=now,
            )
        )
        if contact and contact.platform_user_id:
            identities.append(
                dict(
                    id=uuid.uuid4(),
                    workspace_id=message.workspace_id,
                    contact_id=message.contact_id,
                    channel_id=message.channel_id,
                    platform_user_id=contact.platform_user_id,
                    created_at=now,
                )
            )
        messages.append(_message_row(message, event_id, now))
        if message.note and message.sender.type == SenderType.SYSTEM:
            # What an automation rule did (its conversation is stored already): a line of
            # activity, neither the list's preview nor a reason to move it up.
            continue
        inbound = message.direction == "in"
        preview = (message.text or ("[attachment]" if message.attachments else ""))[:PREVIEW_CHARS]
        conversations.append(
            dict(
                id=message.conversation_id,
                workspace_id=message.workspace_id,
                channel_id=message.channel_id,
                contact_id=message.contact_id,
                kind=message.kind,
                channel_kind=message.channel_kind,
                thread=data.thread or None,
                last_inbound_at=message.sent_at if inbound else None,
                status="open",
                last_activity_at=message.sent_at,
                last_message_preview=preview,
                last_event_id=event_id,
                # When it began: its first message's time (the queue is served oldest first).
                created_at=min(message.sent_at, now),
                title=message.group.title if message.group else None,
                inbound=inbound,
            )
        )
    statements = _statements(session.dialect.name)
    await session.execute(statements.contacts, contacts)
    if identities:
        await session.execute(statements.identities, identities)
    if conversations:
        await session.execute(statements.conversations, conversations)
    await session.execute(statements.messages, messages)
    await reports.record_messages(session, messages)


class _MessageStatements(NamedTuple):
    """`_messages_created`'s statements, built once per dialect; their values are bound
    per message (executemany)."""

    contacts: Any
    identities: Any
    conversations: Any
    messages: Any


@functools.cache
def _statements(dialect: str) -> _MessageStatements:
    insert = _dialect_insert(dialect)
    return _MessageStatements(
        contacts=insert(CONTACTS).on_conflict_do_nothing(),
        identities=insert(IDENTITIES).on_conflict_do_nothing(),
        conversations=_conversation_upsert(insert(CONVERSATIONS)),
        messages=insert(MESSAGES).on_conflict_do_nothing(),
    )


def _conversation_upsert(upsert: Any) -> Any:
    """A message's conversation: created, or moved forward if the message is newer than its
    last activity (preview, last event, and an inbound message reopens it). The parameter
    `inbound` is whether the message is the contact's."""
    conversations = CONVERSATIONS
    newer = conversations.c.last_activity_at <= upsert.excluded.last_activity_at
    reopen = sa.case(
        (
            sa.and_(
                newer,
                upsert.excluded.status == "open",
                sa.bindparam("inbound", type_=sa.Boolean),
                # not IN (...): an expanding parameter cannot be used with executemany
                sa.or_(conversations.c.status == "resolved", conversations.c.status == "snoozed"),
            ),
            "open",
        ),
        else_=conversations.c.status,
    )
    return upsert.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "last_activity_at": sa.case(
                (newer, upsert.excluded.last_activity_at),
                else_=conversations.c.last_activity_at,
            ),
            "last_message_preview": sa.case(
                (newer, upsert.excluded.last_message_preview),
                else_=conversations.c.last_message_preview,
            ),
            "last_event_id": sa.case(
                (newer, upsert.excluded.last_event_id), else_=conversations.c.last_event_id
            ),
            "status": reopen,
            # A group's title as its newest message saw it (a rename is a message too).
            "title": sa.case(
                (
                    sa.and_(newer, upsert.excluded.title.is_not(None)),
                    upsert.excluded.title,
                ),
                else_=conversations.c.title,
            ),
            "thread": sa.func.coalesce(conversations.c.thread, upsert.excluded.thread),
            "channel_kind": upsert.excluded.channel_kind,
            # The person's latest message opens the window; ours and older ones do not.
            "last_inbound_at": sa.case(
                (
                    sa.or_(
                        conversations.c.last_inbound_at.is_(None),
                        conversations.c.last_inbound_at < upsert.excluded.last_inbound_at,
                    ),
                    sa.func.coalesce(
                        upsert.excluded.last_inbound_at, conversations.c.last_inbound_at
                    ),
                ),
                else_=conversations.c.last_inbound_at,
            ),
        },
    )


def _message_row(message: Message, event_id: str, now: datetime) -> dict[str, Any]:
    dumped = message.model_dump(mode="json")
    return dict(
        id=message.id,
        workspace_id=message.workspace_id,
        conversation_id=message.conversation_id,
        contact_id=message.contact_id,
        channel_id=message.channel_id,
        channel_kind=message.channel_kind,
        kind=message.kind,
        direction=message.direction,
        sender_type=message.sender.type,
        sender_id=message.sender.id,
        sender_name=message.sender.name,
        text=message.text,
        attachments=dumped["attachments"],
        reply_to=message.reply_to,
        reactions=dumped["reactions"],
        edited=message.edited,
        deleted=message.deleted,
        platform_message_id=message.platform_message_id,
        client_id=message.client_id,
        private_reply=message.private_reply,
        note=message.note,
        hidden=message.hidden,
        sent_at=message.sent_at,
        status=message.status,
        error=dumped["error"],
        raw=message.raw,
        event_id=event_id,
        created_at=now,
        group_chat=dumped["group"],
        standby=message.standby,
        story=message.story,
        referral=dumped["referral"],
        captions=(captions := captions_of(dumped["attachments"])),
        search=folded(message.text, captions),
    )


def captions_of(attachments: list[dict[str, Any]]) -> str | None:
    """What search reads besides the text: the attachments' captions (and file names)."""
    said = [a.get(k) for a in attachments for k in ("caption", "name")]
    return "\n".join(s for s in said if isinstance(s, str) and s) or None


async def _conversation_updated(
    session: AsyncConnection, workspace_id: uuid.UUID, data: ConversationUpdated, event_id: str
) -> None:
    if data.changes is not None:
        await _conversation_changed(session, workspace_id, data, data.changes, event_id)
    read = data.read
    if read is None:
        return
    conversation_id = data.conversation_id
    exists = await session.execute(
        sa.select(CONVERSATIONS.c.id).where(
            CONVERSATIONS.c.id == conversation_id,
            CONVERSATIONS.c.workspace_id == workspace_id,
        )
    )
    if exists.first() is None:
        return
    # Unread counts compare message times, so keep the time of the message read up to.
    up_to_at = (
        await session.execute(
            sa.select(sa.func.max(MESSAGES.c.sent_at)).where(
                MESSAGES.c.conversation_id == conversation_id,
                MESSAGES.c.event_id == read.up_to,
            )
        )
    ).scalar()
    reads = READS
    upsert = _insert(session, reads).values(
        workspace_id=workspace_id,
        conversation_id=conversation_id,
        user_id=read.user_id,
        up_to=read.up_to,
        up_to_at=up_to_at or utc_now(),
        read_at=utc_now(),
    )
    newer = sa.or_(READS.c.up_to_at.is_(None), READS.c.up_to_at <= upsert.excluded.up_to_at)
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["conversation_id", "user_id"],
            set_={  # a read position only moves forward
                "up_to": sa.case((newer, upsert.excluded.up_to), else_=READS.c.up_to),
                "up_to_at": sa.case((newer, upsert.excluded.up_to_at), else_=READS.c.up_to_at),
                "read_at": upsert.excluded.read_at,
            },
        )
    )


STATUS_ORDER = {"received": 0, "pending": 1, "sent": 2, "delivered": 3, "read": 4}


async def _message_updated(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    data: MessageUpdated,
    event_id: str,
    told: list[MessageUpdated],
    waited: bool = False,
) -> list[tuple[uuid.UUID, list[str]]]:
    """A reaction, edit, unsend or delivery status, applied to the message it names. Each
    change is idempotent: a reaction replaces the same person's earlier one, statuses only
    move forward (failed ends a send that was not yet delivered); an unsent message keeps no
    reactions and takes no new ones. A change for a message not stored yet waits for it
    (`hub.workers.waiting`); one that `waited` is announced once applied (`told`). The
    answer names the stored files the message no longer shows: all of an unsent message's,
    and those of attachments fetched for a message unsent meanwhile (they are not stored)."""
    where = sa.and_(
        MESSAGES.c.workspace_id == workspace_id,
        MESSAGES.c.channel_id == data.channel_id,
        MESSAGES.c.platform_message_id == data.platform_message_id,
    )
    row = (
        await session.execute(
            sa.select(
                MESSAGES.c.id,
                MESSAGES.c.reactions,
                MESSAGES.c.status,
                MESSAGES.c.deleted,
                MESSAGES.c.conversation_id,
                MESSAGES.c.attachments,
                MESSAGES.c.text,
                MESSAGES.c.captions,
            ).where(where)
        )
    ).first()
    if row is None:
        # Not yet here (the platform delivered out of order), or never will be (a message
        # from before the channel was connected): kept until it comes, or expires.
        await waiting.park_change(session, workspace_id, event_id, data)
        return []
    changes = data.changes
    values: dict[str, Any] = {}
    unkept: list[str] = []
    if (reaction := changes.reaction) is not None and not row.deleted:
        kept = [r for r in (row.reactions or []) if r.get("by") != reaction.by]
        if reaction.action != "unreact":
            named = reaction.reaction if reaction.reaction is not MISSING else None
            said = {"emoji": reaction.emoji, "reaction": named, "by": reaction.by}
            kept.append({k: v for k, v in said.items() if v})
        values["reactions"] = kept
    if changes.text is not None:
        values["text"] = changes.text
    if changes.platform_message_id:
        values["platform_message_id"] = changes.platform_message_id  # ours, now sent
    if changes.edited:
        values["edited"] = True
    if changes.hidden is not None:
        values["hidden"] = changes.hidden
    if changes.attachments is not None and not row.deleted:
        values["attachments"] = [a.model_dump(exclude_none=True) for a in changes.attachments]
        values["captions"] = captions_of(values["attachments"])
    elif changes.attachments is not None:
        unkept += files_of(changes.attachments)
    if changes.deleted:
        # The person took the message back: keep that it existed, not what it said, nor
        # the files it showed.
        values.update(deleted=True, text=None, attachments=[], captions=None, reactions=[])
        unkept += files_of(row.attachments or []) + files_of(changes.attachments or [])
    if {"text", "captions"} & values.keys():
        values["search"] = folded(
            values.get("text", row.text), values.get("captions", row.captions)
        )
    status = changes.status
    if status is not None:
        current = STATUS_ORDER.get(row.status, 0)
        if status == "failed" and row.status not in ("delivered", "read"):
            error = changes.error.model_dump() if changes.error is not None else None
            values.update(status="failed", error=error)
        elif STATUS_ORDER.get(status, -1) > current:
            values["status"] = status
    if values:
        await session.execute(sa.update(MESSAGES).where(where).values(**values))
    found: list[tuple[uuid.UUID, list[str]]] = []
    if unkept:
        found.append((row.conversation_id, sorted(set(unkept))))
    if waited:
        update = {"message_id": row.id, "conversation_id": row.conversation_id, "stored": True}
        told.append(data.model_copy(update=update))
    if changes.platform_message_id:  # our reply, now sent: what the platform said of it
        found += await _waited(
            session, workspace_id, [(data.channel_id, changes.platform_message_id)], told
        )
    return found


async def _contact_updated(
    session: AsyncConnection, workspace_id: uuid.UUID, data: ContactUpdated
) -> None:
    """A profile fetched from the platform, or what a web-chat visitor said about itself: what
    it says replaces what we had (an absent or null field changes nothing). The contact may
    not exist yet (a visitor fills the pre-chat form before writing): it is created."""
    if isinstance(data.by, uuid.UUID):  # an agent's edit, stored and audited by its request
        return
    values = data.known()
    if not values:
        return
    if await merged.gone(session, workspace_id, data.contact_id):
        return  # merged away and deleted: the kept contact's fields are its own
    now = utc_now()
    upsert = _insert(session, CONTACTS).values(
        id=data.contact_id,
        workspace_id=workspace_id,
        created_at=now,
        updated_at=now,
        **values,
    )
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["id"],
            set_={**{k: getattr(upsert.excluded, k) for k in values}, "updated_at": now},
            # A contact id of another workspace is never touched.
            where=CONTACTS.c.workspace_id == workspace_id,
        )
    )
    await refold_contact(session, workspace_id, data.contact_id)


async def _conversation_changed(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    data: ConversationUpdated,
    changes: ConversationChanges,
    event_id: str,
) -> None:
    """An agent's status, assignment, team or snooze: the latest on the stream wins. What
    routing did (`routed`) is in the database already: its event only tells the inboxes."""
    if data.routed:
        return
    values: dict[str, Any] = {}
    if changes.status is not None:
        values["status"] = changes.status
        values["snoozed_until"] = changes.snoozed_until if changes.status == "snoozed" else None
    if changes.assignee_id is not MISSING:
        values["assignee_id"] = changes.assignee_id
    if changes.team_id is not MISSING:
        values["team_id"] = changes.team_id
    if changes.priority is not MISSING:
        values["priority"] = changes.priority
    conversation_id = data.conversation_id
    if values.get("status") == "resolved":  # counted before it is applied (a repeat is not)
        await reports.record_resolved(session, workspace_id, conversation_id, event_id, data.by)
    if values:
        await session.execute(
            sa.update(CONVERSATIONS)
            .where(
                CONVERSATIONS.c.workspace_id == workspace_id,
                CONVERSATIONS.c.id == conversation_id,
            )
            .values(**values)
        )
    if changes.labels is not None:
        await labels.replace(session, workspace_id, conversation_id, changes.labels)
    if changes.labels_add is not None:
        await labels.add(session, workspace_id, conversation_id, changes.labels_add)


# The events this group stores (the others are never parsed here).
_STORED = frozenset(
    m.NAME for m in (MessageCreated, ContactUpdated, MessageUpdated, ConversationUpdated)
)
