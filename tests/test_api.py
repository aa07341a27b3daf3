"""REST and websocket behaviour through the app, on the embedded default (SQLite and the
in-process bus)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import ORIGIN, Tenant, prepare


@pytest.fixture(params=["sqlite", "postgres"])
def env(
    request: pytest.FixtureRequest, settings: Settings
) -> Iterator[tuple[TestClient, Tenant, Tenant]]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1]
        )
    settings = settings.with_overrides(
        hello_timeout_s=0.5, max_frame_bytes=2048, max_body_bytes=4096
    )
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        yield client, acme, globex


def login(client: TestClient, tenant: Tenant) -> str:
    response = client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def visitor_token(
    client: TestClient, tenant: Tenant, previous: str | None = None
) -> dict[str, str]:
    body = {"channel": tenant.public_key} | ({"token": previous} if previous else {})
    response = client.post("/api/widget/token", json=body, headers={"origin": ORIGIN})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    return dict(response.json())


def hello(ws: Any, token: str, resume_from: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "hello", "token": token}
    if resume_from:
        frame["resume_from"] = resume_from
    ws.send_text(json.dumps(frame))
    welcome = ws.receive_json()
    assert welcome["type"] == "welcome", welcome
    return dict(welcome)


def next_event(ws: Any, name: str) -> dict[str, Any]:
    while True:
        frame = ws.receive_json()
        if frame["type"] == "event" and frame["name"] == name:
            return dict(frame)


def next_ack(ws: Any) -> dict[str, Any]:
    while True:
        frame = ws.receive_json()
        if frame["type"] in ("ack", "error"):
            return dict(frame)


def items(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(url, headers=headers)
    return list(response.json()["items"]) if response.status_code == 200 else []


def wait_for(predicate: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# Authentication


def test_login_sets_an_httponly_lax_session_cookie(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    response = client.post(
        "/api/auth/login", json={"email": acme.email.upper(), "password": acme.password}
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "hub_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = client.get("/api/me").json()
    assert me["user"]["workspace_id"] == str(acme.workspace_id)
    assert me["user"]["role"] == "admin"


def test_wrong_password_and_unknown_user_look_the_same(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    wrong = client.post("/api/auth/login", json={"email": acme.email, "password": "nope"})
    unknown = client.post("/api/auth/login", json={"email": "who@x.example", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers
    assert client.get("/api/me").status_code == 401


def test_state_changes_with_a_cookie_need_the_csrf_token(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    csrf = login(client, acme)
    refused = client.post("/api/agent/socket-token")
    assert refused.status_code == 403 and error_code(refused) == "csrf_failed"
    assert (
        client.post("/api/agent/socket-token", headers={"x-csrf-token": "0" * 64}).status_code
        == 403
    )
    assert client.post("/api/agent/socket-token", headers={"x-csrf-token": csrf}).status_code == 200
    assert client.post("/api/auth/logout", headers={"x-csrf-token": csrf}).status_code == 204
    assert client.get("/api/me").status_code == 401


def test_bearer_tokens(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    ok = client.get("/api/conversations", headers={"authorization": f"Bearer {acme.api_token}"})
    assert ok.status_code == 200
    assert ok.json() == {"items": [], "next_cursor": None, "resume_from": None}
    bad = client.get("/api/conversations", headers={"authorization": "Bearer hubt_forged"})
    assert bad.status_code == 401 and error_code(bad) == "unauthenticated"
    # A bearer call needs no CSRF token: nothing in it is sent by a browser on its own.
    created = client.post(
        "/api/tokens", json={"name": "ci"}, headers={"authorization": f"Bearer {acme.api_token}"}
    )
    assert created.status_code == 201 and created.json()["token"].startswith("hubt_")


# Bad input


def test_bad_bodies_get_machine_readable_errors(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, _, _ = env
    assert error_code(client.post("/api/auth/login", content=b"{not json")) == "bad_request"
    assert error_code(client.post("/api/auth/login", json={"email": "a@b.c"})) == "bad_request"
    big = client.post(
        "/api/auth/login", content=b"x" * 10_000, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413 and error_code(big) == "too_big"
    assert error_code(client.get("/api/nowhere")) == "not_found"
    assert error_code(client.delete("/api/conversations")) == "method_not_allowed"
    assert client.get("/healthz").json()["bus"] is True


def test_widget_token_checks_the_origin(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    foreign = client.post(
        "/api/widget/token",
        json={"channel": acme.public_key},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and error_code(foreign) == "origin_not_allowed"
    unknown = client.post("/api/widget/token", json={"channel": "nope"}, headers={"origin": ORIGIN})
    assert unknown.status_code == 404
    first = visitor_token(client, acme)
    again = visitor_token(client, acme, previous=first["token"])
    assert again["visitor_id"] == first["visitor_id"]
    assert again["conversation_id"] == first["conversation_id"]
    assert visitor_token(client, acme)["visitor_id"] != first["visitor_id"]
    preflight = client.options("/api/widget/token", headers={"origin": ORIGIN})
    assert (
        preflight.status_code == 204 and preflight.headers["access-control-allow-methods"] == "POST"
    )


# Web chat end to end (in-process)


def test_visitor_and_agent_chat_and_history_is_persisted(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    visitor = visitor_token(client, acme)
    auth = {"authorization": f"Bearer {acme.api_token}"}
    with (
        client.websocket_connect("/ws/agent") as agent,
        client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
    ):
        hello(agent, acme.api_token)
        hello(ws, visitor["token"])
        ws.send_text(
            json.dumps({"type": "message.send", "client_id": "v1", "text": "Hello, shop!"})
        )
        ack = next_ack(ws)
        assert ack["type"] == "ack" and ack["client_id"] == "v1" and ack["duplicate"] is False
        created = next_event(agent, "message.created")["data"]["message"]
        assert created["text"] == "Hello, shop!" and created["direction"] == "in"
        assert created["conversation_id"] == visitor["conversation_id"]
        # The same client_id again (a retry after a reconnect) makes no second message.
        ws.send_text(
            json.dumps({"type": "message.send", "client_id": "v1", "text": "Hello, shop!"})
        )
        assert next_ack(ws) == ack | {"duplicate": True}

        conversation_id = visitor["conversation_id"]
        # No waiting for the worker: the agent answers a conversation the database has yet to see.
        agent.send_text(
            json.dumps(
                {
                    "type": "message.send",
                    "client_id": "a1",
                    "conversation_id": conversation_id,
                    "text": "Hi! How can I help?",
                }
            )
        )
        reply = next_event(ws, "message.created")["data"]["message"]
        assert reply["text"] == "Hi! How can I help?" and reply["direction"] == "out"
        assert reply["sender"]["type"] == "agent" and reply["status"] == "sent"

    url = f"/api/conversations/{conversation_id}/messages"
    messages = wait_for(lambda: (found := items(client, url, auth)) and len(found) == 2 and found)
    assert [m["text"] for m in messages] == ["Hello, shop!", "Hi! How can I help?"]
    [conversation] = client.get("/api/conversations", headers=auth).json()["items"]
    assert conversation["last_message_preview"] == "Hi! How can I help?"


def test_message_pages_walk_back_with_a_cursor(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    visitor = visitor_token(client, acme)
    auth = {"authorization": f"Bearer {acme.api_token}"}
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        for i in range(7):
            ws.send_text(
                json.dumps({"type": "message.send", "client_id": f"c{i}", "text": f"m{i}"})
            )
            assert ws.receive_json()["type"] in ("ack", "event")
    url = f"/api/conversations/{visitor['conversation_id']}/messages"
    wait_for(lambda: len(items(client, url, auth)) == 7)
    seen: list[str] = []
    before = None
    while True:
        page = client.get(
            url, params={"limit": 3} | ({"before": before} if before else {}), headers=auth
        ).json()
        seen = [m["text"] for m in page["items"]] + seen
        before = page["next_before"]
        if before is None:
            break
    assert seen == [f"m{i}" for i in range(7)]
    assert client.get(url, params={"limit": 0}, headers=auth).status_code == 400
    assert error_code(client.get(url, params={"before": "garbage"}, headers=auth)) == "bad_request"


def test_tenants_are_isolated(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, globex = env
    visitor = visitor_token(client, acme)
    with (
        client.websocket_connect("/ws/agent") as spy,
        client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
    ):
        hello(spy, globex.api_token)
        hello(ws, visitor["token"])
        ws.send_text(
            json.dumps({"type": "message.send", "client_id": "x", "text": "secret order 42"})
        )
        ws.receive_json()
        # The other workspace's agent cannot write to it either.
        spy.send_text(
            json.dumps(
                {
                    "type": "message.send",
                    "client_id": "y",
                    "text": "hi",
                    "conversation_id": visitor["conversation_id"],
                }
            )
        )
        seen = []
        while (frame := spy.receive_json())["type"] != "error":
            seen.append(frame)
        assert frame["code"] == "not_found" and frame["client_id"] == "y"
        spy.send_text('{"type":"ping"}')
        while (frame := spy.receive_json())["type"] != "pong":
            seen.append(frame)
        assert [f["name"] for f in seen] == ["presence"]  # its own; nothing of acme's
        assert "secret order" not in json.dumps(seen)
    acme_auth = {"authorization": f"Bearer {acme.api_token}"}
    wait_for(lambda: client.get("/api/conversations", headers=acme_auth).json()["items"])
    globex_auth = {"authorization": f"Bearer {globex.api_token}"}
    assert client.get("/api/conversations", headers=globex_auth).json()["items"] == []
    url = f"/api/conversations/{visitor['conversation_id']}"
    assert client.get(url, headers=globex_auth).status_code == 404
    assert client.get(url + "/messages", headers=globex_auth).status_code == 404
    assert client.get(url, headers=acme_auth).status_code == 200


def test_rest_send_is_idempotent(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    visitor = visitor_token(client, acme)
    auth = {"authorization": f"Bearer {acme.api_token}"}
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v", "text": "hi"}))
        ws.receive_json()
    url = f"/api/conversations/{visitor['conversation_id']}/messages"
    wait_for(
        lambda: (
            client.get(f"/api/conversations/{visitor['conversation_id']}", headers=auth).status_code
            == 200
        )
    )
    first = client.post(url, json={"client_id": "r1", "text": "reply"}, headers=auth)
    second = client.post(url, json={"client_id": "r1", "text": "reply"}, headers=auth)
    assert first.status_code == 202 and second.status_code == 200
    assert (
        first.json()["message_id"] == second.json()["message_id"]
        and second.json()["duplicate"] is True
    )
    wait_for(lambda: len(items(client, url, auth)) == 2)


# Websocket errors


def closed_with(ws: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as info:
        while True:
            ws.receive_text()
    return info.value.code


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type":"hello","token":"forged"}', 4401),
        ("not json", 4400),
        ('{"type":"subscribe","room":"*"}', 4400),
        ('{"type":"hello","token":"' + "x" * 3000 + '"}', 1009),
        ('{"type":"hello","token":"t","resume_from":"bad"}', 4400),
    ],
)
def test_agent_socket_errors(env: tuple[TestClient, Tenant, Tenant], frame: str, code: int) -> None:
    client, _, _ = env
    with client.websocket_connect("/ws/agent") as ws:
        ws.send_text(frame)
        assert closed_with(ws) == code


def test_hello_timeout_closes_4408(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, _, _ = env
    with client.websocket_connect("/ws/agent") as ws:
        error = ws.receive_json()
        assert error["code"] == "hello_timeout"
        assert closed_with(ws) == 4408


def test_visitor_socket_refuses_a_foreign_origin(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    token = visitor_token(client, acme)["token"]
    with client.websocket_connect("/ws/visitor", headers={"origin": "https://evil.example"}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token}))
        assert ws.receive_json()["code"] == "origin_not_allowed"
        assert closed_with(ws) == 4403
    # A visitor token is not an agent credential.
    with client.websocket_connect("/ws/agent") as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token}))
        assert closed_with(ws) == 4401


def test_resume_gets_exactly_the_missed_events(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        cursor = hello(ws, visitor["token"])["cursor"]
        for i in range(3):
            ws.send_text(
                json.dumps({"type": "message.send", "client_id": f"r{i}", "text": f"t{i}"})
            )
        frames = [ws.receive_json() for _ in range(6)]
    events = [f for f in frames if f["type"] == "event"]
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        welcome = hello(ws, visitor["token"], resume_from=events[0]["id"])
        assert welcome == {"type": "welcome", "cursor": events[0]["id"], "resumed": True}
        replayed = [ws.receive_json() for _ in range(2)]
        assert [f["id"] for f in replayed] == [e["id"] for e in events[1:]]
        ws.send_text('{"type":"ping"}')
        assert ws.receive_json() == {"type": "pong"}  # nothing more was queued
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        assert hello(ws, visitor["token"], resume_from=cursor)["resumed"] is True
        assert [ws.receive_json()["data"]["message"]["text"] for _ in range(3)] == [
            "t0",
            "t1",
            "t2",
        ]
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(
            json.dumps(
                {"type": "hello", "token": visitor["token"], "resume_from": "99999999999999-0"}
            )
        )
        assert ws.receive_json()["code"] == "cursor_too_old"
        assert closed_with(ws) == 4409


def test_conversation_pages_walk_with_a_cursor(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    for n in range(5):
        visitor = visitor_token(client, acme)
        with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
            hello(ws, visitor["token"])
            ws.send_text(json.dumps({"type": "message.send", "client_id": "c", "text": f"v{n}"}))
            next_ack(ws)
    wait_for(lambda: len(items(client, "/api/conversations", auth)) == 5)
    previews: list[str] = []
    joins: list[str | None] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/conversations", params=params, headers=auth).json()
        previews += [c["last_message_preview"] for c in page["items"]]
        joins.append(page["resume_from"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert previews == ["v4", "v3", "v2", "v1", "v0"]  # newest activity first, each once
    assert joins[0] is not None and joins[1:] == [None, None]  # where a socket joins: page one
    bad = client.get("/api/conversations", params={"status": "lost"}, headers=auth)
    assert error_code(bad) == "bad_request"


def test_a_socket_resuming_from_the_list_gets_what_the_list_could_not_show(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    """The list answers where an agent socket opened after it resumes (the inbox's first
    join): a conversation started after the list was read and before the socket joined is
    replayed, and what the list showed is not."""
    client, acme, _ = env
    auth = {"authorization": f"Bearer {acme.api_token}"}

    def visitor_says(text: str) -> str:
        visitor = visitor_token(client, acme)
        with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
            hello(ws, visitor["token"])
            ws.send_text(json.dumps({"type": "message.send", "client_id": "c", "text": text}))
            assert next_ack(ws)["type"] == "ack"
        return visitor["conversation_id"]

    listed = visitor_says("listed")
    page = wait_for(
        lambda: (
            (p := client.get("/api/conversations", headers=auth).json())["resume_from"]
            and [c["id"] for c in p["items"]] == [listed]
            and p
        )
    )
    missed = visitor_says("missed")  # after the list was read, before the socket joins
    with client.websocket_connect("/ws/agent") as agent:
        welcome = hello(agent, acme.api_token, resume_from=page["resume_from"])
        assert welcome["resumed"] is True and welcome["cursor"] == page["resume_from"]
        later = visitor_says("later")
        seen = [next_event(agent, "message.created")["data"]["message"] for _ in range(2)]
    assert [(m["conversation_id"], m["text"]) for m in seen] == [
        (missed, "missed"),
        (later, "later"),
    ]


def test_sessions_and_tokens_expire(settings: Settings) -> None:
    settings = settings.with_overrides(session_max_age_s=1, visitor_token_max_age_s=1)
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        login(client, acme)
        token = visitor_token(client, acme)["token"]
        assert client.get("/api/me").status_code == 200
        cookie = client.cookies["hub_session"]
        time.sleep(2.1)
        # The browser would drop it by itself; the server refuses it even when it is replayed.
        client.cookies.clear()
        expired = client.get("/api/me", headers={"cookie": f"hub_session={cookie}"})
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
            ws.send_text(json.dumps({"type": "hello", "token": token}))
            assert ws.receive_json()["code"] == "unauthenticated"
            assert closed_with(ws) == 4401


def test_resolve_assign_snooze_and_reopen(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, globex = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    visitor = visitor_token(client, acme)

    def say(ws: Any, client_id: str) -> None:
        ws.send_text(
            json.dumps({"type": "message.send", "client_id": client_id, "text": client_id})
        )
        next_ack(ws)

    def conversation() -> dict[str, Any]:
        return dict(
            client.get(f"/api/conversations/{visitor['conversation_id']}", headers=auth).json()
        )

    url = f"/api/conversations/{visitor['conversation_id']}"
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        say(ws, "first")
        wait_for(lambda: client.get(url, headers=auth).status_code == 200)

        mine = client.patch(
            url, json={"assignee_id": str(acme.admin_id), "status": "resolved"}, headers=auth
        )
        assert mine.status_code == 202
        wait_for(lambda: conversation()["status"] == "resolved")
        assert conversation()["assignee_id"] == str(acme.admin_id)
        listed = client.get("/api/conversations", params={"assignee": "me"}, headers=auth)
        unassigned = client.get("/api/conversations", params={"assignee": "none"}, headers=auth)
        assert [c["id"] for c in listed.json()["items"]] == [visitor["conversation_id"]]
        assert unassigned.json()["items"] == []

        say(ws, "again")  # the contact writes: a resolved conversation reopens
        wait_for(lambda: conversation()["status"] == "open")

        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        assert (
            client.patch(
                url, json={"status": "snoozed", "snoozed_until": later}, headers=auth
            ).status_code
            == 202
        )
        wait_for(lambda: conversation()["status"] == "snoozed")
        say(ws, "hello?")
        wait_for(lambda: conversation()["status"] == "open")

        assert client.patch(url, json={"assignee_id": None}, headers=auth).status_code == 202
        wait_for(lambda: conversation()["assignee_id"] is None)
        ws.send_text('{"type":"ping"}')
        frames = []
        while (frame := ws.receive_json())["type"] != "pong":
            frames.append(frame)
        assert not [f for f in frames if f.get("name") == "conversation.updated"]  # agents only

    past = client.patch(
        url, json={"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00+00:00"}, headers=auth
    )
    assert past.status_code == 400
    stranger = client.patch(url, json={"assignee_id": str(globex.admin_id)}, headers=auth)
    assert stranger.status_code == 400
    foreign = client.patch(
        url, json={"status": "resolved"}, headers={"authorization": f"Bearer {globex.api_token}"}
    )
    assert foreign.status_code == 404


def test_private_notes_reach_agents_only(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    visitor = visitor_token(client, acme)
    conversation_id = visitor["conversation_id"]
    with (
        client.websocket_connect("/ws/agent") as agent,
        client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
    ):
        hello(agent, acme.api_token)
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v", "text": "hi"}))
        next_ack(ws)
        agent.send_text(
            json.dumps(
                {
                    "type": "message.send",
                    "client_id": "n1",
                    "note": True,
                    "conversation_id": conversation_id,
                    "text": "VIP, be nice",
                }
            )
        )
        note = next_event(agent, "message.created")
        while note["data"]["message"].get("client_id") != "n1":
            note = next_event(agent, "message.created")
        assert note["data"]["message"]["note"] is True
        ws.send_text('{"type":"ping"}')
        seen = []
        while (frame := ws.receive_json())["type"] != "pong":
            seen.append(frame)
        assert "VIP" not in json.dumps(seen)
        # A visitor cannot write a note (it would only be a message the agents see as a note).
        ws.send_text(
            json.dumps({"type": "message.send", "client_id": "v2", "note": True, "text": "x"})
        )
        next_ack(ws)
    url = f"/api/conversations/{conversation_id}/messages"
    stored = wait_for(lambda: (found := items(client, url, auth)) and len(found) == 3 and found)
    assert [(m["text"], m["note"]) for m in stored] == [
        ("hi", False),
        ("VIP, be nice", True),
        ("x", False),
    ]
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"], resume_from=stored[0]["event_id"])  # a resume skips it too
        ws.send_text('{"type":"ping"}')
        replayed = []
        while (frame := ws.receive_json())["type"] != "pong":
            replayed.append(frame)
        assert "VIP" not in json.dumps(replayed) and len(replayed) == 1


def test_search_and_the_contact_panel_stay_in_the_workspace(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, globex = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        for client_id, text in (("a", "Where is order 100%_done?"), ("b", "thanks")):
            ws.send_text(json.dumps({"type": "message.send", "client_id": client_id, "text": text}))
            next_ack(ws)
    url = f"/api/conversations/{visitor['conversation_id']}"
    wait_for(lambda: len(items(client, url + "/messages", auth)) == 2)
    found = client.get("/api/search", params={"q": "ORDER 100%_"}, headers=auth).json()
    assert [m["text"] for m in found["messages"]] == ["Where is order 100%_done?"]
    assert (
        client.get("/api/search", params={"q": "0%x"}, headers=auth).json()["messages"] == []
    )  # % is literal
    other = client.get(
        "/api/search",
        params={"q": "order"},
        headers={"authorization": f"Bearer {globex.api_token}"},
    )
    assert other.json() == {"contacts": [], "messages": [], "next_cursor": None}

    contact_id = client.get(url, headers=auth).json()["contact"]["id"]
    panel = client.get(f"/api/contacts/{contact_id}", headers=auth).json()
    assert panel["identities"] == [
        {"channel_id": str(acme.channel_id), "platform_user_id": visitor["visitor_id"]}
    ]
    assert [c["id"] for c in panel["conversations"]] == [visitor["conversation_id"]]
    foreign = client.get(
        f"/api/contacts/{contact_id}", headers={"authorization": f"Bearer {globex.api_token}"}
    )
    assert foreign.status_code == 404


def test_unread_counts_follow_each_agents_read_position(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    visitor = visitor_token(client, acme)
    events = []
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        for i in range(3):
            ws.send_text(
                json.dumps({"type": "message.send", "client_id": f"u{i}", "text": f"u{i}"})
            )
            events.append(next_event(ws, "message.created")["id"])  # its ack came first

    def unread() -> int | None:
        listed = client.get("/api/conversations", headers=auth).json()["items"]
        return listed[0]["unread"] if listed else None

    wait_for(lambda: unread() == 3)
    with client.websocket_connect("/ws/agent") as agent:
        hello(agent, acme.api_token)
        read = {"type": "read", "conversation_id": visitor["conversation_id"], "up_to": events[1]}
        agent.send_text(json.dumps(read))
        wait_for(lambda: unread() == 1)
        agent.send_text(
            json.dumps(read | {"up_to": events[0]})
        )  # an older position changes nothing
        agent.send_text(json.dumps(read | {"up_to": events[2]}))
        wait_for(lambda: unread() == 0)


def test_labels_and_channel_filter(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, globex = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    visitor = visitor_token(client, acme)
    url = f"/api/conversations/{visitor['conversation_id']}"
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "l1", "text": "hi"}))
        next_ack(ws)
    wait_for(lambda: client.get(url, headers=auth).status_code == 200)
    with client.websocket_connect("/ws/agent") as agent:
        hello(agent, acme.api_token)
        patch = {"labels": ["VIP ", "billing", "vip"]}
        assert client.patch(url, json=patch, headers=auth).status_code == 202
        event = next_event(agent, "conversation.updated")
        assert event["data"]["changes"] == {"labels": ["billing", "vip"]}  # trimmed, lowered, set
    wait_for(lambda: client.get(url, headers=auth).json()["labels"] == ["billing", "vip"])

    def listed(**params: str) -> list[str]:
        return [c["id"] for c in items(client, "/api/conversations?" + _query(params), auth)]

    assert listed(label="VIP") == [visitor["conversation_id"]]
    assert listed(label="other") == []
    assert listed(channel_id=str(acme.channel_id)) == [visitor["conversation_id"]]
    assert listed(channel_id=str(globex.channel_id)) == []  # another workspace's channel
    assert items(client, "/api/conversations", auth)[0]["labels"] == ["billing", "vip"]

    assert client.patch(url, json={"labels": []}, headers=auth).status_code == 202
    wait_for(lambda: client.get(url, headers=auth).json()["labels"] == [])
    too_long = client.patch(url, json={"labels": ["x" * 51]}, headers=auth)
    assert too_long.status_code == 400 and error_code(too_long) == "bad_request"
    blank = client.patch(url, json={"labels": ["  "]}, headers=auth)
    assert blank.status_code == 400
    bad_channel = client.get("/api/conversations?channel_id=nope", headers=auth)
    assert bad_channel.status_code == 404


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_agent_presence_online_away_offline(env: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, _ = env
    auth = {"authorization": f"Bearer {acme.api_token}"}

    def state() -> str:
        found = {p["user_id"]: p["state"] for p in items(client, "/api/presence", auth)}
        return found[str(acme.admin_id)]

    assert state() == "offline"
    with client.websocket_connect("/ws/agent") as watcher:
        hello(watcher, acme.api_token)
        assert next_event(watcher, "presence")["data"]["state"] == "online"
        assert state() == "online"
        watcher.send_text('{"type":"presence","state":"away"}')
        event = next_event(watcher, "presence")
        assert event["data"] == {
            "user_id": str(acme.admin_id),
            "name": "acme admin",
            "state": "away",
        }
        assert state() == "away"
        watcher.send_text('{"type":"ping"}')  # a heartbeat keeps the choice, announces nothing
        frames = []
        while (frame := watcher.receive_json())["type"] != "pong":
            frames.append(frame)
        assert not [f for f in frames if f.get("name") == "presence"]
        assert state() == "away"
        bad = '{"type":"presence","state":"busy"}'
        watcher.send_text(bad)
        assert watcher.receive_json()["code"] == "bad_frame"
    wait_for(lambda: state() == "offline")

    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text('{"type":"presence","state":"online"}')
        assert ws.receive_json() == {
            "type": "error",
            "code": "forbidden",
            "message": "Only agents have a presence.",
        }
        ws.send_text('{"type":"ping"}')
        assert ws.receive_json()["type"] == "pong"  # the socket stays open


def test_conversation_shows_each_agents_read_position(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, _ = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "r1", "text": "hi"}))
        event_id = next_event(ws, "message.created")["id"]
    url = f"/api/conversations/{visitor['conversation_id']}"
    wait_for(lambda: client.get(url, headers=auth).status_code == 200)
    assert client.get(url, headers=auth).json()["reads"] == []
    with client.websocket_connect("/ws/agent") as agent:
        hello(agent, acme.api_token)
        read = {"type": "read", "conversation_id": visitor["conversation_id"], "up_to": event_id}
        agent.send_text(json.dumps(read))
        wait_for(lambda: client.get(url, headers=auth).json()["reads"])
    reads = client.get(url, headers=auth).json()["reads"]
    assert [(r["user_id"], r["up_to"]) for r in reads] == [(str(acme.admin_id), event_id)]
    assert reads[0]["up_to_at"]


def test_contacts_are_listed_newest_first_a_page_at_a_time_and_narrowed_by_q(
    env: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, globex = env
    auth = {"authorization": f"Bearer {acme.api_token}"}
    names = ["Ayşe Yılmaz", "Bora Kaya", "Ceren Ak"]
    for name in names:
        visitor = visitor_token(client, acme)
        profile = {
            "token": visitor["token"],
            "name": name,
            "email": f"{name[:4].lower()}@x.example",
        }
        answer = client.post("/api/widget/profile", json=profile, headers={"origin": ORIGIN})
        assert answer.status_code == 204
        time.sleep(0.01)  # distinct creation times
    other = visitor_token(client, globex)
    client.post(
        "/api/widget/profile",
        json={"token": other["token"], "name": "Ayşe Elsewhere"},
        headers={"origin": ORIGIN},
    )
    listed = wait_for(
        lambda: (
            (found := client.get("/api/contacts", headers=auth).json())["items"]
            and len(found["items"]) == 3
            and found
        )
    )
    assert [c["name"] for c in listed["items"]] == names[::-1] and listed["next_cursor"] is None
    first = client.get("/api/contacts", params={"limit": 2}, headers=auth).json()
    assert [c["name"] for c in first["items"]] == ["Ceren Ak", "Bora Kaya"]
    rest = client.get(
        "/api/contacts", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [c["name"] for c in rest["items"]] == ["Ayşe Yılmaz"] and rest["next_cursor"] is None
    narrowed = client.get("/api/contacts", params={"q": "ayşe"}, headers=auth).json()["items"]
    assert [c["name"] for c in narrowed] == ["Ayşe Yılmaz"]  # not globex's
    assert narrowed[0]["email"] == "ayşe@x.example"
    bad = client.get("/api/contacts", params={"cursor": "nope"}, headers=auth)
    assert bad.status_code == 400 and error_code(bad) == "bad_request"
