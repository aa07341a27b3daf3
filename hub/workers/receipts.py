"""Read receipts: the contact saw our messages, so they are `read`, in the database.

- Messenger's `read.watermark` is a time: "all messages that were sent before or at this
  timestamp were read". Every earlier outgoing message of the conversation moves to `read`.
- Instagram's `read.mid` names the last message seen: every outgoing message up to that
  message's time moves. Before that message is stored, the receipt moves what is stored up
  to the time it was seen and waits for the message (`hub.workers.waiting`).
- A web-chat visitor's read position (`contact_read_up_to`) is an event id: the outgoing
  messages published up to it move.

Only sent and delivered messages move (a pending one has not left, a failed one never
will), agents' notes never. Each message moved is announced with a `message.updated`
(`status: read`, `stored: true`), so open inboxes show what a reload shows. WhatsApp needs
none of this: its statuses name their own message (`hub.workers.persist`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from hub.bus import parse_id
from hub.workers import waiting
from schemas.events import ConversationUpdated, MessageChanges, MessageUpdated
from schemas.message import DeliveryStatus

MESSAGES = SQLModel.metadata.tables["messages"]
MOVABLE = ("sent", "delivered")


async def apply(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    data: ConversationUpdated,
    event_id: str,
    told: list[MessageUpdated],
) -> None:
    """A platform's read receipt or a web-chat visitor's read position, if the event is one."""
    if data.contact_read is not None:
        await _platform_read(session, workspace_id, data, event_id, told)
    if data.contact_read_up_to is not None:
        up_to = parse_id(data.contact_read_up_to)
        rows = await _movable(session, workspace_id, data.conversation_id)
        # Event ids compare as pairs of numbers, not as text: filtered here.
        await _move(
            [r for r in rows if r.event_id and parse_id(r.event_id) <= up_to],
            session,
            data.conversation_id,
            None,
            told,
        )


async def _platform_read(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    data: ConversationUpdated,
    event_id: str,
    told: list[MessageUpdated],
) -> None:
    read = data.contact_read
    assert read is not None
    up_to = read.at
    if read.platform_message_id and read.channel_id is not None:
        seen = (
            await session.execute(
                sa.select(MESSAGES.c.sent_at).where(
                    MESSAGES.c.workspace_id == workspace_id,
                    MESSAGES.c.channel_id == read.channel_id,
                    MESSAGES.c.platform_message_id == read.platform_message_id,
                )
            )
        ).scalar()
        if seen is not None:
            up_to = seen
        else:
            await waiting.park(
                session,
                workspace_id,
                event_id,
                data,
                channel_id=read.channel_id,
                conversation_id=data.conversation_id,
                platform_message_id=read.platform_message_id,
            )
    rows = await _movable(session, workspace_id, data.conversation_id, up_to)
    await _move(rows, session, data.conversation_id, read.at, told)


async def _movable(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    conversation_id: uuid.UUID,
    up_to: datetime | None = None,
) -> list[Any]:
    query = sa.select(
        MESSAGES.c.id, MESSAGES.c.channel_id, MESSAGES.c.platform_message_id, MESSAGES.c.event_id
    ).where(
        MESSAGES.c.workspace_id == workspace_id,
        MESSAGES.c.conversation_id == conversation_id,
        MESSAGES.c.direction == "out",
        MESSAGES.c.note.is_(False),
        MESSAGES.c.status.in_(MOVABLE),
    )
    if up_to is not None:
        query = query.where(MESSAGES.c.sent_at <= up_to)
    return list((await session.execute(query)).all())


async def _move(
    rows: list[Any],
    session: AsyncConnection,
    conversation_id: uuid.UUID,
    at: datetime | None,
    told: list[MessageUpdated],
) -> None:
    if not rows:
        return
    await session.execute(
        sa.update(MESSAGES)
        .where(MESSAGES.c.id.in_([r.id for r in rows]), MESSAGES.c.status.in_(MOVABLE))
        .values(status=DeliveryStatus.READ.value)
    )
    for row in rows:
        told.append(
            MessageUpdated(
                channel_id=row.channel_id,
                conversation_id=conversation_id,
                platform_message_id=row.platform_message_id,
                message_id=row.id,
                changes=MessageChanges(status=DeliveryStatus.READ),
                at=at,
                stored=True,
            )
        )
