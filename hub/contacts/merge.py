"""Merging two contacts that are one person (say the same customer on Instagram and
WhatsApp), reversible until confirmed.

A merge moves the other contact's conversations and identities (and its messages) onto the
kept contact and records exactly what moved in a `ContactMerge` row, so an undo puts back
just that. Neither contact's fields change: the kept contact's name, e-mail, notes and
attributes stay as they were, and the other's stay on its own row until the merge is
confirmed, when that row (with its fields and attributes) is deleted; first, whatever
still names it (what arrived while pending) moves to the kept contact, or it would go with
the row. The merge row stays as a redirect: contact ids are derived from (workspace,
channel, platform user id), so a new message of the merged-away identity still carries the
other id, and once the merge is confirmed the persist worker stores it on the kept contact
(`hub.workers.merged`). While pending nothing is redirected, so an undo is exact.

Each step is one transaction with its audit row (`contact.merged`, `contact.merge_undone`,
`contact.merge_confirmed`; ids only), then `contact.updated` with `by` for both contacts,
so open inboxes reload their panels and lists.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.members import Actor, by_member
from hub.bus import Bus
from hub.errors import BadRequest, Conflict, NotFound
from hub.storage import audit
from hub.storage.models import Contact, ContactIdentity, ContactMerge, Conversation
from hub.storage.models import MessageRow as Message
from hub.storage.store import Sessions
from schemas.events import ContactUpdated
from schemas.message import utc_now
from schemas.rest.conversations import ContactMergeOut

if TYPE_CHECKING:
    from hub.realtime.ingress import Ingress

CHUNK = 1000  # ids bound per statement when a merge moves rows
_MERGES: sa.Table = ContactMerge.__table__  # type: ignore[attr-defined]
# An insert of no rows: it takes SQLite's write lock (and begins the transaction).
_SQLITE_WRITE_LOCK = sa.insert(_MERGES).from_select(
    ["id"], sa.select(_MERGES.c.id).where(sa.false())
)


class SameContact(BadRequest):
    code = "same_contact"
    default_message = "A contact cannot be merged with itself."


class MergePending(Conflict):
    code = "merge_pending"
    default_message = "One of the contacts is already in a merge; undo or confirm it first."


class MergeConfirmed(Conflict):
    code = "merge_confirmed"
    default_message = "The merge is confirmed already; it can no longer be undone."


async def pending_of(
    s: AsyncSession, workspace_id: uuid.UUID, contact_id: uuid.UUID
) -> ContactMerge | None:
    """The pending merge this contact is in, kept or merged away."""
    involved = sa.or_(
        col(ContactMerge.from_contact_id) == contact_id,
        col(ContactMerge.into_contact_id) == contact_id,
    )
    found = await s.exec(
        select(ContactMerge).where(
            ContactMerge.workspace_id == workspace_id, ContactMerge.state == "pending", involved
        )
    )
    return found.first()


class ContactMerger:
    def __init__(self, sessions: Sessions, bus: Bus, ingress: Ingress | None = None) -> None:
        self.sessions = sessions
        self.bus = bus
        self.ingress = ingress

    async def merge(
        self, workspace_id: uuid.UUID, actor: Actor, kept_id: uuid.UUID, other_id: uuid.UUID
    ) -> ContactMerge:
        if kept_id == other_id:
            raise SameContact()
        try:
            async with self.sessions() as s, s.begin():
                merge = await self._merge(s, workspace_id, actor, kept_id, other_id)
        except IntegrityError as e:  # a concurrent merge of the same contact won the race
            raise MergePending() from e
        await self._announce(workspace_id, actor, merge, [kept_id, other_id])
        return merge

    async def _merge(
        self,
        s: AsyncSession,
        workspace_id: uuid.UUID,
        actor: Actor,
        kept_id: uuid.UUID,
        other_id: uuid.UUID,
    ) -> ContactMerge:
        # Both rows locked, in id order so two merges cannot deadlock (on SQLite the
        # database's one write lock, taken before reading: its reads are not otherwise in
        # the transaction); the pending checks below then see any merge committed
        # meanwhile. Neither contact may be in a pending merge, kept or merged away, so no
        # chain or cycle forms while merges are pending.
        if (await s.connection()).dialect.name == "sqlite":
            await s.exec(_SQLITE_WRITE_LOCK)
        locked = await s.exec(
            select(Contact.id)
            .where(Contact.workspace_id == workspace_id, col(Contact.id).in_([kept_id, other_id]))
            .order_by(col(Contact.id))
            .with_for_update()
        )
        if len(locked.all()) != 2:
            raise NotFound("No such contact in this workspace.")
        for contact_id in (kept_id, other_id):
            if await pending_of(s, workspace_id, contact_id) is not None:
                raise MergePending()
        conversations = await _ids(s, Conversation, workspace_id, other_id)
        identities = await _ids(s, ContactIdentity, workspace_id, other_id)
        # Every message of the other contact, in its conversations and in others' (groups):
        # an undo moves back exactly these, never the kept contact's own.
        messages = await _ids(s, Message, workspace_id, other_id)
        merge = ContactMerge(
            workspace_id=workspace_id,
            from_contact_id=other_id,
            into_contact_id=kept_id,
            state="pending",
            conversation_ids=conversations,
            identity_ids=identities,
            message_ids=messages,
            by_user_id=actor.user_id,
        )
        s.add(merge)
        await s.flush()
        await self._move(s, merge, other_id, kept_id)
        await audit.append(
            s,
            by_member(
                workspace_id,
                actor,
                "contact.merged",
                kept_id,
                {"merge_id": str(merge.id), "other_id": str(other_id)},
                "contact",
            ),
        )
        return merge

    async def undo(self, workspace_id: uuid.UUID, actor: Actor, merge_id: uuid.UUID) -> None:
        async with self.sessions() as s, s.begin():
            merge = await self._pending(s, workspace_id, merge_id)
            await self._move(s, merge, merge.into_contact_id, merge.from_contact_id)
            await s.delete(merge)
            await self._audit(s, actor, merge, "contact.merge_undone")
        await self._announce(
            workspace_id, actor, merge, [merge.into_contact_id, merge.from_contact_id]
        )

    async def confirm(
        self, workspace_id: uuid.UUID, actor: Actor, merge_id: uuid.UUID
    ) -> ContactMerge:
        async with self.sessions() as s, s.begin():
            merge = await self._pending(s, workspace_id, merge_id)
            gone, kept = merge.from_contact_id, merge.into_contact_id
            # The row going is locked first: a message stored for it meanwhile either
            # committed already (and moves below) or waits for this transaction.
            await s.exec(
                select(Contact.id)
                .where(Contact.workspace_id == workspace_id, Contact.id == gone)
                .with_for_update()
            )
            # Contacts merged into the one now going: their redirects follow it.
            await s.exec(
                sa.update(ContactMerge)
                .where(
                    col(ContactMerge.workspace_id) == workspace_id,
                    col(ContactMerge.into_contact_id) == gone,
                )
                .values(into_contact_id=kept)
            )
            # Whatever still names the contact going (what arrived while the merge was
            # pending, a new conversation of its own) moves before its row is deleted:
            # its messages, conversations and identities would go with it.
            caught = list(
                await s.exec(
                    select(Conversation.id).where(
                        Conversation.workspace_id == workspace_id, Conversation.contact_id == gone
                    )
                )
            )
            for table in (Message, Conversation, ContactIdentity):
                await s.exec(
                    sa.update(table)
                    .where(
                        col(table.workspace_id) == workspace_id,
                        col(table.contact_id) == gone,
                    )
                    .values(contact_id=kept)
                )
            await s.exec(
                sa.delete(Contact).where(
                    col(Contact.workspace_id) == workspace_id,
                    col(Contact.id) == gone,
                )
            )
            merge.state = "confirmed"
            merge.confirmed_at = utc_now()
            s.add(merge)
            await self._audit(s, actor, merge, "contact.merge_confirmed")
        await self._announce(workspace_id, actor, merge, [kept, gone], caught)
        return merge

    async def _pending(
        self, s: AsyncSession, workspace_id: uuid.UUID, merge_id: uuid.UUID
    ) -> ContactMerge:
        found = await s.exec(
            select(ContactMerge)
            .where(ContactMerge.workspace_id == workspace_id, ContactMerge.id == merge_id)
            .with_for_update()
        )
        merge = found.first()
        if merge is None:
            raise NotFound("No such merge.")
        if merge.state != "pending":
            raise MergeConfirmed()
        return merge

    @staticmethod
    async def _move(
        s: AsyncSession, merge: ContactMerge, source: uuid.UUID, target: uuid.UUID
    ) -> None:
        """Move what the merge names from one contact to the other (both ways: merge, undo):
        its conversations and identities, and its recorded messages that are still the
        source's. In chunks, so a long history is never one huge bound list."""
        workspace_id = merge.workspace_id
        lists: list[tuple[Any, list[str], Any]] = [
            (Conversation, merge.conversation_ids, None),
            (ContactIdentity, merge.identity_ids, None),
            (Message, merge.message_ids, col(Message.contact_id) == source),
        ]
        for table, ids, also in lists:
            for start in range(0, len(ids), CHUNK):
                chunk = [uuid.UUID(i) for i in ids[start : start + CHUNK]]
                where = [col(table.workspace_id) == workspace_id, col(table.id).in_(chunk)]
                if also is not None:
                    where.append(also)
                await s.exec(sa.update(table).where(*where).values(contact_id=target))

    @staticmethod
    async def _audit(s: AsyncSession, actor: Actor, merge: ContactMerge, action: str) -> None:
        data = {"merge_id": str(merge.id), "other_id": str(merge.from_contact_id)}
        await audit.append(
            s,
            by_member(merge.workspace_id, actor, action, merge.into_contact_id, data, "contact"),
        )

    async def _announce(
        self,
        workspace_id: uuid.UUID,
        actor: Actor,
        merge: ContactMerge,
        contacts: list[uuid.UUID],
        also: list[uuid.UUID] | None = None,
    ) -> None:
        """Conversation references cached on the bus and in this process's ingress name
        the contact they were made for: dropped, so the next reply reads the stored owner.
        Then the inboxes reload (both contacts; on confirm the merged-away contact's open
        panels learn it is gone)."""
        moved = [uuid.UUID(c) for c in merge.conversation_ids] + list(also or [])
        if moved:
            await self.bus.forget(str(workspace_id), [f"conv:{c}" for c in moved])
            if self.ingress is not None:
                self.ingress.forget(workspace_id, moved)
        for contact_id in contacts:
            data = ContactUpdated(contact_id=contact_id, by=actor.user_id)
            await self.bus.publish(str(workspace_id), data.NAME, data.dump())


