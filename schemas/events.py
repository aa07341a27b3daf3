"""The data of every event on a workspace stream (docs/protocol.md, Events): one model per
event name. The hub publishes `model.dump()` as an event's data, and the workers read it back
with `parse_event`; clients receive it as the `data` of an `event` frame (`schemas.frames`,
whose exported JSON Schema describes each event's data).

A key that the hub leaves out when it has nothing to say is a field that is omitted when
None (`Omitted`). Where an absent key and a null one differ (a change that clears an
assignee, a profile that says a name is unknown), the field is `MISSING` when absent.
Readers ignore keys they do not know: later versions of v1 may add some.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

import pydantic_core
from pydantic import MISSING, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from schemas.message import Attachment, DeliveryError, DeliveryStatus, Message, json_of

EventName = Literal[
    "message.created",
    "message.updated",
    "conversation.created",
    "conversation.updated",
    "typing",
    "presence",
    "contact.updated",
    "contact.deleted",
    "channel.updated",
    "routing.updated",
    "session.ended",
    "member.removed",
    "mention.created",
]
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)

Cursor = Annotated[str, Field(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$", max_length=41)]
# A time as `datetime.isoformat()` writes it ("+00:00", not pydantic's "Z"), as it always was.
Instant = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Priority = Literal["low", "medium", "high", "urgent"]
PresenceState = Literal["online", "away", "offline"]
ChannelStatus = Literal["connected", "disconnected", "needs_reconnect"]

T = TypeVar("T")


def _none(value: object) -> bool:
    return value is None


def _never_null(schema: dict[str, Any]) -> None:
    """An omitted field's schema: absent or a value, never null (None is not written)."""
    kept = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    elif kept:
        schema["anyOf"] = kept
    schema.pop("default", None)


# A key the hub leaves out when it has no value for it.
Omitted = Annotated[T | None, Field(exclude_if=_none, json_schema_extra=_never_null)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=True)


class EventDataBase(_Part):
    """The data of one event name (`NAME`)."""

    NAME: ClassVar[EventName]

    def dump(self) -> str:
        """The JSON text published on the bus and sent to clients as the event's data."""
        return self.model_dump_json()


# message.created


class Contact(_Part):
    id: uuid.UUID | None = Field(default=None, description="The message's contact")
    name: str | None
    platform_user_id: Omitted[str] = Field(default=None, description="On the message's channel")


class MessageCreated(EventDataBase):
    """A new message: a contact's, an agent's, a note or the hub's own (an auto-reply)."""

    NAME = "message.created"
    message: Message = Field(description="The normalized message, its null fields left out")
    contact: Omitted[Contact] = Field(default=None, description="A contact's message: who wrote")
    thread: Omitted[str] = Field(
        default=None, description="The platform's address of the other party (not for web chat)"
    )

    def dump(self) -> str:
        # Written in pieces, each by pydantic's own serializer: the message leaves out its null
        # fields while the contact keeps its null name (as clients have always had them), and
        # one pass over the message is a tenth of a publish's CPU less than two. Each model's
        # serializer is called itself (`json_of`), without `model_dump_json`'s wrapper.
        text = '{"message":' + json_of(self.message, exclude_none=True)
        if self.contact is not None:
            text += ',"contact":' + json_of(self.contact)
        if self.thread is not None:
            text += ',"thread":' + pydantic_core.to_json(self.thread).decode()
        return text + "}"


# message.updated


class ReactionChange(_Part):
    emoji: str | None = Field(description="None when the reaction was taken back")
    reaction: str | MISSING | None = Field(
        default=MISSING, description="Messenger's name of the reaction (e.g. love), when it says"
    )
    action: Literal["react", "unreact"] = "react"
    by: str | None = Field(
        description="The platform user id of who reacted, or agent:<user id> for an agent"
    )


class MessageChanges(_Part):
    """Only the keys that change."""

    reaction: Omitted[ReactionChange] = None
    text: Omitted[str] = None
    edited: Omitted[bool] = None
    deleted: Omitted[bool] = None
    hidden: Omitted[bool] = Field(
        default=None, description="A comment hidden (true) or shown again (false) on the platform"
    )
    status: Omitted[DeliveryStatus] = None
    platform_message_id: Omitted[str] = Field(
        default=None, description="Our message's id on the platform, once it is sent"
    )
    error: Omitted[DeliveryError] = Field(default=None, description="With status failed")
    attachments: Omitted[list[Attachment]] = Field(
        default=None,
        description="The message's attachments, all of them, once their files are fetched",
    )


class ReactionSend(_Part):
    reaction: str = Field(description="The emoji; empty takes the reaction back")
    client_id: str


