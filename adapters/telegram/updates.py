"""Telegram Bot API inbound: one `Update` into new messages and message changes.

Threads: the chat (a private chat is the user; a group, supergroup or channel is itself),
or `"<chat id>:<thread id>"` for a forum topic. Message ids are per chat, so a platform
message id is `"<chat id>:<message_id>"`. Pure apart from one thing: a callback query
carries no time, so its message is stamped with the time it is parsed (received).

Groups: a message of a group or supergroup has kind `group` and carries the chat's title
(`Message.group`); its contact is the person who wrote it, so each message names its
participant and an erasure of that person takes their messages. A forum topic is a
conversation of its own (its thread is "chat:topic", where replies go with
`message_thread_id`): topics are how a forum separates its subjects, and one inbox thread for
all of them would interleave unrelated talks. A `new_chat_title` service message is a
message that renames the group (`group.renamed`); the conversation's title follows the
newest message's. A channel's posts and a private chat stay one-to-one.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from adapters.base import (
    ChannelContext,
    Contact,
    MessageChange,
    ParseResult,
    as_dict,
    as_id,
    as_list,
    conversation_for,
    new_message,
    nonempty_text,
    unsupported,
    utc_from_s,
)
from schemas.message import (
    Attachment,
    AttachmentType,
    Direction,
    Group,
    MediaState,
    MessageKind,
    utc_now,
)

MESSAGES = ("message", "channel_post", "business_message")
EDITS = ("edited_message", "edited_channel_post", "edited_business_message")
GROUPS = ("group", "supergroup")
# What the model holds entirely: a message with any other key keeps itself as `raw`
# (forwards, voice and video-note flags, contact cards, stories, venues, business
# connection ids, anything unknown).
PLAIN_KEYS = {
    "message_id",
    "message_thread_id",
    "is_topic_message",
    "from",
    "chat",
    "date",
    "text",
    "caption",
    "entities",
    "caption_entities",
    "link_preview_options",
    "reply_to_message",
    "has_protected_content",
    "media_group_id",
    "show_caption_above_media",
    "has_media_spoiler",
    "photo",
    "document",
    "audio",
    "video",
    "sticker",
    "location",
    "new_chat_title",
}
# Keys of a message that are about it rather than its content (to name what is unsupported).
ABOUT_KEYS = PLAIN_KEYS | {
    "sender_chat",
    "sender_boost_count",
    "sender_business_bot",
    "business_connection_id",
    "forward_origin",
    "forward_from",
    "forward_from_chat",
    "forward_from_message_id",
    "forward_signature",
    "forward_sender_name",
    "forward_date",
    "is_automatic_forward",
    "external_reply",
    "quote",
    "reply_to_story",
    "via_bot",
    "edit_date",
    "is_from_offline",
    "author_signature",
    "effect_id",
    "reply_markup",
}


def parse(update: dict[str, Any], ctx: ChannelContext) -> ParseResult:
    """One Update (with or without `update_id`). Polls, chat-member updates, inline queries
    and everything else the inbox has no use for are counted as ignored."""
    result = ParseResult()
    if not isinstance(update, dict):
        result.ignored += 1
        return result
    for key in MESSAGES:
        if key in update:
            _message(update[key], ctx, result)
            return result
    for key in EDITS:
        if key in update:
            _edit(update[key], ctx, result)
            return result
    if "callback_query" in update:
        _callback(update["callback_query"], ctx, result)
    elif "message_reaction" in update:
        _reaction(update["message_reaction"], ctx, result)
    else:
        result.ignored += 1
    return result


def _message(message: Any, ctx: ChannelContext, result: ParseResult) -> None:
    if not isinstance(message, dict):
        result.ignored += 1
        return
    chat = as_dict(message.get("chat"))
    chat_id = as_id(chat.get("id"))
    message_id = as_id(message.get("message_id"))
    at = _when(message.get("date"))
    if chat_id is None or message_id is None or at is None:
        result.ignored += 1
        return
    sender = as_dict(message.get("from"))
    ours = sender.get("is_bot") is True and as_id(sender.get("id")) == ctx.account_id
    person = _person(sender) if not ours else None
    contact = person or Contact(
        chat_id, _name(chat) or nonempty_text(chat.get("title")), _username(chat)
    )
    text = nonempty_text(message.get("text")) or nonempty_text(message.get("caption"))
    attachments = _attachments(message)
    group = _group(message)
    raw: dict[str, Any] | None = None
    if group is not None and group.renamed:
        pass  # a service message: the rename is the whole of it
    elif not text and not attachments:
        attachments = [unsupported({"type": _content_key(message)})]
        raw = message
    elif set(message) - PLAIN_KEYS:
        raw = message
    result.events.append(
        new_message(
            ctx,
            thread=_thread(message, chat_id),
            contact=contact,
            platform_message_id=f"{chat_id}:{message_id}",
            sent_at=at,
            direction=Direction.OUT if ours else Direction.IN,
            text=text,
            attachments=attachments,
            kind=MessageKind.GROUP if group else MessageKind.DM,
            reply_to=_reply_to(message, chat_id),
            raw=raw,
            group=group,
        )
    )


def _group(message: dict[str, Any]) -> Group | None:
    """The group a message was written in; None for a private chat or a channel."""
    chat = as_dict(message.get("chat"))
    if chat.get("type") not in GROUPS:
        return None
    renamed = nonempty_text(message.get("new_chat_title"))
    topic = as_id(message.get("message_thread_id"))
    return Group(
        title=renamed or nonempty_text(chat.get("title")),
        topic_id=topic if message.get("is_topic_message") is True else None,
        renamed=renamed is not None,
    )


def _edit(message: Any, ctx: ChannelContext, result: ParseResult) -> None:
    """An edited text or caption. Edits without either (a live location moving, a media
    swap) say nothing the model holds, and are ignored."""
    message = as_dict(message)
    chat_id = as_id(as_dict(message.get("chat")).get("id"))
    message_id = as_id(message.get("message_id"))
    edit_date = message.get("edit_date", message.get("date"))
    at = _when(edit_date)
    text = nonempty_text(message.get("text")) or nonempty_text(message.get("caption"))
    if chat_id is None or message_id is None or at is None or text is None:
        result.ignored += 1
        return
    result.events.append(
        MessageChange(
            channel_id=ctx.channel_id,
            conversation_id=conversation_for(ctx, _thread(message, chat_id)),
            platform_message_id=f"{chat_id}:{message_id}",
            changes={"text": text, "edited": True},
            at=at,
            dedupe_key=f"edit:{chat_id}:{message_id}:{edit_date}",
        )
    )


def _callback(query: Any, ctx: ChannelContext, result: ParseResult) -> None:
    """A button of ours was pressed: the button's data as a message from the contact."""
    query = as_dict(query)
    query_id = as_id(query.get("id"))
    person = _person(as_dict(query.get("from")))
    message = as_dict(query.get("message"))
    chat_id = as_id(as_dict(message.get("chat")).get("id"))
    thread = _thread(message, chat_id) if chat_id else person.platform_user_id if person else None
    if query_id is None or person is None or thread is None:
        result.ignored += 1
        return
    text = nonempty_text(query.get("data")) or nonempty_text(query.get("game_short_name"))
    # Answered in the webhook's own response (the Bot API's "making requests when getting
    # updates"): the button stops spinning at once, with no call of our own to wait for.
    result.answer = {"method": "answerCallbackQuery", "callback_query_id": query_id}
    group = _group(message) if chat_id else None
    result.events.append(
        new_message(
            ctx,
            thread=thread,
            contact=person,
            platform_message_id=f"callback:{query_id}",
            sent_at=utc_now(),  # a callback query carries no time: when we received it
            direction=Direction.IN,
            text=text,
            attachments=[] if text else [unsupported({"type": "callback_query"})],
            kind=MessageKind.GROUP if group else MessageKind.DM,
            raw=query,
            group=group,
        )
    )


