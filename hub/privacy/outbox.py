"""What an erasure takes back from the outbox: outbound-webhook deliveries not yet made.

A delivery's body is the event as the workspace's receiver will get it, so one that is
pending (waiting for its next attempt) or dead (kept for a replay) still holds what the
event held: a contact's name and e-mail (`contact.updated`), a message's text. An erased
person's deliveries are deleted, not scrubbed: each one is a single event about them (their
message, their profile, their conversation), and a body with the person cut out would tell
the receiver something that never happened and no longer match the event it names.

Deliveries of the erased conversations go by their `conversation_id`. The rest, deliveries
not tied to a conversation (`contact.updated`) and those of a group that stays (the
person's own message in it), are found by their bodies: every undelivered body of the
workspace is read, a page at a time, and one that names the person's contact id, one of
their conversations or one of their messages as a whole JSON string (the rule `Bus.purge`
applies to stream entries) goes. Delivered rows keep no body (`hub.hooks.service`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from hub.bus.base import names_any

DELIVERIES = SQLModel.metadata.tables["webhook_deliveries"]
PAGE = 500


async def withdraw(
    s: AsyncConnection,
    workspace_id: uuid.UUID,
    conversations: Iterable[uuid.UUID],
    ids: Iterable[str],
) -> int:
    """Delete the workspace's deliveries of these conversations, and its undelivered ones
    whose body names one of `ids`; answers how many went."""
    gone = await s.execute(
        sa.delete(DELIVERIES).where(
            DELIVERIES.c.workspace_id == workspace_id,
            DELIVERIES.c.conversation_id.in_(list(conversations)),
        )
    )
    removed = int(gone.rowcount or 0)
    wanted = frozenset(ids)
    after: uuid.UUID | None = None
    while wanted:
        query = (
            sa.select(DELIVERIES.c.id, DELIVERIES.c.body)
            .where(
                DELIVERIES.c.workspace_id == workspace_id,
                DELIVERIES.c.status != "delivered",
                DELIVERIES.c.body.is_not(None),
            )
            .order_by(DELIVERIES.c.id)
            .limit(PAGE)
        )
        if after is not None:
            query = query.where(DELIVERIES.c.id > after)
        page = (await s.execute(query)).all()
        doomed = [row.id for row in page if names_any(row.body, wanted)]
        if doomed:
            gone = await s.execute(sa.delete(DELIVERIES).where(DELIVERIES.c.id.in_(doomed)))
            removed += int(gone.rowcount or 0)
        if len(page) < PAGE:
            break
        after = page[-1].id
    return removed
