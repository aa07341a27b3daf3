"""Answers of the inbox: conversations, their messages, contacts, search and presence."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from schemas.events import VisitorInfo
from schemas.frames import Cursor
from schemas.message import ChannelKind, Message, MessageKind
from schemas.rest.base import Out, Timestamp


class MessagingWindow(Out):
    open: bool = Field(description="Whether a reply can be sent now")
    closes_at: Timestamp | None = Field(description="When it closes; none: no window here")
    human_agent: bool = Field(description="Past 24 h: sent with Meta's HUMAN_AGENT tag")
    private_reply_closes_at: Timestamp | None = Field(
        default=None,
        description="Comment conversations: a public reply has no window (`closes_at` none); "
        "a private reply to the latest comment is possible until then (7 days after it)",
    )


class ContactOut(Out):
    id: uuid.UUID
    name: str | None
    username: str | None
    picture_url: str | None = Field(description="From the platform's profile; may expire")


class ListedContact(ContactOut):
    email: str | None
    created_at: Timestamp


class ContactPage(Out):
    items: list[ListedContact] = Field(description="Newest first")
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")


class ConversationOut(Out):
    id: uuid.UUID
    contact: ContactOut
    unread: int = Field(ge=0, description="Contact messages after the caller's read position")
    channel_id: uuid.UUID
    channel_kind: ChannelKind | None
    last_inbound_at: Timestamp | None = Field(description="The person's latest message")
    window: MessagingWindow
    contact_id: uuid.UUID
    kind: MessageKind
    status: Literal["open", "pending", "resolved", "snoozed"]
    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None = Field(description="The team whose queue it is in")
    snoozed_until: Timestamp | None = Field(description="With status snoozed: when it reopens")
    labels: list[str] = Field(description="Lower-case, sorted")
    priority: Literal["low", "medium", "high", "urgent"] | None
    last_activity_at: Timestamp
    last_message_preview: str | None
    last_event_id: Cursor | None
    title: str | None = Field(
        default=None, description="A group's title (kind group), as its newest message gave it"
    )


class ReadPosition(Out):
    user_id: uuid.UUID
    up_to: Cursor = Field(description="The event id the agent has read up to")
    up_to_at: Timestamp | None = Field(description="The time of that message")


class ConversationDetail(ConversationOut):
    reads: list[ReadPosition] = Field(description="How far each agent has read")


class ConversationPage(Out):
    items: list[ConversationOut]
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")
    resume_from: Cursor | None = Field(
        default=None,
        description="The `hello.resume_from` of an agent socket opened after this page: it"
        " replays every event the page may not show yet (docs/protocol.md). On a first page"
        " only; none on the pages after it, and none when unknown",
    )


class PresenceOut(Out):
    user_id: uuid.UUID
    state: Literal["online", "away", "offline"]


class PresenceList(Out):
    items: list[PresenceOut] = Field(description="Every member of the workspace")


class StoredMessage(Message):
    """A message as history answers it: the normalized message and the id of its event."""

    sent_at: Timestamp = Field(description="Platform timestamp, UTC")
    event_id: Cursor | None = Field(description="The stream id of its message.created event")


class MessagePage(Out):
    items: list[StoredMessage] = Field(description="Oldest first")
    next_before: str | None = Field(description="The `before` of older messages; none at the start")


class SendResult(Out):
    message_id: uuid.UUID
    event_id: Cursor
    duplicate: bool = Field(description="True when this client_id was sent before")


class ConversationChanged(Out):
    event_id: Cursor
    changes: dict[str, Any] = Field(description="What was published as conversation.updated")


class Identity(Out):
    channel_id: uuid.UUID
    platform_user_id: str


class ContactMergeOut(Out):
    id: uuid.UUID = Field(description="The merge's id, for undo and confirm")
    contact_id: uuid.UUID = Field(description="The kept contact")
    other_id: uuid.UUID = Field(description="The contact merged into it")
    other_name: str | None = Field(default=None, description="The merged contact's name")
    state: Literal["pending", "confirmed"]
    conversation_ids: list[uuid.UUID] = Field(description="The conversations that moved")
    by: uuid.UUID | None = Field(description="The agent who merged them")
    created_at: Timestamp
    confirmed_at: Timestamp | None = None


class ContactPanel(ContactOut):
    email: str | None
    phone: str | None = Field(default=None, description="As stored: digits after an optional +")
    company: str | None = None
    notes: str | None = Field(default=None, description="The agents' own notes on the person")
    visitor: VisitorInfo | None = Field(
        default=None,
        description="A web-chat visitor's page, referrer, browser, language and time zone, "
        "as the widget last told them (when its channel collects them)",
    )
    identities: list[Identity] = Field(description="One per channel the contact wrote on")
    conversations: list[ConversationOut] = Field(description="Newest activity first")
    merge: ContactMergeOut | None = Field(
        default=None,
        description="The pending merge this contact is in (kept or merged away); undo or "
        "confirm it with its id",
    )


class SearchResult(Out):
    contacts: list[ContactOut] = Field(description="On the first page only")
    messages: list[StoredMessage] = Field(description="Newest first")
    next_cursor: str | None = Field(
        default=None, description="The `cursor` of the next page of messages; none at the end"
    )


class ReactionResult(Out):
    event_id: Cursor
    duplicate: bool = Field(description="True when this client_id was sent before")