def _reaction(update: Any, ctx: ChannelContext, result: ParseResult) -> None:
    """A user's reactions to a message changed (the update lists old and new)."""
    update = as_dict(update)
    chat_id = as_id(as_dict(update.get("chat")).get("id"))
    message_id = as_id(update.get("message_id"))
    at = _when(update.get("date"))
    if chat_id is None or message_id is None or at is None:
        result.ignored += 1
        return
    by = as_id(as_dict(update.get("user")).get("id")) or as_id(
        as_dict(update.get("actor_chat")).get("id")
    )
    new = [r for r in as_list(update.get("new_reaction")) if isinstance(r, dict)]
    emoji = next((nonempty_text(r.get("emoji")) for r in new if r.get("type") == "emoji"), None)
    result.events.append(
        MessageChange(
            channel_id=ctx.channel_id,
            conversation_id=conversation_for(ctx, chat_id),
            platform_message_id=f"{chat_id}:{message_id}",
            changes={
                "reaction": {"emoji": emoji, "action": "react" if new else "unreact", "by": by}
            },
            at=at,
            dedupe_key=f"reaction:{chat_id}:{message_id}:{by}:{update.get('date')}:{emoji or ''}",
        )
    )


def _attachments(message: dict[str, Any]) -> list[Attachment]:
    attachments: list[Attachment] = []
    sizes = [
        p for p in as_list(message.get("photo")) if isinstance(p, dict) and as_id(p.get("file_id"))
    ]
    if sizes:
        largest = max(
            sizes,
            key=lambda p: (_int(p.get("width")) * _int(p.get("height")), _int(p.get("file_size"))),
        )
        attachments.append(_file(AttachmentType.IMAGE, largest))
    if "animation" in message:  # also sent as `document` for old clients: one attachment
        attachments += _files(AttachmentType.VIDEO, message.get("animation"))
    else:
        attachments += _files(AttachmentType.FILE, message.get("document"))
    for key, kind in (
        ("video", AttachmentType.VIDEO),
        ("video_note", AttachmentType.VIDEO),
        ("audio", AttachmentType.AUDIO),
        ("voice", AttachmentType.AUDIO),
    ):
        attachments += _files(kind, message.get(key))
    sticker = as_dict(message.get("sticker"))
    if as_id(sticker.get("file_id")):
        attachment = _file(AttachmentType.STICKER, sticker)
        attachments.append(
            attachment.model_copy(update={"caption": nonempty_text(sticker.get("emoji"))})
        )
    venue = as_dict(message.get("venue"))
    location = as_dict(venue.get("location") or message.get("location"))
    latitude, longitude = _float(location.get("latitude")), _float(location.get("longitude"))
    if latitude is not None and longitude is not None:
        attachments.append(
            Attachment(
                type=AttachmentType.LOCATION,
                latitude=latitude,
                longitude=longitude,
                name=nonempty_text(venue.get("title")),
                caption=nonempty_text(venue.get("address")),
            )
        )
    contact = as_dict(message.get("contact"))
    if nonempty_text(contact.get("phone_number")) or nonempty_text(contact.get("first_name")):
        attachments.append(
            Attachment(
                type=AttachmentType.CONTACT,
                name=_name(contact),
                caption=nonempty_text(contact.get("phone_number")),
            )
        )
    story = as_dict(message.get("story"))
    story_chat = as_dict(story.get("chat"))
    if as_id(story.get("id")) and as_id(story_chat.get("id")):
        attachments.append(
            Attachment(
                type=AttachmentType.STORY,
                media_id=f"{as_id(story_chat.get('id'))}:{as_id(story.get('id'))}",
                name=nonempty_text(story_chat.get("title")) or _username(story_chat),
            )
        )
    return attachments


