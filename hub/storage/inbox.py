"""The inbox's reads (and a channel's creation): channels, conversations, contacts, messages,
labels and read marks. Every query is scoped by workspace id; `hub.storage.store.Store` is
this and the accounts' reads and writes in one."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.errors import BadRequest, NoSuchChannel
from hub.search.contacts import contact_holds
from hub.storage.models import (
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationLabel,
    ConversationRead,
    Membership,
    Mention,
    MessageRow,
)

Sessions = async_sessionmaker[AsyncSession]


async def find_channel(
    s: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID
) -> Channel | None:
    query = select(Channel).where(Channel.workspace_id == workspace_id, Channel.id == channel_id)
    return (await s.exec(query)).first()


async def channel_of(s: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    """The workspace's channel, in the caller's session (to change it); `NoSuchChannel` if the
    workspace has none with that id."""
    channel = await find_channel(s, workspace_id, channel_id)
    if channel is None:
        raise NoSuchChannel()
    return channel


class InboxStore:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    # Channels

    async def create_channel(
        self,
        workspace_id: uuid.UUID,
        kind: str,
        name: str,
        *,
        allowed_origins: list[str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Channel:
        channel = Channel(
            workspace_id=workspace_id,
            kind=kind,
            name=name,
            public_key=secrets.token_urlsafe(18) if kind == "webchat" else None,
            allowed_origins=allowed_origins or [],
            settings=settings or {},
        )
        async with self.sessions() as s, s.begin():
            s.add(channel)
        return channel

    async def channel_by_public_key(self, public_key: str) -> Channel | None:
        async with self.sessions() as s:
            return (await s.exec(select(Channel).where(Channel.public_key == public_key))).first()

    async def channel(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel | None:
        async with self.sessions() as s:
            return await find_channel(s, workspace_id, channel_id)

    async def existing_channel(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
        async with self.sessions() as s:
            return await channel_of(s, workspace_id, channel_id)

    async def channels(self, workspace_id: uuid.UUID) -> list[Channel]:
        async with self.sessions() as s:
            return list(
                (
                    await s.exec(
                        select(Channel)
                        .where(Channel.workspace_id == workspace_id)
                        .order_by(col(Channel.created_at))
                    )
                ).all()
            )

    # Conversations and messages

    async def conversation(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> Conversation | None:
        async with self.sessions() as s:
            return (
                await s.exec(
                    select(Conversation).where(
                        Conversation.workspace_id == workspace_id,
                        Conversation.id == conversation_id,
                    )
                )
            ).first()

    async def contacts(
        self, workspace_id: uuid.UUID, ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, Contact]:
        if not ids:
            return {}
        async with self.sessions() as s:
            rows = await s.exec(
                select(Contact).where(
                    Contact.workspace_id == workspace_id, col(Contact.id).in_(ids)
                )
            )
            return {row.id: row for row in rows.all()}

    async def conversations(
        self,
        workspace_id: uuid.UUID,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
        assignee: uuid.UUID | str | None = "any",
        channel_id: uuid.UUID | None = None,
        label: str | None = None,
        team: uuid.UUID | str | None = "any",
        priority: str | None = "any",
        where: Sequence[sa.ColumnElement[bool]] = (),
        mentioned: uuid.UUID | None = None,
    ) -> tuple[list[Conversation], str | None]:
        """Newest activity first; `cursor` continues after the last row of the previous page.
        `assignee` and `team`: "any", None (none) or an id; `priority`: "any", None (none) or
        one; `where`: more conditions on `Conversation` (custom attributes' filters)."""
        query = select(Conversation).where(Conversation.workspace_id == workspace_id, *where)
        if status:
            query = query.where(Conversation.status == status)
        if channel_id:
            query = query.where(Conversation.channel_id == channel_id)
        if label:
            labelled = select(ConversationLabel.conversation_id).where(
                ConversationLabel.workspace_id == workspace_id, ConversationLabel.label == label
            )
            query = query.where(col(Conversation.id).in_(labelled))
        if mentioned is not None:  # where this agent was @mentioned in a note
            named = select(Mention.conversation_id).where(
                Mention.workspace_id == workspace_id, Mention.user_id == mentioned
            )
            query = query.where(col(Conversation.id).in_(named))
        if assignee is None:
            query = query.where(col(Conversation.assignee_id).is_(None))
        elif isinstance(assignee, uuid.UUID):
            query = query.where(Conversation.assignee_id == assignee)
        if team is None:
            query = query.where(col(Conversation.team_id).is_(None))
        elif isinstance(team, uuid.UUID):
            query = query.where(Conversation.team_id == team)
        if priority is None:
            query = query.where(col(Conversation.priority).is_(None))
        elif priority != "any":
            query = query.where(Conversation.priority == priority)
        if cursor:
            at, last_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    col(Conversation.last_activity_at) < at,
                    sa.and_(
                        col(Conversation.last_activity_at) == at, col(Conversation.id) < last_id
                    ),
                )
            )
        query = query.order_by(
            col(Conversation.last_activity_at).desc(), col(Conversation.id).desc()
        )
        async with self.sessions() as s:
            rows = list((await s.exec(query.limit(limit + 1))).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].last_activity_at, rows[-1].id) if more else None
        return rows, next_cursor

    async def queue(self, workspace_id: uuid.UUID) -> dict[uuid.UUID | None, int]:
        """How many open conversations wait for an assignee, by team (None: no team)."""
        query = (
            select(Conversation.team_id, sa.func.count())
            .where(
                Conversation.workspace_id == workspace_id,
                col(Conversation.assignee_id).is_(None),
                Conversation.status == "open",
            )
            .group_by(col(Conversation.team_id))
        )
        async with self.sessions() as s:
            return {team: count for team, count in (await s.exec(query)).all()}

    async def labels(
        self, workspace_id: uuid.UUID, conversation_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        if not conversation_ids:
            return {}
        query = (
            select(ConversationLabel)
            .where(
                ConversationLabel.workspace_id == workspace_id,
                col(ConversationLabel.conversation_id).in_(conversation_ids),
            )
            .order_by(col(ConversationLabel.label))
        )
        found: dict[uuid.UUID, list[str]] = {}
        async with self.sessions() as s:
            for row in (await s.exec(query)).all():
                found.setdefault(row.conversation_id, []).append(row.label)
        return found

    async def reads(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> list[ConversationRead]:
        query = select(ConversationRead).where(
            ConversationRead.workspace_id == workspace_id,
            ConversationRead.conversation_id == conversation_id,
        )
        async with self.sessions() as s:
            return list((await s.exec(query)).all())

    async def member_ids(self, workspace_id: uuid.UUID) -> list[uuid.UUID]:
        query = select(Membership.user_id).where(Membership.workspace_id == workspace_id)
        async with self.sessions() as s:
            return list((await s.exec(query)).all())

    async def unread(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, conversation_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """Messages from contacts after this agent's read position, per conversation."""
        if not conversation_ids:
            return {}
        reads, messages = ConversationRead.__table__, MessageRow.__table__  # type: ignore[attr-defined]
        read = (
            sa.select(reads.c.up_to_at)
            .where(
                reads.c.conversation_id == messages.c.conversation_id,
                reads.c.user_id == user_id,
            )
            .scalar_subquery()
        )
        query = (
            sa.select(messages.c.conversation_id, sa.func.count())
            .where(
                messages.c.workspace_id == workspace_id,
                messages.c.conversation_id.in_(conversation_ids),
                messages.c.direction == "in",
                sa.or_(read.is_(None), messages.c.sent_at > read),
            )
            .group_by(messages.c.conversation_id)
        )
        async with self.sessions() as s:
            rows = (await (await s.connection()).execute(query)).all()
        return {row[0]: int(row[1]) for row in rows}

    async def contact_panel(
        self, workspace_id: uuid.UUID, contact_id: uuid.UUID
    ) -> tuple[Contact, list[ContactIdentity], list[Conversation]] | None:
        async with self.sessions() as s:
            contact = (
                await s.exec(
                    select(Contact).where(
                        Contact.workspace_id == workspace_id, Contact.id == contact_id
                    )
                )
            ).first()
            if contact is None:
                return None
            identities = (
                await s.exec(
                    select(ContactIdentity).where(
                        ContactIdentity.workspace_id == workspace_id,
                        ContactIdentity.contact_id == contact_id,
                    )
                )
            ).all()
            conversations = (
                await s.exec(
                    select(Conversation)
                    .where(
                        Conversation.workspace_id == workspace_id,
                        Conversation.contact_id == contact_id,
                    )
                    .order_by(col(Conversation.last_activity_at).desc())
                )
            ).all()
        return contact, list(identities), list(conversations)

    async def contacts_page(
        self, workspace_id: uuid.UUID, *, text: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Contact], str | None]:
        """Newest first; `text` narrows them as search does (hub/search/contacts.py)."""
        query = select(Contact).where(Contact.workspace_id == workspace_id)
        if text:
            query = query.where(contact_holds(workspace_id, text))
        if cursor:
            at, last_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    col(Contact.created_at) < at,
                    sa.and_(col(Contact.created_at) == at, col(Contact.id) < last_id),
                )
            )
        query = query.order_by(col(Contact.created_at).desc(), col(Contact.id).desc())
        async with self.sessions() as s:
            rows = list((await s.exec(query.limit(limit + 1))).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None

    async def messages(
        self,
        workspace_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        limit: int,
        before: str | None,
        notes: bool = True,
    ) -> tuple[list[MessageRow], str | None]:
        """A page of a conversation's history, oldest first; `next_before` fetches the page older
        than this one (None when this page reaches the start). Without `notes`, agents' private
        notes are left out (the contact's own view)."""
        query = select(MessageRow).where(
            MessageRow.workspace_id == workspace_id, MessageRow.conversation_id == conversation_id
        )
        if not notes:
            query = query.where(col(MessageRow.note).is_(False))
        if before:
            at, last_id = decode_cursor(before)
            query = query.where(
                sa.or_(
                    col(MessageRow.sent_at) < at,
                    sa.and_(col(MessageRow.sent_at) == at, col(MessageRow.id) < last_id),
                )
            )
        query = query.order_by(col(MessageRow.sent_at).desc(), col(MessageRow.id).desc()).limit(
            limit + 1
        )
        async with self.sessions() as s:
            rows = list((await s.exec(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_before = encode_cursor(rows[-1].sent_at, rows[-1].id) if more else None
        rows.reverse()
        return rows, next_before


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    # AttributeError: a row id that is not a string; RecursionError: a deeply nested one.
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise BadRequest("The cursor is not valid.") from None
