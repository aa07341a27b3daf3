"""Answers of the web-chat widget's endpoints: its settings, the visitor token and the
visitor's own history."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from schemas.frames import Cursor
from schemas.message import Attachment, DeliveryStatus, Direction, SenderType
from schemas.rest.base import Out, Timestamp


class WidgetPrechat(Out):
    enabled: bool = Field(description="Ask for a name (and e-mail) before the chat")
    require_email: bool


class WidgetHours(Out):
    open_now: bool
    offline_message: str | None = Field(description="What to show while closed")
    next_open_at: Timestamp | None = Field(description="UTC; none while open or never opening")
    timezone: str = Field(description="The IANA zone the hours are in")


class WidgetLimits(Out):
    max_message_chars: int
    messages_per_minute: int = Field(description="Per visitor; more get `error rate_limited`")


class WidgetConfig(Out):
    title: str | None = Field(
        description="The title an admin set; None: the widget's own, in the visitor's language"
    )
    greeting: str | None
    colour: str = Field(pattern="^#[0-9a-f]{6}$")
    position: Literal["right", "left"]
    locale: Literal["en", "tr"] | None = Field(description="None: the browser's language")
    prechat: WidgetPrechat
    consent_required: bool = Field(
        description="Keep nothing on the device until the visitor starts a chat"
    )
    identity: bool = Field(description="The channel has an identity secret")
    hours: WidgetHours | None = Field(description="None: always open")
    limits: WidgetLimits
    visitor_info: bool = Field(
        default=True,
        description="Send the visitor's page, referrer, language and time zone "
        "(POST /api/widget/visitor); false: send nothing",
    )


class VisitorToken(Out):
    token: str = Field(description="The token of the visitor websocket's `hello` frame")
    visitor_id: str
    conversation_id: uuid.UUID
    identified: bool = Field(description="user_id and user_hash were verified")


class VisibleSender(Out):
    type: SenderType
    name: str | None


class VisibleError(Out):
    code: str
    message: str


class VisibleMessage(Out):
    id: uuid.UUID
    direction: Direction = Field(description="in: from the visitor")
    text: str | None
    attachments: list[Attachment]
    sender: VisibleSender
    sent_at: Timestamp
    status: DeliveryStatus
    error: VisibleError | None
    client_id: str | None
    event_id: Cursor | None
    edited: bool
    deleted: bool


class VisitorSent(Out):
    message_id: uuid.UUID
    event_id: Cursor = Field(description="The message.created event's id on the stream")
    duplicate: bool = Field(description="True when this client_id was sent before")


class VisitorHistory(Out):
    items: list[VisibleMessage] = Field(description="Oldest first; agents' notes left out")
    next_before: str | None = Field(description="The `before` of older messages; none at the start")
    agent_read_up_to: Cursor | None = Field(
        default=None,
        description="How far an agent has read the conversation (the newest read position "
        "of any agent): the visitor's messages up to this event id were read",
    )
