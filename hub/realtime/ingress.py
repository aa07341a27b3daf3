"""Everything that enters the tenant stream goes through here: visitor and agent messages,
typing, read positions and presence. Adapters' webhooks will use `publish_message` too.

Inbound de-duplication happens here, before publishing, keyed on (channel, platform
message id); for sends from our own clients the platform message id is derived from
the sender and its `client_id`, which makes a retried send harmless.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from adapters import registry
from adapters.base import ChannelContext, MessageChange, NewMessage, Parsed
from hub.accounts.auth import Principal, VisitorClaims
from hub.bus import Bus, Published
from hub.errors import BadRequest, NotFound, RateLimited
from hub.storage.cache import Cached
from hub.storage.store import Store
from schemas.events import (
    AgentRead,
    ChannelStatus,
    ChannelUpdated,
    Contact,
    ContactRead,
    ContactUpdated,
    ConversationChanges,
    ConversationUpdated,
    MessageChanges,
    MessageCreated,
    MessageUpdated,
    Party,
    PresenceChanged,
    PresenceState,
    ReactionChange,
    ReactionSend,
    TypingChanged,
)
from schemas.lean import lean
from schemas.message import (
    SYSTEM_SENDER_ID,
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    contact_id_for,
    conversation_id_for,
    message_id_for,
    utc_now,
)

# Conversation facts never change, so the directory entry only needs to outlive the
# conversation's first days; later lookups find the stored conversation.
DIRECTORY_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ConversationRef:
    id: uuid.UUID
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    contact_id: uuid.UUID
    channel_kind: str
    kind: str
    thread: str = ""  # the platform's address of the other party (empty for web chat)

    def encode(self) -> str:
        return f"{self.channel_id}|{self.contact_id}|{self.channel_kind}|{self.kind}|{self.thread}"

    @classmethod
    def decode(
        cls, conversation_id: uuid.UUID, workspace_id: uuid.UUID, value: str
    ) -> ConversationRef:
        channel_id, contact_id, channel_kind, kind, thread = value.split("|", 4)
        return cls(
            conversation_id,
            workspace_id,
            uuid.UUID(channel_id),
            uuid.UUID(contact_id),
            channel_kind,
            kind,
            thread,
        )

    def message(
        self,
        platform_message_id: str,
        client_id: str,
        text: str | None,
        attachments: list[dict[str, object]],
        *,
        private_reply: bool = False,
        reply_to: str | None = None,
        note: bool = False,
        direction: Direction,
        status: DeliveryStatus,
        sender: Sender,
    ) -> Message:
        """A new message in this conversation, sent now by one of our own clients."""
        return Message(
            id=message_id_for(self.channel_id, platform_message_id),
            workspace_id=self.workspace_id,
            channel_id=self.channel_id,
            conversation_id=self.id,
            contact_id=self.contact_id,
            channel_kind=self.channel_kind,
            kind=self.kind,
            direction=direction,
            sender=sender,
            text=text,
            attachments=attachments,
            platform_message_id=platform_message_id,
            client_id=client_id,
            sent_at=utc_now(),
            status=status,
            private_reply=private_reply and self.kind == "comment",
            reply_to=reply_to,
            note=note,
        )


def message_created(
    message: Message, contact: Contact | Mapping[str, object] | None = None, thread: str = ""
) -> MessageCreated:
    if contact is not None and not isinstance(contact, Contact):
        contact = Contact.model_validate(contact)
    return MessageCreated(message=message, contact=contact, thread=thread or None)


def message_event(
    message: Message, contact: Contact | Mapping[str, object] | None = None, thread: str = ""
) -> str:
    """The data of the message's `message.created`."""
    return message_created(message, contact, thread).dump()


