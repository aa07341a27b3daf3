"""Instagram inbound parsing, from the recorded payloads in tests/fixtures/instagram (one
test per file) and the doc templates in tests/fixtures/templates (repaired as each test
says: they are not valid JSON as published)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import (
    ChannelContext,
    Contact,
    MessageChange,
    NewMessage,
    ParseResult,
    ReadUpTo,
    conversation_for,
)
from adapters.meta import instagram
from adapters.meta.webhook import split
from schemas.message import (
    Attachment,
    AttachmentType,
    ChannelKind,
    Direction,
    Message,
    MessageKind,
    contact_id_for,
    message_id_for,
)
from tests.payloads import context, every, fixture_path, load

pytestmark = pytest.mark.unit

IG = ChannelKind.INSTAGRAM
NOBODY = Contact("")  # the payload does not name the author
DOC_TIME = datetime(2019, 9, 23, 18, 14, 45, 349000, UTC)  # timestamp 1569262485349 (ms)
COVERED: dict[str, str] = {}
# A customer's DM in the Meta doc examples (BackAged/instabot transcribed them)
DOC_DM: dict[str, Any] = {
    "thread": "<IGSID>",
    "contact": Contact("<IGSID>"),
    "direction": Direction.IN,
    "platform_message_id": "<MESSAGE_ID>",
    "sent_at": DOC_TIME,
}


def covers(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(test: Callable[[], None]) -> Callable[[], None]:
        COVERED[name] = test.__name__
        return test

    return register


# Shared with test_messenger


def from_body(
    parse: Callable[[dict[str, Any], ChannelContext], ParseResult],
    body: Any,
    kind: ChannelKind,
    account: str | None = None,
) -> tuple[ParseResult, ChannelContext]:
    """A full webhook body through meta.split, then the parser, for its one entry."""
    pieces = split(body).pieces
    assert len(pieces) == 1
    ctx = context(kind, account or pieces[0].account_id)
    return parse(pieces[0].entry, ctx), ctx


def only(result: ParseResult) -> Any:
    assert result.ignored == 0
    assert len(result.events) == 1
    return result.events[0]


def expect(
    event: Any,
    ctx: ChannelContext,
    *,
    thread: str,
    contact: Contact,
    direction: Direction,
    platform_message_id: str,
    sent_at: datetime,
    text: str | None = None,
    attachments: list[Attachment] | None = None,
    reply_to: str | None = None,
    raw: dict[str, Any] | None = None,
    kind: MessageKind = MessageKind.DM,
) -> Message:
    """Every field of the normalized message, ids derived from the right party."""
    assert isinstance(event, NewMessage)
    message = event.message
    assert event.contact == contact
    assert message.conversation_id == conversation_for(ctx, thread)
    assert message.contact_id == contact_id_for(
        ctx.workspace_id, ctx.channel_id, contact.platform_user_id
    )
    assert message.id == message_id_for(ctx.channel_id, platform_message_id)
    assert message.platform_message_id == platform_message_id
    assert message.channel_kind == ctx.kind
    assert message.kind == kind
    assert message.direction == direction
    assert message.text == text
    assert message.attachments == (attachments or [])
    assert message.reply_to == reply_to
    assert message.sent_at == sent_at and message.sent_at.utcoffset() is not None
    assert message.raw == raw
    return message


def jsonc(name: str, *repairs: tuple[str, str]) -> Any:
    """A doc template made parseable: the listed exact repairs first (each must apply),
    then `//` comments and trailing commas removed."""
    text = fixture_path(f"templates/{name}").read_text()
    for old, new in repairs:
        assert old in text, old
        text = text.replace(old, new)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


def ig_body(name: str, account: str | None = None) -> tuple[ParseResult, ChannelContext]:
    return from_body(instagram.parse, load(f"instagram/{name}"), IG, account)


def wrapped_change(change: Any) -> ParseResult:
    """A single `changes[]` element in an entry of our account ("ACCOUNT"), sent at 1520622968 s."""
    return instagram.parse({"id": "ACCOUNT", "time": 1520622968, "changes": [change]}, context(IG))


# One test per fixture file


@covers("dm_text.json")
def test_dm_text() -> None:
    result, ctx = ig_body("dm_text.json")
    assert ctx.account_id == "<IGID>"
    expect(only(result), ctx, **DOC_DM, text="<MESSAGE_CONTENT>")


@covers("dm_image_attachment.json")
def test_dm_image_attachment() -> None:
    result, ctx = ig_body("dm_image_attachment.json")
    expect(
        only(result),
        ctx,
        **DOC_DM,
        attachments=[Attachment(type=AttachmentType.IMAGE, url="<CDN_LINK>", state="pending")],
    )


@covers("dm_audio_attachment.json")
def test_dm_audio_attachment() -> None:
    result, ctx = ig_body("dm_audio_attachment.json")
    expect(
        only(result),
        ctx,
        **DOC_DM,
        attachments=[Attachment(type=AttachmentType.AUDIO, url="<CDN_LINK>", state="pending")],
    )


@covers("dm_video_attachment.json")
def test_dm_video_attachment() -> None:
    result, ctx = ig_body("dm_video_attachment.json")
    expect(
        only(result),
        ctx,
        **DOC_DM,
        attachments=[Attachment(type=AttachmentType.VIDEO, url="<CDN_LINK>", state="pending")],
    )


@covers("share_attachment.json")
def test_share_attachment() -> None:
    result, ctx = ig_body("share_attachment.json")
    expect(
        only(result),
        ctx,
        **DOC_DM,
        attachments=[Attachment(type=AttachmentType.SHARE, url="<CDN_URL>")],
    )


@covers("story_reply.json")
def test_story_reply_is_text_with_the_story_attached_not_a_reply() -> None:
    result, ctx = ig_body("story_reply.json")
    story = Attachment(type=AttachmentType.STORY, url="<CDN_URL>", media_id="story_id")
    expect(
        only(result), ctx, **DOC_DM, text="<MESSAGE_CONTENT>", attachments=[story], reply_to=None
    )


@covers("reply_to_message.json")
def test_inline_reply_keeps_the_replied_mid() -> None:
    result, ctx = ig_body("reply_to_message.json")
    expect(only(result), ctx, **DOC_DM, text="<MESSAGE_CONTENT>", reply_to="<MESSAGE_ID>")


@covers("messaging_seen_read.json")
def test_messaging_seen_is_a_read_by_the_sender() -> None:
    result, ctx = ig_body("messaging_seen_read.json")
    assert only(result) == ReadUpTo(
        conversation_for(ctx, "<IGSID>"), DOC_TIME, "<LAST_MESSAGE_ID_READ>"
    )


@covers("postback_icebreaker.json")
def test_postback_icebreaker() -> None:
    # The transcription puts "<IGSID>" as entry.id, so split routes it to an account named
    # like the customer (no channel has that id). Parsed for the real account, <IGID>.
    assert split(load("instagram/postback_icebreaker.json")).pieces[0].account_id == "<IGSID>"
    result, ctx = ig_body("postback_icebreaker.json", account="<IGID>")
    postback = {
        "mid": "<MESSAGE_ID>",
        "title": "<SELECTED_ICEBREAKER_QUESTION>",
        "payload": "<USER_DEFINED_PAYLOAD>",
    }
    expect(
        only(result),
        ctx,
        thread="<IGSID>",
        contact=Contact("<IGSID>"),
        direction=Direction.IN,
        platform_message_id="<MESSAGE_ID>",
        text="<SELECTED_ICEBREAKER_QUESTION>",
        sent_at=datetime(2017, 8, 16, 17, 52, 56, 377000, UTC),
        raw={"postback": postback},
    )


@covers("quick_reply.json")
def test_quick_reply_keeps_text_and_payload() -> None:
    result, ctx = ig_body("quick_reply.json", account="<IGID>")  # entry.id is "<IGSID>" here too
    expect(
        only(result),
        ctx,
        thread="<IGSID>",
        contact=Contact("<IGSID>"),
        direction=Direction.IN,
        platform_message_id="<MID>",
        text="<SOME_TEXT>",
        sent_at=datetime(2017, 8, 16, 17, 52, 56, 377000, UTC),
        raw={"quick_reply": {"payload": "<PAYLOAD>"}},
    )


@covers("echo_story_mention_chatwoot.json")
def test_echo_story_mention_with_iso_timestamps() -> None:
    body = load("instagram/echo_story_mention_chatwoot.json")
    assert split(body).pieces == []  # chatwoot's factory has no `object` key
    entry = body["entry"][0]
    ctx = context(IG, entry["id"])
    story = Attachment(type=AttachmentType.STORY, url="https://www.example.com/test.jpeg")
    expect(
        only(instagram.parse(entry, ctx)),
        ctx,
        thread="chatwoot-app-user-id-1",
        contact=Contact("chatwoot-app-user-id-1"),
        direction=Direction.OUT,
        platform_message_id="message-id-1",
        sent_at=datetime(2021, 9, 8, 6, 34, 4, tzinfo=UTC),
        attachments=[story],
    )


@covers("dashboard_test_text_chatwoot.json")
def test_dashboard_test_text_with_string_seconds() -> None:
    body = load("instagram/dashboard_test_text_chatwoot.json")
    assert split(body).pieces == []  # no `object`, and entry id "0": never routed
    ctx = context(IG, "23245")
    expect(
        only(instagram.parse(body["entry"][0], ctx)),
        ctx,
        thread="12334",
        contact=Contact("12334"),
        direction=Direction.IN,
        platform_message_id="random_mid",
        text="random_text",
        sent_at=datetime(2018, 5, 27, 22, 23, 44, tzinfo=UTC),
    )


@covers("comment_dashboard_test_sample_changes.json")
def test_comment_dashboard_sample() -> None:
    body = load("instagram/comment_dashboard_test_sample_changes.json")
    assert split(body).pieces == [] and split(body).ignored == 1  # entry id "0"
    ctx = context(IG, "17841400000000001")
    media = {"id": "123123123", "media_product_type": "FEED"}
    expect(
        only(instagram.parse(body["entry"][0], ctx)),
        ctx,
        kind=MessageKind.COMMENT,
        thread="comment:1231231234",
        contact=Contact("232323232", username="test"),
        direction=Direction.IN,
        platform_message_id="17865799348089039",
        text="This is an example.",
        reply_to="1231231234",
        sent_at=datetime(2023, 9, 18, 18, 28, 25, tzinfo=UTC),
        raw={"field": "comments", "media": media},
    )


@covers("comments_change_value_only.json")
def test_comment_change_without_author() -> None:
    result = wrapped_change(load("instagram/comments_change_value_only.json"))
    expect(
        only(result),
        context(IG),
        kind=MessageKind.COMMENT,
        thread="comment:17865799348089039",
        contact=NOBODY,
        direction=Direction.IN,
        platform_message_id="17865799348089039",
        text="This is an example.",
        sent_at=datetime(2018, 3, 9, 19, 16, 8, tzinfo=UTC),
        raw={"field": "comments"},
    )


@covers("story_insights_dashboard_test.json")
def test_story_insights_is_ignored() -> None:
    body = load("instagram/story_insights_dashboard_test.json")
    assert split(body).pieces == [] and split(body).ignored == 1
    result = instagram.parse(body["entry"][0], context(IG, "17841400000000001"))
    assert result.events == [] and result.ignored == 1


def test_every_fixture_file_has_a_test() -> None:
    fixture_path("instagram")
    assert set(every("instagram")) == set(COVERED)
    assert all(name in globals() for name in COVERED.values())


# Doc templates (tests/fixtures/templates), repaired as stated


def test_template_comments_facebook_login() -> None:
    # Repairs: the unquoted time placeholder (also missing its comma) and the stray `'`.
    body = jsonc(
        "instagram_comments_facebook_login_doc.jsonc",
        ("<TIME_META_SENT_THIS_NOTIFICATION>", "1520622968,"),
        ("}',", "},"),
    )[0]
    result, ctx = from_body(instagram.parse, body, IG)
    value = body["entry"][0]["changes"][0]["value"]
    expect(
        only(result),
        ctx,
        kind=MessageKind.COMMENT,
        thread="comment:<PARENT_COMMENT_ID>",
        contact=Contact("<INSTAGRAM_USER_SCOPED_ID>", username="<INSTAGRAM_USER_USERNAME>"),
        direction=Direction.IN,
        platform_message_id="<COMMENT_ID>",
        text="<TEXT_ID>",
        reply_to="<PARENT_COMMENT_ID>",
        sent_at=datetime(2018, 3, 9, 19, 16, 8, tzinfo=UTC),
        raw={"field": "comments", "media": value["media"]},
    )


def test_template_comments_instagram_login_flattened_entry() -> None:
    # Repairs: the markdown fences, the inline comment, the time placeholder and its comma.
    body = jsonc(
        "instagram_comments_instagram_login_doc_flattened.txt",
        ("```", ""),
        ("// Comment or live comment payload", ""),
        ("<TIME_META_SENT_THIS_NOTIFICATION>", "1520622968,"),
    )[0]
    assert "changes" not in body["entry"][0]  # field/value straight on the entry
    result, ctx = from_body(instagram.parse, body, IG)
    expect(
        only(result),
        ctx,
        kind=MessageKind.COMMENT,
        thread="comment:<COMMENT_ID>",
        contact=Contact("<INSTAGRAM_SCOPED_USER_ID>", username="<USERNAME>"),
        direction=Direction.IN,
        platform_message_id="<COMMENT_ID>",
        text="<COMMENT_TEXT>",
        sent_at=datetime(2018, 3, 9, 19, 16, 8, tzinfo=UTC),
        raw={"field": "comments", "media": body["entry"][0]["value"]["media"]},
    )


def test_template_mention_in_a_comment() -> None:
    body = jsonc("instagram_mentions_on_comment_facebook_login_doc.jsonc")[0]  # comments only
    result, ctx = from_body(instagram.parse, body, IG)
    assert ctx.account_id == "17841405726653026"
    expect(
        only(result),
        ctx,
        kind=MessageKind.COMMENT,
        thread="comment:17894227972186120",
        contact=NOBODY,
        direction=Direction.IN,
        platform_message_id="mention:17894227972186120",
        sent_at=datetime(2018, 3, 9, 19, 16, 8, tzinfo=UTC),
        raw={"comment_id": "17894227972186120", "media_id": "17918195224117851"},
    )


def test_template_message_edit() -> None:
    # Repairs: the fences, the inline comment, and the two unquoted time placeholders.
    body = jsonc(
        "instagram_message_edit_instagram_login_doc_flattened.txt",
        ("```", ""),
        ("// <MESSAGE_EDIT_PAYLOAD>", ""),
        ("<TIME_NOTIFICATION_WAS_SENT>", "1569262486134"),
        ("<TIME_WEBHOOK_WAS_TRIGGERED>", "1569262485349"),
    )[0]
    result, ctx = from_body(instagram.parse, body, IG)
    assert only(result) == MessageChange(
        ctx.channel_id,
        conversation_for(ctx, "<INSTAGRAM_SCOPED_ID>"),
        "<MESSAGE_ID>",
        {"text": "<USER_EDITED_MESSAGE>", "edited": True},
        DOC_TIME,
        "edit:<MESSAGE_ID>:<NUMBER_OF_TIMES_MESSAGE_IS_EDITED>:1569262485349",
    )


def test_template_story_mention() -> None:
    body = jsonc("instagram_story_mention_messenger_platform_doc.jsonc")  # trailing comma only
    result, ctx = from_body(instagram.parse, body, IG)
    story = Attachment(type=AttachmentType.STORY, url="<CDN_URL>")
    expect(only(result), ctx, **DOC_DM, attachments=[story])


# Rules no recorded payload shows (synthetic elements, shaped as docs/platforms.md 2a says)


def element(**event: Any) -> dict[str, Any]:
    return {
        "sender": {"id": "IGSID"},
        "recipient": {"id": "ACCOUNT"},
        "timestamp": 1569262485349,
        **event,
    }


def test_attachment_types_and_post_share_sent_twice() -> None:
    attachments = [
        {"type": "ig_reel", "payload": {"url": "u1", "title": "t", "reel_video_id": "r"}},
        {"type": "share", "payload": {"url": "u2", "ig_post_media_id": "p"}},
        {"type": "ig_post", "payload": {"url": "u2", "title": "c", "ig_post_media_id": "p"}},
        {"type": "location", "payload": {"coordinates": {"lat": 1.5, "long": -2}}},
        {"type": "fallback", "payload": {"url": "u3"}},
    ]
    event = element(message={"mid": "m1", "attachments": attachments})
    message = only(instagram.parse({"id": "ACCOUNT", "messaging": [event]}, context(IG))).message
    assert message.attachments == [
        Attachment(type=AttachmentType.VIDEO, url="u1", caption="t", media_id="r", state="pending"),
        Attachment(type=AttachmentType.SHARE, url="u2", caption="c", media_id="p"),
        Attachment(type=AttachmentType.LOCATION, latitude=1.5, longitude=-2.0),
        Attachment(type=AttachmentType.UNSUPPORTED, caption="fallback"),
    ]
    assert message.raw == event  # something unsupported: the whole element is kept


def test_reaction_unsend_and_standby() -> None:
    ctx = context(IG)
    react = element(reaction={"mid": "m1", "action": "react", "reaction": "love", "emoji": "❤"})
    unsend = element(message={"mid": "m2", "is_deleted": True})
    result = instagram.parse({"id": "ACCOUNT", "standby": [react, unsend]}, ctx)
    thread = conversation_for(ctx, "IGSID")
    reaction = {"emoji": "❤", "reaction": "love", "action": "react", "by": "IGSID"}
    assert result.events == [
        MessageChange(
            ctx.channel_id,
            thread,
            "m1",
            {"reaction": reaction},
            DOC_TIME,
            "reaction:m1:IGSID:react:❤:1569262485349",
        ),
        MessageChange(ctx.channel_id, thread, "m2", {"deleted": True}, DOC_TIME, "deleted:m2"),
    ]


def test_our_own_comment_reply_and_caption_mention() -> None:
    ctx = context(IG)
    ours = {
        "field": "comments",
        "value": {
            "id": "c2",
            "parent_id": "c1",
            "text": "thanks",
            "from": {"id": "ACCOUNT", "username": "shop"},
        },
    }
    message = only(wrapped_change(ours)).message
    assert (message.direction, message.reply_to) == (Direction.OUT, "c1")
    assert message.conversation_id == conversation_for(ctx, "comment:c1")
    caption = only(wrapped_change({"field": "mentions", "value": {"media_id": "p9"}})).message
    assert caption.conversation_id == conversation_for(ctx, "mention:p9")
    assert caption.platform_message_id == "mention:p9" and caption.text is None


def test_messages_in_changes_shape_and_unknown_events() -> None:
    # The dashboard's `messages` test as a change (docs/platforms.md 1d), then an event kind we
    # do not know that names a message, then one that names none.
    ctx = context(IG)
    text = element(message={"mid": "m3", "text": "hi"})
    novel = element(message_poll={"mid": "m4"})
    result = instagram.parse(
        {
            "id": "ACCOUNT",
            "time": 1,
            "changes": [{"field": "messages", "value": text}],
            "messaging": [novel, element(optin={"ref": "x"})],
        },
        ctx,
    )
    assert result.ignored == 1
    unknown, hello = result.events
    assert (hello.message.text, hello.message.platform_message_id) == ("hi", "m3")
    assert unknown.message.attachments == [
        Attachment(type=AttachmentType.UNSUPPORTED, caption="message_poll")
    ]
    assert unknown.message.raw == novel


# Never raises, whatever arrives


_KEYS = st.sampled_from(
    "id time messaging standby changes field value sender recipient timestamp message mid text "
    "attachments type payload url coordinates lat long is_echo is_deleted is_unsupported "
    "reply_to story quick_reply referral postback title reaction action emoji read watermark "
    "delivery mids message_edit num_edit from username name comment_id parent_id post_id "
    "media media_id item verb created_time photo video".split()
)
_WORDS = st.sampled_from(
    "ACCOUNT IGSID 0 image video audio file share ig_post ig_reel story_mention location "
    "fallback react unreact comments live_comments mentions messages feed comment reaction "
    "add edited remove 2021-09-08T06:34:04+0000 1569262485349".split()
)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | _WORDS
)
JSONISH = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=3), inner, max_size=6)
    ),
    max_leaves=40,
)


def _junky(strategy: Any) -> Any:
    """Mostly the plausible value, sometimes any JSON at all."""
    return st.integers(0, 7).flatmap(lambda pick: strategy if pick else JSONISH)


def _some(*keys: str, required: tuple[str, ...] = (), **special: Any) -> Any:
    """Dicts with these keys (those not required maybe): plausible values mostly, anything
    at all sometimes."""
    values = {key: special.get(key, _junky(_WORDS)) for key in (*required, *keys)}
    return st.fixed_dictionaries(
        {key: values[key] for key in required},
        optional={key: values[key] for key in keys},
    )


_TIME = _junky(st.integers(0, 2 * 10**12))
_PARTY = _junky(_some(required=("id",)))
_ATTACHMENT = _some(
    "payload",
    required=("type",),
    payload=_some("url", "title", "id", "coordinates", coordinates=_some("lat", "long")),
)
_EVENT = _some(
    *"text is_echo is_deleted is_unsupported quick_reply referral action reaction emoji "
    "title payload watermark num_edit attachments reply_to mids".split(),
    required=("mid",),
    attachments=st.lists(_junky(_ATTACHMENT), max_size=3),
    reply_to=_some("mid", "story", story=_some("url", "id")),
    mids=_junky(st.lists(_junky(_WORDS), max_size=3)),
    is_echo=_junky(st.booleans()),
    watermark=_TIME,
)
_EVENTS = "message message_edit reaction read delivery postback referral".split()
ELEMENT = _some(
    "timestamp",
    *_EVENTS,
    required=("sender", "recipient"),
    sender=_PARTY,
    recipient=_PARTY,
    timestamp=_TIME,
    **{key: _junky(_EVENT) for key in _EVENTS},
)
_VALUE = _some(
    *"id comment_id parent_id post_id media media_id text message item verb from".split(),
    "created_time",
    created_time=_TIME,
    **{"from": _junky(_some("id", "username", "name"))},
)
CHANGE = _some(required=("field", "value"), value=_junky(_VALUE | ELEMENT))
ENTRIES = _junky(
    _some(
        *"messaging standby changes field value".split(),
        required=("id", "time"),
        time=_TIME,
        messaging=_junky(st.lists(_junky(ELEMENT), max_size=3)),
        standby=st.lists(ELEMENT, max_size=2),
        changes=_junky(st.lists(CHANGE, max_size=3)),
        value=_VALUE,
    )
)


def check_documented(result: Any) -> None:
    assert isinstance(result, ParseResult)
    assert isinstance(result.ignored, int) and result.ignored >= 0
    for event in result.events:
        assert isinstance(event, NewMessage | MessageChange | ReadUpTo)
        if isinstance(event, NewMessage):
            Message.model_validate_json(event.message.model_dump_json())
        else:
            assert event.at.utcoffset() is not None
        if isinstance(event, MessageChange):
            json.dumps(event.changes)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(ENTRIES)
def test_parse_never_raises(entry: Any) -> None:
    check_documented(instagram.parse(entry, context(IG)))
