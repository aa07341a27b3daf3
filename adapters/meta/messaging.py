"""The Messenger Platform `messaging[]` / `standby[]` element, the same shape for Instagram
and Messenger (docs/platforms.md sections 2a and 3): messages and echoes, edits, unsends,
reactions, reads, deliveries and postbacks. Plus the defensive readers both adapters use,
because `parse` must never raise on whatever JSON arrives.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from adapters.base import (
    ChannelContext,
    Contact,
    MessageChange,
    NewMessage,
    Parsed,
    ParseResult,
    ReadUpTo,
    as_dict,
    as_id,
    as_list,
    conversation_for,
    new_message,
    unsupported,
    utc_from_any,
)
from adapters.meta import referral as referrals
from schemas.message import (
    Attachment,
    AttachmentType,
    DeliveryStatus,
    Direction,
    MediaState,
    StoryKind,
)

NOBODY = Contact(platform_user_id="")  # the author is not in the payload (mentions)

_PLAIN = {
    "image": AttachmentType.IMAGE,  # Instagram: image, gif or sticker
    "video": AttachmentType.VIDEO,
    "audio": AttachmentType.AUDIO,
    "file": AttachmentType.FILE,
    "media": AttachmentType.FILE,  # listed by the IG doc without a description
    "ig_reel": AttachmentType.VIDEO,
    "reel": AttachmentType.VIDEO,
    "share": AttachmentType.SHARE,
    "ig_post": AttachmentType.SHARE,
    "story_mention": AttachmentType.STORY,
    "story": AttachmentType.STORY,
    "ig_story": AttachmentType.STORY,
}
_FILES = frozenset(
    {AttachmentType.IMAGE, AttachmentType.VIDEO, AttachmentType.AUDIO, AttachmentType.FILE}
)
_MEDIA_ID_KEYS = ("ig_post_media_id", "reel_video_id", "id", "sticker_id")
_MESSAGE_EXTRAS = ("quick_reply", "referral", "app_id", "metadata")


# Defensive readers


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def when(value: Any) -> datetime | None:
    """A platform timestamp (ms or s, number or string, or ISO text) in UTC; None if unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return utc_from_any(int(value) if isinstance(value, float) else value).astimezone(UTC)
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def party_id(element: dict[str, Any], key: str) -> str | None:
    return as_id(as_dict(element.get(key)).get("id"))


# The messaging[] element


ChangeHandler = Callable[[Any, ChannelContext, datetime | None, ParseResult], None]


def parse_entry(
    entry: Any, ctx: ChannelContext, handle_change: ChangeHandler, *, flat_change: bool = False
) -> ParseResult:
    """One entry of a Messenger-Platform delivery: its `messaging[]` / `standby[]` elements
    and its `changes[]`, each change handed to the product's `handle_change`. With
    `flat_change`, a `field`/`value` pair on the entry itself counts as one change (the
    Business Login for Instagram shape). An entry with nothing we read counts as ignored."""
    result = ParseResult()
    if not isinstance(entry, dict):
        result.ignored += 1
        return result
    fallback = when(entry.get("time"))
    found = parse_messaging(entry, ctx, fallback, result)
    changes = entry.get("changes")
    if changes is None and flat_change and "field" in entry:
        changes = [{"field": entry.get("field"), "value": entry.get("value")}]
    if changes is not None:
        found = True
        if not isinstance(changes, list):
            result.ignored += 1
        for change in as_list(changes):
            handle_change(change, ctx, fallback, result)
    if not found:
        result.ignored += 1
    return result


def parse_messaging(
    entry: dict[str, Any], ctx: ChannelContext, fallback: datetime | None, result: ParseResult
) -> bool:
    """Every `messaging[]` and `standby[]` element of an entry; False when it has neither.
    A standby element (handover protocol: another app owns the thread) is marked as such on
    its message, so the hub shows it to agents but its automation does not answer it."""
    found = False
    for key in ("messaging", "standby"):
        if key not in entry:
            continue
        found = True
        elements = entry[key]
        if not isinstance(elements, list):
            result.ignored += 1
            continue
        for element in elements:
            before = len(result.events)
            parse_element(element, ctx, fallback, result)
            if key == "standby":
                result.events[before:] = [_on_standby(e) for e in result.events[before:]]
    return found


def _on_standby(event: Parsed) -> Parsed:
    if not isinstance(event, NewMessage):
        return event
    return replace(event, message=event.message.model_copy(update={"standby": True}))


