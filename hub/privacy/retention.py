"""Retention: each workspace may keep messages for `Workspace.retention_days` (None keeps
them forever); the worker's sweep deletes what is older, everywhere.

For a workspace with a retention, the cutoff is `now - retention_days`, and a sweep:

1. stream: trims the workspace stream of the entries published before the cutoff
   (`Bus.trim_before`; stream ids are publish times), first, so that a lagging persist
   group cannot write an old message back after step 2. Cursors from before the cut get
   `cursor_too_old`, as for any trimmed entry.
2. messages: deletes those sent before the cutoff, `batch_rows` at a time (by primary key,
   each batch a short transaction of its own, with a pause between batches so the live
   path's writes are never queued behind one long delete), their stored files first, and
   forgets the bus keys kept about them (send claims, platform-id lookups).
3. conversations: deletes those left with no message whose last activity is also before
   the cutoff, with their labels and read positions, in batches, and everything of theirs
   left in the media store (their prefix).

The media store is written inside the batch's transaction, before it commits: if the store
fails, the rows stay and the next sweep deletes the files again (a missing file is a
no-op), so no row that goes leaves its file behind.
4. contacts: deletes those left with no conversation and no message whose record was
   created and last updated before the cutoff (a contact whose profile changed since is
   kept until a later sweep), with their identities, in batches.

Each workspace sweep that deleted something is audited as `retention.swept` with counts.
Several workers may sweep at once: every step is idempotent, and the periodic sweep claims
each workspace on the bus first, so usually one worker sweeps it per interval.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.bus import Bus
from hub.media.library import MediaLibrary, files_of
from hub.realtime.ingress import Ingress
from hub.storage.store import Store
from hub.workers import waiting
from hub.workers.periodic import Periodic
from hub.workers.persist import CONTACTS, CONVERSATIONS, IDENTITIES, LABELS, MESSAGES, READS
from schemas.message import utc_now

log = logging.getLogger("hub.retention")

WORKSPACES = CONTACTS.metadata.tables["workspaces"]
MERGES = CONTACTS.metadata.tables["contact_merges"]
COUNTS = ("messages", "conversations", "contacts", "stream_entries", "files")
BATCH_ROWS = 500
PAUSE_S = 0.05


@dataclass
class Swept:
    """What one workspace sweep deleted, and in how many database batches."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    batches: int = 0


