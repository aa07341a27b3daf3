"""Instagram webhooks (`object: "instagram"`), one entry at a time: DMs and their events
in `messaging[]`/`standby[]` (adapters.meta.messaging), and comments, live comments, mentions
and the dashboard's changes-shaped `messages` test in `changes[]`. Business Login for
Instagram may put `field`/`value` straight on the entry, with no `changes` wrapper
(docs/platforms.md 2b); both shapes are read.

Pure: the entry and the channel it was routed to in, a ParseResult out. Never raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.base import (
    ChannelContext,
    Contact,
    ParseResult,
    as_dict,
    as_id,
    new_message,
)
from adapters.meta.messaging import (
    NOBODY,
    as_text,
    parse_element,
    parse_entry,
    when,
)
from schemas.message import Direction, MessageKind

COMMENT_FIELDS = ("comments", "live_comments")


def parse(entry: dict[str, Any], ctx: ChannelContext) -> ParseResult:
    """One entry of an Instagram delivery whose `id` is our account (ctx.account_id)."""
    return parse_entry(entry, ctx, _change, flat_change=True)


def _change(
    change: Any, ctx: ChannelContext, fallback: datetime | None, result: ParseResult
) -> None:
    change = as_dict(change)
    field = change.get("field")
    value = change.get("value")
    if not isinstance(value, dict):
        result.ignored += 1
    elif field in COMMENT_FIELDS:
        _comment(field, value, ctx, fallback, result)
    elif field == "mentions":
        _mention(value, ctx, fallback, result)
    elif field == "messages":  # the dashboard test: a messaging element as the value
        parse_element(value, ctx, fallback, result)
    else:  # story_insights and every field the inbox has no use for
        result.ignored += 1


def _comment(
    field: str,
    value: dict[str, Any],
    ctx: ChannelContext,
    fallback: datetime | None,
    result: ParseResult,
) -> None:
    """A comment on our media, or our own public reply to one. The IG-Login payload calls
    the comment `id`, the FB-Login one `comment_id`. A thread is a top-level comment with
    its replies (Instagram replies are one level deep, so `parent_id` is the root)."""
    comment_id = as_id(value.get("id")) or as_id(value.get("comment_id"))
    at = when(value.get("timestamp")) or fallback
    if comment_id is None or at is None:
        result.ignored += 1
        return
    author = as_dict(value.get("from"))
    author_id = as_id(author.get("id"))
    parent_id = as_id(value.get("parent_id"))
    raw: dict[str, Any] = {"field": field}
    if "media" in value:
        raw["media"] = value["media"]
    contact = Contact(author_id, username=as_text(author.get("username"))) if author_id else NOBODY
    result.events.append(
        new_message(
            ctx,
            thread=f"comment:{parent_id or comment_id}",
            contact=contact,
            platform_message_id=comment_id,
            sent_at=at,
            direction=Direction.OUT if author_id == ctx.account_id else Direction.IN,
            text=as_text(value.get("text")),
            kind=MessageKind.COMMENT,
            reply_to=parent_id,
            raw=raw,
        )
    )


def _mention(
    value: dict[str, Any], ctx: ChannelContext, fallback: datetime | None, result: ParseResult
) -> None:
    """Our account was @mentioned in a comment (`comment_id` + `media_id`) or in a caption
    (`media_id` only). The payload names neither the author nor the text: both need a
    Graph call, so the message carries ids only. Its platform id is prefixed, so the same
    comment arriving on the `comments` field is not mistaken for a duplicate of it."""
    comment_id = as_id(value.get("comment_id"))
    media_id = as_id(value.get("media_id"))
    at = when(value.get("timestamp")) or fallback
    if (comment_id or media_id) is None or at is None:
        result.ignored += 1
        return
    thread = f"comment:{comment_id}" if comment_id else f"mention:{media_id}"
    result.events.append(
        new_message(
            ctx,
            thread=thread,
            contact=NOBODY,
            platform_message_id=f"mention:{comment_id or media_id}",
            sent_at=at,
            direction=Direction.IN,
            kind=MessageKind.COMMENT,
            raw=value,
        )
    )
