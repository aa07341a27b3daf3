"""WhatsApp Cloud API parsing, one test per recorded payload in tests/fixtures/whatsapp:
each full body goes through `adapters.meta.webhook.split`, then `adapters.meta.whatsapp.parse`
per piece."""

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
from adapters.meta import webhook as meta
from adapters.meta import whatsapp
from schemas.message import (
    ChannelKind,
    Message,
    Referral,
    SenderType,
    contact_id_for,
    message_id_for,
)
from tests.payloads import context, every, fixture_path, load

pytestmark = pytest.mark.unit

NUMBER = "1122334455667"  # our phone number id in the pywa fixtures
USER = "972987654321"  # the customer's wa_id
F = TypeVar("F", bound=Callable[..., None])
COVERED: dict[str, str] = {}


def covers(name: str) -> Callable[[F], F]:
    def mark(test: F) -> F:
        COVERED[name] = test.__name__
        return test

    return mark


def parsed(name: str, account: str = NUMBER) -> tuple[ChannelContext, ParseResult]:
    split = meta.split(load(f"whatsapp/{name}"))
    assert split.ignored == 0
    [piece] = split.pieces
    assert piece.kind is ChannelKind.WHATSAPP
    assert piece.account_id == account
    ctx = context(ChannelKind.WHATSAPP, piece.account_id)
    return ctx, whatsapp.parse(piece.entry, ctx)


def _ctx() -> ChannelContext:
    return context(ChannelKind.WHATSAPP, NUMBER)


def one_message(
    name: str, wamid: str, at: datetime, thread: str = USER, contact_name: str | None = "Test Name"
) -> Message:
    """The only event of the fixture is a new incoming message; its ids and contact are right."""
    ctx, result = parsed(name)
    assert result.ignored == 0
    [event] = result.events
    assert isinstance(event, NewMessage)
    assert event.contact == Contact(thread, contact_name)
    message = event.message
    assert message.direction == "in"
    assert message.channel_kind == "whatsapp"
    assert message.platform_message_id == wamid
    assert message.id == message_id_for(ctx.channel_id, wamid)
    assert message.conversation_id == conversation_for(ctx, thread)
    assert message.contact_id == contact_id_for(ctx.workspace_id, ctx.channel_id, thread)
    assert message.sender.type == SenderType.CONTACT
    assert message.sender.id == str(message.contact_id)
    assert message.sender.name == contact_name
    assert message.status == "received"
    assert message.sent_at == at
    assert message.sent_at.utcoffset() is not None and not message.sent_at.utcoffset()
    return message


def one_change(name: str) -> tuple[ChannelContext, MessageChange]:
    ctx, result = parsed(name)
    assert result.ignored == 0
    [event] = result.events
    assert isinstance(event, MessageChange)
    assert event.channel_id == ctx.channel_id
    return ctx, event


def attachment(message: Message) -> dict[str, Any]:
    [only] = message.attachments
    return {k: v for k, v in only.model_dump().items() if v is not None}


@covers("message_text.json")
def test_text() -> None:
    message = one_message(
        "message_text.json", "wamid.xyzxyz", datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)
    )
    assert message.text == "Body Text"
    assert message.attachments == []
    assert message.reply_to is None
    assert message.raw is None


@covers("message_text_ctwa_referral.json")
def test_click_to_whatsapp_referral_is_typed() -> None:
    ctx, result = parsed("message_text_ctwa_referral.json", account="1204727649384372")
    [event] = result.events
    assert isinstance(event, NewMessage)
    message = event.message
    assert message.text == "Can I get more info about this?"
    assert message.referral == Referral(
        source="ad",
        ad_id="120226305854810726",
        source_id="120226305854810726",
        source_url="https://fb.me/3cr4Wqqkv",
        headline="Chat with us",
        body="Summer Succulents are here!",
        media_url="https://scontent.xx.fbcdn.net/v/t45.1...",
        click_id=message.referral.click_id if message.referral else None,
    )
    assert message.referral is not None and message.referral.click_id.startswith("Aff-n8Z")
    post = load("whatsapp/message_text_ctwa_referral.json")
    element = post["entry"][0]["changes"][0]["value"]["messages"][0]
    element["referral"]["source_type"] = "post"  # a post is no ad: no ad id
    [event] = whatsapp.parse(post["entry"][0], ctx).events
    assert isinstance(event, NewMessage) and event.message.referral is not None
    assert (event.message.referral.source, event.message.referral.ad_id) == ("post", None)


