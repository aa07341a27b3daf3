"""Read state survives a reload: through the app and its worker, what a web-chat visitor has
read is stored on our replies (the inbox's REST answer), and what an agent has read is in the
widget's history answer. On SQLite with the in-process bus, and on Postgres with Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.conftest import REDIS_URL
from tests.helpers import ORIGIN, Tenant, prepare
from tests.test_api import hello, next_ack, next_event, visitor_token, wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1],
            redis_url=REDIS_URL,
            redis_prefix=request.getfixturevalue("redis_prefix"),
        )
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True), base_url="https://hub.example") as c:
        c.headers["authorization"] = f"Bearer {acme.api_token}"
        yield c, acme


def messages(client: TestClient, conversation_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/conversations/{conversation_id}/messages")
    return list(response.json()["items"]) if response.status_code == 200 else []


def test_a_visitors_read_and_an_agents_read_are_kept(app: tuple[TestClient, Tenant]) -> None:
    client, acme = app
    visitor = visitor_token(client, acme)
    conversation = visitor["conversation_id"]
    with (
        client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
        client.websocket_connect("/ws/agent") as agent,
    ):
        hello(ws, visitor["token"])
        hello(agent, acme.api_token)
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v1", "text": "Hello"}))
        assert next_ack(ws)["type"] == "ack"
        asked = next_event(agent, "message.created")
        wait_for(lambda: messages(client, conversation), 20)
        reply = {"client_id": "a1", "text": "Hi, how can I help?"}
        assert (
            client.post(f"/api/conversations/{conversation}/messages", json=reply).status_code
            == 202
        )
        answered = next_event(ws, "message.created")
        while answered["data"]["message"]["direction"] != "out":  # its own came first
            answered = next_event(ws, "message.created")
        wait_for(lambda: len(messages(client, conversation)) == 2, 20)
        [ours] = [m for m in messages(client, conversation) if m["direction"] == "out"]
        assert ours["status"] == "sent"

        # The visitor saw the reply: stored as read, and the inbox told.
        ws.send_text(json.dumps({"type": "read", "up_to": answered["id"]}))
        told = next_event(agent, "message.updated")
        assert told["data"]["changes"] == {"status": "read"} and told["data"]["stored"]
        assert told["data"]["message_id"] == ours["id"]
        # The agent read the visitor's message.
        read = {"type": "read", "conversation_id": conversation, "up_to": asked["id"]}
        agent.send_text(json.dumps(read))
        next_event(ws, "conversation.updated")

    # A reload: the inbox's REST answer and the widget's history.
    def read_by_visitor() -> bool:
        return [m["status"] for m in messages(client, conversation)] == ["received", "read"]

    wait_for(read_by_visitor, 20)

    def agent_read_up_to() -> Any:
        history = client.post(
            "/api/widget/history", json={"token": visitor["token"]}, headers={"origin": ORIGIN}
        )
        return history.json().get("agent_read_up_to")

    assert wait_for(agent_read_up_to, 20) == asked["id"]
