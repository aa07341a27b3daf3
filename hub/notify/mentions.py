"""@mentions in private notes: the members a note names are kept (`mentions`), and a
`mention.created` event tells their inboxes and the push worker.

The ids come from the composer's member menu; an id that is not a member of the workspace
(someone removed meanwhile, or a made-up one) is ignored, not refused: the note itself is
already sent, and a mention of no one has no one to tell. The writer's own id is ignored
too. The mention is kept under the note's message id before the persist worker may have
stored the note, so no foreign key ties it to the message or the conversation; an erasure
deletes it with the conversation (`hub.privacy.erasure`)."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from hub.bus import Bus
from hub.notify.push import PREVIEW_CHARS
from hub.storage.models import Membership, Mention
from hub.storage.store import Sessions
from schemas.events import MentionCreated


class Mentions:
    def __init__(self, sessions: Sessions, bus: Bus) -> None:
        self.sessions, self.bus = sessions, bus

    async def record(
        self,
        workspace_id: uuid.UUID,
        by: uuid.UUID,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        wanted: list[uuid.UUID] | tuple[uuid.UUID, ...],
        text: str | None,
    ) -> list[uuid.UUID]:
        """Keep and announce the note's mentions of members; the ids kept."""
        ids = [i for i in dict.fromkeys(wanted) if i != by]
        if not ids:
            return []
        async with self.sessions() as s, s.begin():
            members = await s.exec(
                select(Membership.user_id).where(
                    Membership.workspace_id == workspace_id, col(Membership.user_id).in_(ids)
                )
            )
            known = set(members.all())
            ids = [i for i in ids if i in known]
            existing = await s.exec(
                select(Mention.user_id).where(
                    Mention.workspace_id == workspace_id, Mention.message_id == message_id
                )
            )
            ids = [i for i in ids if i not in set(existing.all())]  # a resent note
            for user_id in ids:
                s.add(
                    Mention(
                        workspace_id=workspace_id,
                        message_id=message_id,
                        user_id=user_id,
                        conversation_id=conversation_id,
                        by_user_id=by,
                    )
                )
        if ids:
            data = MentionCreated(
                conversation_id=conversation_id,
                message_id=message_id,
                user_ids=ids,
                by=by,
                preview=" ".join((text or "").split())[:PREVIEW_CHARS] or None,
            )
            # No conversation id on the stream entry: a visitor's socket never gets it.
            await self.bus.publish(str(workspace_id), data.NAME, data.dump())
        return ids

    async def conversations_of(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> set[uuid.UUID]:
        async with self.sessions() as s:
            rows = await s.exec(
                select(Mention.conversation_id).where(
                    Mention.workspace_id == workspace_id, Mention.user_id == user_id
                )
            )
            return set(rows.all())
