"""The socket pump between `hello` and `welcome` (docs/protocol.md, "Connecting"): a frame the
client sends before its welcome is refused with 4400 even while the token check is still under
way; a frame sent after the welcome is handled, also while missed events are still being
replayed. In-process (Starlette's test client): no network sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hub.accounts.auth import VisitorClaims
from hub.web.app import create_app
from tests.conftest import make_settings
from tests.helpers import ORIGIN, Tenant, prepare


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Tenant]]:
    settings = make_settings(tmp_path)
    (tenant,) = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, tenant


def slowed(client: TestClient) -> None:
    """The visitor's token check takes 0.5 s, as when the database is slow to answer."""
    webchat = client.app.state.services.webchat  # type: ignore[attr-defined]
    check: Callable[..., Awaitable[VisitorClaims]] = webchat.authenticate

    async def slow(*args: Any) -> VisitorClaims:
        await asyncio.sleep(0.5)
        return await check(*args)

    webchat.authenticate = slow


def token_of(client: TestClient, tenant: Tenant) -> str:
    answer = client.post(
        "/api/widget/token", json={"channel": tenant.public_key}, headers={"origin": ORIGIN}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_a_ping_before_welcome_is_refused_with_4400(app: tuple[TestClient, Tenant]) -> None:
    client, tenant = app
    token = token_of(client, tenant)
    slowed(client)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token}))
        ws.send_text(json.dumps({"type": "ping"}))
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == "bad_frame", frame
        assert "welcome" in frame["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4400


def test_a_ping_after_welcome_is_answered(app: tuple[TestClient, Tenant]) -> None:
    client, tenant = app
    token = token_of(client, tenant)
    slowed(client)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token}))
        assert ws.receive_json()["type"] == "welcome"
        ws.send_text(json.dumps({"type": "ping"}))
        assert ws.receive_json() == {"type": "pong"}
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": "Hi"}))
        frames = [ws.receive_json() for _ in range(2)]
        assert {f["type"] for f in frames} == {"ack", "event"}, frames


def test_a_send_right_after_a_resume_welcome_waits_for_the_replay(
    app: tuple[TestClient, Tenant],
) -> None:
    """The client resends its pending messages as soon as it is welcomed; the hub is then
    still replaying what was missed, and handles the send after it, on the same socket."""
    client, tenant = app
    token = token_of(client, tenant)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token}))
        cursor = ws.receive_json()["cursor"]
        for i in range(3):
            ws.send_text(json.dumps({"type": "message.send", "client_id": f"m{i}", "text": "x"}))
            assert {ws.receive_json()["type"] for _ in range(2)} == {"ack", "event"}
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token, "resume_from": cursor}))
        assert ws.receive_json() == {"type": "welcome", "cursor": cursor, "resumed": True}
        ws.send_text(json.dumps({"type": "message.send", "client_id": "m0", "text": "x"}))
        frames = [ws.receive_json() for _ in range(4)]
        assert [f["type"] for f in frames[:3]] == ["event"] * 3, frames
        assert frames[3]["type"] == "ack" and frames[3]["duplicate"] is True, frames
