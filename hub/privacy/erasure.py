"""Erasing one person (a contact of one workspace) from everywhere the hub keeps them.

The same engine serves Meta's data-deletion callback and the admins' deletion requests
(`hub.privacy.deletions` records the progress). Each contact is erased in steps; each step is
idempotent, and the request is saved after every step, so a crash resumes at the step it
was in:

1. mark: the bus remembers `erased:<contact id>` = the workspace stream's newest id, for
   `TOMBSTONE_TTL_S`. The persist group skips the contact's `message.created` and
   `contact.updated` events up to that id (`unerased`): an event a worker had already read
   when its stream entry went (in memory, or retried through a database outage) is not
   written back, and a profile fetched for such an event is not published
   (`hub.workers.profiles`). Later events are new: a person who writes again is a contact again.
2. stream: the stream entries up to that id that mention the contact, its conversations
   or its messages are deleted (`Bus.purge`); pending ones are never handed out again.
   Each erased conversation gets a mark too (`erased-conversation:<id>`): the hooks group
   sends none of their events up to it (`unerased(conversations=True)`), so an edit or a
   label change it had read already makes no delivery after step 4 took them back.
3. keys: what the bus remembers about them (the conversation directory, profile fetches,
   send claims, platform-id lookups) is forgotten, and this process's conversation cache
   dropped (other web nodes' caches expire within HUB_CACHE_TTL_S).
4. database: messages (their attachment references live in them), read positions,
   labels, platform changes still waiting for a message of theirs (`hub.workers.waiting`),
   outbound-webhook deliveries not yet made that name them (`hub.privacy.outbox`: deleted,
   never sent), conversations, identities and the contact, in one transaction. The files of
   messages deleted from a conversation that is not erased whole (the person's comment in
   a thread opened by someone else) are noted on the target for the next step. A group
   conversation is shared: the person's own messages go, and the group passes to another
   participant (it goes whole only when no one else wrote there).
5. files: the media store's objects of the erased conversations (each conversation's prefix,
   thumbnails included) and the noted files, after the rows, so that nothing still shown
   points at a deleted file. Deleting what is already gone is a no-op: a retried step
   finishes what an interrupted one began.
6. announce: `contact.deleted` {"contact_id", "conversation_ids"} for agents, after the
   rest, so that an inbox that reloads does not find the person again.

A target with a `channel_id` is erased from that channel only (a disconnected channel's data,
`hub.channels.purge`): its identity there, its conversations and messages in that channel, the
same steps scoped to the channel (the mark is `erased:<contact id>:<channel id>` and
only holds back that channel's messages; `contact.deleted` then carries the `channel_id`,
and the contact row goes only when nothing of the person is left).

Every queue a payload of theirs may wait in is reached: the workspace stream is the only
bus queue (the persist, send, media and hooks groups' pending work is its entries: step 2),
the bus's keys (step 3), waiting changes and outbound-webhook deliveries (step 4). The bus's
de-duplication keys (`msg:<channel>:<platform message id>` -> event id) and a web-chat
visitor's send counter (`sends:<channel>:<visitor id>`, a one-minute window) stay until they
expire: they hold platform ids and no personal data, and the first keeps a platform's
redelivery of an erased message from creating it again.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from hub.bus import Bus, Event, parse_id
from hub.media.library import MediaLibrary, files_of
from hub.privacy import outbox
from hub.realtime.ingress import Ingress
from hub.storage.models import Mention
from hub.storage.store import Sessions
from hub.workers.persist import CONTACTS, CONVERSATIONS, IDENTITIES, LABELS, MESSAGES, READS
from hub.workers.waiting import WAITING
from schemas.events import ContactDeleted, ContactUpdated, MessageCreated
from schemas.message import MessageKind, conversation_id_for

ATTRIBUTES = SQLModel.metadata.tables["attribute_values"]
MENTIONS = Mention.__table__  # type: ignore[attr-defined]

GROUP = MessageKind.GROUP.value

TOMBSTONE_TTL_S = 30 * 24 * 3600
STEPS = ("mark", "stream", "keys", "database", "files", "announce")
COUNTS = ("contacts", "conversations", "messages", "stream_entries", "files")

Counts = dict[str, int]


@dataclass
class Target:
    """One contact to erase and how far it got: ids of our own rows and a stream id only."""

    workspace_id: str
    contact_id: str
    step: int = 0
    up_to: str = "0-0"  # the stream's newest id when it was marked
    conversations: list[str] = field(default_factory=list)
    found: int = 0  # rows and entries erased: nothing found, nothing announced
    channel_id: str | None = None  # only what the contact has in this channel
    files: list[str] = field(default_factory=list)  # "<conversation id>/<file>" outside them

    @property
    def done(self) -> bool:
        return self.step >= len(STEPS)

    def as_json(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "contact_id": self.contact_id,
            "step": self.step,
            "up_to": self.up_to,
            "conversations": self.conversations,
            "found": self.found,
            "channel_id": self.channel_id,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Target:
        return cls(
            str(value["workspace_id"]),
            str(value["contact_id"]),
            int(value.get("step", 0)),
            str(value.get("up_to", "0-0")),
            [str(c) for c in value.get("conversations", [])],
            int(value.get("found", 0)),
            str(value["channel_id"]) if value.get("channel_id") else None,
            [str(f) for f in value.get("files", [])],
        )

    @property
    def channel(self) -> uuid.UUID | None:
        return uuid.UUID(self.channel_id) if self.channel_id else None


class Erasure:
    def __init__(
        self, sessions: Sessions, bus: Bus, ingress: Ingress, library: MediaLibrary
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.ingress = ingress
        self.library = library
        self._steps: dict[str, Callable[[Target, Counts], Awaitable[None]]] = {
            "mark": self._mark,
            "stream": self._stream,
            "keys": self._keys,
            "database": self._database,
            "files": self._files,
            "announce": self._announce,
        }

    async def step(self, target: Target, counts: Counts) -> None:
        """Carry out the target's next step and move it on (the caller saves it)."""
        await self._steps[STEPS[target.step]](target, counts)
        target.step += 1

    async def _mark(self, target: Target, counts: Counts) -> None:
        target.up_to = await self.bus.last_id(target.workspace_id)
        await self.bus.remember(
            target.workspace_id,
            tombstone(target.contact_id, target.channel_id),
            target.up_to,
            ttl_s=TOMBSTONE_TTL_S,
        )

    async def _stream(self, target: Target, counts: Counts) -> None:
        workspace_id, contact_id = uuid.UUID(target.workspace_id), uuid.UUID(target.contact_id)
        channel = target.channel
        async with self.sessions() as orm:
            s = await orm.connection()
            conversations = await _conversation_ids(s, workspace_id, contact_id, channel)
            identities = (
                await s.execute(
                    sa.select(IDENTITIES.c.channel_id, IDENTITIES.c.platform_user_id).where(
                        IDENTITIES.c.workspace_id == workspace_id,
                        IDENTITIES.c.contact_id == contact_id,
                        *_in_channel(IDENTITIES, channel),
                    )
                )
            ).all()
            messages = await _messages(s, workspace_id, contact_id, conversations, channel)
        # A direct conversation is addressed by the person's platform id: one the database
        # has not stored yet (still on its way through the stream) is found this way too.
        conversations |= {
            conversation_id_for(workspace_id, channel_id, platform_user_id)
            for channel_id, platform_user_id in identities
        }
        target.conversations = sorted(str(c) for c in conversations)
        # Their conversations' other events (an edit, a label) that the hooks group has read
        # already are not made into deliveries after the database step took them back.
        await asyncio.gather(
            *(
                self.bus.remember(
                    target.workspace_id,
                    conversation_tombstone(c),
                    target.up_to,
                    ttl_s=TOMBSTONE_TTL_S,
                )
                for c in target.conversations
            )
        )
        ids = {*target.conversations, *(str(m.id) for m in messages)}
        if channel is None:  # entries naming only the person may be of another channel
            ids.add(target.contact_id)
        purged = await self.bus.purge(target.workspace_id, ids, up_to=target.up_to)
        counts["stream_entries"] += purged
        target.found += purged

    async def _keys(self, target: Target, counts: Counts) -> None:
        workspace_id, contact_id = uuid.UUID(target.workspace_id), uuid.UUID(target.contact_id)
        conversations = {uuid.UUID(c) for c in target.conversations}
        async with self.sessions() as orm:
            messages = await _messages(
                await orm.connection(), workspace_id, contact_id, conversations, target.channel
            )
        keys = [f"conv:{c}" for c in target.conversations]
        if target.channel is None:
            keys.append(f"profile:{target.contact_id}")
        for message in messages:
            keys += [f"send:{message.id}", f"sent:{message.id}"]
            if message.direction == "out":
                keys.append(f"pmid:{message.channel_id}:{message.platform_message_id}")
        await self.bus.forget(target.workspace_id, keys)
        self.ingress.forget(workspace_id, conversations)

    async def _database(self, target: Target, counts: Counts) -> None:
        workspace_id, contact_id = uuid.UUID(target.workspace_id), uuid.UUID(target.contact_id)
        channel = target.channel
        async with self.sessions() as orm, orm.begin():
            s = await orm.connection()
            listed = {uuid.UUID(c) for c in target.conversations}
            conversations = listed | await _conversation_ids(s, workspace_id, contact_id, channel)
            # The groups the person wrote in stay for the others (see _hand_over_groups).
            alone, groups = await _hand_over_groups(s, workspace_id, contact_id, channel)
            conversations |= alone
            scope = sa.and_(
                MESSAGES.c.workspace_id == workspace_id,
                *_in_channel(MESSAGES, channel),
                sa.or_(
                    MESSAGES.c.contact_id == contact_id,
                    MESSAGES.c.conversation_id.in_(conversations),
                ),
            )
            # The person's messages in conversations that stay: their files go one by one.
            strays = await s.execute(
                sa.select(MESSAGES.c.conversation_id, MESSAGES.c.attachments).where(
                    scope, MESSAGES.c.conversation_id.not_in(conversations)
                )
            )
            noted = {
                f"{conversation_id}/{file}"
                for conversation_id, attachments in strays.all()
                for file in files_of(attachments or [])
            }
            # What names the person in a queued payload: their conversations and messages,
            # and their contact id unless only one channel's part of them goes.
            messages = await _messages(s, workspace_id, contact_id, conversations, channel)
            mentioned = {str(c) for c in conversations} | {str(m.id) for m in messages}
            if channel is None:
                mentioned.add(target.contact_id)
            removed = {
                "messages": await _delete(s, sa.delete(MESSAGES).where(scope)),
                "reads": await _delete(
                    s, sa.delete(READS).where(READS.c.conversation_id.in_(conversations))
                ),
                "labels": await _delete(
                    s, sa.delete(LABELS).where(LABELS.c.conversation_id.in_(conversations))
                ),
                # Agents @mentioned in notes of the person's conversations (hub.notify.mentions):
                # a mention has no key to its conversation, so it goes by name here.
                "mentions": await _delete(
                    s,
                    sa.delete(MENTIONS).where(
                        MENTIONS.c.workspace_id == workspace_id,
                        MENTIONS.c.conversation_id.in_(conversations),
                    ),
                ),
                # Custom attribute values: the conversations', and the contact's when the
                # contact goes whole (a channel's erasure leaves them to the contact's row,
                # whose foreign key takes them if it goes too).
                "attributes": await _delete(
                    s,
                    sa.delete(ATTRIBUTES).where(
                        ATTRIBUTES.c.workspace_id == workspace_id,
                        sa.or_(
                            ATTRIBUTES.c.conversation_id.in_(conversations),
                            *([ATTRIBUTES.c.contact_id == contact_id] if channel is None else []),
                        ),
                    ),
                ),
                # Platform changes still waiting for a message of theirs (an edit, a status).
                "waiting": await _delete(
                    s,
                    sa.delete(WAITING).where(
                        WAITING.c.workspace_id == workspace_id,
                        *_in_channel(WAITING, channel),
                        WAITING.c.conversation_id.in_(conversations),
                    ),
                ),
                # Outbound webhooks not yet delivered still hold the person (hub.privacy.outbox).
                "deliveries": await outbox.withdraw(s, workspace_id, conversations, mentioned),
                "conversations": await _delete(
                    s,
                    sa.delete(CONVERSATIONS).where(
                        CONVERSATIONS.c.workspace_id == workspace_id,
                        *_in_channel(CONVERSATIONS, channel),
                        sa.or_(
                            CONVERSATIONS.c.contact_id == contact_id,
                            CONVERSATIONS.c.id.in_(conversations),
                        ),
                    ),
                ),
                "identities": await _delete(
                    s,
                    sa.delete(IDENTITIES).where(
                        IDENTITIES.c.workspace_id == workspace_id,
                        IDENTITIES.c.contact_id == contact_id,
                        *_in_channel(IDENTITIES, channel),
                    ),
                ),
                "contacts": await _delete(
                    s,
                    sa.delete(CONTACTS).where(
                        CONTACTS.c.workspace_id == workspace_id,
                        CONTACTS.c.id == contact_id,
                        *([] if channel is None else _nothing_left(contact_id)),
                    ),
                ),
            }
            if channel is not None and removed["contacts"]:  # nothing of the person is left
                removed["deliveries"] += await outbox.withdraw(
                    s, workspace_id, [], [target.contact_id]
                )
        for name in ("messages", "conversations", "contacts"):
            counts[name] += removed[name]
        target.found += sum(removed.values())
        target.conversations = sorted(str(c) for c in conversations)
        target.files = sorted(set(target.files) | noted)
        if groups:  # their cached records named the person: the next message reads the new
            await self.bus.forget(target.workspace_id, [f"conv:{g}" for g in groups])
            self.ingress.forget(workspace_id, groups)

    async def _files(self, target: Target, counts: Counts) -> None:
        workspace_id = uuid.UUID(target.workspace_id)
        deleted = await self.library.forget(
            workspace_id, [uuid.UUID(c) for c in target.conversations]
        )
        for noted in target.files:
            conversation_id, file = noted.split("/", 1)
            deleted += await self.library.forget_files(
                workspace_id, uuid.UUID(conversation_id), [file]
            )
        counts["files"] += deleted
        target.found += deleted

    async def _announce(self, target: Target, counts: Counts) -> None:
        if not target.found:
            return
        data = ContactDeleted(
            contact_id=uuid.UUID(target.contact_id),
            conversation_ids=[uuid.UUID(c) for c in target.conversations],
            # The contact itself may stay: only these go.
            channel_id=uuid.UUID(target.channel_id) if target.channel_id is not None else None,
        )
        # No conversation id on the entry: agents only, never the person's own socket.
        await self.bus.publish(target.workspace_id, data.NAME, data.dump())