@covers("message_image.json")
def test_image() -> None:
    message = one_message(
        "message_image.json", "wamid.xyzxyz", datetime(2023, 10, 11, 16, 56, 19, tzinfo=UTC)
    )
    assert message.text is None
    assert attachment(message) == {
        "type": "image",
        "media_id": "65463453",
        "state": "pending",
        "mime_type": "image/jpeg",
    }
    assert message.raw is None


@covers("message_document_forwarded.json")
def test_document_forwarded_keeps_the_flag() -> None:
    message = one_message(
        "message_document_forwarded.json",
        "wamid.xyzxyz",
        datetime(2023, 10, 11, 17, 1, 6, tzinfo=UTC),
    )
    assert message.text is None
    assert attachment(message) == {
        "type": "file",
        "media_id": "1234567890987654321",
        "state": "pending",
        "mime_type": "application/pdf",
        "name": "filename.pdf",
        "caption": "caption",
    }
    assert message.reply_to is None
    assert message.raw is not None and message.raw["context"] == {"forwarded": True}


@covers("message_audio.json")
def test_audio_forwarded() -> None:
    message = one_message(
        "message_audio.json", "wamid.xyzxyz", datetime(2023, 10, 11, 16, 58, 29, tzinfo=UTC)
    )
    assert attachment(message) == {
        "type": "audio",
        "media_id": "1234567890987654321",
        "state": "pending",
        "mime_type": "audio/ogg; codecs=opus",
    }
    assert message.raw is not None
    assert message.raw["audio"]["voice"] is False
    assert message.raw["context"] == {"forwarded": True}


@covers("message_voice.json")
def test_voice_keeps_the_voice_flag() -> None:
    message = one_message(
        "message_voice.json", "wamid.xyzxyz", datetime(2023, 10, 11, 16, 57, 53, tzinfo=UTC)
    )
    assert attachment(message) == {
        "type": "audio",
        "media_id": "1234567890987654321",
        "state": "pending",
        "mime_type": "audio/ogg; codecs=opus",
    }
    assert message.raw is not None and message.raw["audio"]["voice"] is True


@covers("message_location.json")
def test_location() -> None:
    message = one_message(
        "message_location.json", "wamid.xyzxyz", datetime(2023, 10, 11, 17, 15, 57, tzinfo=UTC)
    )
    assert message.text is None
    assert attachment(message) == {"type": "location", "latitude": 12.25089, "longitude": 43.90539}
    assert message.raw is not None and message.raw["context"] == {"forwarded": True}


@covers("message_reaction.json")
def test_reaction_is_a_change_to_the_reacted_message() -> None:
    ctx, change = one_change("message_reaction.json")
    assert change.platform_message_id == "wamid.yzxyzx="
    assert change.conversation_id == conversation_for(ctx, USER)
    assert change.changes == {"reaction": {"emoji": "😮", "action": "react", "by": USER}}
    assert change.at == datetime(2023, 10, 11, 17, 14, 16, tzinfo=UTC)
    assert change.dedupe_key == "reaction:wamid.xyzxyz"


