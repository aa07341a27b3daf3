"""Messenger inbound parsing, from the recorded payloads in tests/fixtures/messenger (one
test per file) and the doc templates in tests/fixtures/templates (repaired as each test
says: they are not valid JSON as published)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from adapters.base import Contact, MessageChange, ParseResult, ReadUpTo, conversation_for
from adapters.meta import messenger
from adapters.meta.messaging import ms
from adapters.meta.webhook import split
from schemas.message import Attachment, AttachmentType, ChannelKind, Direction, MessageKind
from tests.adapters.test_instagram import ENTRIES, check_documented, expect, from_body, jsonc, only
from tests.payloads import context, every, fixture_path, load

pytestmark = pytest.mark.unit

MS = ChannelKind.MESSENGER
PAGE = "404217156637689"  # the Page in bottender's single-element fixtures
USER = "1423587017700273"  # its customer (PSID)
FROM_USER: dict[str, Any] = {"thread": USER, "contact": Contact(USER), "direction": Direction.IN}
TO_USER: dict[str, Any] = {**FROM_USER, "direction": Direction.OUT}  # an echo
COVERED: dict[str, str] = {}


def covers(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(test: Callable[[], None]) -> Callable[[], None]:
        COVERED[name] = test.__name__
        return test

    return register


def element(name: str, account: str = PAGE) -> tuple[ParseResult, Any]:
    """A single `messaging[]` element, wrapped in an entry of our Page (its `time` stays
    out of the way: every element here has its own timestamp or watermark)."""
    ctx = context(MS, account)
    entry = {"id": account, "time": 1, "messaging": [load(f"messenger/{name}")]}
    return messenger.parse(entry, ctx), ctx


def change(name: str) -> tuple[ParseResult, Any]:
    ctx = context(MS, PAGE)
    entry = {"id": PAGE, "time": 1, "changes": [load(f"messenger/{name}")]}
    return messenger.parse(entry, ctx), ctx


def ms_body(name: str) -> tuple[ParseResult, Any]:
    return from_body(messenger.parse, load(f"messenger/{name}"), MS)


# One test per fixture file


@covers("event_text.json")
def test_event_text() -> None:
    result, ctx = element("event_text.json")
    expect(
        only(result),
        ctx,
        **FROM_USER,
        platform_message_id="mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl",
        sent_at=datetime(2017, 4, 10, 3, 52, 43, 181000, UTC),
        text="Sharp tools make good work.",
    )


@covers("event_image_attachment.json")
def test_event_image_attachment() -> None:
    result, ctx = element("event_image_attachment.json")
    (attachment,) = load("messenger/event_image_attachment.json")["message"]["attachments"]
    url = attachment["payload"]["url"]
    assert url.startswith("https://scontent.xx.fbcdn.net/v/t35.0-12/17887258_")
    expect(
        only(result),
        ctx,
        **FROM_USER,
        platform_message_id="mid.$cAAE1UUyiiwthh1ZAO1bVhDxGk2N0",
        sent_at=datetime(2017, 4, 10, 4, 13, 24, 411000, UTC),
        attachments=[Attachment(type=AttachmentType.IMAGE, url=url, state="pending")],
    )


@covers("event_location_attachment.json")
def test_event_location_attachment() -> None:
    result, ctx = element("event_location_attachment.json")
    location = Attachment(type=AttachmentType.LOCATION, latitude=0.0, longitude=0.0)
    expect(
        only(result),
        ctx,
        **FROM_USER,
        platform_message_id="mid.$cAAE1UUyiiwthh1ZAO1bVhDxGk2N0",
        sent_at=datetime(2017, 4, 10, 4, 13, 24, 411000, UTC),
        attachments=[location],
    )


@covers("event_quick_reply.json")
def test_event_quick_reply() -> None:
    result, ctx = element("event_quick_reply.json")
    payload = {"payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED"}
    expect(
        only(result),
        ctx,
        **FROM_USER,
        platform_message_id="mid.$cAAE1UUyiiwthh2BKL1bVhsBhVxvm",
        text="Red",
        sent_at=datetime(2017, 4, 10, 4, 24, 22, 319000, UTC),
        raw={"quick_reply": payload},
    )


@covers("event_echo.json")
def test_event_echo_is_ours_to_the_customer() -> None:
    result, ctx = element("event_echo.json")
    expect(
        only(result),
        ctx,
        **TO_USER,
        platform_message_id="mid.$cAAE1UUyiiwthh1yrIlbVhdisQW8M",
        sent_at=datetime(2017, 4, 10, 4, 20, 24, 994000, UTC),
        text="Difficult the first time, easy the second.",
        raw={"app_id": 205552219930699},
    )


@covers("event_postback.json")
def test_event_postback_without_mid_or_title() -> None:
    result, ctx = element("event_postback.json")
    expect(
        only(result),
        ctx,
        **FROM_USER,
        platform_message_id=f"postback:{USER}:1491798782090",
        text="USER_DEFINED_PAYLOAD",
        sent_at=datetime(2017, 4, 10, 4, 33, 2, 90000, UTC),
        raw={"postback": {"payload": "USER_DEFINED_PAYLOAD"}},
    )


@covers("event_delivery.json")
def test_event_delivery_sender_and_recipient_swapped() -> None:
    # bottender's delivery has the Page as sender: the customer is whoever is not the Page.
    result, ctx = element("event_delivery.json")
    mid = "mid.1458668856218:ed81099e15d3f4f233"
    at = datetime(2016, 3, 22, 17, 47, 36, 253000, UTC)  # the watermark
    status = {"status": "delivered"}
    assert only(result) == MessageChange(
        ctx.channel_id, conversation_for(ctx, USER), mid, status, at, f"delivered:{mid}"
    )


@covers("event_delivery_doc_example.json")
def test_event_delivery_doc_example() -> None:
    result, ctx = element("event_delivery_doc_example.json", account="<PAGE_ID>")
    mid = "mid.1458668856218:ed81099e15d3f4f233"
    at = datetime(2016, 3, 22, 17, 47, 36, 253000, UTC)
    status = {"status": "delivered"}
    assert only(result) == MessageChange(
        ctx.channel_id, conversation_for(ctx, "<PSID>"), mid, status, at, f"delivered:{mid}"
    )


@covers("event_read_doc_example.json")
def test_event_read_doc_example() -> None:
    """A read receipt names a time, not a message: everything sent up to the watermark."""
    result, ctx = element("event_read_doc_example.json", account="<PAGE_ID>")
    at = datetime(2016, 3, 22, 17, 47, 36, 253000, UTC)  # the watermark, not the timestamp
    assert only(result) == ReadUpTo(conversation_for(ctx, "<PSID>"), at, None)


@covers("webhook_text_full.json")
def test_webhook_text_full() -> None:
    result, ctx = ms_body("webhook_text_full.json")
    assert ctx.account_id == "1895382890692545"
    expect(
        only(result),
        ctx,
        thread="1412611362105802",
        contact=Contact("1412611362105802"),
        direction=Direction.IN,
        platform_message_id="mid.1486464322190:cb04e5a654",
        sent_at=datetime(2017, 2, 7, 10, 45, 22, 190000, UTC),
        text="text",
    )


@covers("webhook_echo_full.json")
def test_webhook_echo_full() -> None:
    result, ctx = ms_body("webhook_echo_full.json")
    assert ctx.account_id == "1134713619900975"
    expect(
        only(result),
        ctx,
        thread="1244813222196986",
        contact=Contact("1244813222196986"),
        direction=Direction.OUT,
        platform_message_id="mid.$cAARS90328R5hrBz-Vlbete17ftIb",
        sent_at=datetime(2017, 4, 17, 7, 36, 48, 982000, UTC),
        text="text",
        raw={"app_id": 1821152484774199},
    )


@covers("page_feed_comment_batched_two_entries.json")
def test_page_feed_comment_batched_two_entries() -> None:
    pieces = split(load("messenger/page_feed_comment_batched_two_entries.json")).pieces
    assert [piece.account_id for piece in pieces] == ["<PAGE_ID>", "<OTHER_PAGE_ID>"]
    parent = "139560936744456_139562213411528"
    for number, piece in enumerate(pieces):  # each Page is its own channel
        ctx = dataclasses.replace(context(MS, piece.account_id), channel_id=uuid.UUID(int=number))
        expect(
            only(messenger.parse(piece.entry, ctx)),
            ctx,
            kind=MessageKind.COMMENT,
            thread=f"comment:{parent}",
            contact=Contact("139560936744123", name="user"),
            direction=Direction.IN,
            platform_message_id="139560936744456_139620233405726",
            text="Good",
            reply_to=parent,
            sent_at=datetime(2017, 11, 29, 10, 23, 35, tzinfo=UTC),
            raw={"post_id": "137542570280222_139560936744456"},
        )


@covers("page_feed_change_comment_remove.json")
def test_page_feed_comment_remove() -> None:
    # parent_id is the post: a top-level comment, its own thread root.
    result, ctx = change("page_feed_change_comment_remove.json")
    comment = "139560936744456_139597043408045"
    assert only(result) == MessageChange(
        ctx.channel_id,
        conversation_for(ctx, f"comment:{comment}"),
        comment,
        {"deleted": True},
        datetime(2017, 11, 29, 9, 49, 4, tzinfo=UTC),
        f"deleted:{comment}",
    )


@covers("page_feed_change_comment_hide.json")
def test_page_feed_comment_hidden_and_shown_again() -> None:
    result, ctx = change("page_feed_change_comment_hide.json")
    comment = "139560936744456_139597043408045"
    at = datetime(2017, 11, 29, 9, 49, 4, tzinfo=UTC)
    conversation = conversation_for(ctx, f"comment:{comment}")
    assert only(result) == MessageChange(
        ctx.channel_id, conversation, comment, {"hidden": True}, at, f"hide:{comment}:{ms(at)}"
    )
    shown = load("messenger/page_feed_change_comment_hide.json")
    shown["value"]["verb"] = "unhide"
    entry = {"id": PAGE, "time": 1, "changes": [shown]}
    assert only(messenger.parse(entry, ctx)).changes == {"hidden": False}


@covers("page_feed_change_reaction_add.json")
def test_page_feed_reaction_is_ignored() -> None:
    result, _ = change("page_feed_change_reaction_add.json")
    assert result.events == [] and result.ignored == 1


def test_every_fixture_file_has_a_test() -> None:
    fixture_path("messenger")
    assert set(every("messenger")) == set(COVERED)
    assert all(name in globals() for name in COVERED.values())


# Doc templates (tests/fixtures/templates), repaired as stated


@pytest.mark.parametrize("action", ["react", "unreact"])
def test_template_message_reactions(action: str) -> None:
    # Repairs: `\u{2764}\u{FE0F}` is not JSON: replaced with the emoji itself (U+2764 U+FE0F);
    # the "a|b|c" value lists become one value each; the trailing comma goes.
    event = jsonc(
        "messenger_message_reactions_doc.jsonc",
        ("\\u{2764}\\u{FE0F}", "\u2764\ufe0f"),
        ("smile|angry|sad|wow|love|like|dislike|other", "love"),
        ("react|unreact", action),
    )
    ctx = context(MS, "<PAGE_ID>")
    result = messenger.parse({"id": "<PAGE_ID>", "time": 1, "messaging": [event]}, ctx)
    at = datetime(2016, 3, 22, 17, 47, 36, 463000, UTC)
    reaction = {"emoji": "\u2764\ufe0f", "reaction": "love", "action": action, "by": "<PSID>"}
    key = f"reaction:<MID_OF_ReactedTo_Message>:<PSID>:{action}:\u2764\ufe0f:1458668856463"
    assert only(result) == MessageChange(
        ctx.channel_id,
        conversation_for(ctx, "<PSID>"),
        "<MID_OF_ReactedTo_Message>",
        {"reaction": reaction},
        at,
        key,
    )


def test_template_message_echo() -> None:
    # Repair: the `...` standing for more fields goes. Left with neither text nor
    # attachments, the echo shows as unsupported, the element kept whole.
    event = jsonc("messenger_message_echoes_doc_example1.jsonc", (",\n    ...", ""))
    ctx = context(MS, "<PAGE_ID>")
    result = messenger.parse({"id": "<PAGE_ID>", "time": 1, "messaging": [event]}, ctx)
    expect(
        only(result),
        ctx,
        thread="<PSID>",
        contact=Contact("<PSID>"),
        direction=Direction.OUT,
        platform_message_id="mid.1457764197618:41d102a3e1ae206a38",
        sent_at=datetime(2016, 3, 12, 6, 29, 57, 627000, UTC),
        attachments=[Attachment(type=AttachmentType.UNSUPPORTED, caption="unknown")],
        raw=event,
    )
    assert event["message"]["metadata"] == "<DEVELOPER_DEFINED_METADATA_STRING>"


# Rules no recorded payload shows (synthetic, shaped as docs/platforms.md 3 and bottender's feed)


def test_read_watermark_edited_comment_and_our_own_reply() -> None:
    ctx = context(MS, PAGE)
    read = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 1458668856463,
        "read": {"watermark": 1458668856253},
    }
    feed = {
        "item": "comment",
        "comment_id": "p_c2",
        "post_id": "p",
        "parent_id": "p_c1",
        "created_time": 1511948944,
    }
    edited = {**feed, "verb": "edited", "message": "fixed", "from": {"id": USER}}
    ours = {**feed, "verb": "add", "message": "thanks", "from": {"id": PAGE, "name": "Shop"}}
    entry = {
        "id": PAGE,
        "time": 1,
        "messaging": [read],
        "changes": [{"field": "feed", "value": edited}, {"field": "feed", "value": ours}],
    }
    first, second, third = messenger.parse(entry, ctx).events
    at = datetime(2016, 3, 22, 17, 47, 36, 253000, UTC)
    assert first == ReadUpTo(conversation_for(ctx, USER), at, None)
    assert isinstance(second, MessageChange)
    assert second.changes == {"text": "fixed", "edited": True}
    assert second.conversation_id == conversation_for(ctx, "comment:p_c1")
    assert (third.message.direction, third.message.reply_to) == (Direction.OUT, "p_c1")


def test_delivery_with_only_a_watermark_is_counted() -> None:
    event = {"sender": {"id": USER}, "recipient": {"id": PAGE}, "delivery": {"watermark": 1}}
    result = messenger.parse({"id": PAGE, "time": 1, "messaging": [event]}, context(MS, PAGE))
    assert result.events == [] and result.ignored == 1


# Never raises, whatever arrives


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(ENTRIES)
def test_parse_never_raises(entry: Any) -> None:
    check_documented(messenger.parse(entry, context(MS, "ACCOUNT")))
