"""Protocol versions through the app's real sockets: a v1 socket gets exactly the frames it
always had, a v2 socket the lean ones, side by side in one workspace (docs/protocol.md)."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from schemas import lean
from tests.helpers import ORIGIN, prepare
from tests.test_api import next_ack, visitor_token

TEXT_170 = ("Kargom nerede? Sipariş numarası 48213, üç gündür bekliyorum. " * 3)[:170]


def open_socket(ws: Any, token: str, version: int | None) -> dict[str, Any]:
    hello: dict[str, Any] = {"type": "hello", "token": token}
    if version is not None:
        hello["v"] = version
    ws.send_text(json.dumps(hello))
    welcome = ws.receive_json()
    assert welcome["type"] == "welcome", welcome
    return dict(welcome)


def next_created(ws: Any) -> str:
    while True:
        text = ws.receive_text()
        if '"name":"message.created"' in text:
            return str(text)


def test_v1_and_v2_sockets_side_by_side_get_their_own_frames(settings: Settings) -> None:
    [acme] = prepare(settings, "acme")
    app = create_app(settings)
    with TestClient(app, base_url="https://hub.example") as client:
        bus = app.state.services.bus
        workspace = str(acme.workspace_id)
        visitor = visitor_token(client, acme)
        with (
            client.websocket_connect("/ws/agent") as old,
            client.websocket_connect("/ws/agent") as new,
            client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws,
        ):
            assert "v" not in open_socket(old, acme.api_token, None)  # v1's welcome, unchanged
            assert open_socket(new, acme.api_token, 2)["workspace_id"] == workspace
            assert open_socket(ws, visitor["token"], 2)["v"] == 2
            send = {"type": "message.send", "client_id": "c-1", "text": TEXT_170}
            ws.send_text(json.dumps(send))
            assert next_ack(ws)["type"] == "ack"
            v1, v2, mine = next_created(old), next_created(new), next_created(ws)
        [event] = [e for e in bus._streams[workspace].entries if e.name == "message.created"]
        assert v1 == event.frame(1)  # exactly today's frame: v1's data, as published
        assert json.loads(v1)["data"] == json.loads(event.data)
        assert v2 == mine == event.frame(2)
        assert len(v2.encode()) <= 650 < len(v1.encode())
        assert lean.rebuild(json.loads(v2)["data"], workspace) == json.loads(event.data)


def test_an_unknown_version_closes_with_4400_and_unsupported_version(settings: Settings) -> None:
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url="https://hub.example") as client:
        with client.websocket_connect("/ws/agent") as ws:
            ws.send_text(json.dumps({"type": "hello", "token": acme.api_token, "v": 3}))
            error = ws.receive_json()
            assert error["type"] == "error" and error["code"] == "unsupported_version"
            closed = ws.receive()
            assert closed["type"] == "websocket.close" and closed["code"] == 4400