def tombstone(contact_id: str, channel_id: str | None = None) -> str:
    return f"erased:{contact_id}:{channel_id}" if channel_id else f"erased:{contact_id}"


async def erased_after(
    bus: Bus, workspace_id: str, contact_id: str, event_id: str, channel_id: str | None = None
) -> bool:
    """Whether the contact was erased after this event of theirs (so what it led to, such as
    a profile fetched for it, must not be stored); with `channel_id`, an erasure of only
    what the contact has in that channel counts too."""
    keys = [tombstone(contact_id)] + ([tombstone(contact_id, channel_id)] if channel_id else [])
    marks = await asyncio.gather(*(bus.recall(workspace_id, key) for key in keys))
    return any(mark is not None and parse_id(event_id) <= parse_id(mark) for mark in marks)


def conversation_tombstone(conversation_id: str) -> str:
    return f"erased-conversation:{conversation_id}"


async def unerased(
    bus: Bus, workspace_id: str, events: Sequence[Event], *, conversations: bool = False
) -> list[Event]:
    """The events of a batch that may be stored: a `message.created` or `contact.updated` of
    an erased contact is dropped when it is not newer than the erasure's mark; with
    `conversations` (what is sent out: outbound webhooks), so is any other event of an
    erased conversation (an edit, a status, a label change)."""
    keys = [_tombstones_of(event, conversations) for event in events]
    distinct = list(dict.fromkeys(key for some in keys for key in some))
    # Concurrently: one round trip's wait for the batch, not one per contact.
    found = await asyncio.gather(*(bus.recall(workspace_id, key) for key in distinct))
    marks = dict(zip(distinct, found, strict=True))
    kept = []
    for event, some in zip(events, keys, strict=True):
        if not any(
            (mark := marks[key]) is not None and parse_id(event.id) <= parse_id(mark)
            for key in some
        ):
            kept.append(event)
    return kept


