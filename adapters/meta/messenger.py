"""Messenger webhooks (`object: "page"`), one entry at a time: DMs and their events in
`messaging[]`/`standby[]` (adapters.meta.messaging) and Page `feed` comments in `changes[]`.

Pure: the entry and the channel it was routed to in, a ParseResult out. Never raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.base import (
    ChannelContext,
    Contact,
    MessageChange,
    ParseResult,
    as_dict,
    as_id,
    conversation_for,
    new_message,
)
from adapters.meta.messaging import (
    NOBODY,
    as_text,
    ms,
    parse_entry,
    when,
)
from schemas.message import Attachment, AttachmentType, Direction, MessageKind


def parse(entry: dict[str, Any], ctx: ChannelContext) -> ParseResult:
    """One entry of a Page delivery whose `id` is our Page (ctx.account_id)."""
    return parse_entry(entry, ctx, _change)


def _change(
    change: Any, ctx: ChannelContext, fallback: datetime | None, result: ParseResult
) -> None:
    """A Page `feed` change. Only comments reach the inbox: added, edited, removed, hidden
    or shown again.
    Reactions, posts, likes and shares on the feed are counted and dropped."""
    change = as_dict(change)
    value = as_dict(change.get("value"))
    comment_id = as_id(value.get("comment_id"))
    at = when(value.get("created_time")) or fallback
    if change.get("field") != "feed" or value.get("item") != "comment" or not comment_id:
        result.ignored += 1
        return
    if at is None:
        result.ignored += 1
        return
    post_id = as_id(value.get("post_id"))
    parent_id = as_id(value.get("parent_id"))
    reply_to = parent_id if parent_id and parent_id != post_id else None
    thread = f"comment:{reply_to or comment_id}"
    verb = value.get("verb")
    if verb == "add":
        _added(value, ctx, comment_id, thread, reply_to, at, result)
        return
    conversation = conversation_for(ctx, thread)
    if verb == "edited":
        text = as_text(value.get("message"))
        changes: dict[str, Any] = (
            {"edited": True} if text is None else {"text": text, "edited": True}
        )
        key = f"edited:{comment_id}:{ms(at)}"
        result.events.append(
            MessageChange(ctx.channel_id, conversation, comment_id, changes, at, key)
        )
    elif verb == "remove":
        deleted = {"deleted": True}
        key = f"deleted:{comment_id}"
        result.events.append(
            MessageChange(ctx.channel_id, conversation, comment_id, deleted, at, key)
        )
    elif verb in ("hide", "unhide"):  # the Page hid or showed it, here or in Meta's tools
        hidden = {"hidden": verb == "hide"}
        key = f"{verb}:{comment_id}:{ms(at)}"
        result.events.append(
            MessageChange(ctx.channel_id, conversation, comment_id, hidden, at, key)
        )
    else:  # anything new
        result.ignored += 1


def _added(
    value: dict[str, Any],
    ctx: ChannelContext,
    comment_id: str,
    thread: str,
    reply_to: str | None,
    at: datetime,
    result: ParseResult,
) -> None:
    """A new comment on one of our posts, or our Page's own public reply. A thread is a
    top-level comment with its replies; `parent_id` is the post for a top-level comment."""
    author = as_dict(value.get("from"))
    author_id = as_id(author.get("id"))
    contact = Contact(author_id, name=as_text(author.get("name"))) if author_id else NOBODY
    photo = as_text(value.get("photo"))
    video = as_text(value.get("video"))
    attachments = [Attachment(type=AttachmentType.IMAGE, url=photo)] if photo else []
    attachments += [Attachment(type=AttachmentType.VIDEO, url=video)] if video else []
    result.events.append(
        new_message(
            ctx,
            thread=thread,
            contact=contact,
            platform_message_id=comment_id,
            sent_at=at,
            direction=Direction.OUT if author_id == ctx.account_id else Direction.IN,
            text=as_text(value.get("message")),
            attachments=attachments,
            kind=MessageKind.COMMENT,
            reply_to=reply_to,
            raw={"post_id": as_id(value.get("post_id"))},
        )
    )
