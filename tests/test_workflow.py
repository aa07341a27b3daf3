"""The inbox's workflow routes through the app and its worker: the filters' counts, one action
on many conversations (per-id results, a stranger's id refused, the limit), and an anonymous
visitor found by the name the inbox shows them. On SQLite with the in-process bus, and on
Postgres with Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.conftest import REDIS_URL
from tests.helpers import ORIGIN, Tenant, prepare
from tests.test_api import hello, next_ack, visitor_token, wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def app(
    request: pytest.FixtureRequest, settings: Settings
) -> Iterator[tuple[TestClient, Tenant, Tenant]]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1],
            redis_url=REDIS_URL,
            redis_prefix=request.getfixturevalue("redis_prefix"),
        )
    acme, globex = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings, run_worker=True), base_url="https://hub.example") as c:
        c.headers["authorization"] = f"Bearer {acme.api_token}"
        yield c, acme, globex


def start_conversation(client: TestClient, tenant: Tenant) -> str:
    visitor = visitor_token(client, tenant)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v1", "text": "Hello"}))
        assert next_ack(ws)["type"] == "ack"
    return visitor["conversation_id"]


def listed(client: TestClient, **query: str) -> dict[str, dict[str, Any]]:
    response = client.get("/api/conversations", params={"limit": "100", **query})
    return {c["id"]: c for c in response.json()["items"]}


def counts(client: TestClient, **query: str) -> dict[str, Any]:
    response = client.get("/api/conversations/counts", params=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_counts_and_bulk_actions(app: tuple[TestClient, Tenant, Tenant]) -> None:
    client, acme, globex = app
    ids = [start_conversation(client, acme) for _ in range(3)]
    theirs = start_conversation(client, globex)
    wait_for(lambda: len(listed(client)) == 3, 20)
    assert counts(client) == {
        "status": {"open": 3, "pending": 0, "snoozed": 0, "resolved": 0},
        "assignee": {"me": 0, "none": 3, "any": 3},
    }

    # Pending on two, with another workspace's conversation and an unknown one among them.
    stranger = str(uuid.uuid4())
    body = {"ids": [ids[0], theirs, ids[1], stranger], "action": "status", "status": "pending"}
    response = client.post("/api/conversations/bulk", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["applied"] == 2
    assert [(r["id"], r["ok"], r.get("code")) for r in result["results"]] == [
        (ids[0], True, None),
        (theirs, False, "not_found"),
        (ids[1], True, None),
        (stranger, False, "not_found"),
    ]
    wait_for(lambda: counts(client)["status"]["pending"] == 2, 20)
    assert counts(client, status="pending")["assignee"] == {"me": 0, "none": 2, "any": 2}

    # Assign to me, label and set a priority: each applied and stored per conversation.
    for action in (
        {"action": "assign", "assignee_id": str(acme.admin_id)},
        {"action": "label", "label": "vip"},
        {"action": "priority", "priority": "urgent"},
    ):
        response = client.post("/api/conversations/bulk", json={"ids": ids[1:], **action})
        assert response.json()["applied"] == 2, response.text

    def changed() -> bool:
        rows = listed(client)
        return all(
            rows[i]["assignee_id"] == str(acme.admin_id)
            and rows[i]["labels"] == ["vip"]
            and rows[i]["priority"] == "urgent"
            for i in ids[1:]
        )

    wait_for(changed, 20)
    assert listed(client)[ids[0]]["assignee_id"] is None
    assert counts(client, assignee="me")["status"] == {
        "open": 1,
        "pending": 1,
        "snoozed": 0,
        "resolved": 0,
    }
    assert counts(client)["assignee"] == {"me": 2, "none": 1, "any": 3}
    # The other workspace's counts are its own.
    client.headers["authorization"] = f"Bearer {globex.api_token}"
    assert counts(client)["assignee"]["any"] == 1


def test_bulk_refuses_bad_input(app: tuple[TestClient, Tenant, Tenant]) -> None:
    client, _, _ = app
    one = str(uuid.uuid4())
    cases = [
        {"ids": [str(uuid.uuid4()) for _ in range(101)], "action": "status", "status": "open"},
        {"ids": [], "action": "status", "status": "open"},
        {"ids": [one], "action": "delete"},
        {"ids": [one], "action": "status"},
        {"ids": [one], "action": "label"},
        {"ids": [one], "action": "assign"},
        {"ids": [one], "action": "priority"},
        {"ids": [one], "action": "assign", "assignee_id": str(uuid.uuid4())},
        {"ids": ["nope"], "action": "priority", "priority": "high"},
    ]
    for body in cases:
        response = client.post("/api/conversations/bulk", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "bad_request"
    for query in ({"status": "closed"}, {"assignee": "someone"}):
        response = client.get("/api/conversations/counts", params=query)
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


def test_an_anonymous_visitor_is_found_by_the_name_the_inbox_shows(
    app: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, acme, globex = app
    conversation = start_conversation(client, acme)
    start_conversation(client, globex)
    row = wait_for(lambda: listed(client).get(conversation), 20)
    contact_id = row["contact"]["id"]
    assert row["contact"]["name"] is None and row["contact"]["username"] is None
    shown = contact_id[:6]  # the inbox shows "Visitor 1a2b3c" / "Ziyaretçi 1a2b3c"

    def found(q: str) -> list[str]:
        response = client.get("/api/search", params={"q": q})
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["contacts"]]

    for q in (f"Visitor {shown}", f"ziyaretçi {shown.upper()}", shown, "Visitor", "ZİYARETÇİ"):
        assert found(q) == [contact_id], q
    assert found(f"Visitor {'0' if shown[0] != '0' else '1'}{shown[1:]}") == []
    assert found("Visitor zz") == []
