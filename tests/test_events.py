"""Every event the workers publish fits its model in `schemas.events` and the exported JSON
Schema: through the app and its worker, on SQLite with the in-process bus."""

from __future__ import annotations

import json
import uuid

from starlette.testclient import TestClient

from adapters.base import ChannelContext, NewMessage
from adapters.meta import webhook as meta
from adapters.meta import whatsapp
from hub.bus.base import Event
from hub.settings import Settings
from hub.web.app import create_app
from schemas.message import ChannelKind
from tests.helpers import ORIGIN, prepare
from tests.payloads import load
from tests.test_api import hello, next_ack, visitor_token, wait_for
from tests.test_schemas import fits


def test_every_event_the_workers_publish_fits_its_model(settings: Settings) -> None:
    """Through the app and its worker: routing's assignment, an automation rule's change and
    note, the send group's failures (a reply and a reaction whose channel is gone), an
    erasure and a disconnected channel."""
    [acme] = prepare(settings, "acme")
    app = create_app(settings, run_worker=True)
    with TestClient(app, base_url="https://hub.example") as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        services = app.state.services
        workspace = str(acme.workspace_id)

        def published() -> list[Event]:
            return list(services.bus._streams[workspace].entries)

        def seen(name: str, text: str) -> bool:
            return any(e.name == name and text in e.data for e in published())

        assert client.post("/api/teams", json={"name": "Billing"}).status_code == 201
        routing = {"routing": {"assignment": "round_robin"}}
        assert client.patch(f"/api/channels/{acme.channel_id}", json=routing).status_code == 200
        rule = {
            "name": "VIP",
            "trigger": "message.received",
            "actions": [{"type": "add_label", "label": "vip"}],
        }
        assert client.post("/api/automation-rules", json=rule).status_code == 201
        with client.websocket_connect("/ws/agent") as agent:
            hello(agent, acme.api_token)  # online: the new conversation is given to this agent
            visitor = visitor_token(client, acme)
            with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
                hello(ws, visitor["token"])
                send = {"type": "message.send", "client_id": "c1", "text": "Hello"}
                ws.send_text(json.dumps(send))
                assert next_ack(ws)["type"] == "ack"
            wait_for(lambda: seen("conversation.updated", '"routed"'), 20)
            wait_for(lambda: seen("conversation.updated", '"rule"'), 20)

        # A WhatsApp conversation whose channel is not connected: both sends fail.
        [piece] = meta.split(load("whatsapp/message_text.json")).pieces
        ctx = ChannelContext(acme.workspace_id, uuid.uuid4(), ChannelKind.WHATSAPP, "NUMBER")
        [first] = whatsapp.parse(piece.entry, ctx).events
        assert isinstance(first, NewMessage)
        client.portal.call(services.ingress.publish_parsed, ctx, first)  # type: ignore[union-attr]
        url = f"/api/conversations/{first.message.conversation_id}"
        reply = {"client_id": "r1", "text": "Hi"}
        assert client.post(f"{url}/messages", json=reply).status_code == 202
        react = {"client_id": "r2", "platform_message_id": "wamid.1", "emoji": "👍"}
        assert client.post(f"{url}/reactions", json=react).status_code == 202
        wait_for(lambda: seen("message.updated", '"failed"'), 20)
        wait_for(lambda: seen("message.updated", '"unreact"'), 20)

        before = published()  # the erasure takes the person's events off the stream
        contact = client.get(f"/api/conversations/{visitor['conversation_id']}").json()
        erase = {"contact_id": contact["contact_id"]}
        assert client.post("/api/deletions", json=erase).status_code == 202
        wait_for(lambda: seen("contact.deleted", contact["contact_id"]), 20)
        assert client.delete(f"/api/channels/{acme.channel_id}").status_code in (200, 204)
        wait_for(lambda: seen("channel.updated", str(acme.channel_id)), 20)

        stream = {e.id: e for e in [*before, *published()]}.values()
        for event in stream:
            fits(event)
        assert {e.name for e in stream} >= {
            "message.created",
            "message.updated",
            "conversation.updated",
            "presence",
            "contact.deleted",
            "channel.updated",
            "routing.updated",
        }