def _tombstones_of(event: Event, conversations: bool = False) -> list[str]:
    """The marks that may hold the event back: its contact's, and for a message its
    contact's in its channel (a channel's data erased, `Target.channel_id`); with
    `conversations`, its conversation's for the other events."""
    if event.name not in (MessageCreated.NAME, ContactUpdated.NAME):
        if not conversations:
            return []
        conversation = event.conversation_id or _conversation_of(event)
        return [conversation_tombstone(conversation)] if conversation else []
    try:
        data = event.typed()
    except ValueError:
        return []
    if isinstance(data, MessageCreated):
        contact = str(data.message.contact_id)
        return [tombstone(contact), tombstone(contact, str(data.message.channel_id))]
    if isinstance(data, ContactUpdated):
        return [tombstone(str(data.contact_id))]
    return []


def _conversation_of(event: Event) -> str:
    """The conversation an event names in its data ('' for none), read only when the
    event's text holds a conversation id at all."""
    if '"conversation_id"' not in event.data:
        return ""
    try:
        found = json.loads(event.data).get("conversation_id")
    except ValueError:
        return ""
    return found if isinstance(found, str) else ""


def _in_channel(table: sa.Table, channel_id: uuid.UUID | None) -> list[sa.ColumnElement[bool]]:
    return [] if channel_id is None else [table.c.channel_id == channel_id]


