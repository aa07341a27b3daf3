"""Hiding, showing and deleting a comment: the requests Meta documents for Instagram and a
Facebook Page, and what their answers mean (adapters/meta/moderation.py)."""

from __future__ import annotations

import pytest

from adapters.meta import moderation
from adapters.outbound import MissingSecret, Platforms, Unsendable
from schemas.message import ChannelKind

pytestmark = pytest.mark.unit

URLS = Platforms("https://graph.test/v23.0", "https://ig.test/v23.0", "https://tg.test")
TOKEN = {"access_token": "EAAtoken"}
BEARER = {"Authorization": "Bearer EAAtoken"}


def test_instagram_hides_with_a_query_flag_and_no_body() -> None:
    hide = moderation.build(ChannelKind.INSTAGRAM, "1789", "hide", TOKEN, URLS)
    assert (hide.method, hide.url, hide.json, hide.headers) == (
        "POST",
        "https://ig.test/v23.0/1789?hide=true",
        None,
        BEARER,
    )
    show = moderation.build(ChannelKind.INSTAGRAM, "1789", "unhide", TOKEN, URLS)
    assert show.url.endswith("/1789?hide=false")
    gone = moderation.build(ChannelKind.INSTAGRAM, "1789", "delete", TOKEN, URLS)
    assert (gone.method, gone.url, gone.json) == ("DELETE", "https://ig.test/v23.0/1789", None)


def test_a_page_comment_is_hidden_with_is_hidden_in_the_body() -> None:
    hide = moderation.build(ChannelKind.MESSENGER, "10_20", "hide", TOKEN, URLS)
    assert (hide.method, hide.url, hide.json) == (
        "POST",
        "https://graph.test/v23.0/10_20",
        {"is_hidden": True},
    )
    show = moderation.build(ChannelKind.MESSENGER, "10_20", "unhide", TOKEN, URLS)
    assert show.json == {"is_hidden": False}
    assert (
        moderation.build(ChannelKind.MESSENGER, "10_20", "delete", TOKEN, URLS).method == "DELETE"
    )


def test_an_id_cannot_reach_another_endpoint_and_other_kinds_have_no_comments() -> None:
    sneaky = moderation.build(ChannelKind.MESSENGER, "1/messages?x=", "delete", TOKEN, URLS)
    assert sneaky.url == "https://graph.test/v23.0/1%2Fmessages%3Fx%3D"
    with pytest.raises(Unsendable):
        moderation.build(ChannelKind.WHATSAPP, "1", "hide", TOKEN, URLS)
    with pytest.raises(MissingSecret):
        moderation.build(ChannelKind.INSTAGRAM, "1", "hide", {}, URLS)


def test_answers() -> None:
    assert moderation.interpret(200, {"success": True}, {}, "1").kind == "sent"
    assert moderation.interpret(200, {}, {}, "1").code == "bad_response"
    refused = moderation.interpret(
        400, {"error": {"message": "(#10) Permission denied", "code": 10}}, {}, "1"
    )
    assert (refused.kind, refused.code, refused.reason) == (
        "failed",
        "10",
        "(#10) Permission denied",
    )
    expired = moderation.interpret(401, {"error": {"message": "expired", "code": 190}}, {}, "1")
    assert expired.kind == "needs_reconnect"
    assert moderation.interpret(503, None, {}, "1").kind == "retry"
