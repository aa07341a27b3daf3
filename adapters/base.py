"""What every channel adapter shares: the channel a payload is for, and what parsing yields.

An adapter's `parse` is a pure function of a decoded payload and the `ChannelContext` of
the channel it was routed to; it never does I/O and never raises on content it does not
know (that becomes an `unsupported` attachment with the raw JSON kept). `verify` checks
a request before anything is parsed. Only `send` (outbound) talks to the platform.

Threading: a DM thread is keyed by the other party's platform id; a comment thread by
its top-level comment. Ids are derived (schemas.message), so parsing needs no lookups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.message import (
    Attachment,
    AttachmentType,
    ChannelKind,
    DeliveryStatus,
    Direction,
    Group,
    Message,
    MessageKind,
    Referral,
    Sender,
    SenderType,
    StoryKind,
    contact_id_for,
    conversation_id_for,
    message_id_for,
)


@dataclass(frozen=True, slots=True)
class ChannelContext:
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    kind: ChannelKind
    account_id: str  # our own id on the platform: IG account, Page, phone number id, bot id


@dataclass(frozen=True, slots=True)
class Contact:
    platform_user_id: str
    name: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to add: from a contact, or an echo of one the business sent elsewhere."""

    message: Message
    contact: Contact
    thread: str = ""  # what the conversation id was derived from: the reply's address


@dataclass(frozen=True, slots=True)
class MessageChange:
    """A change to a message known by its platform id: a reaction, an edit, an unsend, a
    delivery status. `changes` holds only the keys that change, from: `reactions` (the
    full list after the change is not known, so `reaction`: {emoji, action, by}),
    `text`, `edited`, `deleted`, `status`, `error`."""

    channel_id: uuid.UUID
    conversation_id: uuid.UUID | None  # None when the payload does not say (a status)
    platform_message_id: str
    changes: dict[str, Any]
    at: datetime
    dedupe_key: str  # what makes a redelivery of this same change harmless


@dataclass(frozen=True, slots=True)
class ReadUpTo:
    """The contact has read our messages up to a point (a watermark or a message id)."""

    conversation_id: uuid.UUID
    at: datetime
    platform_message_id: str | None = None


Parsed = NewMessage | MessageChange | ReadUpTo


@dataclass
class ParseResult:
    events: list[Parsed] = field(default_factory=list)
    ignored: int = 0  # test events and notifications the inbox has no use for
    # A platform call made in the webhook's response (Telegram: answerCallbackQuery).
    answer: dict[str, Any] | None = None


def utc_from_ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def utc_from_s(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def utc_from_any(value: Any) -> datetime:
    """Meta sends ms (and sometimes s, or ISO strings in fixtures), WhatsApp a string of s,
    Telegram s. Numbers past 10^11 are milliseconds."""
    if isinstance(value, str) and not value.isdigit():
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    number = int(value)
    return utc_from_ms(number) if number > 10**11 else utc_from_s(number)


def new_message(
    ctx: ChannelContext,
    *,
    thread: str,
    contact: Contact,
    platform_message_id: str,
    sent_at: datetime,
    direction: Direction,
    text: str | None = None,
    attachments: list[Attachment] | None = None,
    kind: MessageKind = MessageKind.DM,
    reply_to: str | None = None,
    raw: dict[str, Any] | None = None,
    sender_name: str | None = None,
    group: Group | None = None,
    standby: bool = False,
    story: StoryKind | None = None,
    referral: Referral | None = None,
) -> NewMessage:
    """The one way adapters build a normalized message, so ids are derived the same way.
    Ids are derived from the platform's whole strings; what is stored is cut to its column
    (`hub.storage.models`), since one value too long would stop the persist group on that event."""
    contact_id = contact_id_for(ctx.workspace_id, ctx.channel_id, contact.platform_user_id)
    contact = Contact(
        contact.platform_user_id[:ID_CHARS], _fit(contact.name), _fit(contact.username)
    )
    sender = (
        Sender(type=SenderType.CONTACT, id=str(contact_id), name=contact.name or contact.username)
        if direction == Direction.IN
        else Sender(type=SenderType.AGENT, name=_fit(sender_name))
    )
    message = Message(
        id=message_id_for(ctx.channel_id, platform_message_id),
        workspace_id=ctx.workspace_id,
        channel_id=ctx.channel_id,
        conversation_id=conversation_id_for(ctx.workspace_id, ctx.channel_id, thread),
        contact_id=contact_id,
        channel_kind=ctx.kind,
        kind=kind,
        direction=direction,
        sender=sender,
        text=text,
        attachments=attachments or [],
        reply_to=_fit(reply_to),
        group=group.model_copy(update={"title": _fit(group.title)}) if group else None,
        standby=standby,
        story=story,
        referral=referral,
        platform_message_id=platform_message_id[:ID_CHARS],
        sent_at=sent_at,
        status=DeliveryStatus.RECEIVED if direction == Direction.IN else DeliveryStatus.SENT,
        raw=raw,
    )
    return NewMessage(message, contact, thread[:THREAD_CHARS])


ID_CHARS = 200  # platform ids, names and usernames, as the columns hold them
THREAD_CHARS = 300


def _fit(value: str | None) -> str | None:
    return None if value is None else value[:ID_CHARS]


def unsupported(raw: dict[str, Any]) -> Attachment:
    """Content the model cannot express: shown as unsupported, the raw JSON kept on the message."""
    return Attachment(type=AttachmentType.UNSUPPORTED, caption=str(raw.get("type") or "unknown"))


def conversation_for(ctx: ChannelContext, thread: str) -> uuid.UUID:
    return conversation_id_for(ctx.workspace_id, ctx.channel_id, thread)


# Reading untrusted JSON: the wrong type is "absent", never an exception.


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_id(value: Any) -> str | None:
    """Platform ids are strings; some payloads send numbers. Anything else is no id."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**100:
        return str(value)  # (a huge int would not even convert)
    return None


def nonempty_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