def _nothing_left(contact_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    """A channel-scoped erasure removes the contact only when it has no other identity and
    no other conversation (run in the same transaction, after those deletes)."""
    return [
        ~sa.exists().where(IDENTITIES.c.contact_id == contact_id),
        ~sa.exists().where(CONVERSATIONS.c.contact_id == contact_id),
    ]


async def _conversation_ids(
    s: AsyncConnection,
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    channel_id: uuid.UUID | None = None,
) -> set[uuid.UUID]:
    rows = await s.execute(
        sa.select(CONVERSATIONS.c.id).where(
            CONVERSATIONS.c.workspace_id == workspace_id,
            CONVERSATIONS.c.contact_id == contact_id,
            CONVERSATIONS.c.kind != GROUP,  # shared with others: see _hand_over_groups
            *_in_channel(CONVERSATIONS, channel_id),
        )
    )
    return {row[0] for row in rows.all()}


async def _hand_over_groups(
    s: AsyncConnection,
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    channel_id: uuid.UUID | None,
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Keep the groups the person wrote in for the others: each one the person leads passes
    to its newest other participant, and the business's replies filed under the person (a
    reply names whoever the conversation record named when it was sent) pass to the group's
    lead, so that only what the person wrote goes. Answers the groups with no one else, to be
    erased whole, and the groups that stay, whose cached records name the person."""
    led = sa.select(CONVERSATIONS.c.id).where(
        CONVERSATIONS.c.workspace_id == workspace_id,
        CONVERSATIONS.c.kind == GROUP,
        *_in_channel(CONVERSATIONS, channel_id),
        sa.or_(
            CONVERSATIONS.c.contact_id == contact_id,
            CONVERSATIONS.c.id.in_(
                sa.select(MESSAGES.c.conversation_id).where(
                    MESSAGES.c.workspace_id == workspace_id,
                    MESSAGES.c.contact_id == contact_id,
                    MESSAGES.c.kind == GROUP,
                )
            ),
        ),
    )
    alone: set[uuid.UUID] = set()
    kept: set[uuid.UUID] = set()
    for (conversation_id,) in (await s.execute(led)).all():
        lead = await s.scalar(
            sa.select(CONVERSATIONS.c.contact_id).where(CONVERSATIONS.c.id == conversation_id)
        )
        if lead == contact_id:
            lead = await s.scalar(
                sa.select(MESSAGES.c.contact_id)
                .where(
                    MESSAGES.c.workspace_id == workspace_id,
                    MESSAGES.c.conversation_id == conversation_id,
                    MESSAGES.c.contact_id != contact_id,
                    MESSAGES.c.direction == "in",
                )
                .order_by(MESSAGES.c.sent_at.desc())
                .limit(1)
            )
            if lead is None:
                alone.add(conversation_id)
                continue
            await s.execute(
                sa.update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == conversation_id)
                .values(contact_id=lead)
            )
        await s.execute(
            sa.update(MESSAGES)
            .where(
                MESSAGES.c.workspace_id == workspace_id,
                MESSAGES.c.conversation_id == conversation_id,
                MESSAGES.c.contact_id == contact_id,
                MESSAGES.c.direction == "out",
            )
            .values(contact_id=lead)
        )
        kept.add(conversation_id)
    return alone, kept


async def _messages(
    s: AsyncConnection,
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    conversations: set[uuid.UUID],
    channel_id: uuid.UUID | None = None,
) -> list[Any]:
    rows = await s.execute(
        sa.select(
            MESSAGES.c.id,
            MESSAGES.c.channel_id,
            MESSAGES.c.platform_message_id,
            MESSAGES.c.direction,
        ).where(
            MESSAGES.c.workspace_id == workspace_id,
            *_in_channel(MESSAGES, channel_id),
            sa.or_(
                # In a group, the business's replies may be filed under the person: not theirs.
                sa.and_(
                    MESSAGES.c.contact_id == contact_id,
                    sa.or_(MESSAGES.c.kind != GROUP, MESSAGES.c.direction == "in"),
                ),
                MESSAGES.c.conversation_id.in_(conversations),
            ),
        )
    )
    return list(rows.all())


async def _delete(s: AsyncConnection, statement: sa.Delete) -> int:
    result = await s.execute(statement)
    return int(result.rowcount or 0)
