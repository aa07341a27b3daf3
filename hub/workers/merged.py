"""What the persist group reads of merged contacts (`hub.contacts.merge`).

A contact id is derived from the platform's user id (`schemas.message.contact_id_for`), so
a merged identity's new messages still carry the merged-away id: they are stored on the
kept contact (its conversation, derived too, is the kept contact's already) once the merge
is confirmed. While it is pending nothing is redirected: the merged-away contact still
exists, a message in a moved conversation shows under the kept contact anyway, and a new
conversation stays the merged-away contact's until the confirm moves it, so an undo is
exact. One query per batch of messages (and per hop of a chain).
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
MAX_HOPS = 8  # a chain of confirmed merges is followed this far at most


async def redirects(
    session: AsyncConnection, messages: Sequence[Message]
) -> dict[uuid.UUID, uuid.UUID]:
    """The kept contact of each confirmed merged-away contact these messages name, followed
    to the end of a chain (a contact merged into one that was merged away later; the
    confirm rewrites such rows, but a race can leave one). A pending merge redirects
    nothing: the merged-away contact still exists and its confirm moves what arrived."""
    workspace_id = messages[0].workspace_id
    ends = {m.contact_id: m.contact_id for m in messages}
    for _ in range(MAX_HOPS):
        rows = await session.execute(
            sa.select(MERGES.c.from_contact_id, MERGES.c.into_contact_id).where(
                MERGES.c.workspace_id == workspace_id,
                MERGES.c.state == "confirmed",
                MERGES.c.from_contact_id.in_(set(ends.values())),
            )
        )
        step = {row.from_contact_id: row.into_contact_id for row in rows}
        if not step:
            break
        ends = {start: step.get(end, end) for start, end in ends.items()}
    # Bounded: a cycle (never made by `hub.contacts.merge`, which refuses chains while
    # pending) cannot loop, and a contact led back to itself is not redirected.
    return {start: end for start, end in ends.items() if end != start}


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