async def merge_out(s: AsyncSession, merge: ContactMerge) -> ContactMergeOut:
    other = await s.exec(select(Contact.name).where(Contact.id == merge.from_contact_id))
    return ContactMergeOut(
        id=merge.id,
        contact_id=merge.into_contact_id,
        other_id=merge.from_contact_id,
        other_name=other.first(),
        state="confirmed" if merge.state == "confirmed" else "pending",
        conversation_ids=[uuid.UUID(c) for c in merge.conversation_ids],
        by=merge.by_user_id,
        created_at=merge.created_at,
        confirmed_at=merge.confirmed_at,
    )


async def pending_out(
    sessions: Sessions, workspace_id: uuid.UUID, contact_id: uuid.UUID
) -> ContactMergeOut | None:
    """The contact panel's `merge`: the pending merge it is in, if any."""
    async with sessions() as s:
        merge = await pending_of(s, workspace_id, contact_id)
        return None if merge is None else await merge_out(s, merge)


async def one_person(
    sessions: Sessions, workspace_id: uuid.UUID, contact_id: uuid.UUID
) -> list[uuid.UUID]:
    """For an erasure (`hub.privacy.deletions`): the other contact ids that are this person.
    A pending merge the contact is in is undone first (audited as the system's
    `contact.merge_undone`), so each contact has its own rows back and both are erased as
    usual; a confirmed merge's merged-away ids are named too: their rows are gone, but
    messages still on the stream may carry them. Asked for a confirmed merged-away id, the
    person is the contact it went into (followed along a chain): that one is erased whole."""
    async with sessions() as s, s.begin():
        found: list[uuid.UUID] = []
        # A confirmed merged-away id: the person is the contact it went into, erased whole.
        head = contact_id
        for _ in range(8):
            kept = await s.exec(
                select(ContactMerge.into_contact_id).where(
                    ContactMerge.workspace_id == workspace_id,
                    ContactMerge.from_contact_id == head,
                    ContactMerge.state == "confirmed",
                )
            )
            into = kept.first()
            if into is None or into == contact_id:
                break
            head = into
        if head != contact_id:
            found.append(head)
        merge = await pending_of(s, workspace_id, head)
        if merge is not None:
            await ContactMerger._move(s, merge, merge.into_contact_id, merge.from_contact_id)
            await s.delete(merge)
            data = {"merge_id": str(merge.id), "other_id": str(merge.from_contact_id)}
            await audit.append(
                s,
                audit.record(
                    workspace_id,
                    "contact.merge_undone",
                    "contact",
                    merge.into_contact_id,
                    detail=data | {"reason": "erasure"},
                ),
            )
            found += [merge.from_contact_id, merge.into_contact_id]
        for into in [head, *found]:
            confirmed = await s.exec(
                select(ContactMerge.from_contact_id).where(
                    ContactMerge.workspace_id == workspace_id,
                    ContactMerge.into_contact_id == into,
                    ContactMerge.state == "confirmed",
                )
            )
            found += list(confirmed)
        return [c for c in dict.fromkeys(found) if c != contact_id]


async def merges_of(
    sessions: Sessions, workspace_id: uuid.UUID, contact_id: uuid.UUID
) -> list[ContactMergeOut]:
    """Every merge the contact is in, pending or confirmed (for its export)."""
    involved = sa.or_(
        col(ContactMerge.from_contact_id) == contact_id,
        col(ContactMerge.into_contact_id) == contact_id,
    )
    async with sessions() as s:
        rows = await s.exec(
            select(ContactMerge)
            .where(ContactMerge.workspace_id == workspace_id, involved)
            .order_by(col(ContactMerge.created_at))
        )
        return [await merge_out(s, m) for m in rows.all()]


async def _ids(s: Any, model: Any, workspace_id: uuid.UUID, contact_id: uuid.UUID) -> list[str]:
    """The ids of the workspace's rows of `model` (conversations, identities, messages) that
    name the contact."""
    found = await s.exec(
        select(model.id).where(model.workspace_id == workspace_id, model.contact_id == contact_id)
    )
    return [str(row) for row in found]