class MessageUpdated(EventDataBase):
    """A change to a message known by its platform id: a delivery status, a reaction, an edit
    or an unsend, a comment hidden, shown again or deleted."""

    NAME = "message.updated"
    channel_id: uuid.UUID
    conversation_id: uuid.UUID | None = Field(
        default=None, description="None when the platform does not say (a delivery status)"
    )
    platform_message_id: str
    message_id: uuid.UUID | None = None
    changes: MessageChanges
    at: Omitted[Instant] = Field(default=None, description="When the platform says it happened")
    send: Omitted[ReactionSend] = Field(
        default=None, description="An agent's reaction, for the send group to send"
    )
    error: Omitted[DeliveryError] = Field(
        default=None, description="Why an agent's reaction was not sent (it is taken back)"
    )
    by: Omitted[uuid.UUID] = Field(
        default=None, description="The agent who hid, showed or deleted a comment"
    )
    stored: Omitted[bool] = Field(
        default=None,
        description="Published by the hub after storing it, true: a change that arrived before "
        "its message and was applied when the message came, or a status a read receipt moved",
    )


# conversation.*


class ConversationCreated(EventDataBase):
    """Declared in v1; this version of the hub does not publish it."""

    NAME = "conversation.created"
    conversation_id: uuid.UUID


class ConversationChanges(_Part):
    """Only the keys that change; a null assignee, team or priority clears it."""

    status: Omitted[Literal["open", "pending", "resolved", "snoozed"]] = None
    snoozed_until: Omitted[Instant] = Field(default=None, description="With status snoozed")
    assignee_id: uuid.UUID | MISSING | None = MISSING
    team_id: uuid.UUID | MISSING | None = MISSING
    labels: Omitted[list[str]] = Field(default=None, description="The whole set, replaced")
    labels_add: Omitted[list[str]] = Field(
        default=None, description="Added to the set (an automation rule's)"
    )
    priority: Priority | MISSING | None = MISSING


class AgentRead(_Part):
    user_id: uuid.UUID
    up_to: Cursor


class ContactRead(_Part):
    """The contact saw our messages on the platform (a read receipt): every message we sent
    up to that point is `read`. The hub stores it and publishes a `message.updated` with
    `status: read` for each message it moved."""

    platform_message_id: str | None = Field(
        description="The last message seen (Instagram's `read.mid`); null when the platform "
        "gives only a time (Messenger's `read.watermark`)"
    )
    at: Instant = Field(
        description="Messenger: every message sent up to this time was seen (the watermark); "
        "Instagram: when it was seen"
    )
    channel_id: Omitted[uuid.UUID] = Field(default=None, description="The channel it came on")


class RuleRef(_Part):
    id: uuid.UUID
    name: str


class ConversationUpdated(EventDataBase):
    """One of: an agent's change (`changes`, `by`), an automation rule's (`changes`, `rule`),
    routing's (`changes`, `routed`, `as_of`), an agent's custom attributes (`attributes`,
    `by`), an agent's read position (`read`), that an agent
    has read a web-chat conversation (`agent_read_up_to`), the visitor's read position
    (`contact_read_up_to`) or the contact's on the platform (`contact_read`)."""

    NAME = "conversation.updated"
    conversation_id: uuid.UUID
    changes: Omitted[ConversationChanges] = None
    by: Omitted[uuid.UUID] = Field(default=None, description="The agent who made the change")
    rule: Omitted[RuleRef] = Field(default=None, description="The automation rule that made it")
    routed: Omitted[bool] = Field(
        default=None, description="Routing's change, already stored: true"
    )
    as_of: Omitted[Cursor] = Field(
        default=None, description="Routing's: the last event it had seen"
    )
    read: Omitted[AgentRead] = None
    agent_read_up_to: Omitted[Cursor] = None
    contact_read_up_to: Omitted[Cursor] = None
    contact_read: Omitted[ContactRead] = None
    attributes: Omitted[dict[str, str | int | float | None]] = Field(
        default=None,
        description="An agent's change to the conversation's custom attributes, already "
        "stored (with `by`): the new value by key, null when cleared",
    )


# small state


class Party(_Part):
    type: Literal["agent", "contact"]
    id: str | None
    name: str | None = None


class TypingChanged(EventDataBase):
    NAME = "typing"
    conversation_id: uuid.UUID
    on: bool
    by: Party


class PresenceChanged(EventDataBase):
    """An agent connected, chose a state, or its last socket closed."""

    NAME = "presence"
    user_id: uuid.UUID
    name: str
    state: PresenceState


