"""Business hours on every channel and the away auto-reply (hub/automation/worker.py): a contact who
writes while the channel is closed is answered once per closed period, made out to them; on
a platform channel the reply goes out through the send group to the fake platform. The web
chat widget's offline mode reads the same schedule."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.channels.hours import DAYS
from hub.settings import Settings
from hub.web.app import create_app
from tests.fakeplatform import TG, Account, FakePlatform, running_fake
from tests.helpers import ORIGIN, Tenant, backends, prepare
from tests.payloads import load
from tests.test_api import error_code, hello, next_ack, next_event, visitor_token, wait_for


@dataclass
class Env:
    client: TestClient
    tenant: Tenant
    fake: FakePlatform
    telegram: dict[str, Any]


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    bot_id = str(7_200_000_000 + uuid.uuid4().int % 100_000_000)  # Postgres is shared
    bot = Account(TG, bot_id, f"{bot_id}:AAHfake-away-test-token")
    with running_fake((bot,)) as fake:
        settings = settings.with_overrides(
            public_url="https://hub.example", telegram_api_url=fake.base_urls().telegram
        )
        [acme] = prepare(settings, "acme")
        app = create_app(settings, run_worker=True)
        with TestClient(app, base_url="https://hub.example") as client:
            client.headers["authorization"] = f"Bearer {acme.api_token}"
            bot = client.post(
                "/api/channels",
                json={"kind": "telegram", "name": "Bot", "bot_token": bot.token},
            )
            assert bot.status_code == 201, bot.text
            yield Env(client, acme, fake, bot.json())


def closed_now(auto_reply: str | None, timezone: str = "Europe/Istanbul") -> dict[str, Any]:
    """Hours open only 10:00-11:00 three days from now (local): closed at this moment."""
    day = DAYS[(datetime.now(UTC) + timedelta(days=3)).weekday()]
    hours: dict[str, Any] = {"timezone": timezone, "days": {day: [["10:00", "11:00"]]}}
    return hours | ({"auto_reply": auto_reply} if auto_reply else {})


ALWAYS_OPEN = {"timezone": "UTC", "days": {day: [["00:00", "24:00"]] for day in DAYS}}


def set_hours(env: Env, channel_id: object, hours: dict[str, Any] | None) -> dict[str, Any]:
    answer = env.client.patch(f"/api/channels/{channel_id}", json={"hours": hours})
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["settings"])


def history(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    answer = env.client.get(f"/api/conversations/{conversation_id}/messages")
    return list(answer.json()["items"]) if answer.status_code == 200 else []


def test_a_web_chat_visitor_gets_one_away_reply_per_closed_period(env: Env) -> None:
    client, acme = env.client, env.tenant
    stored = set_hours(
        env, acme.channel_id, closed_now("Hi {{contact.first_name | there}}! Back at 10.")
    )
    assert stored["hours"]["auto_reply"] == "Hi {{contact.first_name | there}}! Back at 10."
    # The widget's offline mode reads the same schedule.
    config = client.get(f"/api/widget/config?channel={acme.public_key}", headers={"origin": ORIGIN})
    assert config.json()["hours"]["open_now"] is False
    visitor = visitor_token(client, acme)
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        for n in range(3):
            ws.send_text(
                json.dumps({"type": "message.send", "client_id": f"c{n}", "text": "hello?"})
            )
            next_ack(ws)
        away = next_event(ws, "message.created")["data"]["message"]
        while away["direction"] != "out":
            away = next_event(ws, "message.created")["data"]["message"]
        assert away["text"] == "Hi there! Back at 10."
        assert away["sender"] == {"type": "system", "id": "hub"} and away["status"] == "sent"
    messages = wait_for(
        lambda: (found := history(env, visitor["conversation_id"])) and len(found) == 4 and found
    )
    assert [m["direction"] for m in messages].count("out") == 1  # three messages, one reply


def test_an_open_channel_or_one_without_a_reply_text_answers_nothing(env: Env) -> None:
    """Three web chats: open with a reply text, closed without one, and closed with one (the
    control). The automation group reads the stream in order, so once the control's reply is
    there, the other two were handled."""
    client, acme = env.client, env.tenant
    kinds = {"open": ALWAYS_OPEN | {"auto_reply": "We are closed."}, "quiet": closed_now(None)}
    kinds["control"] = closed_now("Closed.")
    conversations = {}
    for name, hours in kinds.items():
        made = client.post(
            "/api/channels", json={"kind": "webchat", "name": name, "allowed_origins": [ORIGIN]}
        )
        assert made.status_code == 201, made.text
        set_hours(env, made.json()["id"], hours)
        site = dataclasses.replace(acme, public_key=made.json()["public_key"])
        visitor = visitor_token(client, site)
        with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
            hello(ws, visitor["token"])
            ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": "hi"}))
            next_ack(ws)
        conversations[name] = visitor["conversation_id"]
    wait_for(lambda: len(history(env, conversations["control"])) == 2)
    assert len(history(env, conversations["open"])) == 1
    assert len(history(env, conversations["quiet"])) == 1


def test_a_telegram_contact_is_answered_through_the_platform_by_name(env: Env) -> None:
    channel = env.telegram
    stored = set_hours(env, channel["id"], closed_now("Hello {{contact.name}}, we open at 10."))
    assert stored["hours"]["timezone"] == "Europe/Istanbul"
    update = load("telegram/update_private_text_message.json")
    answer = env.client.post(
        f"/webhooks/telegram/{channel['id']}",
        content=json.dumps(update),
        headers={"x-telegram-bot-api-secret-token": channel["webhook"]["secret_token"]},
    )
    assert answer.json()["accepted"] == 1
    name = update["message"]["from"]["first_name"]
    [request] = wait_for(
        lambda: [r for r in env.fake.requests if r.path.endswith("/sendMessage")] or None
    )
    assert request.body["chat_id"] == update["message"]["chat"]["id"]
    assert (
        request.body["text"].startswith(f"Hello {name}")
        and "we open at 10." in request.body["text"]
    )
    # The send group may send before the persist group has stored the conversation.
    [listed] = wait_for(lambda: env.client.get("/api/conversations").json()["items"])
    conversation_id = listed["id"]
    [reply] = wait_for(
        lambda: (
            [
                m
                for m in history(env, conversation_id)
                if m["direction"] == "out" and m["status"] == "sent"
            ]
            or None
        )
    )
    assert reply["sender"]["type"] == "system"


def test_hours_on_any_channel_are_checked_and_can_be_removed(env: Env) -> None:
    channel_id = env.telegram["id"]
    bad = env.client.patch(
        f"/api/channels/{channel_id}", json={"hours": closed_now("Hi {{contact.nmae}}")}
    )
    assert bad.status_code == 400 and error_code(bad) == "unknown_placeholder"
    zone = env.client.patch(
        f"/api/channels/{channel_id}", json={"hours": closed_now("x", "Mars/Base")}
    )
    assert zone.status_code == 400 and error_code(zone) == "invalid_timezone"
    # Widget looks stay web chat's own.
    look = env.client.patch(f"/api/channels/{channel_id}", json={"settings": {"title": "Hi"}})
    assert look.status_code == 400 and error_code(look) == "not_webchat"
    assert "hours" in set_hours(env, channel_id, closed_now("Closed."))
    assert "hours" not in set_hours(env, channel_id, None)  # null: always open
    audit = env.client.get("/api/audit", params={"action": "channel.updated"}).json()["items"]
    assert audit[0]["detail"] == {"fields": ["settings.hours"]}
