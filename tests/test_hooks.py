"""Outbound webhooks (hub/hooks/): a receiver on loopback checks every request's signature;
failures are retried with backoff, then dead, and a replay sends a dead one again. Through the
app and its worker, on SQLite and on Postgres (with Redis)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import ORIGIN, Tenant, backends, prepare
from tests.receiver import Receiver, running_receiver
from tests.test_api import error_code, hello, next_ack, visitor_token, wait_for


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as made:
        yield made


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = backends(request, settings).with_overrides(
        hooks_allow_private=True, hooks_retry_s=0.1, hooks_backoff=(0.2,) * 5
    )
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        yield client, acme


def visitor_says(client: TestClient, tenant: Tenant, text: str) -> str:
    visitor = visitor_token(client, tenant)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": text}))
        next_ack(ws)
    return str(visitor["conversation_id"])


def created(receiver: Receiver) -> list[dict[str, Any]]:
    return [r for r in receiver.requests if r["headers"]["x-hub-event"] == "message.created"]


def test_events_arrive_signed_and_the_body_is_dropped_once_delivered(
    env: tuple[TestClient, Tenant], receiver: Receiver
) -> None:
    client, acme = env
    made = client.post("/api/hooks", json={"url": receiver.url, "events": ["message.created"]})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert (
        secret.startswith("whsec_") and "secret" not in client.get("/api/hooks").json()["items"][0]
    )
    conversation_id = visitor_says(client, acme, "Is my order on its way?")
    [request] = wait_for(lambda: created(receiver))
    headers, body = request["headers"], request["body"]
    expected = hmac.new(
        secret.encode(), f"{headers['x-hub-timestamp']}.{body}".encode(), hashlib.sha256
    ).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert abs(int(headers["x-hub-timestamp"]) - time.time()) < 60
    sent = json.loads(body)
    assert sent["event"] == "message.created" and sent["workspace_id"] == str(acme.workspace_id)
    assert sent["data"]["message"]["text"] == "Is my order on its way?"
    assert sent["data"]["message"]["conversation_id"] == conversation_id
    [delivery] = wait_for(
        lambda: client.get("/api/hooks/deliveries", params={"status": "delivered"}).json()["items"]
    )
    assert delivery["id"] == headers["x-hub-delivery"] and delivery["attempts"] == 1
    # Only the events asked for: the agents' read positions and the like are not sent.
    assert {r["headers"]["x-hub-event"] for r in receiver.requests} == {"message.created"}


def test_failures_are_retried_with_the_same_delivery_id_until_they_succeed(
    env: tuple[TestClient, Tenant], receiver: Receiver
) -> None:
    client, acme = env
    assert client.post("/api/hooks", json={"url": receiver.url}).status_code == 201
    receiver.answers = [500, 503]
    visitor_says(client, acme, "hello")
    wait_for(lambda: len(created(receiver)) == 3, timeout_s=10)
    ids = {r["headers"]["x-hub-delivery"] for r in created(receiver)}
    assert len(ids) == 1  # the receiver can de-duplicate by it
    [delivery] = wait_for(
        lambda: client.get("/api/hooks/deliveries", params={"status": "delivered"}).json()["items"]
    )
    assert delivery["attempts"] == 3 and delivery["last_status"] == 200


def test_a_delivery_that_keeps_failing_dies_and_a_replay_sends_it_again(
    env: tuple[TestClient, Tenant], receiver: Receiver
) -> None:
    client, acme = env
    client.post("/api/hooks", json={"url": receiver.url, "events": ["message.created"]})
    receiver.otherwise = 500
    visitor_says(client, acme, "anyone?")
    [dead] = wait_for(
        lambda: client.get("/api/hooks/deliveries", params={"status": "dead"}).json()["items"],
        timeout_s=15,
    )
    assert dead["attempts"] == 6 and dead["last_status"] == 500 and dead["last_error"] == "HTTP 500"
    assert len(created(receiver)) == 6
    receiver.otherwise = 200
    replayed = client.post(f"/api/hooks/deliveries/{dead['id']}/replay")
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    wait_for(lambda: len(created(receiver)) == 7)
    wait_for(
        lambda: client.get("/api/hooks/deliveries", params={"status": "delivered"}).json()["items"]
    )
    again = client.post(f"/api/hooks/deliveries/{dead['id']}/replay")
    assert again.status_code == 404  # delivered now, not dead
    actions = [
        r["action"] for r in client.get("/api/audit", params={"action": "hook."}).json()["items"]
    ]
    assert actions == ["hook.replayed", "hook.created"]


def test_urls_must_be_public_https_unless_allowed(settings: Settings, receiver: Receiver) -> None:
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        for url in (
            receiver.url,
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://[::1]/hook",
            "https://localhost/hook",  # a name that resolves to loopback
            "https://0x7f.1/hook",
            "https://2130706433/hook",
            "https://0177.0.0.1/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[fe80::1%25eth0]/hook",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
        ):
            answer = client.post("/api/hooks", json={"url": url})
            assert answer.status_code == 400 and error_code(answer) == "invalid_hook_url", url
        unknown = client.post("/api/hooks", json={"url": "https://example.com/x", "events": ["x"]})
        assert unknown.status_code == 400
        fine = client.post("/api/hooks", json={"url": "https://example.com/hook"})
        assert fine.status_code == 201
        assert client.delete(f"/api/hooks/{fine.json()['id']}").status_code == 204
        assert client.get("/api/hooks").json()["items"] == []


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(
    env: tuple[TestClient, Tenant], receiver: Receiver
) -> None:
    client, acme = env
    with running_receiver() as elsewhere:
        receiver.otherwise, receiver.location = 302, elsewhere.url
        client.post("/api/hooks", json={"url": receiver.url, "events": ["message.created"]})
        visitor_says(client, acme, "where does this go?")
        [failed] = wait_for(
            lambda: [
                d for d in client.get("/api/hooks/deliveries").json()["items"] if d["attempts"] >= 2
            ]
        )
        assert failed["last_status"] == 302
        assert failed["last_error"] == "HTTP 302: redirects are not followed"
        assert elsewhere.requests == []