class VisitorInfo(BaseModel):
    """What the web-chat widget tells of its visitor (docs/privacy.md), when its channel
    collects it: summarized, never the raw user agent."""

    model_config = ConfigDict(extra="forbid")
    page_url: str | None = Field(default=None, max_length=2000, description="Their page")
    page_title: str | None = Field(default=None, max_length=300)
    referrer: str | None = Field(
        default=None, max_length=2000, description="The page they came from"
    )
    browser: str | None = Field(
        default=None, max_length=100, description='e.g. "Chrome 131 on Windows"'
    )
    language: str | None = Field(default=None, max_length=35, description="A BCP 47 tag")
    time_zone: str | None = Field(default=None, max_length=64, description="An IANA zone name")


class ContactUpdated(EventDataBase):
    """A profile fetched from the platform, or what a web-chat visitor said about itself.
    An absent or null field changes nothing. Or an agent's change to the contact's custom
    attributes (`attributes`, `by`), stored before it is published."""

    NAME = "contact.updated"
    contact_id: uuid.UUID
    name: str | MISSING | None = MISSING
    username: str | MISSING | None = MISSING
    picture_url: str | MISSING | None = MISSING
    email: str | MISSING | None = MISSING
    attributes: Omitted[dict[str, str | int | float | None]] = Field(
        default=None,
        description="An agent's change to the contact's custom attributes, already stored: "
        "the new value by key, null when cleared",
    )
    phone: str | MISSING | None = MISSING
    company: str | MISSING | None = MISSING
    notes: str | MISSING | None = MISSING
    visitor: VisitorInfo | MISSING | None = Field(
        default=MISSING, description="A web-chat visitor's page, browser, language and time zone"
    )
    by: uuid.UUID | MISSING | None = Field(
        default=MISSING, description="The agent who edited the contact (stored by then)"
    )

    def known(self) -> dict[str, Any]:
        """The fields it gives a value."""
        found = {
            "name": self.name,
            "username": self.username,
            "picture_url": self.picture_url,
            "email": self.email,
            "phone": self.phone,
            "company": self.company,
            "notes": self.notes,
        }
        values: dict[str, Any] = {k: v for k, v in found.items() if isinstance(v, str) and v}
        if isinstance(self.visitor, VisitorInfo):
            values["visitor"] = self.visitor.model_dump(mode="json")
        return values


class ContactDeleted(EventDataBase):
    """The person was erased: drop the contact and these conversations."""

    NAME = "contact.deleted"
    contact_id: uuid.UUID
    conversation_ids: list[uuid.UUID]
    channel_id: Omitted[uuid.UUID] = Field(
        default=None, description="Only this channel's data went; the contact may stay"
    )


class ChannelUpdated(EventDataBase):
    NAME = "channel.updated"
    channel_id: uuid.UUID
    status: ChannelStatus


class RoutingUpdated(EventDataBase):
    """Teams, a capacity or a channel's routing changed: reload them."""

    NAME = "routing.updated"
    by: uuid.UUID


class SessionEnded(EventDataBase):
    """Sign-in sessions ended (signed out, ended by their user or an admin, a password
    change, a removal): every node closes their sockets. Not sent to clients."""

    NAME = "session.ended"
    user_id: uuid.UUID
    session_ids: list[uuid.UUID]


class MemberRemoved(EventDataBase):
    """A member left the workspace (removed, with or without their account's data): every
    node closes all their agent sockets there, whether opened from a session or an API token.
    Not sent to clients."""

    NAME = "member.removed"
    user_id: uuid.UUID


class MentionCreated(EventDataBase):
    """Agents were @mentioned in a private note: the inbox of each one named tells them."""

    NAME = "mention.created"
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    user_ids: list[uuid.UUID] = Field(description="The members mentioned")
    by: uuid.UUID = Field(description="The agent who wrote the note")
    preview: Omitted[str] = Field(
        default=None, max_length=80, description="The note's first characters"
    )


EventData = (
    MessageCreated
    | MessageUpdated
    | ConversationCreated
    | ConversationUpdated
    | TypingChanged
    | PresenceChanged
    | ContactUpdated
    | ContactDeleted
    | ChannelUpdated
    | RoutingUpdated
    | SessionEnded
    | MemberRemoved
    | MentionCreated
)
MODELS: dict[str, type[EventData]] = {
    model.NAME: model
    for model in (
        MessageCreated,
        MessageUpdated,
        ConversationCreated,
        ConversationUpdated,
        TypingChanged,
        PresenceChanged,
        ContactUpdated,
        ContactDeleted,
        ChannelUpdated,
        RoutingUpdated,
        SessionEnded,
        MemberRemoved,
        MentionCreated,
    )
}


def parse_event(name: str, data: str | bytes) -> EventData:
    """An event's data as its model; ValueError (a pydantic ValidationError) when the name is
    unknown or the data does not fit it."""
    model = MODELS.get(name)
    if model is None:
        raise ValueError(f"{name!r} is not an event name")
    return model.model_validate_json(data)