class Ingress:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        *,
        cache_size: int = 10_000,
        cache_ttl_s: float = 30.0,
        presence_ttl_s: int = 90,
    ) -> None:
        self.bus = bus
        self.store = store
        self.presence_ttl_s = presence_ttl_s
        self._conversations: Cached[tuple[uuid.UUID, uuid.UUID], ConversationRef] = Cached(
            cache_ttl_s, cache_size
        )

    async def publish_message(
        self,
        message: Message,
        contact: Contact | None = None,
        *,
        thread: str = "",
        inbound: bool = True,
        agents_only: bool = False,
    ) -> Published:
        workspace_id = str(message.workspace_id)
        known = (message.workspace_id, message.conversation_id)
        if inbound and self._conversations.get(known) is None:
            ref = ConversationRef(
                message.conversation_id,
                message.workspace_id,
                message.channel_id,
                message.contact_id,
                message.channel_kind,
                message.kind,
                thread,
            )
            # Agents on any node may answer before the worker has stored the conversation.
            await self.bus.remember(
                workspace_id, f"conv:{ref.id}", ref.encode(), ttl_s=DIRECTORY_TTL_S
            )
            self._conversations.put(known, ref)
        data = message_created(message, contact, thread)
        return await self.bus.publish(
            workspace_id,
            MessageCreated.NAME,
            data.dump(),
            # No conversation id on the stream entry: the contact's socket never gets it.
            conversation_id="" if agents_only else str(message.conversation_id),
            dedupe_key=f"msg:{message.channel_id}:{message.platform_message_id}",
            # Protocol v2's data, made once here so the fan-out never encodes a message.
            lean=lean(data),
        )

    async def settle(self, *workspace_ids: uuid.UUID | str) -> None:
        """Before an ack to a client or a platform: once per batch, wait until what was
        published is durable as HUB_BUS_DURABLE_ACK asks (`NotDurable`, the retryable
        `unavailable`, when it is not in time; at once when the mode is off)."""
        await self.bus.settle(map(str, workspace_ids))  # lazy: read only when a mode is on

    # Web chat visitors

    @staticmethod
    def visitor_conversation(claims: VisitorClaims) -> ConversationRef:
        contact_id = contact_id_for(claims.workspace_id, claims.channel_id, claims.visitor_id)
        return ConversationRef(
            id=conversation_id_for(claims.workspace_id, claims.channel_id, claims.visitor_id),
            workspace_id=claims.workspace_id,
            channel_id=claims.channel_id,
            contact_id=contact_id,
            channel_kind=ChannelKind.WEBCHAT,
            kind="dm",
        )

    async def visitor_message(
        self,
        claims: VisitorClaims,
        client_id: str,
        text: str | None,
        attachments: list[dict[str, object]],
        name: str | None = None,
    ) -> tuple[uuid.UUID, Published]:
        ref = self.visitor_conversation(claims)
        message = ref.message(
            f"v:{claims.visitor_id}:{client_id}",
            client_id,
            text,
            attachments,
            direction=Direction.IN,
            status=DeliveryStatus.RECEIVED,
            sender=Sender(type=SenderType.CONTACT, id=str(ref.contact_id), name=name),
        )
        contact = Contact(id=ref.contact_id, name=name, platform_user_id=claims.visitor_id)
        return message.id, await self.publish_message(message, contact)

    async def limit_visitor(self, visitor: VisitorClaims, per_minute: int) -> None:
        """At most `per_minute` sends per visitor (by socket or with files), counted on the bus
        so the limit holds across nodes and reconnects (a retried send counts too)."""
        sent = await self.bus.count(
            str(visitor.workspace_id),
            f"sends:{visitor.channel_id}:{visitor.visitor_id}",
            window_s=60,
        )
        if sent > per_minute:
            raise RateLimited(f"A visitor may send {per_minute} messages a minute; wait a moment.")

    async def visitor_profile(
        self, claims: VisitorClaims, name: str | None, email: str | None
    ) -> Published:
        """What a visitor said about itself (the pre-chat form), for agents only; the persist
        group creates the contact if the visitor has not written yet."""
        ref = self.visitor_conversation(claims)
        data = ContactUpdated(contact_id=ref.contact_id, name=name, email=email)
        return await self.bus.publish(str(claims.workspace_id), data.NAME, data.dump())

    # Agents

    async def conversation(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationRef:
        async def load() -> ConversationRef:
            remembered = await self.bus.recall(str(workspace_id), f"conv:{conversation_id}")
            if remembered is not None:
                return ConversationRef.decode(conversation_id, workspace_id, remembered)
            row = await self.store.conversation(workspace_id, conversation_id)
            if row is None:
                raise NotFound("No such conversation in this workspace.")
            channel = await self.store.channel(workspace_id, row.channel_id)
            if channel is None:
                raise NotFound("The conversation's channel is gone.")
            return ConversationRef(
                row.id,
                row.workspace_id,
                row.channel_id,
                row.contact_id,
                channel.kind,
                row.kind,
                row.thread or "",
            )

        return await self._conversations.load((workspace_id, conversation_id), load)

    def forget(self, workspace_id: uuid.UUID, conversation_ids: Iterable[uuid.UUID]) -> None:
        """Drop erased conversations from this process's cache."""
        for conversation_id in conversation_ids:
            self._conversations.forget((workspace_id, conversation_id))

    async def agent_message(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        client_id: str,
        text: str | None,
        attachments: list[dict[str, object]],
        private_reply: bool = False,
        reply_to: str | None = None,
        note: bool = False,
    ) -> tuple[uuid.UUID, Published]:
        ref = await self.conversation(principal.workspace_id, conversation_id)
        # Web chat delivers through the stream itself; platform channels are sent by the
        # worker's send group, which reports the status back (adapters issue).
        webchat = ref.channel_kind == ChannelKind.WEBCHAT
        message = ref.message(
            f"a:{principal.user_id}:{client_id}",
            client_id,
            text,
            attachments,
            private_reply=private_reply,
            reply_to=reply_to,
            note=note,
            direction=Direction.OUT,
            # Notes and web chat only travel the stream; platform replies wait for the send group.
            status=DeliveryStatus.SENT if webchat or note else DeliveryStatus.PENDING,
            sender=Sender(
                type=SenderType.AGENT, id=str(principal.user_id), name=principal.name or None
            ),
        )
        return message.id, await self.publish_message(message, inbound=False, agents_only=note)

    async def system_message(
        self,
        ref: ConversationRef,
        key: str,
        text: str,
        *,
        note: bool = False,
        private_reply: bool = False,
        reply_to: str | None = None,
    ) -> Published:
        """A message the hub sends by itself (an auto-reply) into the conversation: to the
        contact like an agent's reply, sent by the send group on platform channels; or, as a
        `note`, for agents only (what an automation rule did); under a comment, in public or
        as a `private_reply` to the comment `reply_to`. `key` makes its id: the same key in
        the same conversation is one message, published once."""
        webchat = ref.channel_kind == ChannelKind.WEBCHAT
        message = ref.message(
            f"s:{ref.id}:{key}",
            key[:100],
            text,
            [],
            note=note,
            private_reply=private_reply,
            reply_to=reply_to,
            direction=Direction.OUT,
            status=DeliveryStatus.SENT if webchat or note else DeliveryStatus.PENDING,
            sender=Sender(type=SenderType.SYSTEM, id=SYSTEM_SENDER_ID),
        )
        return await self.publish_message(message, inbound=False, agents_only=note)

    async def change_conversation(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        changes: ConversationChanges | Mapping[str, object],
    ) -> Published:
        """Status, assignment or snooze, for every agent's inbox (not the visitor's)."""
        ref = await self.conversation(principal.workspace_id, conversation_id)
        data = ConversationUpdated(
            conversation_id=ref.id,
            changes=ConversationChanges.model_validate(changes),
            by=principal.user_id,
        )
        return await self.bus.publish(str(principal.workspace_id), data.NAME, data.dump())

    async def agent_reaction(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        client_id: str,
        platform_message_id: str,
        emoji: str,
    ) -> Published:
        """An agent reacts to a message (an empty emoji takes the reaction back): shown at
        once as `message.updated`, and sent to the platform by the send group."""
        ref = await self.conversation(principal.workspace_id, conversation_id)
        adapter = registry.get(ref.channel_kind)
        if adapter is None or not adapter.sends_reactions:
            raise BadRequest("Reactions are sent on WhatsApp conversations.")
        reaction = ReactionChange(
            emoji=emoji or None,
            action="react" if emoji else "unreact",
            by=f"agent:{principal.user_id}",
        )
        data = MessageUpdated(
            channel_id=ref.channel_id,
            conversation_id=ref.id,
            platform_message_id=platform_message_id,
            message_id=message_id_for(ref.channel_id, platform_message_id),
            changes=MessageChanges(reaction=reaction),
            send=ReactionSend(reaction=emoji, client_id=client_id),
        )
        return await self.bus.publish(
            str(ref.workspace_id),
            data.NAME,
            data.dump(),
            conversation_id=str(ref.id),
            dedupe_key=f"react:{principal.user_id}:{client_id}",
        )

    # Ephemeral and small state events

    async def typing(
        self,
        workspace_id: uuid.UUID,
        conversation_id: uuid.UUID,
        on: bool,
        who: Party | Mapping[str, str | None],
    ) -> None:
        data = TypingChanged(conversation_id=conversation_id, on=on, by=Party.model_validate(who))
        await self.bus.publish(
            str(workspace_id), data.NAME, data.dump(), conversation_id=str(conversation_id)
        )

    async def agent_read(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        up_to: str,
        *,
        tell_contact: bool = True,
    ) -> None:
        data = ConversationUpdated(
            conversation_id=conversation_id,
            read=AgentRead(user_id=principal.user_id, up_to=up_to),
        )
        workspace = str(principal.workspace_id)
        # Agents' read positions are for agents only: no conversation id, so visitors skip it.
        await self.bus.publish(workspace, data.NAME, data.dump())
        if tell_contact:
            # The visitor learns that its messages were read, not by whom.
            seen = ConversationUpdated(conversation_id=conversation_id, agent_read_up_to=up_to)
            await self.bus.publish(
                workspace, seen.NAME, seen.dump(), conversation_id=str(conversation_id)
            )

    async def visitor_read(self, ref: ConversationRef, up_to: str) -> None:
        data = ConversationUpdated(conversation_id=ref.id, contact_read_up_to=up_to)
        await self.bus.publish(
            str(ref.workspace_id), data.NAME, data.dump(), conversation_id=str(ref.id)
        )

    # Platform webhooks

    async def publish_parsed(self, ctx: ChannelContext, parsed: Parsed) -> Published:
        """One parsed webhook event onto the workspace stream, de-duplicated by its platform id."""
        if isinstance(parsed, NewMessage):
            contact = parsed.contact
            return await self.publish_message(
                parsed.message,
                thread=parsed.thread,
                contact=Contact(
                    id=parsed.message.contact_id,
                    name=contact.name or contact.username,
                    platform_user_id=contact.platform_user_id,
                ),
            )
        workspace = str(ctx.workspace_id)
        if isinstance(parsed, MessageChange):
            ours = await self.bus.recall(
                workspace, f"pmid:{parsed.channel_id}:{parsed.platform_message_id}"
            )
            # A status of a reply we sent names our message.
            data = change_event(parsed, uuid.UUID(ours) if ours is not None else None)
            return await self.bus.publish(
                workspace,
                data.NAME,
                data.dump(),
                conversation_id=str(parsed.conversation_id or ""),
                dedupe_key=f"chg:{parsed.channel_id}:{parsed.dedupe_key}",
            )
        read = ConversationUpdated(
            conversation_id=parsed.conversation_id,
            contact_read=ContactRead(
                platform_message_id=parsed.platform_message_id,
                at=parsed.at,
                channel_id=ctx.channel_id,
            ),
        )
        return await self.bus.publish(
            workspace,
            read.NAME,
            read.dump(),
            conversation_id=str(parsed.conversation_id),
            dedupe_key=f"read:{parsed.conversation_id}:{parsed.at.isoformat()}:{parsed.platform_message_id}",
        )

    async def channel_updated(
        self,
        workspace_id: uuid.UUID,
        channel_id: uuid.UUID,
        status: ChannelStatus,
    ) -> Published:
        """A channel's status changed (disconnected by an admin or by the platform): agents
        only, so admins' consoles and inboxes show it live."""
        data = ChannelUpdated(channel_id=channel_id, status=status)
        return await self.bus.publish(str(workspace_id), data.NAME, data.dump())

    async def presence(self, principal: Principal, state: PresenceState, *, announce: bool) -> None:
        """Keep the agent's presence on the bus for `presence_ttl_s` (a crashed node's agents
        lapse to offline by themselves) and announce it when it was chosen or has changed."""
        workspace, key = str(principal.workspace_id), f"presence:{principal.user_id}"
        if not announce:
            announce = await self.bus.recall(workspace, key) != state
        await self.bus.remember(workspace, key, state, ttl_s=self.presence_ttl_s)
        if announce:
            data = PresenceChanged(user_id=principal.user_id, name=principal.name, state=state)
            await self.bus.publish(workspace, data.NAME, data.dump())

    async def presences(self, workspace_id: uuid.UUID, user_ids: list[uuid.UUID]) -> dict[str, str]:
        workspace = str(workspace_id)
        found = await asyncio.gather(
            *(self.bus.recall(workspace, f"presence:{user_id}") for user_id in user_ids)
        )  # concurrently: one round trip's wait for the whole team, not one per member
        return {str(u): state or "offline" for u, state in zip(user_ids, found, strict=True)}


def change_event(change: MessageChange, ours: uuid.UUID | None = None) -> MessageUpdated:
    """A platform's change to a message; `ours` is the id of our message it names, when the
    platform's id is that of a reply we sent."""
    return MessageUpdated(
        channel_id=change.channel_id,
        conversation_id=change.conversation_id or None,
        platform_message_id=change.platform_message_id,
        message_id=ours or message_id_for(change.channel_id, change.platform_message_id),
        changes=MessageChanges.model_validate(change.changes),
        at=change.at,
    )