def parse_element(
    element: Any, ctx: ChannelContext, fallback: datetime | None, result: ParseResult
) -> None:
    """One element. Its own `timestamp` wins; the entry's `time` stands in when missing."""
    if not isinstance(element, dict):
        result.ignored += 1
        return
    sender = party_id(element, "sender")
    recipient = party_id(element, "recipient")
    at = when(element.get("timestamp")) or fallback
    if sender is None:
        result.ignored += 1
        return
    for key, handle in _HANDLERS.items():
        if isinstance(element.get(key), dict):
            handle(element, ctx, sender, recipient, at, result)
            return
    if isinstance(element.get("referral"), dict):  # an ad or link opened the thread again
        _referral(element, ctx, sender, recipient, at, result)
        return
    _unknown(element, ctx, sender, recipient, at, result)


def _other(ctx: ChannelContext, sender: str, recipient: str | None) -> str | None:
    """The customer's side of a DM: whoever is not our account."""
    return recipient if sender == ctx.account_id else sender


def _conversation(ctx: ChannelContext, thread: str | None) -> uuid.UUID | None:
    return conversation_for(ctx, thread) if thread else None


def _message(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    msg: dict[str, Any] = element["message"]
    mid = as_id(msg.get("mid"))
    if mid is None or at is None:
        result.ignored += 1
        return
    if msg.get("is_deleted") is True:
        change = {"deleted": True}
        thread = _other(ctx, sender, recipient)
        result.events.append(
            MessageChange(
                ctx.channel_id, _conversation(ctx, thread), mid, change, at, f"deleted:{mid}"
            )
        )
        return
    echo = msg.get("is_echo") is True or sender == ctx.account_id
    party = recipient if echo else sender
    if party is None or party == ctx.account_id:  # never a contact of ourselves (is_self)
        result.ignored += 1
        return
    attachments, strange = attachments_of(msg.get("attachments"))
    reply = as_dict(msg.get("reply_to"))
    story = as_dict(reply.get("story"))
    story_kind = StoryKind.REPLY if story else None
    if story:  # a reply to our story: the story comes along as an attachment, not a reply
        url, story_id = as_text(story.get("url")), as_id(story.get("id"))
        attachments.append(Attachment(type=AttachmentType.STORY, url=url, media_id=story_id))
    elif any(as_dict(a).get("type") == "story_mention" for a in as_list(msg.get("attachments"))):
        story_kind = StoryKind.MENTION
    text = as_text(msg.get("text"))
    if msg.get("is_unsupported") is True or (text is None and not attachments):
        attachments.append(unsupported({}))
        strange = True
    extras = {key: msg[key] for key in _MESSAGE_EXTRAS if key in msg}
    result.events.append(
        new_message(
            ctx,
            thread=party,
            contact=Contact(party),
            platform_message_id=mid,
            sent_at=at,
            direction=Direction.OUT if echo else Direction.IN,
            text=text,
            attachments=attachments,
            reply_to=None if story else as_id(reply.get("mid")),
            raw=element if strange else (extras or None),
            story=story_kind,
            referral=referrals.messenger(msg.get("referral")),
        )
    )


def attachments_of(value: Any) -> tuple[list[Attachment], bool]:
    """The attachments we can express, and whether any could not be (kept as unsupported)."""
    items = as_list(value)
    types = {as_text(as_dict(item).get("type")) for item in items}
    attachments: list[Attachment] = []
    strange = False
    for item in items:
        if as_dict(item).get("type") == "share" and "ig_post" in types:
            continue  # since Nov 2025 a post share comes twice: `share` and `ig_post`
        attachment = attachment_of(item)
        strange = strange or attachment.type == AttachmentType.UNSUPPORTED
        attachments.append(attachment)
    return attachments, strange


def attachment_of(item: Any) -> Attachment:
    item = as_dict(item)
    kind = as_text(item.get("type")) or ""
    payload = as_dict(item.get("payload"))
    url = as_text(payload.get("url"))
    title = as_text(payload.get("title"))
    if kind == "location":
        coordinates = as_dict(payload.get("coordinates"))
        return Attachment(
            type=AttachmentType.LOCATION,
            url=url,
            caption=title,
            latitude=_degrees(coordinates.get("lat")),
            longitude=_degrees(coordinates.get("long")),
        )
    if kind not in _PLAIN:  # fallback (a link), template, anything new
        return unsupported({"type": kind} if kind else {})
    media_id = next((i for k in _MEDIA_ID_KEYS if (i := as_id(payload.get(k)))), None)
    type_ = _PLAIN[kind]
    # A file behind a link that expires: the hub fetches it (`locate_media`). Shares and
    # stories stay links (a story's media must not be kept).
    state = MediaState.PENDING if url and type_ in _FILES else None
    return Attachment(type=type_, url=url, media_id=media_id, caption=title, state=state)


def _degrees(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value) if abs(value) < 1000 else float("nan")
    return number if math.isfinite(number) else None


def _edit(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    edit: dict[str, Any] = element["message_edit"]
    mid = as_id(edit.get("mid"))
    if mid is None or at is None:
        result.ignored += 1
        return
    text = as_text(edit.get("text"))
    changes: dict[str, Any] = {"edited": True} if text is None else {"text": text, "edited": True}
    key = f"edit:{mid}:{as_id(edit.get('num_edit'))}:{ms(at)}"
    thread = _other(ctx, sender, recipient)
    result.events.append(
        MessageChange(ctx.channel_id, _conversation(ctx, thread), mid, changes, at, key)
    )


def _reaction(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    reaction: dict[str, Any] = element["reaction"]
    mid = as_id(reaction.get("mid"))
    action = reaction.get("action")
    if mid is None or at is None or action not in ("react", "unreact"):
        result.ignored += 1
        return
    emoji = as_text(reaction.get("emoji"))
    name = as_text(reaction.get("reaction"))
    change = {"reaction": {"emoji": emoji, "reaction": name, "action": action, "by": sender}}
    key = f"reaction:{mid}:{sender}:{action}:{emoji or ''}:{ms(at)}"
    thread = _other(ctx, sender, recipient)
    result.events.append(
        MessageChange(ctx.channel_id, _conversation(ctx, thread), mid, change, at, key)
    )


def _read(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    """The customer saw our messages: up to `read.mid` (Instagram) or `read.watermark` (a
    time, Messenger). Our own account reading is not news to the inbox."""
    read: dict[str, Any] = element["read"]
    at = when(read.get("watermark")) or at
    if at is None or sender == ctx.account_id:
        result.ignored += 1
        return
    mid = as_id(read.get("mid"))
    result.events.append(ReadUpTo(conversation_for(ctx, sender), at, mid))


def _delivery(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    """Our messages reached the customer: one status change per listed mid. A delivery
    with only a watermark names no message, so it is counted and dropped."""
    delivery: dict[str, Any] = element["delivery"]
    at = when(delivery.get("watermark")) or at
    mids = [mid for mid in map(as_id, as_list(delivery.get("mids"))) if mid]
    if at is None or not mids:
        result.ignored += 1
        return
    conversation = _conversation(ctx, _other(ctx, sender, recipient))
    status = {"status": DeliveryStatus.DELIVERED.value}
    for mid in mids:
        change = MessageChange(ctx.channel_id, conversation, mid, status, at, f"delivered:{mid}")
        result.events.append(change)


def _postback(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    """A button or ice breaker the customer tapped: shown as what they chose."""
    postback: dict[str, Any] = element["postback"]
    party = _other(ctx, sender, recipient)
    if at is None or party is None or party == ctx.account_id:
        result.ignored += 1
        return
    mid = as_id(postback.get("mid")) or f"postback:{sender}:{ms(at)}"
    text = as_text(postback.get("title")) or as_text(postback.get("payload"))
    result.events.append(
        new_message(
            ctx,
            thread=party,
            contact=Contact(party),
            platform_message_id=mid,
            sent_at=at,
            direction=Direction.OUT if sender == ctx.account_id else Direction.IN,
            text=text,
            attachments=[] if text else [unsupported({"type": "postback"})],
            raw={"postback": postback},
            referral=referrals.messenger(postback.get("referral")),
        )
    )


def _referral(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    """`messaging_referrals`: someone with a thread already came back through an ad or a
    link. No message is in it; it is shown as one, so the agent sees which ad it was."""
    party = _other(ctx, sender, recipient)
    if at is None or party is None or party == ctx.account_id:
        result.ignored += 1
        return
    result.events.append(
        new_message(
            ctx,
            thread=party,
            contact=Contact(party),
            platform_message_id=f"referral:{sender}:{ms(at)}",
            sent_at=at,
            direction=Direction.IN,
            referral=referrals.messenger(element["referral"]),
        )
    )


def _unknown(
    element: dict[str, Any],
    ctx: ChannelContext,
    sender: str,
    recipient: str | None,
    at: datetime | None,
    result: ParseResult,
) -> None:
    """An event we do not know: shown as unsupported when it names a message, else counted."""
    found = (
        (key, as_id(value.get("mid"))) for key, value in element.items() if isinstance(value, dict)
    )
    key, mid = next(((k, m) for k, m in found if m), ("", None))
    party = _other(ctx, sender, recipient)
    if mid is None or at is None or party is None or party == ctx.account_id:
        result.ignored += 1
        return
    result.events.append(
        new_message(
            ctx,
            thread=party,
            contact=Contact(party),
            platform_message_id=mid,
            sent_at=at,
            direction=Direction.OUT if sender == ctx.account_id else Direction.IN,
            attachments=[unsupported({"type": key})],
            raw=element,
        )
    )


_HANDLERS = {
    "message": _message,
    "message_edit": _edit,
    "reaction": _reaction,
    "read": _read,
    "delivery": _delivery,
    "postback": _postback,
}
