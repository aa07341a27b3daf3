"""The normalized message: one model for every channel (docs/architecture.md).

Adapters turn platform payloads into `Message`; it travels as the data of a
`message.created` event, is persisted by the worker and is what REST answers.
`schemas/message.json` is generated from it.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAMESPACE = uuid.UUID("6f1c1c8e-6a52-4f0e-9d8a-2f1d7c3b9e41")
_NAMESPACE_BYTES = NAMESPACE.bytes


def derive_id(*parts: object) -> uuid.UUID:
    """A deterministic id, so the hot path can address rooms and rows without a lookup: the
    name-based (version 5) UUID of the parts joined by U+001F, in NAMESPACE. Made here as
    `uuid.uuid5` makes it, but without its import and the namespace's bytes on every call
    (4 µs against 3; every webhook's message id is one)."""
    name = "\x1f".join(map(str, parts)).encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


# A contact's and a conversation's ids are derived again for each of their messages; the last
# few thousand are kept (a SHA-1 and a UUID each, a fifth of a web-chat message's ingress CPU).
@functools.lru_cache(maxsize=8192)
def contact_id_for(workspace_id: object, channel_id: object, platform_user_id: str) -> uuid.UUID:
    return derive_id("contact", workspace_id, channel_id, platform_user_id)


@functools.lru_cache(maxsize=8192)
def conversation_id_for(workspace_id: object, channel_id: object, thread: str) -> uuid.UUID:
    return derive_id("conversation", workspace_id, channel_id, thread)


def message_id_for(channel_id: object, platform_message_id: str) -> uuid.UUID:
    return derive_id("message", channel_id, platform_message_id)


class ChannelKind(StrEnum):
    WEBCHAT = "webchat"
    INSTAGRAM = "instagram"
    MESSENGER = "messenger"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"


class MessageKind(StrEnum):
    DM = "dm"
    COMMENT = "comment"
    GROUP = "group"  # a group chat's (Telegram group, supergroup or forum topic)


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class SenderType(StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    SYSTEM = "system"


SYSTEM_SENDER_ID = "hub"  # the sender id of the hub's own messages (auto-replies)


class DeliveryStatus(StrEnum):
    RECEIVED = "received"
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class AttachmentType(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    FILE = "file"
    LOCATION = "location"
    STICKER = "sticker"
    SHARE = "share"
    STORY = "story"
    CONTACT = "contact"
    UNSUPPORTED = "unsupported"


class MediaState(StrEnum):
    """Where an attachment's file is (docs/media.md)."""

    PENDING = "pending"  # the platform has it; the hub is fetching it
    READY = "ready"  # the hub keeps it: `url` serves it to the workspace
    LINK = "link"  # kept as the platform's link only (`reason` says why: too large, say)
    UNAVAILABLE = "unavailable"  # could not be fetched for good (`reason` says why)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Attachment(_Model):
    type: AttachmentType
    url: str | None = Field(
        default=None,
        description="With state ready, the hub's URL of the file (agents); otherwise the "
        "platform's link, never loaded by the inbox on its own",
    )
    media_id: str | None = Field(default=None, description="The platform's media id, when no URL")
    mime_type: str | None = None
    name: str | None = None
    size: int | None = Field(default=None, ge=0)
    caption: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    file: str | None = Field(
        default=None,
        description="The hub's id of the stored file, unique in its conversation; the widget "
        "fetches it from /api/widget/media/{file}",
        pattern=r"^[0-9a-f]{32}\.[a-z0-9]{1,5}$",
    )
    state: MediaState | None = Field(
        default=None, description="None for what has no file (a location, a share)"
    )
    reason: str | None = Field(default=None, description="Why the file is a link or unavailable")
    width: int | None = Field(default=None, ge=0, description="Images: pixels")
    height: int | None = Field(default=None, ge=0, description="Images: pixels")
    thumbnail: bool | None = Field(
        default=None, description="Images: a small WebP copy is served at `url` + `?size=thumb`"
    )


class Sender(_Model):
    type: SenderType
    id: str | None = Field(default=None, description="Contact id or user id; none for system")
    name: str | None = None


class Group(_Model):
    """The group chat a message was written in (docs/channels.md, Telegram groups)."""

    title: str | None = Field(default=None, description="The chat's title as this message saw it")
    topic_id: str | None = Field(default=None, description="A forum topic's thread id")
    renamed: bool = Field(
        default=False, description="A service message: someone renamed the group to `title`"
    )


class StoryKind(StrEnum):
    REPLY = "reply"  # the contact replied to the business's story
    MENTION = "mention"  # the contact mentioned the business in their own story


class Referral(_Model):
    """What brought the contact here: an ad (click-to-WhatsApp, click-to-Messenger or
    -Instagram), a post or a link, as the platform names it."""

    source: str | None = Field(
        default=None,
        description="The platform's word: ADS, SHORTLINK (Meta), ad or post (WhatsApp)",
    )
    ad_id: str | None = Field(default=None, description="The ad's id, when an ad")
    source_id: str | None = Field(default=None, description="The ad's or post's id (WhatsApp)")
    source_url: str | None = None
    headline: str | None = Field(default=None, description="The ad's headline or title")
    body: str | None = None
    media_url: str | None = Field(default=None, description="The ad's image or video, a link")
    ref: str | None = Field(default=None, description="The `ref` parameter of an ad or m.me link")
    click_id: str | None = Field(default=None, description="WhatsApp's ctwa_clid, for attribution")


class DeliveryError(_Model):
    code: str
    message: str


class Message(_Model):
    id: uuid.UUID
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID
    channel_kind: ChannelKind
    kind: MessageKind = MessageKind.DM
    direction: Direction
    sender: Sender
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    reply_to: str | None = Field(default=None, description="Platform id of the message replied to")
    reactions: list[dict[str, Any]] = Field(default_factory=list)
    edited: bool = False
    deleted: bool = False
    platform_message_id: str
    client_id: str | None = None
    private_reply: bool = Field(
        default=False, description="A reply to a comment sent as a private message, not in public"
    )
    note: bool = Field(
        default=False,
        description="A private note between agents: never sent, never shown to the contact",
    )
    group: Group | None = Field(default=None, description="With kind group: the group chat")
    standby: bool = Field(
        default=False,
        description="Received on the standby channel (handover protocol): another app owns the "
        "thread, so the hub's automation does not answer it",
    )
    story: StoryKind | None = Field(
        default=None, description="A reply to the business's story, or a mention in the contact's"
    )
    referral: Referral | None = Field(default=None, description="The ad or link that brought them")
    hidden: bool = Field(
        default=False,
        description="A public comment hidden on the platform: its author and their friends "
        "still see it, nobody else does",
    )
    sent_at: datetime = Field(description="Platform timestamp, UTC")
    status: DeliveryStatus
    error: DeliveryError | None = None
    raw: dict[str, Any] | None = Field(
        default=None, description="What the model cannot express, kept as the platform sent it"
    )


def json_of(model: BaseModel, **options: Any) -> str:
    """`model.model_dump_json(**options)`, by the model's own pydantic-core serializer: the
    same text without the wrapper's checks of its arguments, which were a quarter of a
    message's dump and half of a small model's (the message events are dumped on every
    webhook)."""
    text: bytes = model.__pydantic_serializer__.to_json(model, **options)
    return text.decode()


def utc_now() -> datetime:
    return datetime.now(UTC)