def test_empty_emoji_is_an_unreact() -> None:
    body = load("whatsapp/message_reaction.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["emoji"] = ""
    [piece] = meta.split(body).pieces
    [change] = whatsapp.parse(piece.entry, _ctx()).events
    assert isinstance(change, MessageChange)
    assert change.changes == {"reaction": {"emoji": None, "action": "unreact", "by": USER}}


@covers("message_unsupported_with_errors.json")
def test_unsupported_keeps_its_errors() -> None:
    name = "message_unsupported_with_errors.json"
    message = one_message(name, "wamid.xyzxyz", datetime(2023, 10, 11, 17, 18, 26, tzinfo=UTC))
    assert message.text is None
    assert attachment(message) == {"type": "unsupported", "caption": "unsupported"}
    element = load(f"whatsapp/{name}")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message.raw is not None and message.raw == element
    assert message.raw["errors"][0]["code"] == 131051


@covers("message_unsupported_with_type.json")
def test_unsupported_with_a_type_keeps_it() -> None:
    name = "message_unsupported_with_type.json"
    message = one_message(name, "wamid.xyzxyz", datetime(2023, 10, 11, 17, 18, 26, tzinfo=UTC))
    assert attachment(message) == {"type": "unsupported", "caption": "unsupported"}
    assert message.raw is not None
    assert message.raw["unsupported"] == {"type": "pool"}
    assert (
        message.raw["errors"][0]["error_data"]["details"]
        == "Message type is currently not supported."
    )


@covers("message_reply_context.json")
def test_reply_points_at_the_context_message() -> None:
    message = one_message(
        "message_reply_context.json", "wamid.xyzxyz", datetime(2023, 10, 11, 17, 19, 6, tzinfo=UTC)
    )
    assert message.text == "replied text"
    assert message.reply_to == "wamid.xyzxyz=="
    assert message.raw is None  # context{from, id} is fully expressed by reply_to


@covers("message_interactive_missing_body.json")
def test_interactive_without_body_is_unsupported_with_the_change_errors() -> None:
    name = "message_interactive_missing_body.json"
    message = one_message(
        name, "wamid.wegrchytvwcggt=", datetime(2023, 11, 20, 18, 38, 14, tzinfo=UTC)
    )
    assert message.text is None
    assert attachment(message) == {"type": "unsupported", "caption": "interactive"}
    assert message.reply_to == "wamid.gvwegfretge=="
    assert message.raw is not None
    assert message.raw["type"] == "interactive"
    assert message.raw["value_errors"] == [
        {
            "code": 131000,
            "title": "Something went wrong",
            "message": "Something went wrong",
            "error_data": {"details": "Unsupported webhook payload"},
        }
    ]


def status_change(name: str, status: str, at: datetime) -> MessageChange:
    ctx, change = one_change(name)
    assert change.platform_message_id == "wamid.xyzxyz"
    assert change.conversation_id == conversation_for(ctx, USER)
    assert change.at == at
    assert change.dedupe_key == f"status:wamid.xyzxyz:{status}"
    return change


@covers("status_sent.json")
def test_status_sent() -> None:
    change = status_change(
        "status_sent.json", "sent", datetime(2023, 10, 25, 20, 49, 5, tzinfo=UTC)
    )
    assert change.changes == {"status": "sent"}


@covers("status_delivered.json")
def test_status_delivered() -> None:
    change = status_change(
        "status_delivered.json", "delivered", datetime(2023, 10, 25, 20, 49, 5, tzinfo=UTC)
    )
    assert change.changes == {"status": "delivered"}


@covers("status_read.json")
def test_status_read() -> None:
    change = status_change("status_read.json", "read", datetime(2023, 7, 15, 0, 20, 58, tzinfo=UTC))
    assert change.changes == {"status": "read"}


@covers("status_failed.json")
def test_status_failed_carries_the_error() -> None:
    change = status_change(
        "status_failed.json", "failed", datetime(2023, 7, 15, 0, 20, 58, tzinfo=UTC)
    )
    assert change.changes == {
        "status": "failed",
        "error": {
            "code": "130472",
            "message": "Failed to send message because this user's phone number is part of"
            " an experiment",
        },
    }


def test_played_is_read_and_group_statuses_thread_on_the_group() -> None:
    body = load("whatsapp/status_read.json")
    status = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(status="played", recipient_id="120363000000000000", recipient_type="group")
    status["recipient_participant_id"] = USER
    [piece] = meta.split(body).pieces
    [change] = whatsapp.parse(piece.entry, _ctx()).events
    assert isinstance(change, MessageChange)
    assert change.changes == {"status": "read"}
    assert change.conversation_id == conversation_for(_ctx(), "120363000000000000")
    assert change.dedupe_key == "status:wamid.xyzxyz:read"


@covers("message_interactive_button_reply.json")
def test_interactive_button_reply() -> None:
    name = "message_interactive_button_reply.json"
    message = one_message(name, "wamid.xyzxyz", datetime(2023, 10, 25, 20, 45, 30, tzinfo=UTC))
    assert message.text == "title"
    assert message.attachments == []
    assert message.reply_to == "wamid.xyzxyz"
    assert message.raw is not None
    assert message.raw["interactive"]["button_reply"] == {"id": "callback_data", "title": "title"}


@covers("message_button_template_quick_reply.json")
def test_template_quick_reply_button() -> None:
    name = "message_button_template_quick_reply.json"
    message = one_message(name, "wamid.xsidjw", datetime(2023, 10, 25, 21, 23, 47, tzinfo=UTC))
    assert message.text == "title"
    assert message.reply_to == "wamid.xyzxyz=="
    assert message.raw is not None and message.raw["button"]["payload"] == "callback_data"


@covers("message_edit.json")
def test_edit_changes_the_original_message() -> None:
    ctx, result = parsed("message_edit.json", account="106540352242922")
    assert result.ignored == 0
    [change] = result.events
    assert isinstance(change, MessageChange)
    assert (
        change.platform_message_id
        == "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    )
    assert change.conversation_id == conversation_for(ctx, "16505551234")
    assert change.changes == {"text": "Updated image caption", "edited": True}
    assert change.at == datetime(2025, 6, 13, 22, 42, 55, tzinfo=UTC)
    assert (
        change.dedupe_key == "edit:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
    )


def test_revoke_deletes_the_original_message() -> None:
    body = load("whatsapp/message_text.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": USER,
        "id": "wamid.revoke",
        "timestamp": "1697043223",
        "type": "revoke",
        "revoke": {"original_message_id": "wamid.original"},
    }
    [piece] = meta.split(body).pieces
    [change] = whatsapp.parse(piece.entry, _ctx()).events
    assert isinstance(change, MessageChange)
    assert (change.platform_message_id, change.changes) == ("wamid.original", {"deleted": True})
    assert change.dedupe_key == "revoke:wamid.revoke"


@covers("system_user_changed_number.json")
def test_system_message_is_shown_as_unsupported_with_raw() -> None:
    name = "system_user_changed_number.json"
    message = one_message(
        name, "wamid.xyzxyz==", datetime(2025, 7, 30, 4, 55, 15, tzinfo=UTC), contact_name=None
    )
    assert message.text is None
    assert attachment(message) == {"type": "unsupported", "caption": "system"}
    assert message.raw is not None
    assert message.raw["system"] == {
        "body": "User A changed from 972987654321 to 972912345678",
        "wa_id": "972912345678",
        "type": "user_changed_number",
    }


@covers("outbound_send_message_response_sdk_test.json")
def test_send_response_gives_the_wamid() -> None:
    response = load("whatsapp/outbound_send_message_response_sdk_test.json")
    assert (
        whatsapp.sent_message_id(response)
        == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    )
    assert whatsapp.sent_message_id({"messages": []}) is None
    assert whatsapp.sent_message_id({"error": {"code": 131047}}) is None


def test_change_errors_without_messages_and_other_fields_are_ignored() -> None:
    body = load("whatsapp/message_interactive_missing_body.json")
    value = body["entry"][0]["changes"][0]["value"]
    del value["messages"]
    [piece] = meta.split(body).pieces
    assert whatsapp.parse(piece.entry, _ctx()) == ParseResult([], 1)
    other = {"id": "1", "changes": [{"field": "message_template_status_update", "value": {}}]}
    assert whatsapp.parse(other, _ctx()) == ParseResult([], 1)


def test_business_app_echo_is_outgoing_to_the_customer() -> None:
    entry = {
        "id": "1",
        "changes": [
            {
                "field": "smb_message_echoes",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"phone_number_id": NUMBER},
                    "message_echoes": [
                        {
                            "from": "972123456789",
                            "to": USER,
                            "id": "wamid.echo",
                            "timestamp": "1697043223",
                            "type": "text",
                            "text": {"body": "sent from the app"},
                        }
                    ],
                },
            }
        ],
    }
    [event] = whatsapp.parse(entry, _ctx()).events
    assert isinstance(event, NewMessage)
    assert event.contact == Contact(USER)
    assert event.message.direction == "out"
    assert event.message.status == "sent"
    assert event.message.text == "sent from the app"
    assert event.message.conversation_id == conversation_for(_ctx(), USER)


def test_every_fixture_is_covered() -> None:
    fixture_path("whatsapp")
    assert set(every("whatsapp")) == set(COVERED)


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
def test_parse_never_raises_on_anything(entry: Any) -> None:
    check(whatsapp.parse(entry, _ctx()))


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
    for piece in meta.split(load(f"whatsapp/{name}")).pieces:
        entry = copy.deepcopy(piece.entry)
        path = data.draw(st.sampled_from(paths(entry)[1:]))
        target = entry
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = junk
        check(whatsapp.parse(entry, _ctx()))


@covers("template_status_approved_doc_example.json")
def test_a_template_status_change_is_no_message_but_a_template_update() -> None:
    from adapters.meta import templates

    [piece] = meta.split(load("whatsapp/template_status_approved_doc_example.json")).pieces
    assert piece.account_id == "102290129340398"  # the WABA: no phone number in this change
    assert whatsapp.parse(piece.entry, _ctx()).events == []
    assert templates.parse_status(piece.entry) == [
        templates.StatusUpdate(
            waba_id="102290129340398",
            template_id="1689556908129832",
            name="order_confirmation",
            language="en-US",
            status="APPROVED",
            reason=None,
        )
    ]
