"""What the persist group reads of merged contacts (`hub.contacts.merge`).

A contact id is derived from the platform's user id (`schemas.message.contact_id_for`), so
a merged identity's new messages still carry the merged-away id: they are stored on the
kept contact (its conversation, derived too, is the kept contact's already), while the
merge is pending and after it is confirmed. One query per batch of messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import hub.storage.models  # noqa: F401  (registers the tables)
from schemas.message import Message

MERGES = SQLModel.metadata.tables["contact_merges"]


async def redirects(
    session: AsyncConnection, messages: Sequence[Message]
) -> dict[uuid.UUID, uuid.UUID]:
    """The kept contact of each merged-away contact these messages name."""
    named = {m.contact_id for m in messages}
    rows = await session.execute(
        sa.select(MERGES.c.from_contact_id, MERGES.c.into_contact_id).where(
            MERGES.c.workspace_id == messages[0].workspace_id,
            MERGES.c.from_contact_id.in_(named),
        )
    )
    return {row.from_contact_id: row.into_contact_id for row in rows}


async def gone(session: AsyncConnection, workspace_id: uuid.UUID, contact_id: uuid.UUID) -> bool:
    """Whether the contact was merged away and deleted (a confirmed merge): a profile
    fetched for it must not bring its row back."""
    found = await session.execute(
        sa.select(MERGES.c.id).where(
            MERGES.c.workspace_id == workspace_id,
            MERGES.c.from_contact_id == contact_id,
            MERGES.c.state == "confirmed",
        )
    )
    return found.first() is not None
