"""Wire frames of the realtime protocol, v1 and v2 (docs/protocol.md). `schemas/` is generated from
these models by `scripts/export-schemas`."""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from schemas import events
from schemas.events import EVENT_NAMES as EVENT_NAMES
from schemas.events import Cursor as Cursor
from schemas.message import Attachment

# An escaped NUL (`\u0000`) whose backslash is not itself escaped.
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def without_nul(text: str) -> str:
    """JSON text with each NUL character made U+FFFD. No Postgres text or jsonb holds NUL:
    one would fail a lookup with a 500, or stop the persist group on its event (and on every
    event behind it)."""
    return _NUL.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


ClientId = Annotated[str, Field(min_length=1, max_length=100)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# client -> server


VERSIONS = (1, 2)  # the protocol versions this hub speaks; v1 is deprecated (docs/protocol.md)


class Hello(_Frame):
    type: Literal["hello"]
    token: str = Field(min_length=1, max_length=4096)
    resume_from: Cursor | None = None
    v: int | None = Field(
        default=None,
        description="The protocol version the client speaks: 1 or 2 (absent: 1). Another "
        "number is refused with unsupported_version, close 4400",
    )


class MessageSend(_Frame):
    type: Literal["message.send"]
    client_id: ClientId
    conversation_id: uuid.UUID | None = Field(
        default=None, description="Required for agents; a visitor has one conversation"
    )
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)
    reply_to: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The platform message id of the message this answers (quoted on the platform)",
    )
    note: bool = Field(
        default=False, description="Agents: a private note for the other agents, never sent"
    )
    mentions: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=20,
        description="In a note: the members @mentioned (others are ignored)",
    )
    private_reply: bool = Field(
        default=False,
        description="In a comment conversation: answer the comment as a private message "
        "instead of a public reply",
    )

    @field_validator("attachments")
    @classmethod
    def _finite(cls, value: list[Attachment]) -> list[Attachment]:
        # NaN and 1e999 (infinity) parse, but no JSON (nor Postgres jsonb) holds them.
        for attachment in value:
            for degrees in (attachment.latitude, attachment.longitude):
                if degrees is not None and not math.isfinite(degrees):
                    raise ValueError("latitude and longitude must be finite numbers")
        return value


class Typing(_Frame):
    type: Literal["typing"]
    conversation_id: uuid.UUID | None = None
    on: bool


class Read(_Frame):
    type: Literal["read"]
    conversation_id: uuid.UUID | None = None
    up_to: Cursor


class Ping(_Frame):
    type: Literal["ping"]


class Presence(_Frame):
    type: Literal["presence"]
    state: Literal["online", "away"] = Field(description="Agents only: away gets nothing new")


ClientFrame = Annotated[
    Hello | MessageSend | Typing | Read | Ping | Presence, Field(discriminator="type")
]
client_frame = TypeAdapter[ClientFrame](ClientFrame)


# server -> client


class Welcome(_Frame):
    type: Literal["welcome"] = "welcome"
    cursor: Cursor = Field(description="Id of the last event before the ones that follow")
    resumed: bool
    v: events.Omitted[int] = Field(
        default=None,
        description="The protocol version of this socket's frames, 2; absent: 1 (a v1 socket's "
        "welcome is v1's, unchanged)",
    )
    workspace_id: events.Omitted[uuid.UUID] = Field(
        default=None,
        description="v2: the socket's workspace, which v2's message.created leaves out",
    )


class _Event(_Frame):
    type: Literal["event"] = "event"
    id: Cursor = Field(description="The event's position in the workspace stream")


class MessageCreatedEvent(_Event):
    """In v2, `data` is the lean form instead (schemas/message-created-v2.json)."""

    name: Literal["message.created"] = "message.created"
    data: events.MessageCreated


class MessageUpdatedEvent(_Event):
    name: Literal["message.updated"] = "message.updated"
    data: events.MessageUpdated


class ConversationCreatedEvent(_Event):
    name: Literal["conversation.created"] = "conversation.created"
    data: events.ConversationCreated


class ConversationUpdatedEvent(_Event):
    name: Literal["conversation.updated"] = "conversation.updated"
    data: events.ConversationUpdated


class TypingEvent(_Event):
    name: Literal["typing"] = "typing"
    data: events.TypingChanged


class PresenceEvent(_Event):
    name: Literal["presence"] = "presence"
    data: events.PresenceChanged


class ContactUpdatedEvent(_Event):
    name: Literal["contact.updated"] = "contact.updated"
    data: events.ContactUpdated


class ContactDeletedEvent(_Event):
    name: Literal["contact.deleted"] = "contact.deleted"
    data: events.ContactDeleted


class ChannelUpdatedEvent(_Event):
    name: Literal["channel.updated"] = "channel.updated"
    data: events.ChannelUpdated


class RoutingUpdatedEvent(_Event):
    name: Literal["routing.updated"] = "routing.updated"
    data: events.RoutingUpdated


class SessionEndedEvent(_Event):
    name: Literal["session.ended"] = "session.ended"
    data: events.SessionEnded


class MemberRemovedEvent(_Event):
    name: Literal["member.removed"] = "member.removed"
    data: events.MemberRemoved


class MentionCreatedEvent(_Event):
    name: Literal["mention.created"] = "mention.created"
    data: events.MentionCreated


# An event frame: its `data` is the model of its `name` (`schemas.events`).
EventFrame = Annotated[
    MessageCreatedEvent
    | MessageUpdatedEvent
    | ConversationCreatedEvent
    | ConversationUpdatedEvent
    | TypingEvent
    | PresenceEvent
    | ContactUpdatedEvent
    | ContactDeletedEvent
    | ChannelUpdatedEvent
    | RoutingUpdatedEvent
    | SessionEndedEvent
    | MemberRemovedEvent
    | MentionCreatedEvent,
    Field(discriminator="name"),
]


class Ack(_Frame):
    type: Literal["ack"] = "ack"
    client_id: ClientId
    message_id: uuid.UUID
    duplicate: bool = False


class Error(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str
    client_id: ClientId | None = None


class Pong(_Frame):
    type: Literal["pong"] = "pong"


ServerFrame = Annotated[Welcome | EventFrame | Ack | Error | Pong, Field(discriminator="type")]
server_frame = TypeAdapter[ServerFrame](ServerFrame)
