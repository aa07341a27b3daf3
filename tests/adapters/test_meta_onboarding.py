"""The pure edges of connecting Meta channels (adapters/meta/onboarding.py): the OAuth dialog,
`/me/accounts` pages and their cursor, Graph's refusals, a pasted token's check, and where an
Instagram account connected through its Page sends."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.meta import onboarding as ob
from adapters.meta import send
from adapters.outbound import Outgoing, base_urls
from schemas.message import ChannelKind

pytestmark = pytest.mark.unit

WHERE = ob.Endpoints()


def test_the_dialog_asks_for_the_configuration_or_the_minimal_scopes() -> None:
    scoped = parse_qs(urlsplit(ob.dialog_url(WHERE, "1", "https://h/cb", "s", None)).query)
    assert scoped["scope"] == [
        "pages_show_list,pages_manage_metadata,pages_messaging,instagram_basic,"
        "instagram_manage_messages,pages_read_engagement"
    ]
    assert "config_id" not in scoped and scoped["response_type"] == ["code"]
    configured = parse_qs(urlsplit(ob.dialog_url(WHERE, "1", "https://h/cb", "s", "77")).query)
    assert configured["config_id"] == ["77"] and "scope" not in configured
    assert configured["override_default_response_type"] == ["true"]
    assert configured["state"] == ["s"] and configured["redirect_uri"] == ["https://h/cb"]


def test_pages_without_a_token_are_skipped_and_the_cursor_is_followed_only_with_next() -> None:
    body = {
        "data": [
            {
                "id": "1",
                "name": "A",
                "access_token": "EAA1",
                "instagram_business_account": {"id": "178", "username": "a.shop"},
            },
            {"id": "2", "name": "No task"},
        ],
        "paging": {"cursors": {"before": "x", "after": "y"}, "next": "https://graph/next"},
    }
    pages, after = ob.read_pages(body)
    assert [(p.page_id, p.instagram_id, p.instagram_username) for p in pages] == [
        ("1", "178", "a.shop")
    ]
    assert after == "y"
    assert "EAA1" not in repr(pages[0])  # a Page token never shows in a log line
    last = {"data": [], "paging": {"cursors": {"before": "x", "after": "y"}}}
    assert ob.read_pages(last) == ([], None)


def test_graphs_refusal_keeps_its_status_code_subcode_and_words() -> None:
    body = {
        "error": {
            "message": "Error validating access token: Session has expired",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
            "fbtrace_id": "A1",
        }
    }
    assert ob.refusal(400, body) == ob.Refusal(
        400, "190/463", "Error validating access token: Session has expired"
    )
    assert ob.refusal(502, None) == ob.Refusal(502, "http_502", "Meta answered HTTP 502")
    assert ob.succeeded(200, {"success": "true"}) and not ob.succeeded(200, {"success": False})


def test_a_pasted_token_must_be_the_accounts() -> None:
    ig, fb = ChannelKind.INSTAGRAM, ChannelKind.MESSENGER
    page = ob.check_pasted(fb, "10", "EAA", WHERE, None)
    assert page.url.endswith("/10?fields=id,name") and page.headers == {
        "Authorization": "Bearer EAA"
    }
    assert ob.read_pasted(fb, "10", None, {"id": "10"}) == (None, None)
    assert ob.read_pasted(fb, "10", None, {"id": "11"})[1] == "The token is not that Page's token."
    linked = {"id": "10", "instagram_business_account": {"id": "178"}}
    assert ob.read_pasted(ig, "178", "10", linked) == (None, None)
    assert ob.read_pasted(ig, "179", "10", linked)[1] is not None
    user = ob.check_pasted(ig, "178", "IGAA", WHERE, None)
    assert user.url == "https://graph.instagram.com/v23.0/me?fields=user_id,username"
    assert ob.read_pasted(ig, "178", None, {"user_id": "178", "id": "55"}) == ("55", None)
    waba = ob.subscribe_pasted(ChannelKind.WHATSAPP, "1", "EAA", WHERE, None, None)
    assert isinstance(waba, str) and "business_account_id" in waba


def test_an_instagram_account_connected_through_its_page_sends_through_the_page() -> None:
    platforms = base_urls()
    out = Outgoing(
        ChannelKind.INSTAGRAM,
        "178",
        "IGSID1",
        "Merhaba",
        secrets={"access_token": "EAApage", "page_id": "10"},
    )
    request = send.build(out, platforms)
    assert request.url == "https://graph.facebook.com/v23.0/10/messages"
    assert request.json == {
        "recipient": {"id": "IGSID1"},
        "message": {"text": "Merhaba"},
        "messaging_type": "RESPONSE",
    }
    login = Outgoing(
        ChannelKind.INSTAGRAM, "178", "IGSID1", "Merhaba", secrets={"access_token": "IGAA"}
    )
    assert send.build(login, platforms).url == "https://graph.instagram.com/v23.0/178/messages"
