"""The web-chat widget's back end (hub.webchat.routes and what it leans on): configuration, widget
settings, identity verification, the visitor's profile and history, the per-visitor rate
limit and agents' read positions for the visitor, through the app with its worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.testclient import TestClient

from hub.settings import Settings, SettingsError
from hub.storage.vault import Vault
from hub.web.app import create_app
from schemas.message import contact_id_for
from tests.conftest import make_settings
from tests.helpers import ORIGIN, Tenant, prepare
from tests.mailbox import join

EVIL = "https://evil.example"
PASSWORD = "correct-horse-battery"


@dataclass
class Env:
    client: TestClient
    settings: Settings
    acme: Tenant
    globex: Tenant
    admin: dict[str, str]  # headers of the acme admin's session

    @property
    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.acme.api_token}"}

    def as_admin(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.client.cookies.clear()
        headers = self.admin | kwargs.pop("headers", {})
        return self.client.request(method, url, headers=headers, **kwargs)

    def widget(self, method: str, url: str, origin: str = ORIGIN, **kwargs: Any) -> httpx.Response:
        self.client.cookies.clear()  # the widget has no session
        return self.client.request(method, url, headers={"origin": origin}, **kwargs)

    def token(self, tenant: Tenant | None = None, **extra: Any) -> dict[str, Any]:
        body = {"channel": (tenant or self.acme).public_key} | extra
        answer = self.widget("POST", "/api/widget/token", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def rotate(self) -> str:
        answer = self.as_admin("POST", f"/api/channels/{self.acme.channel_id}/identity-secret")
        assert answer.status_code == 201, answer.text
        return str(answer.json()["identity_secret"])


def session(client: TestClient, email: str, password: str) -> dict[str, str]:
    client.cookies.clear()
    answer = client.post("/api/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    cookie = answer.cookies["hub_session"]
    client.cookies.clear()
    return {"cookie": f"hub_session={cookie}", "x-csrf-token": answer.json()["csrf_token"]}


def build(settings: Settings) -> Iterator[Env]:
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(
        create_app(settings, run_worker=True), base_url="https://hub.example"
    ) as client:
        yield Env(client, settings, acme, globex, session(client, acme.email, acme.password))


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from build(settings)


@pytest.fixture(params=["sqlite", "postgres"])
def any_env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1]
        )
    yield from build(settings)


def code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


def hello(ws: Any, token: str) -> None:
    ws.send_text(json.dumps({"type": "hello", "token": token}))
    welcome = ws.receive_json()
    assert welcome["type"] == "welcome", welcome


def send(ws: Any, client_id: str, text: str | None = None) -> None:
    ws.send_text(
        json.dumps({"type": "message.send", "client_id": client_id, "text": text or client_id})
    )


def answer_to(ws: Any, client_id: str) -> dict[str, Any]:
    """The ack or error that answers one send (events in between are skipped)."""
    while True:
        frame = ws.receive_json()
        if frame["type"] in ("ack", "error") and frame.get("client_id") == client_id:
            return dict(frame)


def next_event(ws: Any, name: str) -> dict[str, Any]:
    while True:
        frame = ws.receive_json()
        if frame["type"] == "event" and frame["name"] == name:
            return dict(frame)


def until_pong(ws: Any) -> list[dict[str, Any]]:
    """Every frame that arrives before the answer to a ping."""
    ws.send_text('{"type":"ping"}')
    seen = []
    while (frame := ws.receive_json())["type"] != "pong":
        seen.append(frame)
    return seen


def wait_for(probe: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def signed(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def stored_texts(env: Env, conversation_id: str) -> list[str]:
    url = f"/api/conversations/{conversation_id}/messages?limit=200"
    answer = env.client.get(url, headers=env.bearer)
    return [m["text"] for m in answer.json()["items"]] if answer.status_code == 200 else []


# Configuration


DEFAULTS = {
    "title": None,  # the widget's own, in the visitor's language
    "greeting": None,
    "colour": "#4f46e5",
    "position": "right",
    "locale": None,
    "prechat": {"enabled": False, "require_email": False},
    "consent_required": False,
    "identity": False,
    "hours": None,
    "limits": {"max_message_chars": 10_000, "messages_per_minute": 20},
    "visitor_info": True,
}


def config(env: Env, origin: str = ORIGIN, key: str | None = None) -> httpx.Response:
    params = {"channel": env.acme.public_key if key is None else key}
    return env.widget("GET", "/api/widget/config", origin, params=params)


def test_config_has_the_defaults_and_checks_the_origin(env: Env) -> None:
    answer = config(env)
    assert answer.status_code == 200 and answer.json() == DEFAULTS
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["cache-control"] == "no-store"
    foreign = config(env, EVIL)
    assert foreign.status_code == 403 and code(foreign) == "origin_not_allowed"
    # The error carries CORS headers, so a widget can read why (it learns nothing else).
    assert foreign.headers["access-control-allow-origin"] == EVIL
    env.client.cookies.clear()
    no_origin = env.client.get("/api/widget/config", params={"channel": env.acme.public_key})
    assert no_origin.status_code == 403
    unknown = config(env, key="nope")
    assert unknown.status_code == 404 and code(unknown) == "not_found"
    assert config(env, key="").status_code == 404
    preflight = env.widget("OPTIONS", "/api/widget/config")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET"
    disconnected = env.as_admin("DELETE", f"/api/channels/{env.acme.channel_id}")
    assert disconnected.status_code == 200
    assert config(env).status_code == 404  # at once on this node


def test_config_follows_the_widget_settings(env: Env) -> None:
    one = f"/api/channels/{env.acme.channel_id}"
    every_day = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    always = every_day | {"sat": [["00:00", "24:00"]], "sun": [["00:00", "24:00"]]}
    settings = {
        "title": "Merhaba",
        "greeting": "Nasıl yardımcı olabiliriz?",
        "colour": "#0A7F5C",
        "position": "left",
        "locale": "tr",
        "prechat": {"enabled": True, "require_email": True},
        "consent_required": True,
        "hours": {"timezone": "Europe/Istanbul", "days": always, "offline_message": "Yarın"},
    }
    assert env.as_admin("PATCH", one, json={"settings": settings}).status_code == 200
    # The admin's own node sees the change at once (its web-chat cache is dropped).
    assert config(env).json() == DEFAULTS | {
        "title": "Merhaba",
        "greeting": "Nasıl yardımcı olabiliriz?",
        "colour": "#0a7f5c",
        "position": "left",
        "locale": "tr",
        "prechat": {"enabled": True, "require_email": True},
        "consent_required": True,
        "hours": {
            "open_now": True,
            "offline_message": "Yarın",
            "next_open_at": None,
            "timezone": "Europe/Istanbul",
        },
    }
    # Closed now: the next opening is two days on at 10:00 UTC (never today).
    later = (datetime.now(UTC) + timedelta(days=2)).date()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[later.weekday()]
    hours = {"timezone": "UTC", "days": {day: [["10:00", "11:00"]]}}
    assert env.as_admin("PATCH", one, json={"settings": {"hours": hours}}).status_code == 200
    shown = config(env).json()["hours"]
    assert shown["open_now"] is False and shown["offline_message"] is None
    expected = datetime(later.year, later.month, later.day, 10, tzinfo=UTC)
    assert datetime.fromisoformat(shown["next_open_at"]) == expected
    closed = {"timezone": "UTC", "days": {}}
    assert env.as_admin("PATCH", one, json={"settings": {"hours": closed}}).status_code == 200
    assert config(env).json()["hours"] == {
        "open_now": False,
        "offline_message": None,
        "next_open_at": None,
        "timezone": "UTC",
    }
    back = {"hours": None, "prechat": None, "consent_required": None, "position": None}
    assert env.as_admin("PATCH", one, json={"settings": back}).status_code == 200
    shown = config(env).json()
    assert (shown["hours"], shown["prechat"], shown["position"]) == (
        None,
        DEFAULTS["prechat"],
        "right",
    )
    assert shown["consent_required"] is False


def test_widget_settings_are_validated_with_their_codes(env: Env) -> None:
    one = f"/api/channels/{env.acme.channel_id}"

    def refused(settings: dict[str, Any]) -> str:
        answer = env.as_admin("PATCH", one, json={"settings": settings})
        assert answer.status_code == 400, (settings, answer.text)
        return code(answer)

    for zone in ("Mars/Olympus", "", "../../etc/passwd", "Europe/Berlin "):
        assert refused({"hours": {"timezone": zone, "days": {}}}) == "invalid_timezone", zone
    for ranges in (
        [["17:00", "09:00"]],
        [["09:00", "09:00"]],
        [["9:00", "12:00"]],
        [["24:00", "24:00"]],
        [["09:00", "24:30"]],
        [["12:60", "13:00"]],
    ):
        hours = {"timezone": "Europe/Istanbul", "days": {"mon": ranges}}
        assert refused({"hours": hours}) == "invalid_hours", ranges
    for bad in (
        {"position": "middle"},
        {"prechat": {"enabled": "please"}},
        {"prechat": {"enabled": True, "ask_phone": True}},
        {"consent_required": "maybe"},
        {"hours": {"timezone": "UTC", "days": {"funday": [["09:00", "10:00"]]}}},
        {"hours": {"timezone": "UTC", "days": {"mon": [["09:00"]]}}},
        {"hours": {"timezone": "UTC"}},
        {"hours": {"timezone": "UTC", "days": {}, "offline_message": "x" * 301}},
    ):
        assert refused(bad) == "bad_request", bad
    assert env.as_admin("GET", one).json()["settings"] == {}  # nothing was kept

    hours = {
        "timezone": "Europe/Istanbul",
        "days": {"tue": [["13:00", "17:00"], ["09:00", "12:00"]], "wed": []},
        "offline_message": "Back at nine",
    }
    saved = env.as_admin("PATCH", one, json={"settings": {"hours": hours, "position": "left"}})
    assert saved.status_code == 200
    assert saved.json()["settings"] == {
        "position": "left",
        "hours": {
            "timezone": "Europe/Istanbul",
            "days": {"tue": [["09:00", "12:00"], ["13:00", "17:00"]]},  # sorted; no empty days
            "offline_message": "Back at nine",
        },
    }
    audit = env.as_admin("GET", "/api/audit", params={"action": "channel.updated"})
    assert audit.json()["items"][0]["detail"] == {"fields": ["settings.hours", "settings.position"]}


# Identity verification


def test_the_identity_secret_is_for_admins_and_never_shown_again(env: Env) -> None:
    route = f"/api/channels/{env.acme.channel_id}/identity-secret"
    member = {"email": "agent@acme.example"}
    join(env.client, env.bearer, member["email"], "Agent", PASSWORD)
    agent = session(env.client, member["email"], PASSWORD)
    env.client.cookies.clear()
    refused = env.client.post(route, headers=agent)
    assert refused.status_code == 403 and code(refused) == "forbidden"
    no_csrf = env.client.post(route, headers={"cookie": env.admin["cookie"]})
    assert no_csrf.status_code == 403 and code(no_csrf) == "csrf_failed"
    env.client.cookies.clear()
    assert env.client.post(route).status_code == 401
    page = {"kind": "messenger", "name": "Page", "account_id": "42", "access_token": "page-t"}
    messenger = env.as_admin("POST", "/api/channels", json=page).json()
    other = env.as_admin("POST", f"/api/channels/{messenger['id']}/identity-secret")
    assert other.status_code == 400 and code(other) == "not_webchat"
    theirs = env.as_admin("POST", f"/api/channels/{env.globex.channel_id}/identity-secret")
    assert theirs.status_code == 404
    assert env.as_admin("POST", f"/api/channels/{uuid.uuid4()}/identity-secret").status_code == 404
    assert config(env).json()["identity"] is False

    first = env.rotate()
    second = env.rotate()
    assert len(first) >= 40 and first != second
    assert config(env).json()["identity"] is True
    one = f"/api/channels/{env.acme.channel_id}"
    answers = [
        env.as_admin("GET", "/api/channels"),
        env.as_admin("GET", "/api/channels/health"),
        env.as_admin("GET", one),
        env.as_admin("PATCH", one, json={"name": "Shop chat"}),
        env.as_admin("GET", "/api/audit"),
        config(env),
        env.widget("POST", "/api/widget/token", json={"channel": env.acme.public_key}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert first not in answer.text and second not in answer.text
    detail = env.as_admin("GET", one).json()
    assert detail["has_secrets"] is True and "identity_secret" not in json.dumps(detail)
    rotations = env.as_admin("GET", "/api/audit", params={"action": "channel.identity_secret"})
    rows = rotations.json()["items"]
    assert [r["action"] for r in rows] == ["channel.identity_secret_rotated"] * 2
    assert rows[0]["ip"] == "testclient" and rows[0]["target_id"] == str(env.acme.channel_id)
    assert rows[0]["actor_id"] == str(env.acme.admin_id) and rows[0]["detail"] == {}

    # At rest it is sealed: not in a dump of the database, and the vault opens it.
    database = sqlite3.connect(Path(env.settings.database_url.split("///", 1)[1]))
    try:
        dump = "\n".join(database.iterdump())
        [(sealed,)] = database.execute(
            "SELECT secrets FROM channels WHERE kind = 'webchat' AND secrets IS NOT NULL"
        ).fetchall()
    finally:
        database.close()
    assert first not in dump and second not in dump and sealed in dump
    assert Vault(env.settings.encryption_keys).open(sealed) == {"identity_secret": second}


def test_an_identified_user_is_the_same_visitor_on_every_device(env: Env) -> None:
    secret = env.rotate()
    user = {"user_id": "customer-42", "user_hash": signed(secret, "customer-42")}
    phone, laptop = env.token(**user), env.token(**user)
    assert phone["identified"] is laptop["identified"] is True
    assert phone["visitor_id"] == laptop["visitor_id"]
    assert phone["conversation_id"] == laptop["conversation_id"]
    anonymous = env.token()
    assert anonymous["identified"] is False
    assert anonymous["conversation_id"] != phone["conversation_id"]
    # The hash is hex: upper case is the same hash.
    shouting = env.token(user_id="customer-42", user_hash=user["user_hash"].upper())
    assert shouting["visitor_id"] == phone["visitor_id"]

    # What one device writes, the other sees in its history.
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, phone["token"])
        send(ws, "p1", "Sent from my phone")
        assert answer_to(ws, "p1")["type"] == "ack"

    def history() -> list[str]:
        body = {"token": laptop["token"]}
        items = env.widget("POST", "/api/widget/history", json=body).json()["items"]
        return [m["text"] for m in items]

    assert wait_for(history) == ["Sent from my phone"]

    # With user_id the previous token does not matter: no way to become someone else.
    other = {"user_id": "customer-7", "user_hash": signed(secret, "customer-7")}
    them = env.token(**other)
    assert them["visitor_id"] != phone["visitor_id"]
    assert env.token(token=them["token"], **user)["visitor_id"] == phone["visitor_id"]
    assert env.token(token=anonymous["token"], **user)["visitor_id"] == phone["visitor_id"]
    # Without user_id an anonymous token continues as before; an identified one does not (the
    # site's user signed out): a new anonymous visitor begins.
    assert env.token(token=anonymous["token"])["visitor_id"] == anonymous["visitor_id"]
    after = env.token(token=phone["token"])
    assert after["identified"] is False
    assert after["visitor_id"] not in (phone["visitor_id"], anonymous["visitor_id"])


def test_a_wrong_or_missing_hash_is_refused(env: Env) -> None:
    def refused(**extra: Any) -> httpx.Response:
        body = {"channel": env.acme.public_key} | extra
        return env.widget("POST", "/api/widget/token", json=body)

    # No identity secret yet: any user id is refused.
    for answer in (refused(user_id="u1"), refused(user_id="u1", user_hash=signed("x", "u1"))):
        assert answer.status_code == 403 and code(answer) == "identity_invalid"
    secret = env.rotate()
    for extra in (
        {"user_id": "u1"},
        {"user_id": "u1", "user_hash": ""},
        {"user_id": "u1", "user_hash": signed(secret, "u2")},
        {"user_id": "u1", "user_hash": signed("another secret", "u1")},
        {"user_id": "u1", "user_hash": "zz" * 32},
        {"user_id": "u1", "user_hash": "é" * 64},
        {"user_id": "u1", "user_hash": signed(secret, "u1")[:-1]},
    ):
        answer = refused(**extra)
        assert answer.status_code == 403 and code(answer) == "identity_invalid", extra
        assert answer.headers["access-control-allow-origin"] == ORIGIN  # readable by the widget
    # An old secret stops working once it is made anew.
    assert refused(user_id="u1", user_hash=signed(secret, "u1")).status_code == 200
    env.rotate()
    assert code(refused(user_id="u1", user_hash=signed(secret, "u1"))) == "identity_invalid"
    for extra in ({"user_id": ""}, {"user_id": "x" * 201}, {"user_hash": "a" * 129}):
        answer = refused(**extra)
        assert answer.status_code == 400 and code(answer) == "bad_request", extra
    # The origin is checked before anything else.
    foreign = env.widget(
        "POST", "/api/widget/token", EVIL, json={"channel": env.acme.public_key, "user_id": "u1"}
    )
    assert code(foreign) == "origin_not_allowed"


# Profile


def test_the_profile_reaches_the_agents_and_the_contact(any_env: Env) -> None:
    env = any_env
    visitor = env.token()
    contact_id = str(
        contact_id_for(env.acme.workspace_id, env.acme.channel_id, visitor["visitor_id"])
    )
    profile = {"token": visitor["token"], "name": "  Ayşe Yılmaz ", "email": "ayse@example.com"}
    with (
        env.client.websocket_connect("/ws/agent") as agent,
        env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
    ):
        hello(agent, env.acme.api_token)
        hello(ws, visitor["token"])
        answer = env.widget("POST", "/api/widget/profile", json=profile)
        assert answer.status_code == 204 and not answer.content
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        event = next_event(agent, "contact.updated")
        assert event["data"] == {
            "contact_id": contact_id,
            "name": "Ayşe Yılmaz",
            "email": "ayse@example.com",
        }
        assert not [f for f in until_pong(ws) if f.get("name") == "contact.updated"]  # agents only

    def contact() -> dict[str, Any] | None:
        found = env.client.get(f"/api/contacts/{contact_id}", headers=env.bearer)
        return dict(found.json()) if found.status_code == 200 else None

    # The visitor has not written yet: the contact is made by the profile alone.
    made = wait_for(contact)
    assert (made["name"], made["email"]) == ("Ayşe Yılmaz", "ayse@example.com")

    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        send(ws, "first")
        assert answer_to(ws, "first")["type"] == "ack"
    wrote = wait_for(lambda: (found := contact()) and found["conversations"] and found)
    assert wrote["name"] == "Ayşe Yılmaz"  # a message does not clobber the profile
    changed = {"token": visitor["token"], "name": None, "email": "ayse@work.example"}
    assert env.widget("POST", "/api/widget/profile", json=changed).status_code == 204
    now = wait_for(lambda: (found := contact()) and found["email"] == "ayse@work.example" and found)
    assert now["name"] == "Ayşe Yılmaz"  # null leaves it as it was


def test_the_profile_refuses_what_does_not_fit(env: Env) -> None:
    token = env.token()["token"]
    route = "/api/widget/profile"
    for bad in ("nope", "a@b", "two@@example.com", "sp ace@example.com", "x@" + "y" * 320 + ".tr"):
        answer = env.widget("POST", route, json={"token": token, "email": bad})
        assert answer.status_code == 400 and code(answer) == "bad_request", bad
    for bad_name in ("", "   ", "x" * 201):
        answer = env.widget("POST", route, json={"token": token, "name": bad_name})
        assert answer.status_code == 400 and code(answer) == "bad_request"
    forged = env.widget("POST", route, json={"token": "forged", "name": "Eve"})
    assert forged.status_code == 401 and code(forged) == "unauthenticated"
    foreign = env.widget("POST", route, EVIL, json={"token": token, "name": "Eve"})
    assert foreign.status_code == 403 and code(foreign) == "origin_not_allowed"
    preflight = env.widget("OPTIONS", route)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "POST"


# History


def test_history_is_the_visitors_own_without_notes_and_walks_back(env: Env) -> None:
    visitor = env.token()
    conversation_id = visitor["conversation_id"]
    with (
        env.client.websocket_connect("/ws/agent") as agent,
        env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
    ):
        hello(agent, env.acme.api_token)
        hello(ws, visitor["token"])
        for i in range(3):
            send(ws, f"v{i}")
            assert answer_to(ws, f"v{i}")["type"] == "ack"
        for client_id, note in (("n1", True), ("a1", False), ("n2", True)):
            frame = {
                "type": "message.send",
                "client_id": client_id,
                "conversation_id": conversation_id,
                "text": f"{client_id} text",
                "note": note,
            }
            agent.send_text(json.dumps(frame))
            assert answer_to(agent, client_id)["type"] == "ack"
        send(ws, "v3")
        assert answer_to(ws, "v3")["type"] == "ack"
    wait_for(lambda: len(stored_texts(env, conversation_id)) == 7)

    def page(**extra: Any) -> dict[str, Any]:
        answer = env.widget("POST", "/api/widget/history", json={"token": visitor["token"]} | extra)
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        return dict(answer.json())

    whole = page()
    assert [m["text"] for m in whole["items"]] == ["v0", "v1", "v2", "a1 text", "v3"]
    assert whole["next_before"] is None
    assert "n1 text" not in json.dumps(whole)
    reply = whole["items"][3]
    assert set(reply) == {
        "id",
        "direction",
        "text",
        "attachments",
        "sender",
        "sent_at",
        "status",
        "error",
        "client_id",
        "event_id",
        "edited",
        "deleted",
    }
    assert reply["sender"] == {"type": "agent", "name": "acme admin"}  # no agent id
    assert (reply["direction"], reply["status"], reply["error"]) == ("out", "sent", None)
    assert whole["items"][0]["sender"] == {"type": "contact", "name": None}
    assert whole["items"][0]["client_id"] == "v0" and whole["items"][0]["event_id"]

    # Pages of two, newest page first, notes left out by the query (every page is full).
    pages, before = [], None
    while True:
        got = page(limit=2, **({"before": before} if before else {}))
        pages.append([m["text"] for m in got["items"]])
        before = got["next_before"]
        if before is None:
            break
    assert pages == [["a1 text", "v3"], ["v1", "v2"], ["v0"]]

    assert env.widget(
        "POST", "/api/widget/history", json={"token": env.token()["token"]}
    ).json() == {
        "items": [],
        "next_before": None,
        "agent_read_up_to": None,
    }  # another visitor sees nothing of it
    for bad in ({"limit": 0}, {"limit": 201}, {"before": "not-a-cursor"}, {"token": ""}):
        answer = env.widget("POST", "/api/widget/history", json={"token": visitor["token"]} | bad)
        assert answer.status_code == 400 and code(answer) == "bad_request", bad
    foreign = env.widget("POST", "/api/widget/history", EVIL, json={"token": visitor["token"]})
    assert foreign.status_code == 403
    # The token never travels in a URL: there is no GET.
    assert env.widget("GET", "/api/widget/history").status_code == 405


# Rate limit


def test_a_visitor_may_send_twenty_messages_a_minute(env: Env) -> None:
    visitor = env.token()
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        for i in range(20):
            send(ws, f"m{i}")
            assert answer_to(ws, f"m{i}")["type"] == "ack"
        send(ws, "m20")
        refused = answer_to(ws, "m20")
        assert refused["type"] == "error" and refused["code"] == "rate_limited"
        assert refused["message"] and refused["client_id"] == "m20"
        until_pong(ws)  # the socket stays open
    # The limit is the visitor's, not the socket's: a new socket is still limited...
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        send(ws, "m21")
        assert answer_to(ws, "m21")["code"] == "rate_limited"
        typing = {"type": "typing", "on": True}  # ...for messages only
        ws.send_text(json.dumps(typing))
        assert next_event(ws, "typing")["data"]["on"] is True
    # ...and another visitor is not.
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, env.token()["token"])
        send(ws, "other")
        assert answer_to(ws, "other")["type"] == "ack"

    # Nothing refused was published: once a later reply is stored, the refused ones are not.
    conversation_id = visitor["conversation_id"]
    reply = {"client_id": "after", "text": "marker"}
    url = f"/api/conversations/{conversation_id}/messages"
    wait_for(lambda: env.client.get(url, headers=env.bearer).status_code == 200)
    assert env.client.post(url, json=reply, headers=env.bearer).status_code == 202
    texts = wait_for(lambda: (t := stored_texts(env, conversation_id)) and "marker" in t and t)
    assert texts == [f"m{i}" for i in range(20)] + ["marker"]


def test_the_limit_is_a_setting(tmp_path: Path) -> None:
    assert make_settings(tmp_path).visitor_messages_per_minute == 20
    environ = {
        "HUB_SECRET_KEY": "k" * 40,
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HUB_VISITOR_MESSAGES_PER_MINUTE": "5",
    }
    assert Settings.from_env(environ).visitor_messages_per_minute == 5
    with pytest.raises(SettingsError, match="HUB_VISITOR_MESSAGES_PER_MINUTE"):
        Settings.from_env(environ | {"HUB_VISITOR_MESSAGES_PER_MINUTE": "0"})


# Read positions


def test_the_visitor_sees_when_an_agent_has_read(env: Env) -> None:
    visitor, bystander = env.token(), env.token()
    with (
        env.client.websocket_connect("/ws/agent") as agent,
        env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
        env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as other,
    ):
        hello(agent, env.acme.api_token)
        hello(ws, visitor["token"])
        hello(other, bystander["token"])
        send(ws, "r1")
        event_id = next_event(ws, "message.created")["id"]
        read = {"type": "read", "conversation_id": visitor["conversation_id"], "up_to": event_id}
        agent.send_text(json.dumps(read))
        # Then a typing event, which both sockets get after whatever the read published.
        typing = {"type": "typing", "conversation_id": visitor["conversation_id"], "on": True}
        agent.send_text(json.dumps(typing))
        updates = [f["data"] for f in until_typing(ws) if f.get("name") == "conversation.updated"]
        assert updates == [
            {"conversation_id": visitor["conversation_id"], "agent_read_up_to": event_id}
        ]  # that it was read, not by whom
        # Agents keep their own event (who read how far) and get the visitor's too.
        seen = [f["data"] for f in until_typing(agent) if f.get("name") == "conversation.updated"]
        assert seen == [
            {
                "conversation_id": visitor["conversation_id"],
                "read": {"user_id": str(env.acme.admin_id), "up_to": event_id},
            },
            {"conversation_id": visitor["conversation_id"], "agent_read_up_to": event_id},
        ]
        assert not [f for f in until_pong(other) if f.get("name") == "conversation.updated"]


def until_typing(ws: Any) -> list[dict[str, Any]]:
    """Every frame that arrives before the next typing event."""
    seen = []
    while (frame := ws.receive_json()).get("name") != "typing":
        seen.append(frame)
    return seen
