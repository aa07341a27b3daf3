"""WhatsApp Cloud API inbound: one webhook entry (after `adapters.meta.webhook.split`, an
entry with one change for one of our phone numbers) into new messages, message changes and
statuses.

Pure: no I/O, never raises on content it does not know. Message types the model cannot
express become an `unsupported` attachment with the element kept as `raw`; whatever else
the model cannot hold (voice flag, forwarded flags, button ids and payloads, contact cards)
is kept by keeping the element as `raw` too. A click-to-WhatsApp ad's `referral` is read
into `Message.referral` (and kept in `raw` with the rest of the element).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from adapters.base import (
    ChannelContext,
    Contact,
    MessageChange,
    ParseResult,
    as_id,
    as_list,
    conversation_for,
    new_message,
    nonempty_text,
    unsupported,
    utc_from_any,
)
from adapters.meta import referral as referrals
from schemas.message import Attachment, AttachmentType, Direction, MediaState

MEDIA = {
    "image": AttachmentType.IMAGE,
    "video": AttachmentType.VIDEO,
    "audio": AttachmentType.AUDIO,
    "document": AttachmentType.FILE,
    "sticker": AttachmentType.STICKER,
}
# Types whose element the model holds entirely (so no `raw` unless something else is in it).
PLAIN_TYPES = {"text", "image", "video", "document", "sticker", "location"}
PLAIN_KEYS = {"from", "to", "id", "timestamp", "type", "context"}
STATUSES = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "played": "read",  # a voice message was played: it has been read
    "failed": "failed",
}


def parse(entry: dict[str, Any], ctx: ChannelContext) -> ParseResult:
    """Every change of the entry: `messages` (messages, statuses, errors) and
    `smb_message_echoes` (what the business sent from the WhatsApp Business app).
    Other fields, and `value.errors[]` not tied to a message, are counted as ignored."""
    result = ParseResult()
    changes = entry.get("changes") if isinstance(entry, dict) else None
    if not isinstance(changes, list):
        result.ignored += 1
        return result
    for change in changes:
        field = change.get("field") if isinstance(change, dict) else None
        value = change.get("value") if isinstance(change, dict) else None
        if not isinstance(value, dict) or field not in ("messages", "smb_message_echoes"):
            result.ignored += 1
            continue
        before = (len(result.events), result.ignored)
        names = _names(value.get("contacts"))
        errors = [e for e in as_list(value.get("errors")) if isinstance(e, dict)]
        attached = False
        elements = value.get("messages" if field == "messages" else "message_echoes")
        direction = Direction.IN if field == "messages" else Direction.OUT
        for element in as_list(elements):
            attached |= _message(element, names, errors, direction, ctx, result)
        if field == "messages":
            for status in as_list(value.get("statuses")):
                _status(status, ctx, result)
        if errors and not attached:
            result.ignored += len(errors)  # errors of the change itself: for the caller's log
        if (len(result.events), result.ignored) == before:
            result.ignored += 1  # a change with nothing in it
    return result


def sent_message_id(response: dict[str, Any]) -> str | None:
    """The wamid of a message the Send API accepted: `messages[0].id` of its response."""
    messages = response.get("messages") if isinstance(response, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = first.get("id") if isinstance(first, dict) else None
    return wamid if isinstance(wamid, str) and wamid else None


def _message(
    element: Any,
    names: dict[str, str],
    errors: list[dict[str, Any]],
    direction: Direction,
    ctx: ChannelContext,
    result: ParseResult,
) -> bool:
    """Add what one `messages[]` / `message_echoes[]` element means. True when the change's
    `errors` were attached to it (an unsupported message: they say why)."""
    if not isinstance(element, dict):
        result.ignored += 1
        return False
    sender = as_id(element.get("from"))
    wamid = as_id(element.get("id"))
    at = _when(element.get("timestamp"))
    peer = sender if direction == Direction.IN else as_id(element.get("to"))
    if sender is None or wamid is None or at is None or peer is None:
        result.ignored += 1
        return False
    kind = nonempty_text(element.get("type")) or ""
    body = element.get(kind)
    body = body if isinstance(body, dict) else {}
    conversation = conversation_for(ctx, peer)

    if kind in ("reaction", "edit", "revoke"):
        change = _change(kind, body, sender, wamid, at, conversation, ctx)
        if change is None:
            result.ignored += 1
        else:
            result.events.append(change)
        return False

    text, attachments = _content(element)
    context = element.get("context")
    context = context if isinstance(context, dict) else {}
    raw: dict[str, Any] | None = None
    attached = False
    if not text and not attachments:
        attachments = [unsupported(element)]
        raw = dict(element)
        if errors and "errors" not in element:
            raw["value_errors"] = errors  # `value.errors[]`: why the platform could not say more
            attached = True
    elif (
        kind not in PLAIN_TYPES
        or set(element) - PLAIN_KEYS - {kind}
        or set(context) - {"from", "id"}
    ):
        raw = element
    result.events.append(
        new_message(
            ctx,
            thread=peer,
            contact=Contact(peer, names.get(peer)),
            platform_message_id=wamid,
            sent_at=at,
            direction=direction,
            text=text,
            attachments=attachments,
            reply_to=as_id(context.get("id")),
            raw=raw,
            referral=referrals.whatsapp(element.get("referral")),
        )
    )
    return attached


def _content(element: dict[str, Any]) -> tuple[str | None, list[Attachment]]:
    """Text and attachments of a message; nothing at all when the model cannot express it."""
    kind = nonempty_text(element.get("type")) or ""
    body = element.get(kind)
    if kind == "contacts":
        cards = [_card(card) for card in as_list(body) if isinstance(card, dict)]
        return None, cards
    if not isinstance(body, dict):
        return None, []
    if kind == "text":
        return nonempty_text(body.get("body")), []
    if kind in MEDIA:
        return None, [
            Attachment(
                type=MEDIA[kind],
                url=nonempty_text(body.get("url")),
                media_id=as_id(body.get("id")),
                mime_type=nonempty_text(body.get("mime_type")),
                name=nonempty_text(body.get("filename")),
                size=byte_count(body.get("file_size")),
                caption=nonempty_text(body.get("caption")),
                state=MediaState.PENDING,  # the hub fetches it by its id (`locate_media`)
            )
        ]
    if kind == "location":
        latitude, longitude = _float(body.get("latitude")), _float(body.get("longitude"))
        if latitude is None or longitude is None:
            return None, []
        return None, [
            Attachment(
                type=AttachmentType.LOCATION,
                latitude=latitude,
                longitude=longitude,
                name=nonempty_text(body.get("name")),
                caption=nonempty_text(body.get("address")),
            )
        ]
    if kind == "interactive":
        reply_type = nonempty_text(body.get("type")) or ""
        reply = body.get(reply_type)
        reply = reply if isinstance(reply, dict) else {}
        if reply_type in ("button_reply", "list_reply"):
            return nonempty_text(reply.get("title")), []
        if reply_type == "nfm_reply":  # a completed Flow: its body, the answers in raw
            return nonempty_text(reply.get("body")), []
        return None, []
    if kind == "button":  # a template's quick-reply button: the payload stays in raw
        return nonempty_text(body.get("text")) or nonempty_text(body.get("payload")), []
    return None, []  # order, system, identity, unsupported, unknown


def _card(card: dict[str, Any]) -> Attachment:
    name = card.get("name")
    name = name if isinstance(name, dict) else {}
    phones = [p for p in as_list(card.get("phones")) if isinstance(p, dict)]
    return Attachment(
        type=AttachmentType.CONTACT,
        name=nonempty_text(name.get("formatted_name")) or nonempty_text(name.get("first_name")),
        caption=nonempty_text(phones[0].get("phone")) if phones else None,
    )


def _change(
    kind: str,
    body: dict[str, Any],
    sender: str,
    wamid: str,
    at: datetime,
    conversation: uuid.UUID,
    ctx: ChannelContext,
) -> MessageChange | None:
    """A reaction, an edit or a revoke (an unsend): a change to an earlier message."""
    changes: dict[str, Any]
    if kind == "reaction":
        target = as_id(body.get("message_id"))
        emoji = nonempty_text(body.get("emoji"))  # empty or missing: the reaction was removed
        changes = {
            "reaction": {"emoji": emoji, "action": "react" if emoji else "unreact", "by": sender}
        }
    elif kind == "edit":
        target = as_id(body.get("original_message_id"))
        edited = body.get("message")
        edited = edited if isinstance(edited, dict) else {}
        text, attachments = _content(edited)
        caption = next((a.caption for a in attachments if a.caption), None)
        changes = {"edited": True}
        if text or caption:
            changes["text"] = text or caption
    else:
        target = as_id(body.get("original_message_id"))
        changes = {"deleted": True}
    if target is None:
        return None
    return MessageChange(
        channel_id=ctx.channel_id,
        conversation_id=conversation,
        platform_message_id=target,
        changes=changes,
        at=at,
        dedupe_key=f"{kind}:{wamid}",
    )


def _status(status: Any, ctx: ChannelContext, result: ParseResult) -> None:
    """A delivery status of a message we sent. For a group, `recipient_id` is the group."""
    if not isinstance(status, dict):
        result.ignored += 1
        return
    wamid = as_id(status.get("id"))
    state = STATUSES.get(nonempty_text(status.get("status")) or "")
    at = _when(status.get("timestamp"))
    if wamid is None or state is None or at is None:
        result.ignored += 1
        return
    recipient = as_id(status.get("recipient_id"))
    changes: dict[str, Any] = {"status": state}
    if state == "failed":
        errors = [e for e in as_list(status.get("errors")) if isinstance(e, dict)]
        changes["error"] = _error(errors[0] if errors else {})
    result.events.append(
        MessageChange(
            channel_id=ctx.channel_id,
            conversation_id=conversation_for(ctx, recipient) if recipient else None,
            platform_message_id=wamid,
            changes=changes,
            at=at,
            dedupe_key=f"status:{wamid}:{state}",
        )
    )


def _error(error: dict[str, Any]) -> dict[str, str]:
    """{code, message} of a DeliveryError: the code as a string, the most specific text
    (`error_data.details`, which Meta says to build on, then `message`, then `title`)."""
    data = error.get("error_data")
    details = nonempty_text(data.get("details")) if isinstance(data, dict) else None
    code = as_id(error.get("code"))
    message = details or nonempty_text(error.get("message")) or nonempty_text(error.get("title"))
    return {"code": code or "unknown", "message": message or "failed"}


def _names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in as_list(contacts):
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile")
        name = nonempty_text(profile.get("name")) if isinstance(profile, dict) else None
        wa_id = as_id(contact.get("wa_id"))
        if wa_id and name:
            names[wa_id] = name
    return names


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def byte_count(value: Any) -> int | None:
    """A byte count, as a number or the string the Graph API sometimes gives."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        size = int(value)
    except ValueError:
        return None
    return size if size >= 0 else None


def _when(value: Any) -> datetime | None:
    """WhatsApp's string of epoch seconds (or anything utc_from_any reads) in UTC; None
    when it is not a time."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return utc_from_any(value)
    except (ValueError, OverflowError, OSError):
        return None


__all__ = ["parse", "sent_message_id"]
