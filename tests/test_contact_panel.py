"""The contact panel's API: an agent edits a contact (validated, audited, published live), and
a web-chat visitor's page, browser, language and time zone reach it unless the channel turns
that off. On the embedded default and on Postgres with Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import ORIGIN, Tenant, backends, prepare
from tests.test_api import error_code, hello, items, next_event, visitor_token, wait_for

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        yield client, acme


def _visitor_contact(client: TestClient, acme: Tenant, auth: dict[str, str]) -> tuple[str, str]:
    """A visitor who wrote once: their token and contact id."""
    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "a", "text": "hello"}))
        next_event(ws, "message.created")
    url = f"/api/conversations/{visitor['conversation_id']}"
    wait_for(lambda: items(client, url + "/messages", auth))
    return visitor["token"], str(client.get(url, headers=auth).json()["contact"]["id"])


def _worker_caught_up(client: TestClient, token: str, auth: dict[str, str], contact: str) -> None:
    """A later visitor message, waited for until stored: the persist worker reads the stream
    in order, so every event published before it has been through the worker too."""
    panel = client.get(f"/api/contacts/{contact}", headers=auth).json()
    url = f"/api/conversations/{panel['conversations'][0]['id']}/messages"
    before = len(items(client, url, auth))
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, token)
        ws.send_text(json.dumps({"type": "message.send", "client_id": "marker", "text": "."}))
        next_event(ws, "message.created")
    wait_for(lambda: len(items(client, url, auth)) > before)


def _audit(client: TestClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    return [e for e in items(client, "/api/audit", auth) if e["action"] == "contact.updated"]


def test_an_agent_edits_a_contact_and_every_agent_is_told(
    env: tuple[TestClient, Tenant],
) -> None:
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    token, contact_id = _visitor_contact(client, acme, auth)
    url = f"/api/contacts/{contact_id}"
    with client.websocket_connect("/ws/agent") as ws:
        hello(ws, acme.api_token)
        answer = client.patch(
            url,
            json={
                "name": "  Ayşe Yılmaz ",
                "email": "ayse@example.com",
                "phone": "+90 (532) 123-45 67",
                "company": "Örnek A.Ş.",
                "notes": "Prefers WhatsApp.\nVIP",
            },
            headers=auth,
        )
        assert answer.status_code == 200, answer.text
        panel = answer.json()
        assert (panel["name"], panel["email"], panel["phone"], panel["company"]) == (
            "Ayşe Yılmaz",
            "ayse@example.com",
            "+905321234567",
            "Örnek A.Ş.",
        )
        assert panel["notes"] == "Prefers WhatsApp.\nVIP"
        told = next_event(ws, "contact.updated")["data"]
        assert told["contact_id"] == contact_id and told["name"] == "Ayşe Yılmaz"
        assert told["phone"] == "+905321234567" and told["by"] == str(acme.admin_id)
    # Stored, and the persist worker's pass over the event changes nothing; a field left out
    # stays, one sent empty is cleared.
    cleared = client.patch(url, json={"company": "", "notes": None}, headers=auth).json()
    assert cleared["company"] is None and cleared["notes"] is None
    assert cleared["phone"] == "+905321234567"
    _worker_caught_up(client, token, auth, contact_id)  # had it applied the first edit's event,
    again = client.get(url, headers=auth).json()  # it would have put the company back
    assert again["company"] is None and again["notes"] is None
    assert again["name"] == "Ayşe Yılmaz" and again["email"] == "ayse@example.com"
    exported = client.get(f"{url}/export", headers=auth).json()["contact"]
    assert (exported["phone"], exported["company"]) == ("+905321234567", None)
    # Audited: who and which fields, never the values.
    rows = _audit(client, auth)
    # Last touched by the edit (stamped just before its audit row), not by the worker since.
    edited_at = datetime.fromisoformat(exported["updated_at"])
    assert edited_at <= datetime.fromisoformat(rows[0]["at"])
    assert [r["detail"]["fields"] for r in rows][:2] == [
        ["company", "notes"],
        ["name", "email", "phone", "company", "notes"],
    ]
    assert "Ayşe" not in json.dumps(rows) and "905321234567" not in json.dumps(rows)
    assert rows[0]["actor_id"] == str(acme.admin_id) and rows[0]["target_id"] == contact_id


def test_search_finds_an_edited_contact_by_the_new_name_only(
    env: tuple[TestClient, Tenant],
) -> None:
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    token, contact_id = _visitor_contact(client, acme, auth)
    url = f"/api/contacts/{contact_id}"
    client.post(
        "/api/widget/profile", json={"token": token, "name": "Old Name"}, headers={"origin": ORIGIN}
    )
    wait_for(lambda: client.get(url, headers=auth).json()["name"] == "Old Name")

    def found(q: str) -> list[str]:
        answer = client.get("/api/search", params={"q": q}, headers=auth)
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["contacts"]]

    assert found("old name") == [contact_id]
    edited = client.patch(url, json={"name": "Şule Işık"}, headers=auth)
    assert edited.status_code == 200, edited.text
    _worker_caught_up(client, token, auth, contact_id)
    assert found("sule isik") == [contact_id]
    assert found("ŞULE IŞIK") == [contact_id]
    assert found("old name") == []


def test_the_contact_list_finds_people_as_search_does(env: tuple[TestClient, Tenant]) -> None:
    """GET /api/contacts?q= (the console's Privacy tab looks people up with it): without
    regard to case or Turkish letters, and a nameless visitor by the name the inbox shows."""
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    token, named = _visitor_contact(client, acme, auth)
    _, nameless = _visitor_contact(client, acme, auth)
    edited = client.patch(f"/api/contacts/{named}", json={"name": "İSTANBUL Şubesi"}, headers=auth)
    assert edited.status_code == 200, edited.text
    _worker_caught_up(client, token, auth, named)

    def listed(q: str) -> list[str]:
        answer = client.get("/api/contacts", params={"q": q}, headers=auth)
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["items"]]

    assert listed("istanbul") == [named]
    assert listed("subesi") == [named]
    assert listed(f"Visitor {nameless[:6]}") == [nameless]
    assert listed("50%_") == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "not-an-email"}, "invalid_email"),
        ({"email": "a@b"}, "invalid_email"),
        ({"email": "a b@example.com"}, "invalid_email"),
        ({"phone": "12345"}, "invalid_phone"),
        ({"phone": "+90 532 abc 45 67"}, "invalid_phone"),
        ({"phone": "+1234567890123456"}, "invalid_phone"),
        ({"name": "x" * 201}, "bad_request"),
        ({"notes": "x" * 5001}, "bad_request"),
        ({"company": "x" * 201}, "bad_request"),
        ({"colour": "red"}, "bad_request"),
        ({}, "bad_request"),
    ],
)
def test_bad_contact_edits_are_refused_with_a_code(
    env: tuple[TestClient, Tenant], body: dict[str, Any], code: str
) -> None:
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    _, contact_id = _visitor_contact(client, acme, auth)
    answer = client.patch(f"/api/contacts/{contact_id}", json=body, headers=auth)
    assert answer.status_code == 400 and error_code(answer) == code
    assert client.get(f"/api/contacts/{contact_id}", headers=auth).json()["phone"] is None
    missing = client.patch(
        "/api/contacts/00000000-0000-4000-8000-000000000000", json={"name": "x"}, headers=auth
    )
    assert missing.status_code == 404


def test_a_visitors_page_browser_language_and_time_zone_reach_the_panel(
    env: tuple[TestClient, Tenant],
) -> None:
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    token, contact_id = _visitor_contact(client, acme, auth)
    config = client.get(
        "/api/widget/config", params={"channel": acme.public_key}, headers={"origin": ORIGIN}
    )
    assert config.json()["visitor_info"] is True
    sent = client.post(
        "/api/widget/visitor",
        json={
            "token": token,
            "page_url": f"{ORIGIN}/pricing?reset=s3cret&email=a@example.com#access_token=x",
            "page_title": "Pricing",
            "referrer": "javascript:alert(1)",
            "language": "tr-TR",
            "time_zone": "Europe/Istanbul",
        },
        headers={"origin": ORIGIN, "user-agent": CHROME_ON_WINDOWS},
    )
    assert sent.status_code == 204, sent.text
    url = f"/api/contacts/{contact_id}"
    visitor = wait_for(lambda: client.get(url, headers=auth).json()["visitor"])
    assert visitor == {
        "page_url": f"{ORIGIN}/pricing",  # without its query or fragment
        "page_title": "Pricing",
        "referrer": None,  # only http(s) addresses are kept
        "browser": "Chrome 131 on Windows",
        "language": "tr-TR",
        "time_zone": "Europe/Istanbul",
    }
    foreign = client.post(
        "/api/widget/visitor", json={"token": token}, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and error_code(foreign) == "origin_not_allowed"
    later = {"token": token, "referrer": "https://search.example/q?who=ayse@example.com#frag"}
    told = client.post("/api/widget/visitor", json=later, headers={"origin": ORIGIN})
    assert told.status_code == 204, told.text
    kept = wait_for(lambda: client.get(url, headers=auth).json()["visitor"]["referrer"])
    assert kept == "https://search.example/q"


def test_visitor_reports_are_rate_limited(env: tuple[TestClient, Tenant]) -> None:
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    token, _ = _visitor_contact(client, acme, auth)
    body = {"token": token, "page_url": f"{ORIGIN}/a"}
    answers = [
        client.post("/api/widget/visitor", json=body, headers={"origin": ORIGIN}) for _ in range(8)
    ]
    assert [a.status_code for a in answers] == [204] * 6 + [429] * 2
    assert error_code(answers[-1]) == "rate_limited"
    assert int(answers[-1].headers["retry-after"]) > 0


def test_a_channel_that_turns_visitor_info_off_keeps_none(env: tuple[TestClient, Tenant]) -> None:
    client, acme = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    token, contact_id = _visitor_contact(client, acme, auth)
    changed = client.patch(
        f"/api/channels/{acme.channel_id}", json={"settings": {"visitor_info": False}}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    config = client.get(
        "/api/widget/config", params={"channel": acme.public_key}, headers={"origin": ORIGIN}
    )
    assert config.json()["visitor_info"] is False
    refused = client.post(
        "/api/widget/visitor",
        json={"token": token, "page_url": f"{ORIGIN}/secret", "language": "en"},
        headers={"origin": ORIGIN, "user-agent": CHROME_ON_WINDOWS},
    )
    assert refused.status_code == 403 and error_code(refused) == "visitor_info_off"
    # A later edit goes through the same worker: had the refused info been published, it
    # would be stored by now.
    client.patch(f"/api/contacts/{contact_id}", json={"company": "Acme"}, headers=auth)
    client.post(
        "/api/widget/profile", json={"token": token, "name": "Later"}, headers={"origin": ORIGIN}
    )
    panel = wait_for(
        lambda: (
            (p := client.get(f"/api/contacts/{contact_id}", headers=auth).json())["name"] == "Later"
            and p
        )
    )
    assert panel["visitor"] is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("agent", "summary"),
    [
        (CHROME_ON_WINDOWS, "Chrome 131 on Windows"),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox 133 on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari 17 on iOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 on Windows",
        ),
        ("", None),
    ],
)
def test_the_browser_is_summarized(agent: str, summary: str | None) -> None:
    from hub.webchat.visitor_info import browser_of

    assert browser_of(agent) == summary
