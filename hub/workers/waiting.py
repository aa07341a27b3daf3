"""Changes that arrive before their message, kept until it comes.

Platforms retry and deliver out of order: an edit, a reaction, an unsend, a delivery status or
a read receipt may reach the persist group before the message it names. Such a change is
parked here (the `waiting_changes` table, one row per stream entry, so a batch applied twice
parks it once) and taken back, oldest entry first, in the transaction that stores its message
(`hub.workers.persist`). One that never finds its message is deleted by the retention sweep
after `waiting_change_ttl_s` (`expire`), and an erasure deletes those of the erased
conversations (`hub.privacy.erasure`).

Why a table: the change must outlive the stream's trimming, a Redis restart and the
de-duplication window (WhatsApp retries for up to 7 days), be found by (channel, platform
message id) in the same transaction as the message's insert, and be isolated per workspace
like every other row (row-level security).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from hub.bus import parse_id
from schemas.events import EventDataBase, MessageUpdated
from schemas.message import utc_now

WAITING = SQLModel.metadata.tables["waiting_changes"]


async def park(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    event_id: str,
    data: EventDataBase,
    *,
    channel_id: uuid.UUID,
    conversation_id: uuid.UUID | None,
    platform_message_id: str,
) -> None:
    """Keep a change for the message (channel, platform id) until it comes."""
    insert = postgresql.insert if session.dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(WAITING)
        .values(
            workspace_id=workspace_id,
            event_id=event_id,
            channel_id=channel_id,
            conversation_id=conversation_id,
            platform_message_id=platform_message_id,
            name=data.NAME,
            data=json.loads(data.dump()),
            received_at=utc_now(),
        )
        .on_conflict_do_nothing()
    )


async def park_change(
    session: AsyncConnection, workspace_id: uuid.UUID, event_id: str, data: MessageUpdated
) -> None:
    await park(
        session,
        workspace_id,
        event_id,
        data,
        channel_id=data.channel_id,
        conversation_id=data.conversation_id,
        platform_message_id=data.platform_message_id,
    )


async def take(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    messages: Sequence[tuple[uuid.UUID, str]],
) -> list[Any]:
    """The changes that waited for these messages (channel id, platform id), oldest stream
    entry first, deleted from the table (the caller applies them in the same transaction)."""
    if not messages:
        return []
    where = sa.and_(
        WAITING.c.workspace_id == workspace_id,
        sa.tuple_(WAITING.c.channel_id, WAITING.c.platform_message_id).in_(list(messages)),
    )
    rows = (
        await session.execute(
            sa.select(WAITING.c.event_id, WAITING.c.name, WAITING.c.data).where(where)
        )
    ).all()
    if not rows:
        return []
    await session.execute(
        sa.delete(WAITING).where(
            WAITING.c.workspace_id == workspace_id,
            WAITING.c.event_id.in_([row.event_id for row in rows]),
        )
    )
    return sorted(rows, key=lambda row: parse_id(row.event_id))


async def expire(session: AsyncConnection, before: datetime) -> int:
    """Delete the changes that waited since before this time, of every workspace."""
    result = await session.execute(sa.delete(WAITING).where(WAITING.c.received_at < before))
    return int(result.rowcount or 0)
