"""Deleting all of a disconnected channel's data: one deletion request (`hub.privacy.deletions`)
whose targets are every contact with an identity or a conversation on the channel.

The rule: a contact known only through this channel is erased whole (`hub.privacy.erasure`, as an
admin's deletion request would); a contact who also has an identity or a conversation on
another channel keeps the contact and what is there, and loses only this channel's identity,
conversations and messages (a channel-scoped `Target`)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from hub.privacy.deletions import Deletions
from hub.privacy.erasure import Target
from hub.storage.models import DeletionRequest
from hub.storage.store import Sessions
from hub.workers.persist import CONVERSATIONS, IDENTITIES, MESSAGES
from hub.workers.waiting import WAITING

log = logging.getLogger("hub.channeldata")


@dataclass(frozen=True, slots=True)
class Found:
    targets: list[Target]
    conversations: int
    messages: int

    @property
    def counts(self) -> dict[str, int]:
        partial = sum(1 for t in self.targets if t.channel_id is not None)
        return {
            "contacts": len(self.targets) - partial,
            "contacts_kept": partial,
            "conversations": self.conversations,
            "messages": self.messages,
        }


async def find(sessions: Sessions, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Found:
    """What deleting the channel's data will erase, as it stands now."""
    on_channel = sa.union(
        sa.select(IDENTITIES.c.contact_id).where(
            IDENTITIES.c.workspace_id == workspace_id, IDENTITIES.c.channel_id == channel_id
        ),
        sa.select(CONVERSATIONS.c.contact_id).where(
            CONVERSATIONS.c.workspace_id == workspace_id, CONVERSATIONS.c.channel_id == channel_id
        ),
    ).subquery()
    elsewhere = sa.union(
        sa.select(IDENTITIES.c.contact_id).where(
            IDENTITIES.c.workspace_id == workspace_id, IDENTITIES.c.channel_id != channel_id
        ),
        sa.select(CONVERSATIONS.c.contact_id).where(
            CONVERSATIONS.c.workspace_id == workspace_id, CONVERSATIONS.c.channel_id != channel_id
        ),
    ).subquery()
    async with sessions() as orm:
        s = await orm.connection()
        contacts = {row[0] for row in (await s.execute(sa.select(on_channel.c.contact_id))).all()}
        shared = {
            row[0]
            for row in (
                await s.execute(
                    sa.select(elsewhere.c.contact_id).where(elsewhere.c.contact_id.in_(contacts))
                )
            ).all()
        }
        conversations = await s.scalar(
            sa.select(sa.func.count()).where(
                CONVERSATIONS.c.workspace_id == workspace_id,
                CONVERSATIONS.c.channel_id == channel_id,
            )
        )
        messages = await s.scalar(
            sa.select(sa.func.count()).where(
                MESSAGES.c.workspace_id == workspace_id, MESSAGES.c.channel_id == channel_id
            )
        )
    targets = [
        Target(str(workspace_id), str(c), channel_id=str(channel_id) if c in shared else None)
        for c in sorted(contacts, key=str)
    ]
    return Found(targets, int(conversations or 0), int(messages or 0))


async def drop_waiting(sessions: Sessions, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> int:
    """Delete the platform changes still waiting for a message on the channel: they are no
    contact's (their message never came), so erasing the channel's data takes them all."""
    async with sessions() as orm, orm.begin():
        done = await (await orm.connection()).execute(
            sa.delete(WAITING).where(
                WAITING.c.workspace_id == workspace_id, WAITING.c.channel_id == channel_id
            )
        )
    return int(done.rowcount or 0)


async def file(
    deletions: Deletions,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    actor_id: uuid.UUID,
    *,
    ip: str | None = None,
) -> tuple[DeletionRequest, dict[str, int]]:
    """File the channel's deletion request (the caller runs it) and audit
    `channel.data_deleted` with what it will erase."""
    found = await find(deletions.store.sessions, workspace_id, channel_id)
    await drop_waiting(deletions.store.sessions, workspace_id, channel_id)
    row = await deletions.file(
        "admin",
        f"channel:{channel_id}",
        found.targets,
        workspace_id=workspace_id,
        actor=("user", str(actor_id)),
        ip=ip,
    )
    await deletions.store.audit(
        workspace_id,
        "user",
        str(actor_id),
        "channel.data_deleted",
        "channel",
        str(channel_id),
        ip=ip,
        detail={**found.counts, "deletion_id": str(row.id)},
    )
    return row, found.counts


async def run(deletions: Deletions, request_id: uuid.UUID) -> None:
    try:
        await deletions.run(request_id)
    except Exception:  # the sweep takes it up again once its lease lapses
        log.warning("deletion request %s stopped; the sweep resumes it", request_id, exc_info=True)
