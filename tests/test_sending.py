"""Agents' replies go out through the send group to a fake platform on loopback, which checks
each request against the documented shape; the outcome comes back as message.updated."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from hub.bus import Event
from hub.settings import Settings
from hub.web.app import create_app
from tests.fakeplatform import MESSENGER, TELEGRAM, WHATSAPP, FakePlatform, running_fake
from tests.helpers import Tenant, prepare
from tests.payloads import load

PSID = "1412611362105802"  # the sender in messenger/webhook_text_full.json


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant
    settings: Settings
    channels: dict[str, dict[str, Any]]

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    with running_fake() as fake:
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret="hosted-secret-for-tests",
            public_url="https://hub.example",
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            telegram_api_url=urls.telegram,
        )
        [tenant] = prepare(settings, "acme")
        app = create_app(settings, run_worker=True)
        with TestClient(app, base_url="https://hub.example") as client:
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            channels = {}
            for name, body in {
                "messenger": {
                    "kind": "messenger",
                    "name": "Page",
                    "account_id": MESSENGER.account_id,
                    "access_token": MESSENGER.token,
                },
                "whatsapp": {
                    "kind": "whatsapp",
                    "name": "WA",
                    "account_id": WHATSAPP.account_id,
                    "access_token": WHATSAPP.token,
                },
                "telegram": {"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token},
            }.items():
                response = client.post("/api/channels", json=body, headers=auth)
                assert response.status_code == 201, response.text
                channels[name] = response.json()
            yield Env(client, fake, tenant, settings, channels)


def deliver_meta(env: Env, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    digest = hmac.new(b"hosted-secret-for-tests", data, hashlib.sha256).hexdigest()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] >= 1, answer.text


def messenger_conversation(env: Env, age_s: float = 60) -> str:
    """A conversation whose person wrote `age_s` seconds ago (the recording is from 2017)."""
    body = load("messenger/webhook_text_full.json")
    entry = body["entry"][0]
    entry["id"] = entry["messaging"][0]["recipient"]["id"] = MESSENGER.account_id
    entry["time"] = entry["messaging"][0]["timestamp"] = int((time.time() - age_s) * 1000)
    deliver_meta(env, body)
    return str(
        wait(
            lambda: (
                env.client.get("/api/conversations", headers=env.auth).json()["items"] or [None]
            )[0]
        )["id"]
    )


def whatsapp_body(age_s: float) -> dict[str, Any]:
    body = load("whatsapp/message_text.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    value["messages"][0]["timestamp"] = str(int(time.time() - age_s))
    return dict(body)


def first_conversation(env: Env) -> dict[str, Any]:
    items = lambda: env.client.get("/api/conversations", headers=env.auth).json()["items"]  # noqa: E731
    return dict(wait(lambda: (items() or [None])[0]))


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def reply(env: Env, conversation_id: str, client_id: str, text: str) -> str:
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": client_id, "text": text},
        headers=env.auth,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["message_id"])


def stored(env: Env, conversation_id: str, message_id: str, status: str) -> dict[str, Any]:
    def probe() -> Any:
        items = env.client.get(
            f"/api/conversations/{conversation_id}/messages", headers=env.auth
        ).json()["items"]
        found = [m for m in items if m["id"] == message_id and m["status"] == status]
        return found[0] if found else None

    return dict(wait(probe))


def test_a_messenger_reply_is_sent_once_and_becomes_sent(env: Env) -> None:
    conversation_id = messenger_conversation(env)
    env.fake.fail_next("/messages", 500, {"error": {"message": "An unknown error", "code": 2}})
    message_id = reply(env, conversation_id, "r1", "Thanks, on its way!")
    message = stored(env, conversation_id, message_id, "sent")
    sent = [r for r in env.fake.requests if r.path.endswith(f"/{MESSENGER.account_id}/messages")]
    accepted = [r for r in sent if r.answer and "message_id" in r.answer]
    assert len(accepted) == 1  # the 500 was retried; the message went out once
    assert accepted[0].body["recipient"] == {"id": PSID}
    assert accepted[0].body["message"] == {"text": "Thanks, on its way!"}
    assert accepted[0].headers["authorization"] == f"Bearer {MESSENGER.token}"
    assert message["platform_message_id"] == accepted[0].answer["message_id"]
    assert not env.fake.rejected


def test_an_expired_token_fails_the_send_and_asks_for_a_reconnect(env: Env) -> None:
    conversation_id = messenger_conversation(env)
    env.fake.fail_next(
        "/messages",
        400,
        {
            "error": {
                "message": "Error validating access token: Session has expired",
                "type": "OAuthException",
                "code": 190,
            }
        },
    )
    message_id = reply(env, conversation_id, "r2", "Hello?")
    failed = stored(env, conversation_id, message_id, "failed")
    assert failed["error"]["code"] == "needs_reconnect" and "expired" in failed["error"]["message"]
    channels = env.client.get("/api/channels", headers=env.auth).json()["items"]
    assert {c["kind"]: c["status"] for c in channels}["messenger"] == "needs_reconnect"


def test_whatsapp_outside_the_window_fails_with_the_platform_reason(env: Env) -> None:
    body = whatsapp_body(age_s=60)
    deliver_meta(env, body)
    conversation_id = wait(
        lambda: (env.client.get("/api/conversations", headers=env.auth).json()["items"] or [None])[
            0
        ]
    )["id"]
    env.fake.fail_next(
        "/messages",
        400,
        {
            "error": {
                "message": "Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "Message failed to send because more than 24 hours have passed "
                    "since the customer last replied to this number.",
                },
            }
        },
    )
    message_id = reply(env, conversation_id, "w1", "Are you still there?")
    failed = stored(env, conversation_id, message_id, "failed")
    assert failed["error"]["code"] == "131047" and "24 hours" in failed["error"]["message"]


def test_a_telegram_reply_goes_to_the_chat(env: Env) -> None:
    channel = env.channels["telegram"]
    update = load("telegram/update_private_text_message.json")
    answer = env.client.post(
        f"/webhooks/telegram/{channel['id']}",
        content=json.dumps(update),
        headers={"x-telegram-bot-api-secret-token": channel["webhook"]["secret_token"]},
    )
    assert answer.json()["accepted"] == 1
    conversation_id = wait(
        lambda: (env.client.get("/api/conversations", headers=env.auth).json()["items"] or [None])[
            0
        ]
    )["id"]
    message_id = reply(env, conversation_id, "t1", "Merhaba!")
    message = stored(env, conversation_id, message_id, "sent")
    [request] = [r for r in env.fake.requests if r.path.endswith("/sendMessage")]
    assert request.body["chat_id"] == 218485655 and request.body["text"] == "Merhaba!"
    assert message["platform_message_id"].startswith("218485655:")


def test_a_claimed_send_is_never_performed_again(env: Env) -> None:
    conversation_id = messenger_conversation(env)
    message_id = reply(env, conversation_id, "r3", "Only once")
    stored(env, conversation_id, message_id, "sent")
    services = env.client.app.state.services  # type: ignore[attr-defined]
    workspace = str(env.tenant.workspace_id)
    events = env.client.portal.call(services.bus.read, workspace, "0-0", 1000)  # type: ignore[union-attr]
    [created] = [e for e in events if e.name == "message.created" and message_id in e.data]
    before = len(env.fake.requests)

    async def redeliver(event: Event) -> None:
        async with httpx.AsyncClient() as http:
            await services.sender(http).handle(workspace, [copy.copy(event)], True)

    env.client.portal.call(redeliver, created)  # as if another worker claimed it after a crash
    assert len(env.fake.requests) == before


def test_past_24_hours_messenger_replies_carry_the_human_agent_tag(env: Env) -> None:
    conversation_id = messenger_conversation(env, age_s=2 * 86400)
    window = first_conversation(env)["window"]
    assert window["open"] is True and window["human_agent"] is True
    message_id = reply(env, conversation_id, "h1", "Sorry for the wait!")
    stored(env, conversation_id, message_id, "sent")
    [request] = [r for r in env.fake.requests if r.path.endswith("/messages")]
    assert request.body["messaging_type"] == "MESSAGE_TAG" and request.body["tag"] == "HUMAN_AGENT"


def test_past_7_days_messenger_refuses_before_calling_the_platform(env: Env) -> None:
    conversation_id = messenger_conversation(env, age_s=8 * 86400)
    assert first_conversation(env)["window"]["open"] is False
    message_id = reply(env, conversation_id, "h2", "Hello again")
    failed = stored(env, conversation_id, message_id, "failed")
    assert failed["error"]["code"] == "window_closed"
    assert not [r for r in env.fake.requests if r.path.endswith("/messages")]


def test_whatsapp_past_24_hours_is_closed(env: Env) -> None:
    deliver_meta(env, whatsapp_body(age_s=25 * 3600))
    conversation = first_conversation(env)
    assert (
        conversation["window"]["open"] is False and conversation["window"]["human_agent"] is False
    )
    message_id = reply(env, conversation["id"], "w2", "Still there?")
    assert stored(env, conversation["id"], message_id, "failed")["error"]["code"] == "window_closed"
    assert not [r for r in env.fake.requests if r.path.endswith("/messages")]


def comment_conversation(env: Env) -> dict[str, Any]:
    body = load("messenger/page_feed_comment_batched_two_entries.json")
    body["entry"] = body["entry"][:1]
    body["entry"][0]["id"] = MESSENGER.account_id
    body["entry"][0]["changes"][0]["value"]["created_time"] = int(time.time())
    deliver_meta(env, body)
    return first_conversation(env)


def test_a_comment_is_answered_in_public_unless_the_agent_asks_for_private(env: Env) -> None:
    conversation = comment_conversation(env)
    assert conversation["kind"] == "comment"
    root = "139560936744456_139562213411528"  # the top-level comment of the thread
    public_id = reply(env, conversation["id"], "c1", "Thank you!")
    stored(env, conversation["id"], public_id, "sent")
    [public] = [r for r in env.fake.requests if r.path.endswith(f"/{root}/comments")]
    assert public.body == {"message": "Thank you!"}

    answer = env.client.post(
        f"/api/conversations/{conversation['id']}/messages",
        json={"client_id": "c2", "text": "Sent you the details.", "private_reply": True},
        headers=env.auth,
    )
    private_id = answer.json()["message_id"]
    assert stored(env, conversation["id"], private_id, "sent")["private_reply"] is True
    [private] = [
        r for r in env.fake.requests if r.path.endswith(f"/{MESSENGER.account_id}/messages")
    ]
    assert private.body["recipient"] == {"comment_id": root}


def test_a_new_messenger_contact_gets_their_name_and_picture(env: Env) -> None:
    messenger_conversation(env)

    def named() -> Any:
        contact = first_conversation(env)["contact"]
        return contact if contact["name"] else None

    contact = wait(named)
    assert contact == {
        "id": contact["id"],
        "name": "Ada Lovelace",
        "username": None,
        "picture_url": f"https://cdn.example/{PSID}.jpg",
    }
    [asked] = [r for r in env.fake.requests if r.method == "GET" and r.path.endswith(f"/{PSID}")]
    assert asked.headers["authorization"] == f"Bearer {MESSENGER.token}"
    messenger_conversation(env)  # another message the same day: no second fetch
    time.sleep(0.3)
    assert len([r for r in env.fake.requests if r.method == "GET" and PSID in r.path]) == 1


def test_a_profile_the_platform_refuses_leaves_the_id(env: Env) -> None:
    env.fake.fail_next(f"/{PSID}", 400, {"error": {"message": "No permission", "code": 10}})
    messenger_conversation(env)
    wait(lambda: [r for r in env.fake.requests if r.path.endswith(f"/{PSID}")])  # asked, refused
    time.sleep(0.3)
    contact = first_conversation(env)["contact"]
    assert contact["name"] is None and contact["id"]


def test_a_whatsapp_reply_quotes_the_message_it_answers(env: Env) -> None:
    deliver_meta(env, whatsapp_body(age_s=60))
    conversation = first_conversation(env)
    answer = env.client.post(
        f"/api/conversations/{conversation['id']}/messages",
        json={"client_id": "q1", "text": "Yes, that one.", "reply_to": "wamid.xyzxyz"},
        headers=env.auth,
    )
    message = stored(env, conversation["id"], answer.json()["message_id"], "sent")
    assert message["reply_to"] == "wamid.xyzxyz"
    [request] = [
        r for r in env.fake.requests if r.path.endswith(f"/{WHATSAPP.account_id}/messages")
    ]
    assert request.body["context"] == {"message_id": "wamid.xyzxyz"}


def test_an_agent_reaction_is_shown_and_sent_to_whatsapp(env: Env) -> None:
    deliver_meta(env, whatsapp_body(age_s=60))
    conversation = first_conversation(env)
    url = f"/api/conversations/{conversation['id']}/reactions"
    body = {"client_id": "re1", "platform_message_id": "wamid.xyzxyz", "emoji": "👍"}
    assert env.client.post(url, json=body, headers=env.auth).status_code == 202
    assert env.client.post(url, json=body, headers=env.auth).status_code == 200  # a retry: once

    def reacted() -> Any:
        items = env.client.get(
            f"/api/conversations/{conversation['id']}/messages", headers=env.auth
        ).json()["items"]
        return items[0]["reactions"] if items and items[0]["reactions"] else None

    [reaction] = wait(reacted)
    assert reaction["emoji"] == "👍" and reaction["by"] == f"agent:{env.tenant.admin_id}"
    wait(lambda: [r for r in env.fake.requests if r.body and r.body.get("type") == "reaction"])
    sent = [r for r in env.fake.requests if r.body and r.body.get("type") == "reaction"]
    assert len(sent) == 1
    assert sent[0].body["reaction"] == {"message_id": "wamid.xyzxyz", "emoji": "👍"}
    assert sent[0].body["to"] == "972987654321"


def test_reactions_elsewhere_are_refused(env: Env) -> None:
    conversation_id = messenger_conversation(env)
    body = {"client_id": "re2", "platform_message_id": "mid.1", "emoji": "👍"}
    refused = env.client.post(
        f"/api/conversations/{conversation_id}/reactions", json=body, headers=env.auth
    )
    assert refused.status_code == 400


def test_status_webhooks_move_our_sent_message_forward(env: Env) -> None:
    deliver_meta(env, whatsapp_body(age_s=60))
    conversation = first_conversation(env)
    message_id = reply(env, conversation["id"], "s1", "On its way")
    sent = stored(env, conversation["id"], message_id, "sent")
    for status in ("delivered", "read", "sent"):  # a late "sent" never moves it back
        body = load(f"whatsapp/status_{status}.json")
        value = body["entry"][0]["changes"][0]["value"]
        value["metadata"]["phone_number_id"] = WHATSAPP.account_id
        value["statuses"][0]["id"] = sent["platform_message_id"]
        deliver_meta(env, body)
    assert (
        stored(env, conversation["id"], message_id, "read")["platform_message_id"]
        == sent["platform_message_id"]
    )


def test_a_note_in_a_platform_conversation_is_never_sent(env: Env) -> None:
    conversation_id = messenger_conversation(env)
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "n1", "text": "internal", "note": True},
        headers=env.auth,
    )
    note = stored(env, conversation_id, answer.json()["message_id"], "sent")
    assert note["note"] is True
    time.sleep(0.3)
    assert not [r for r in env.fake.requests if r.path.endswith("/messages")]
