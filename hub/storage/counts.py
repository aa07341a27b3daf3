"""How many conversations each inbox filter holds: the status and assignee filters' counts.
Two grouped reads, scoped by workspace; an agent sees every conversation of the workspace (the
list's own rule), so the counts are what the list would show."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col, select

from hub.storage.inbox import Sessions
from hub.storage.models import Conversation, Mention

STATUSES = ("open", "pending", "snoozed", "resolved")


async def filter_counts(
    sessions: Sessions,
    workspace_id: uuid.UUID,
    me: uuid.UUID,
    *,
    status: str | None,
    assignee: uuid.UUID | str | None,
    mentioned: uuid.UUID | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """(per status, under the `assignee` filter), (mine / unassigned / any, under `status`).
    `assignee` is "any", None (unassigned) or a member id; `status` None means every status.
    `mentioned`: the status counts of the "Mentions" filter, where this agent was @mentioned."""
    by_status = select(Conversation.status, sa.func.count()).where(
        Conversation.workspace_id == workspace_id
    )
    if assignee is None:
        by_status = by_status.where(col(Conversation.assignee_id).is_(None))
    elif isinstance(assignee, uuid.UUID):
        by_status = by_status.where(Conversation.assignee_id == assignee)
    if mentioned is not None:
        named = select(Mention.conversation_id).where(
            Mention.workspace_id == workspace_id, Mention.user_id == mentioned
        )
        by_status = by_status.where(col(Conversation.id).in_(named))
    by_status = by_status.group_by(col(Conversation.status))
    mine = sa.case((col(Conversation.assignee_id) == me, 1), else_=0)
    unassigned = sa.case((col(Conversation.assignee_id).is_(None), 1), else_=0)
    by_assignee = select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(mine), 0),
        sa.func.coalesce(sa.func.sum(unassigned), 0),
    ).where(Conversation.workspace_id == workspace_id)
    if status:
        by_assignee = by_assignee.where(Conversation.status == status)
    async with sessions() as s:
        statuses = {name: 0 for name in STATUSES}
        for name, count in (await s.exec(by_status)).all():
            statuses[name] = int(count)
        total, mine_n, none_n = (await s.exec(by_assignee)).one()
    return statuses, {"me": int(mine_n), "none": int(none_n), "any": int(total)}