def _files(kind: AttachmentType, value: Any) -> list[Attachment]:
    value = as_dict(value)
    return [_file(kind, value)] if as_id(value.get("file_id")) else []


def _file(kind: AttachmentType, value: dict[str, Any]) -> Attachment:
    size = value.get("file_size")
    return Attachment(
        type=kind,
        media_id=as_id(value.get("file_id")),
        mime_type=nonempty_text(value.get("mime_type")),
        name=nonempty_text(value.get("file_name")),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        state=MediaState.PENDING,  # the hub fetches it by its file_id (`locate_media`)
    )


def _thread(message: dict[str, Any], chat_id: str) -> str:
    topic = as_id(message.get("message_thread_id"))
    return f"{chat_id}:{topic}" if message.get("is_topic_message") is True and topic else chat_id


def _reply_to(message: dict[str, Any], chat_id: str) -> str | None:
    """The replied-to message, in the same chat. In a forum topic every message "replies"
    to the topic's first message; that is the thread, not a reply."""
    replied = as_id(as_dict(message.get("reply_to_message")).get("message_id"))
    if replied is None:
        return None
    if message.get("is_topic_message") is True and replied == as_id(
        message.get("message_thread_id")
    ):
        return None
    return f"{chat_id}:{replied}"


def _content_key(message: dict[str, Any]) -> str:
    """What the message carries that we do not know (poll, dice, a service message...)."""
    return next((str(key) for key in message if key not in ABOUT_KEYS), "unknown")


def _person(user: dict[str, Any]) -> Contact | None:
    user_id = as_id(user.get("id"))
    return Contact(user_id, _name(user), _username(user)) if user_id else None


def _name(user: dict[str, Any]) -> str | None:
    parts = [nonempty_text(user.get("first_name")), nonempty_text(user.get("last_name"))]
    return " ".join(p for p in parts if p) or None


def _username(user: dict[str, Any]) -> str | None:
    return nonempty_text(user.get("username"))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _when(value: Any) -> datetime | None:
    """Telegram's epoch seconds in UTC; None when it is not a time."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return utc_from_s(value)
    except (ValueError, OverflowError, OSError):
        return None


__all__ = ["parse"]
