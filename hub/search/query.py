"""Finding contacts and messages by their folded text (`hub.search.folding`), narrowed by the
inbox's filters, newest message first, a page at a time.

Both tables keep their folded text in a `search` column written with the row, so the query
is a plain `search LIKE '%folded query%'`: the same rows match on SQLite and Postgres, and on
Postgres a trigram index answers it (migration 0025). Every query is scoped by workspace
(and, on Postgres, by row-level security under the caller's workspace)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from hub.search.contacts import contact_holds
from hub.search.folding import substring_pattern
from hub.storage.inbox import Sessions, decode_cursor, encode_cursor
from hub.storage.models import (
    Contact,
    Conversation,
    ConversationLabel,
    MessageRow,
)


@dataclass(frozen=True, slots=True)
class Filters:
    """What narrows a search (None: no narrowing). The channel, status, label and kind are
    the conversation's; `since` (inclusive) and `until` (exclusive) bound when a message was
    sent."""

    channel_id: uuid.UUID | None = None
    status: str | None = None
    label: str | None = None
    kind: str | None = None  # dm | comment
    since: datetime | None = None
    until: datetime | None = None

    @property
    def narrows_conversations(self) -> bool:
        return any(v is not None for v in (self.channel_id, self.status, self.label, self.kind))


@dataclass(frozen=True, slots=True)
class Found:
    contacts: list[Contact]
    messages: list[MessageRow]
    next_cursor: str | None


async def search(
    sessions: Sessions,
    workspace_id: uuid.UUID,
    text: str,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None = None,
) -> Found:
    """Contacts (on the first page only) by name, e-mail, username or platform id, and
    messages by their text or their attachments' captions and file names (private notes
    included: the searcher is an agent of the workspace). `cursor` continues the messages
    after the last one of the previous page."""
    pattern = substring_pattern(text)
    async with sessions() as s:
        contacts = (
            []
            if cursor
            else list((await s.exec(_contacts(workspace_id, text, filters, limit))).all())
        )
        query = _messages(workspace_id, pattern, filters)
        if cursor:
            at, last_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    col(MessageRow.sent_at) < at,
                    sa.and_(col(MessageRow.sent_at) == at, col(MessageRow.id) < last_id),
                )
            )
        query = query.order_by(col(MessageRow.sent_at).desc(), col(MessageRow.id).desc())
        messages = list((await s.exec(query.limit(limit + 1))).all())
    more = len(messages) > limit
    messages = messages[:limit]
    after = encode_cursor(messages[-1].sent_at, messages[-1].id) if more else None
    return Found(contacts, messages, after)


def _messages(
    workspace_id: uuid.UUID, pattern: str, filters: Filters
) -> SelectOfScalar[MessageRow]:
    query = select(MessageRow).where(
        MessageRow.workspace_id == workspace_id,
        col(MessageRow.search).like(pattern, escape="\\"),
    )
    if filters.channel_id is not None:
        query = query.where(MessageRow.channel_id == filters.channel_id)
    if filters.kind is not None:
        query = query.where(MessageRow.kind == filters.kind)
    if filters.since is not None:
        query = query.where(col(MessageRow.sent_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(MessageRow.sent_at) < filters.until)
    if filters.status is not None or filters.label is not None:
        query = query.where(
            col(MessageRow.conversation_id).in_(_conversations(workspace_id, filters))
        )
    return query


def _contacts(
    workspace_id: uuid.UUID, text: str, filters: Filters, limit: int
) -> SelectOfScalar[Contact]:
    query = select(Contact).where(
        Contact.workspace_id == workspace_id, contact_holds(workspace_id, text)
    )
    if filters.narrows_conversations:
        had = select(Conversation.contact_id).where(
            col(Conversation.id).in_(_conversations(workspace_id, filters))
        )
        query = query.where(col(Contact.id).in_(had))
    return query.order_by(col(Contact.updated_at).desc()).limit(limit)


def _conversations(workspace_id: uuid.UUID, filters: Filters) -> SelectOfScalar[uuid.UUID]:
    """The ids of the workspace's conversations that pass the conversation filters."""
    query = select(Conversation.id).where(Conversation.workspace_id == workspace_id)
    if filters.channel_id is not None:
        query = query.where(Conversation.channel_id == filters.channel_id)
    if filters.status is not None:
        query = query.where(Conversation.status == filters.status)
    if filters.kind is not None:
        query = query.where(Conversation.kind == filters.kind)
    if filters.label is not None:
        labelled = select(ConversationLabel.conversation_id).where(
            ConversationLabel.workspace_id == workspace_id,
            ConversationLabel.label == filters.label,
        )
        query = query.where(col(Conversation.id).in_(labelled))
    return query
