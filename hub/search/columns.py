"""Keeping a row's folded `search` column in step when only part of what it folds changes."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.search.folding import folded
from hub.storage.models import Contact

CONTACTS = Contact.__table__  # type: ignore[attr-defined]


async def refold_contact(
    session: AsyncConnection, workspace_id: uuid.UUID, contact_id: uuid.UUID
) -> None:
    """Fold a contact's name, e-mail and username again, after a change to any of them."""
    where = sa.and_(CONTACTS.c.id == contact_id, CONTACTS.c.workspace_id == workspace_id)
    query = sa.select(CONTACTS.c.name, CONTACTS.c.email, CONTACTS.c.username).where(where)
    row = (await session.execute(query)).first()
    if row is not None:
        await session.execute(sa.update(CONTACTS).where(where).values(search=folded(*row)))
