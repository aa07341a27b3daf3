"""The one private reply a comment may have, kept in the database so that no redelivered
webhook, second rule, retried event or agent makes a second (Meta: "one message, within 7
days"; a second is refused by the platform, or worse, reaches the person twice).

A reply is first *reserved* for a message (an automation rule reserves before it publishes
its reply; an agent's reply is reserved by the send group), then *sent*: the send group marks
it just before calling the platform, and releases it when the platform got nothing (refused,
unreachable, the channel to reconnect), so a failed send does not use the comment's one
reply up. Both steps are single statements that only one caller
can win, so the guarantee holds across workers and nodes and survives a Redis that lost its
claims. The window is counted from the comment's own time (`within_window`).

A row is of no use once its comment's 7 days are over, and it names a person's comment: the
persist worker's `ReplySweeper` deletes rows a day past that (`KEEP`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from hub.storage import tenancy
from hub.storage.inbox import Sessions
from hub.storage.models import CommentReply, MessageRow
from hub.workers.periodic import Periodic
from schemas.message import utc_now

PRIVATE_REPLY_WINDOW = timedelta(days=7)
KEEP = PRIVATE_REPLY_WINDOW + timedelta(days=1)
TABLE = CommentReply.__table__  # type: ignore[attr-defined]


class CommentReplies:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def reserve(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, comment_id: str, message_id: uuid.UUID
    ) -> bool:
        """Whether the comment's private reply is now `message_id`'s (reserved by this call or
        before for the same message); False when another message has it."""
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s, s.begin():
                connection = await s.connection()
                dialect = connection.dialect.name
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                await connection.execute(
                    insert(TABLE)
                    .values(
                        channel_id=channel_id,
                        comment_id=comment_id,
                        workspace_id=workspace_id,
                        message_id=message_id,
                        reserved_at=utc_now(),
                    )
                    .on_conflict_do_nothing()
                )
                holder = await s.exec(
                    select(CommentReply.message_id).where(
                        CommentReply.channel_id == channel_id,
                        CommentReply.comment_id == comment_id,
                    )
                )
                return holder.first() == message_id

    async def mark_sent(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, comment_id: str, message_id: uuid.UUID
    ) -> bool:
        """Whether this caller may send `message_id` as the comment's private reply: it holds
        the reservation (taken now if free) and nobody sent it before."""
        if not await self.reserve(workspace_id, channel_id, comment_id, message_id):
            return False
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s, s.begin():
                connection = await s.connection()
                done = await connection.execute(
                    sa.update(TABLE)
                    .where(
                        TABLE.c.channel_id == channel_id,
                        TABLE.c.comment_id == comment_id,
                        TABLE.c.message_id == message_id,
                        TABLE.c.sent_at.is_(None),
                    )
                    .values(sent_at=utc_now())
                )
                return done.rowcount == 1

    async def release(
        self,
        workspace_id: uuid.UUID,
        channel_id: uuid.UUID,
        comment_id: str,
        message_id: uuid.UUID,
        *,
        marked: bool = True,
    ) -> None:
        """Gives the comment its private reply back from `message_id`, which did not make it:
        its send failed with nothing reaching the platform (`marked`, by the send group), or
        it was reserved again for a message tried before (not `marked`, by a rule). Only that
        message's row goes: another message's reservation, or a reply sent, stays."""
        sent = TABLE.c.sent_at.is_not(None) if marked else TABLE.c.sent_at.is_(None)
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s, s.begin():
                connection = await s.connection()
                await connection.execute(
                    sa.delete(TABLE).where(
                        TABLE.c.channel_id == channel_id,
                        TABLE.c.comment_id == comment_id,
                        TABLE.c.message_id == message_id,
                        sent,
                    )
                )

    async def holder(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, comment_id: str
    ) -> uuid.UUID | None:
        """The message that has (or will have) the comment's private reply, if any."""
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s:
                found = await s.exec(
                    select(CommentReply.message_id).where(
                        CommentReply.workspace_id == workspace_id,
                        CommentReply.channel_id == channel_id,
                        CommentReply.comment_id == comment_id,
                    )
                )
                return found.first()

    async def commented_at(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, comment_id: str
    ) -> datetime | None:
        """When the comment was written, once it is stored."""
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s:
                found = await s.exec(
                    select(MessageRow.sent_at).where(
                        MessageRow.workspace_id == workspace_id,
                        MessageRow.channel_id == channel_id,
                        col(MessageRow.platform_message_id) == comment_id,
                    )
                )
                return found.first()


class ReplySweeper(Periodic):
    """Forgets private replies whose comment can no longer be answered privately anyway."""

    name = "comment-replies-sweep"

    def __init__(self, sessions: Sessions, *, every_s: float) -> None:
        super().__init__(every_s=every_s)
        self.sessions = sessions

    async def round(self) -> None:
        async with self.sessions() as s, s.begin():
            connection = await s.connection()
            await connection.execute(sa.delete(TABLE).where(TABLE.c.reserved_at < utc_now() - KEEP))


def within_window(commented_at: datetime, now: datetime) -> bool:
    return now < commented_at + PRIVATE_REPLY_WINDOW
