"""A conversation's labels as the persist group writes them (`hub.workers.persist`): the
whole set an agent chose, or labels an automation rule adds."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

CONVERSATIONS = SQLModel.metadata.tables["conversations"]
LABELS = SQLModel.metadata.tables["conversation_labels"]


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def replace(
    session: AsyncConnection, workspace_id: uuid.UUID, conversation_id: uuid.UUID, labels: list[Any]
) -> None:
    """The conversation's whole label set, replaced (the latest change on the stream wins)."""
    if not await _exists(session, workspace_id, conversation_id):
        return
    await session.execute(sa.delete(LABELS).where(LABELS.c.conversation_id == conversation_id))
    wanted = sorted({str(label) for label in labels if isinstance(label, str) and label})
    if wanted:
        await session.execute(
            sa.insert(LABELS),
            [
                {"workspace_id": workspace_id, "conversation_id": conversation_id, "label": label}
                for label in wanted
            ],
        )


async def add(
    session: AsyncConnection, workspace_id: uuid.UUID, conversation_id: uuid.UUID, labels: list[Any]
) -> None:
    """Labels added to the set (an automation rule's): whatever else it holds stays."""
    wanted = sorted({str(label) for label in labels if isinstance(label, str) and label})
    if not wanted or not await _exists(session, workspace_id, conversation_id):
        return
    await session.execute(
        _insert(session.dialect.name)(LABELS).on_conflict_do_nothing(),
        [
            {"workspace_id": workspace_id, "conversation_id": conversation_id, "label": label}
            for label in wanted
        ],
    )


async def _exists(
    session: AsyncConnection, workspace_id: uuid.UUID, conversation_id: uuid.UUID
) -> bool:
    found = await session.execute(
        sa.select(CONVERSATIONS.c.id).where(
            CONVERSATIONS.c.workspace_id == workspace_id, CONVERSATIONS.c.id == conversation_id
        )
    )
    return found.first() is not None
