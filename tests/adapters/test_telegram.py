"""Telegram Bot API parsing, one test per recorded payload in tests/fixtures/telegram, and
the secret-token check."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
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
from adapters.telegram import updates as telegram
from adapters.telegram import webhook
from schemas.message import (
    ChannelKind,
    Group,
    Message,
    SenderType,
    contact_id_for,
    message_id_for,
)
from tests.payloads import context, every, fixture_path, load

pytestmark = pytest.mark.unit

BOT = "313534466"  # the bot of the bottender fixtures
F = TypeVar("F", bound=Callable[..., None])
COVERED: dict[str, str] = {}


def covers(name: str) -> Callable[[F], F]:
    def mark(test: F) -> F:
        COVERED[name] = test.__name__
        return test

    return mark


def ctx() -> ChannelContext:
    return context(ChannelKind.TELEGRAM, BOT)


def update(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = load(f"telegram/{name}")
    return loaded


def one_message(
    payload: dict[str, Any],
    *,
    platform_id: str,
    thread: str,
    contact: Contact,
    at: datetime,
) -> Message:
    """The only event is a new incoming message from `contact`; its ids are right."""
    result = telegram.parse(payload, ctx())
    assert result.ignored == 0
    [event] = result.events
    assert isinstance(event, NewMessage)
    assert event.contact == contact
    message = event.message
    c = ctx()
    assert message.direction == "in"
    assert message.channel_kind == "telegram"
    assert message.platform_message_id == platform_id
    assert message.id == message_id_for(c.channel_id, platform_id)
    assert message.conversation_id == conversation_for(c, thread)
    assert message.contact_id == contact_id_for(
        c.workspace_id, c.channel_id, contact.platform_user_id
    )
    assert message.sender.type == SenderType.CONTACT
    assert message.sender.name == (contact.name or contact.username)
    assert message.status == "received"
    assert message.sent_at == at
    return message


def attachment(message: Message) -> dict[str, Any]:
    [only] = message.attachments
    return {k: v for k, v in only.model_dump().items() if v is not None}


@covers("update_private_text_message.json")
def test_private_text() -> None:
    message = one_message(
        update("update_private_text_message.json"),
        platform_id="218485655:6557",
        thread="218485655",
        contact=Contact("218485655", "Waffle", "WaffleLapkin"),
        at=datetime(2019, 9, 26, 17, 19, 2, tzinfo=UTC),
    )
    assert message.text == "hello there"
    assert (message.kind, message.group) == ("dm", None)
    assert message.attachments == []
    assert message.reply_to is None
    assert message.raw is None


@covers("update_private_text_message_2.json")
def test_private_text_2() -> None:
    message = one_message(
        update("update_private_text_message_2.json"),
        platform_id="408258968:154",
        thread="408258968",
        contact=Contact("408258968", "Hirrolot", "hirrolot"),
        at=datetime(2020, 2, 11, 19, 20, 57, tzinfo=UTC),
    )
    assert message.text == "4"
    assert message.attachments == []


@covers("update_supergroup_story_message.json")
def test_supergroup_story() -> None:
    payload = update("update_supergroup_story_message.json")
    message = one_message(
        payload,
        platform_id="-1001293752024:134545",
        thread="-1001293752024",
        contact=Contact("6962620676", "Wert", "WertCrypto"),
        at=datetime(2024, 7, 21, 20, 0, 28, tzinfo=UTC),
    )
    assert message.text is None
    assert attachment(message) == {
        "type": "story",
        "media_id": "-1002149282975:2",
        "name": "TON Spin",
    }
    assert message.raw == payload["message"]


@covers("message_object_private_photo.json")
def test_bare_message_with_photo_sizes_keeps_the_largest() -> None:
    message = one_message(
        {"message": update("message_object_private_photo.json")},
        platform_id="250918540:199791",
        thread="250918540",
        contact=Contact("250918540", "Андрей Власов", "aka_dude"),
        at=datetime(2019, 9, 12, 12, 17, 2, tzinfo=UTC),
    )
    assert message.text is None
    assert attachment(message) == {
        "type": "image",
        "media_id": "AgADAgAD36sxG-PX0UvQSXIn9rccdw-ACA4ABAEAAwIAA3kAAyTcBAABFgQ",
        "state": "pending",
        "size": 75245,
    }
    assert message.raw is None


@covers("update_group_text_message.json")
def test_group_message_threads_on_the_group() -> None:
    message = one_message(
        update("update_group_text_message.json"),
        platform_id="-225456171:238",
        thread="-225456171",
        contact=Contact("427770117", "user_first user_last"),
        at=datetime(2018, 1, 12, 11, 55, 46, tzinfo=UTC),
    )
    assert message.text == "hi"
    # A group's message: marked as such, with the group's title and its participant's name.
    assert message.kind == "group"
    assert message.group == Group(title="Bottender")
    assert message.sender.name == "user_first user_last"


@covers("update_group_new_chat_title.json")
def test_new_chat_title_renames_the_group() -> None:
    message = one_message(
        update("update_group_new_chat_title.json"),
        platform_id="-225456171:239",
        thread="-225456171",
        contact=Contact("427770117", "user_first user_last"),
        at=datetime(2018, 1, 12, 11, 56, 40, tzinfo=UTC),
    )
    assert message.kind == "group"
    assert message.group == Group(title="Bottender Support", renamed=True)
    assert (message.text, message.attachments, message.raw) == (None, [], None)


@covers("update_forum_topic_text_message.json")
def test_a_forum_topic_is_a_conversation_of_its_own() -> None:
    message = one_message(
        update("update_forum_topic_text_message.json"),
        platform_id="-1001293752024:134545",
        thread="-1001293752024:134500",
        contact=Contact("6962620676", "Wert", "WertCrypto"),
        at=datetime(2024, 7, 21, 20, 0, 28, tzinfo=UTC),
    )
    assert message.kind == "group"
    assert message.group == Group(title="CryptoInside Chat", topic_id="134500")
    assert message.reply_to is None  # the topic's first message is the thread
    assert message.conversation_id != conversation_for(ctx(), "-1001293752024")


@covers("update_callback_query_group.json")
def test_a_button_pressed_in_a_group_is_answered_and_shown_in_the_group() -> None:
    result = telegram.parse(update("update_callback_query_group.json"), ctx())
    assert result.answer == {"method": "answerCallbackQuery", "callback_query_id": "124"}
    [event] = result.events
    assert isinstance(event, NewMessage)
    assert event.message.conversation_id == conversation_for(ctx(), "-225456171")
    assert event.message.kind == "group"
    assert event.message.sender.name == "user_first user_last"
    assert event.message.group == Group(title="Bottender")


@covers("update_channel_post.json")
def test_channel_post_without_from_is_from_the_channel() -> None:
    message = one_message(
        update("update_channel_post.json"),
        platform_id="-1001305240521:2",
        thread="-1001305240521",
        contact=Contact("-1001305240521", "channel_12345"),
        at=datetime(2018, 1, 12, 12, 33, 2, tzinfo=UTC),
    )
    assert message.text == "post~~~"


@covers("update_callback_query_private.json")
def test_callback_query_is_a_message_in_the_chat() -> None:
    payload = update("update_callback_query_private.json")
    before = datetime.now(UTC)
    result = telegram.parse(payload, ctx())
    after = datetime.now(UTC)
    assert result.ignored == 0
    [event] = result.events
    assert isinstance(event, NewMessage)
    assert event.contact == Contact("427770117", "user_first user_last")
    m = event.message
    assert (m.direction, m.text, m.attachments, m.reply_to) == ("in", "data", [], None)
    assert m.platform_message_id == "callback:123"
    assert m.id == message_id_for(ctx().channel_id, "callback:123")
    assert m.conversation_id == conversation_for(ctx(), "427770117")
    assert before <= m.sent_at <= after  # a callback query carries no time: when received
    assert m.raw == payload["callback_query"]
    assert (m.kind, m.group) == ("dm", None)  # a private chat stays one-to-one
    assert result.answer == {"method": "answerCallbackQuery", "callback_query_id": "123"}


@covers("partial_update_photo_message_no_update_id.json")
def test_update_without_update_id_is_parsed() -> None:
    message = one_message(
        update("partial_update_photo_message_no_update_id.json"),
        platform_id="427770117:666",
        thread="427770117",
        contact=Contact("427770117", "first last"),
        at=datetime(2017, 7, 7, 4, 47, 9, tzinfo=UTC),
    )
    assert attachment(message) == {  # 100x100 beats 50x50
        "type": "image",
        "media_id": "112",
        "state": "pending",
    }


@covers("update_doc_text_start.json")
def test_doc_text_start() -> None:
    message = one_message(
        update("update_doc_text_start.json"),
        platform_id="1111111:1365",
        thread="1111111",
        contact=Contact("1111111", "Test Firstname Test Lastname", "Testusername"),
        at=datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC),
    )
    assert message.text == "/start"
    assert message.reply_to is None


@covers("update_doc_edited_message.json")
def test_doc_edited_message() -> None:
    result = telegram.parse(update("update_doc_edited_message.json"), ctx())
    assert result.ignored == 0
    [change] = result.events
    assert change == MessageChange(
        channel_id=ctx().channel_id,
        conversation_id=conversation_for(ctx(), "1111111"),
        platform_message_id="1111111:1365",
        changes={"text": "Edited text", "edited": True},
        at=datetime(2015, 9, 7, 17, 23, 20, tzinfo=UTC),
        dedupe_key="edit:1111111:1365:1441646600",
    )


@covers("update_doc_callback_query_inline_message.json")
def test_doc_inline_callback_threads_on_the_user() -> None:
    payload = update("update_doc_callback_query_inline_message.json")
    [event] = telegram.parse(payload, ctx()).events
    assert isinstance(event, NewMessage)
    assert event.contact == Contact("1111111", "Test Firstname Test Lastname", "Testusername")
    m = event.message
    assert (m.direction, m.text, m.reply_to) == ("in", "Data from button callback", None)
    assert m.platform_message_id == "callback:4382bfdwdsb323b2d9"
    assert m.conversation_id == conversation_for(ctx(), "1111111")
    assert m.raw is not None and m.raw["inline_message_id"] == "1234csdbsk4839"


@covers("update_doc_message_with_reply.json")
def test_doc_reply_is_in_the_same_chat() -> None:
    message = one_message(
        update("update_doc_message_with_reply.json"),
        platform_id="1111111:1365",
        thread="1111111",
        contact=Contact("1111111", "Test Firstname Test Lastname", "Testusername"),
        at=datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC),
    )
    assert message.text == "/start"
    assert message.reply_to == "1111111:1334"


@covers("update_doc_document.json")
def test_doc_document() -> None:
    message = one_message(
        update("update_doc_document.json"),
        platform_id="1111111:1365",
        thread="1111111",
        contact=Contact("1111111", "Test Firstname Test Lastname", "Testusername"),
        at=datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC),
    )
    assert message.text is None
    assert attachment(message) == {
        "type": "file",
        "media_id": "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX",
        "state": "pending",
        "mime_type": "application/pdf",
        "name": "Testfile.pdf",
        "size": 536392,
    }


def test_our_bot_is_outgoing_and_forum_topics_are_threads() -> None:
    payload = update("update_group_text_message.json")
    payload["message"]["from"] = {"id": int(BOT), "is_bot": True, "first_name": "bot_first"}
    payload["message"].update(is_topic_message=True, message_thread_id=7)
    payload["message"]["reply_to_message"] = {"message_id": 7, "chat": payload["message"]["chat"]}
    [event] = telegram.parse(payload, ctx()).events
    assert isinstance(event, NewMessage)
    assert event.message.direction == "out"
    assert event.message.sender.type == SenderType.AGENT
    assert event.message.conversation_id == conversation_for(ctx(), "-225456171:7")
    assert event.message.reply_to is None  # the topic's first message is the thread, not a reply


def test_reaction_and_unreaction() -> None:
    reaction = {
        "chat": {"id": 427770117, "type": "private"},
        "message_id": 666,
        "user": {"id": 427770117, "is_bot": False, "first_name": "first"},
        "date": 1499402829,
        "old_reaction": [],
        "new_reaction": [{"type": "emoji", "emoji": "👍"}],
    }
    [change] = telegram.parse({"update_id": 1, "message_reaction": reaction}, ctx()).events
    assert isinstance(change, MessageChange)
    assert change.platform_message_id == "427770117:666"
    assert change.conversation_id == conversation_for(ctx(), "427770117")
    assert change.changes == {"reaction": {"emoji": "👍", "action": "react", "by": "427770117"}}
    removed = {**reaction, "old_reaction": reaction["new_reaction"], "new_reaction": []}
    [change] = telegram.parse({"update_id": 2, "message_reaction": removed}, ctx()).events
    assert isinstance(change, MessageChange)
    assert change.changes == {"reaction": {"emoji": None, "action": "unreact", "by": "427770117"}}


def test_other_updates_are_ignored_and_unknown_content_is_unsupported() -> None:
    assert telegram.parse({"update_id": 3, "poll": {"id": "1"}}, ctx()) == ParseResult([], 1)
    assert telegram.parse({"update_id": 4, "my_chat_member": {}}, ctx()) == ParseResult([], 1)
    payload = update("update_group_text_message.json")
    del payload["message"]["text"]
    payload["message"]["dice"] = {"emoji": "🎲", "value": 3}
    [event] = telegram.parse(payload, ctx()).events
    assert isinstance(event, NewMessage)
    assert attachment(event.message) == {"type": "unsupported", "caption": "dice"}
    assert event.message.raw == payload["message"]


def test_secret_token() -> None:
    assert webhook.secret_ok("s3cret-Token_1", "s3cret-Token_1")
    assert not webhook.secret_ok("s3cret-Token_2", "s3cret-Token_1")
    assert not webhook.secret_ok(None, "s3cret-Token_1")
    assert not webhook.secret_ok("", "s3cret-Token_1")
    assert not webhook.secret_ok("", "")  # no token configured: nothing matches
    assert not webhook.secret_ok("é\udcff", "s3cret-Token_1")


def test_every_fixture_is_covered() -> None:
    fixture_path("telegram")
    assert set(every("telegram")) == set(COVERED)


# Never raises, whatever arrives.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
CHANGE_KEYS = {"reaction", "text", "edited", "deleted", "status", "error"}


def check(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    assert isinstance(result.ignored, int) and result.ignored >= 0
    for event in result.events:
        assert isinstance(event, NewMessage | MessageChange | ReadUpTo)
        if isinstance(event, MessageChange):
            assert set(event.changes) <= CHANGE_KEYS
        if isinstance(event, NewMessage):
            Message.model_validate(event.message.model_dump())


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_never_raises_on_anything(payload: Any) -> None:
    check(telegram.parse(payload, ctx()))
    check(telegram.parse({"message": payload}, ctx()))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(COVERED)), st.data(), json_values)
def test_parse_never_raises_on_a_damaged_fixture(name: str, data: st.DataObject, junk: Any) -> None:
    payload = copy.deepcopy(load(f"telegram/{name}"))
    if "update_id" not in payload and "message" not in payload:
        payload = {"message": payload}
    path = data.draw(st.sampled_from(paths(payload)[1:]))
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = junk
    check(telegram.parse(payload, ctx()))
