"""What Meta says around a message: the standby channel (handover protocol), ad and link
referrals, and a story reply told apart from a story mention. From the doc examples in
tests/fixtures (templates repaired as each test says) and the recorded Instagram story reply."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import NewMessage, ParseResult
from adapters.meta import instagram, messenger
from schemas.message import ChannelKind, Referral
from tests.adapters.test_instagram import from_body, jsonc
from tests.payloads import context, load

pytestmark = pytest.mark.unit

MS = ChannelKind.MESSENGER
AD_REPAIRS = (
    ("<REF_DATA_IF_SPECIFIED_IN_THE_AD>", '"summer-sale"'),
    ("<ID_OF_THE_AD>", '"6045246247433"'),
    ("<TITLE_OF_THE_AD>", '"Summer sale"'),
    (
        "<URL_OF_THE_IMAGE_FROM_AD_THE_USER_IS_INTERESTED_IN>",
        r'"https:\/\/scontent.example/ad.jpg"',
    ),  # \/: jsonc drops //
    ("<THUMBNAIL_URL_OF_THE_VIDEO_FROM_THE_AD>", "null"),
    ("<ID_OF_THE_POST>", '"1029384756"'),
    ("<PRODUCT_ID>", "null"),
    ("<ID_OF_THE_PARTNER_APP_WELCOME_MESSAGE_FLOW>", "null"),
)


def messages(result: ParseResult) -> list[Any]:
    found = [e.message for e in result.events if isinstance(e, NewMessage)]
    assert len(found) == len(result.events)
    return found


def test_an_ad_referral_is_shown_as_a_message_with_the_ad() -> None:
    element = jsonc("messenger_messaging_referrals_ad_doc.jsonc", *AD_REPAIRS)
    ctx = context(MS, "<PAGE_ID>")
    result = messenger.parse({"id": "<PAGE_ID>", "time": 1, "messaging": [element]}, ctx)
    [message] = messages(result)
    assert message.direction == "in"
    assert message.referral == Referral(
        source="ADS",
        ad_id="6045246247433",
        source_id="1029384756",
        headline="Summer sale",
        media_url="https://scontent.example/ad.jpg",
        ref="summer-sale",
    )
    assert message.platform_message_id == "referral:<PSID>:1458692752478"


def test_a_referral_on_a_message_or_a_postback_is_kept_typed() -> None:
    ad = jsonc("messenger_messaging_referrals_ad_doc.jsonc", *AD_REPAIRS)["referral"]
    base = {"sender": {"id": "<PSID>"}, "recipient": {"id": "<PAGE_ID>"}, "timestamp": 1}
    text = {**base, "message": {"mid": "m_1", "text": "Is it in stock?", "referral": ad}}
    tapped = {**base, "postback": {"mid": "m_2", "title": "Get Started", "referral": ad}}
    ctx = context(MS, "<PAGE_ID>")
    entry = {"id": "<PAGE_ID>", "time": 1, "messaging": [text, tapped]}
    first, second = messages(messenger.parse(entry, ctx))
    assert first.referral is not None and first.referral.headline == "Summer sale"
    assert second.referral is not None and second.referral.ad_id == "6045246247433"


def test_standby_messages_are_marked() -> None:
    event = '"message": {"mid": "m_standby", "text": "Hello?"}, "timestamp": 1458692752478'
    body = jsonc("messenger_standby_doc.jsonc", ("...", event))
    [message] = messages(from_body(messenger.parse, body, MS)[0])
    assert (message.text, message.standby) == ("Hello?", True)
    body["entry"][0]["messaging"] = body["entry"][0].pop("standby")
    [message] = messages(from_body(messenger.parse, body, MS)[0])
    assert message.standby is False


def test_a_story_reply_and_a_story_mention_are_told_apart() -> None:
    reply_body = load("instagram/story_reply.json")
    [reply] = messages(from_body(instagram.parse, reply_body, ChannelKind.INSTAGRAM)[0])
    mention_body = jsonc("instagram_story_mention_messenger_platform_doc.jsonc")
    [mention] = messages(from_body(instagram.parse, mention_body, ChannelKind.INSTAGRAM)[0])
    assert (reply.story, mention.story) == ("reply", "mention")
    assert [a.type for a in reply.attachments] == [a.type for a in mention.attachments] == ["story"]