class Retention(Periodic):
    """The worker task that sweeps every workspace with a retention every `every_s`."""

    name = "retention-sweep"

    def __init__(
        self,
        store: Store,
        bus: Bus,
        ingress: Ingress,
        library: MediaLibrary,
        *,
        every_s: float,
        batch_rows: int = BATCH_ROWS,
        pause_s: float = PAUSE_S,
        waiting_ttl_s: float = 7 * 24 * 3600,
    ) -> None:
        super().__init__(every_s=every_s)
        self.store = store
        self.bus = bus
        self.ingress = ingress
        self.library = library
        self.batch_rows = batch_rows
        self.pause_s = pause_s
        self.waiting_ttl_s = waiting_ttl_s

    async def round(self) -> None:
        await self.expire_waiting()
        await self.sweep(claim=True)

    async def expire_waiting(self, now: datetime | None = None) -> int:
        """Delete the changes that waited `waiting_ttl_s` for a message that never came
        (`hub.workers.waiting`), in every workspace; answers how many went."""
        before = (now or utc_now()) - timedelta(seconds=self.waiting_ttl_s)
        async with self.store.sessions() as orm, orm.begin():
            expired = await waiting.expire(await orm.connection(), before)
        if expired:
            log.info("%d waiting changes expired", expired)
        return expired

    async def sweep(self, now: datetime | None = None, *, claim: bool = False) -> dict[str, Swept]:
        """Sweep every workspace with a retention as of `now` (tests move it forward);
        answers what went, per workspace id. With `claim`, a workspace another worker swept
        within the interval is left alone."""
        at = (now or utc_now()).astimezone(UTC)
        async with self.store.sessions() as orm:
            conn = await orm.connection()
            query = sa.select(WORKSPACES.c.id, WORKSPACES.c.retention_days).where(
                WORKSPACES.c.retention_days.is_not(None)
            )
            due = [(row[0], int(row[1])) for row in (await conn.execute(query)).all()]
        swept = {}
        for workspace_id, days in due:
            if claim and not await self.bus.remember(
                str(workspace_id),
                "retention-sweep",
                at.isoformat(),
                ttl_s=max(1, int(self.every_s * 0.9)),
                only_new=True,
            ):
                continue
            swept[str(workspace_id)] = await self.sweep_workspace(
                workspace_id, at - timedelta(days=days)
            )
        return swept

    async def sweep_workspace(self, workspace_id: uuid.UUID, cutoff: datetime) -> Swept:
        swept = Swept()
        swept.counts["stream_entries"] = await self.bus.trim_before(
            str(workspace_id), int(cutoff.timestamp() * 1000)
        )
        for step in (self._messages, self._conversations, self._contacts):
            while True:
                async with self.store.sessions() as orm, orm.begin():
                    deleted = await step(await orm.connection(), workspace_id, cutoff, swept)
                swept.batches += 1
                if deleted < self.batch_rows:
                    break
                await asyncio.sleep(self.pause_s)  # live traffic's writes go in between
        if any(swept.counts.values()):
            await self.store.audit(
                workspace_id,
                "system",
                None,
                "retention.swept",
                "workspace",
                str(workspace_id),
                detail=dict(swept.counts),
            )
        return swept

    async def _messages(
        self, s: AsyncConnection, workspace_id: uuid.UUID, cutoff: datetime, swept: Swept
    ) -> int:
        batch = (
            await s.execute(
                sa.select(
                    MESSAGES.c.id,
                    MESSAGES.c.channel_id,
                    MESSAGES.c.platform_message_id,
                    MESSAGES.c.direction,
                    MESSAGES.c.conversation_id,
                    MESSAGES.c.attachments,
                )
                .where(MESSAGES.c.workspace_id == workspace_id, MESSAGES.c.sent_at < cutoff)
                .order_by(MESSAGES.c.id)
                .limit(self.batch_rows)
            )
        ).all()
        if not batch:
            return 0
        for message in batch:
            if files := files_of(message.attachments or []):
                swept.counts["files"] += await self.library.forget_files(
                    workspace_id, message.conversation_id, files
                )
        await s.execute(sa.delete(MESSAGES).where(MESSAGES.c.id.in_([m.id for m in batch])))
        keys = []
        for message in batch:
            keys += [f"send:{message.id}", f"sent:{message.id}"]
            if message.direction == "out":
                keys.append(f"pmid:{message.channel_id}:{message.platform_message_id}")
        await self.bus.forget(str(workspace_id), keys)
        swept.counts["messages"] += len(batch)
        return len(batch)

    async def _conversations(
        self, s: AsyncConnection, workspace_id: uuid.UUID, cutoff: datetime, swept: Swept
    ) -> int:
        emptied = sa.and_(
            CONVERSATIONS.c.workspace_id == workspace_id,
            CONVERSATIONS.c.last_activity_at < cutoff,
            ~sa.exists().where(MESSAGES.c.conversation_id == CONVERSATIONS.c.id),
        )
        query = sa.select(CONVERSATIONS.c.id).where(emptied)
        ids = list(
            (await s.execute(query.order_by(CONVERSATIONS.c.id).limit(self.batch_rows))).scalars()
        )
        if not ids:
            return 0
        await s.execute(sa.delete(READS).where(READS.c.conversation_id.in_(ids)))
        await s.execute(sa.delete(LABELS).where(LABELS.c.conversation_id.in_(ids)))
        # Checked again: a message may have arrived since the select.
        result = await s.execute(
            sa.delete(CONVERSATIONS).where(CONVERSATIONS.c.id.in_(ids), emptied)
        )
        kept = set(
            (
                await s.execute(sa.select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.id.in_(ids)))
            ).scalars()
        )
        swept.counts["files"] += await self.library.forget(
            workspace_id, [c for c in ids if c not in kept]
        )
        await self.bus.forget(str(workspace_id), [f"conv:{c}" for c in ids])
        self.ingress.forget(workspace_id, ids)
        swept.counts["conversations"] += int(result.rowcount or 0)
        return len(ids)

    async def _contacts(
        self, s: AsyncConnection, workspace_id: uuid.UUID, cutoff: datetime, swept: Swept
    ) -> int:
        alone = sa.and_(
            CONTACTS.c.workspace_id == workspace_id,
            CONTACTS.c.created_at < cutoff,
            CONTACTS.c.updated_at < cutoff,
            ~sa.exists().where(CONVERSATIONS.c.contact_id == CONTACTS.c.id),
            ~sa.exists().where(MESSAGES.c.contact_id == CONTACTS.c.id),
            # A pending merge's contacts stay (the merged-away one has no conversations
            # left while it is pending): its undo gives them back.
            ~sa.exists().where(
                MERGES.c.state == "pending",
                sa.or_(
                    MERGES.c.from_contact_id == CONTACTS.c.id,
                    MERGES.c.into_contact_id == CONTACTS.c.id,
                ),
            ),
        )
        query = sa.select(CONTACTS.c.id).where(alone)
        ids = list(
            (await s.execute(query.order_by(CONTACTS.c.id).limit(self.batch_rows))).scalars()
        )
        if not ids:
            return 0
        still = sa.select(CONTACTS.c.id).where(CONTACTS.c.id.in_(ids), alone)
        await s.execute(sa.delete(IDENTITIES).where(IDENTITIES.c.contact_id.in_(still)))
        result = await s.execute(sa.delete(CONTACTS).where(CONTACTS.c.id.in_(ids), alone))
        await self.bus.forget(str(workspace_id), [f"profile:{c}" for c in ids])
        swept.counts["contacts"] += int(result.rowcount or 0)
        return len(ids)
