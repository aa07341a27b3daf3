"""Platform webhooks through the app: handshakes, signatures before parsing, routing by account,
redeliveries, and channels connected and disconnected by an admin. The payloads are the
recorded ones in tests/fixtures, signed here with generated app secrets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.storage.engine import make_engine
from hub.web.app import create_app
from tests.fakeplatform import TELEGRAM, FakePlatform, running_fake
from tests.helpers import Tenant, prepare
from tests.payloads import load, raw

PAGE_ID = "1895382890692545"  # messenger/webhook_text_full.json
PHONE_ID = "1122334455667"  # whatsapp/*.json
IG_ID = "<IGID>"  # instagram/dm_text.json (placeholders kept by the recording)


@dataclass
class Env:
    client: TestClient
    tenant: Tenant
    settings: Settings
    channels: dict[str, dict[str, Any]]
    tokens: dict[str, str]
    fake: FakePlatform

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}


def sign(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"}


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    with running_fake() as fake:
        yield from _env(settings, fake)


def _env(settings: Settings, fake: FakePlatform) -> Iterator[Env]:
    settings = settings.with_overrides(
        public_url="https://hub.example",
        telegram_api_url=fake.base_urls().telegram,
        meta_app_id="1234",
        meta_app_secret="hosted-" + secrets.token_hex(16),
        meta_verify_token="verify-" + secrets.token_hex(8),
    )
    [tenant] = prepare(settings, "acme")
    tokens = {
        "page": "EAA" + secrets.token_hex(20),
        "wa": "EAA" + secrets.token_hex(20),
        "ig": "IGQ" + secrets.token_hex(20),
        "ig_secret": "own-app-" + secrets.token_hex(16),
        "bot": TELEGRAM.token,
    }
    with TestClient(
        create_app(settings, run_worker=True), base_url="https://hub.example"
    ) as client:
        auth = {"authorization": f"Bearer {tenant.api_token}"}
        bodies = {
            "messenger": {
                "kind": "messenger",
                "name": "Page",
                "account_id": PAGE_ID,
                "access_token": tokens["page"],
            },
            "whatsapp": {
                "kind": "whatsapp",
                "name": "WA",
                "account_id": PHONE_ID,
                "access_token": tokens["wa"],
            },
            "instagram": {
                "kind": "instagram",
                "name": "IG",
                "account_id": IG_ID,
                "access_token": tokens["ig"],
                "app_secret": tokens["ig_secret"],
            },
            "telegram": {"kind": "telegram", "name": "Bot", "bot_token": tokens["bot"]},
        }
        channels = {}
        for name, body in bodies.items():
            response = client.post("/api/channels", json=body, headers=auth)
            assert response.status_code == 201, response.text
            channels[name] = response.json()
        yield Env(client, tenant, settings, channels, tokens, fake)


def post_meta(
    env: Env, fixture: str, *, secret: str | None = None, url: str = "/webhooks/meta"
) -> Any:
    body = raw(fixture)
    return env.client.post(
        url, content=body, headers=sign(body, secret or env.settings.meta_app_secret or "")
    )


def stored_texts(env: Env) -> list[str | None]:
    async def query() -> list[str | None]:
        engine = make_engine(env.settings)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT text FROM messages ORDER BY sent_at"))
                return [r[0] for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(query())


def wait_until(predicate: Any, timeout_s: float = 5.0) -> Any:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# Handshakes


def test_hosted_handshake_echoes_the_challenge_verbatim(env: Env) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": env.settings.meta_verify_token,
        "hub.challenge": "CHALLENGE_ACCEPTED",
    }
    answer = env.client.get("/webhooks/meta", params=params)
    assert answer.status_code == 200 and answer.text == "CHALLENGE_ACCEPTED"
    wrong = env.client.get("/webhooks/meta", params=params | {"hub.verify_token": "nope"})
    assert wrong.status_code == 403
    assert (
        env.client.get("/webhooks/meta", params=params | {"hub.mode": "unsubscribe"}).status_code
        == 403
    )


def test_own_app_channel_handshake_uses_its_own_verify_token(env: Env) -> None:
    channel = env.channels["instagram"]
    webhook = channel["webhook"]
    assert webhook["url"] == f"https://hub.example/webhooks/meta/{channel['id']}"
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": webhook["verify_token"],
        "hub.challenge": "1158201444",
    }
    assert env.client.get(f"/webhooks/meta/{channel['id']}", params=params).text == "1158201444"
    hosted = params | {"hub.verify_token": env.settings.meta_verify_token}
    assert env.client.get(f"/webhooks/meta/{channel['id']}", params=hosted).status_code == 403


# Signatures come before parsing


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-hub-signature-256": "sha256=" + "0" * 64}, {"x-hub-signature-256": "sha1=abc"}],
    ids=["missing", "wrong", "sha1"],
)
def test_unsigned_or_badly_signed_deliveries_are_refused(env: Env, headers: dict[str, str]) -> None:
    response = env.client.post(
        "/webhooks/meta", content=raw("messenger/webhook_text_full.json"), headers=headers
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "bad_signature"
    garbage = env.client.post("/webhooks/meta", content=b"{not json", headers=headers)
    assert garbage.status_code == 401  # refused before anything is parsed
    with env.client.websocket_connect("/ws/agent") as agent:
        agent.send_text(json.dumps({"type": "hello", "token": env.tenant.api_token}))
        agent.receive_json()
        agent.send_text('{"type":"ping"}')
        frames = []
        while (frame := agent.receive_json())["type"] != "pong":
            frames.append(frame)
    assert all(f.get("name") != "message.created" for f in frames)
    assert stored_texts(env) == []


def test_a_signed_body_that_is_not_json_is_400(env: Env) -> None:
    body = b"{not json"
    response = env.client.post(
        "/webhooks/meta", content=body, headers=sign(body, env.settings.meta_app_secret or "")
    )
    assert response.status_code == 400


def test_the_hosted_secret_does_not_open_an_own_app_channel_url(env: Env) -> None:
    url = f"/webhooks/meta/{env.channels['instagram']['id']}"
    assert post_meta(env, "instagram/dm_text.json", url=url).status_code == 401
    ok = post_meta(env, "instagram/dm_text.json", url=url, secret=env.tokens["ig_secret"])
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


# Delivery


def test_messenger_message_reaches_the_agent_live_and_is_stored_once(env: Env) -> None:
    with env.client.websocket_connect("/ws/agent") as agent:
        agent.send_text(json.dumps({"type": "hello", "token": env.tenant.api_token}))
        agent.receive_json()
        for _ in range(3):  # Meta redelivers
            answer = post_meta(env, "messenger/webhook_text_full.json")
            assert answer.status_code == 200 and answer.json() == {"accepted": 1, "ignored": 0}
        agent.send_text('{"type":"ping"}')
        created = []
        while (frame := agent.receive_json())["type"] != "pong":
            if frame.get("name") == "message.created":
                created.append(frame["data"]["message"])
    assert len(created) == 1
    message = created[0]
    assert message["text"] == "text" and message["channel_kind"] == "messenger"
    assert (
        message["direction"] == "in"
        and message["platform_message_id"] == "mid.1486464322190:cb04e5a654"
    )
    assert message["channel_id"] == env.channels["messenger"]["id"]
    assert wait_until(lambda: stored_texts(env)) == ["text"]


def test_the_same_message_in_two_batches_is_one_message(env: Env) -> None:
    body = load("whatsapp/message_text.json")
    twice = {"object": body["object"], "entry": body["entry"] * 2}
    data = json.dumps(twice).encode()
    headers = sign(data, env.settings.meta_app_secret or "")
    assert env.client.post("/webhooks/meta", content=data, headers=headers).json()["accepted"] == 2
    assert post_meta(env, "whatsapp/message_text.json").status_code == 200
    assert wait_until(lambda: stored_texts(env)) == ["Body Text"]
    [conversation] = env.client.get("/api/conversations", headers=env.auth).json()["items"]
    assert conversation["channel_id"] == env.channels["whatsapp"]["id"]


def test_a_reaction_updates_the_message_it_names(env: Env) -> None:
    post_meta(env, "whatsapp/message_text.json")
    reaction = load("whatsapp/message_reaction.json")
    reaction["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["message_id"] = (
        "wamid.xyzxyz"
    )
    reaction["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.reaction-1"
    data = json.dumps(reaction).encode()
    assert (
        env.client.post(
            "/webhooks/meta", content=data, headers=sign(data, env.settings.meta_app_secret or "")
        ).status_code
        == 200
    )

    def reacted() -> Any:
        [conversation] = env.client.get("/api/conversations", headers=env.auth).json()["items"] or [
            None
        ]
        if conversation is None:
            return None
        [message] = env.client.get(
            f"/api/conversations/{conversation['id']}/messages", headers=env.auth
        ).json()["items"]
        return message["reactions"] or None

    assert wait_until(reacted) == [{"emoji": "😮", "by": "972987654321"}]


def test_unconnected_accounts_and_dashboard_tests_are_acknowledged_and_ignored(env: Env) -> None:
    body = load("messenger/webhook_text_full.json")
    body["entry"].append(dict(body["entry"][0], id="0"))  # the dashboard's Test button
    body["entry"].append(dict(body["entry"][0], id="999999"))  # a Page this hub does not know
    data = json.dumps(body).encode()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers=sign(data, env.settings.meta_app_secret or "")
    )
    assert answer.status_code == 200 and answer.json() == {"accepted": 1, "ignored": 2}


def test_telegram_needs_its_secret_token(env: Env) -> None:
    channel = env.channels["telegram"]
    url = f"/webhooks/telegram/{channel['id']}"
    body = raw("telegram/update_private_text_message.json")
    assert env.client.post(url, content=body).status_code == 401
    assert (
        env.client.post(
            url, content=body, headers={"x-telegram-bot-api-secret-token": "wrong"}
        ).status_code
        == 401
    )
    secret_token = channel["webhook"]["secret_token"]
    ok = env.client.post(
        url, content=body, headers={"x-telegram-bot-api-secret-token": secret_token}
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    assert wait_until(lambda: stored_texts(env)) == ["hello there"]
    assert env.client.post("/webhooks/telegram/not-a-uuid", content=body).status_code == 404


# Channels


def test_secrets_never_come_back_and_are_not_stored_in_plaintext(env: Env) -> None:
    listed = env.client.get("/api/channels", headers=env.auth)
    text = listed.text + json.dumps(env.channels)
    for name in ("page", "wa", "ig", "ig_secret", "bot"):
        assert env.tokens[name] not in text
    assert {c["kind"]: c["has_secrets"] for c in listed.json()["items"]}["whatsapp"] is True

    async def dump() -> str:
        engine = make_engine(env.settings)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT * FROM channels"))
                return repr([tuple(r) for r in rows])
        finally:
            await engine.dispose()

    stored = asyncio.run(dump())
    for name in ("page", "wa", "ig", "ig_secret", "bot"):
        assert env.tokens[name] not in stored


def test_only_admins_connect_channels(env: Env) -> None:
    async def add_agent() -> None:
        from hub.storage.engine import sessionmaker
        from hub.storage.store import Store

        engine = make_engine(env.settings)
        try:
            await Store(sessionmaker(engine)).add_member(
                env.tenant.workspace_id, "agent@acme.example", "agent-password", "agent"
            )
        finally:
            await engine.dispose()

    asyncio.run(add_agent())
    login = env.client.post(
        "/api/auth/login", json={"email": "agent@acme.example", "password": "agent-password"}
    )
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    body = {"kind": "messenger", "name": "x", "account_id": "42", "access_token": "t"}
    refused = env.client.post("/api/channels", json=body, headers=csrf)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (
        env.client.delete(
            f"/api/channels/{env.channels['messenger']['id']}", headers=csrf
        ).status_code
        == 403
    )


def test_an_account_connects_to_one_channel_only(env: Env) -> None:
    body = {"kind": "messenger", "name": "again", "account_id": PAGE_ID, "access_token": "t"}
    taken = env.client.post("/api/channels", json=body, headers=env.auth)
    assert taken.status_code == 409
    missing = env.client.post(
        "/api/channels", json={"kind": "whatsapp", "name": "x"}, headers=env.auth
    )
    assert missing.status_code == 400


def test_disconnecting_stops_routing_and_destroys_the_secrets(env: Env) -> None:
    channel = env.channels["messenger"]
    gone = env.client.delete(f"/api/channels/{channel['id']}", headers=env.auth)
    assert gone.status_code == 200 and gone.json()["status"] == "disconnected"
    assert gone.json()["has_secrets"] is False
    answer = post_meta(env, "messenger/webhook_text_full.json")
    assert answer.json() == {"accepted": 0, "ignored": 1}
    again = env.client.post(
        "/api/channels",
        json={"kind": "messenger", "name": "back", "account_id": PAGE_ID, "access_token": "t2"},
        headers=env.auth,
    )
    assert again.status_code == 201  # the account is free to connect again


def test_connecting_a_bot_sets_its_webhook_and_disconnecting_deletes_it(env: Env) -> None:
    channel = env.channels["telegram"]
    fake = env.fake
    [registered] = [r for r in fake.requests if r.path.endswith("/setWebhook")]
    assert registered.body["url"] == f"https://hub.example/webhooks/telegram/{channel['id']}"
    assert registered.body["secret_token"] == channel["webhook"]["secret_token"]
    assert "message_reaction" in registered.body["allowed_updates"]
    env.client.delete(f"/api/channels/{channel['id']}", headers=env.auth)
    assert [r.path.endswith("/deleteWebhook") for r in fake.requests].count(True) == 1


def test_a_bot_token_telegram_refuses_is_not_connected(env: Env) -> None:
    env.fake.fail_next(
        "/setWebhook", 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
    )
    body = {"kind": "telegram", "name": "Other", "bot_token": "7000000002:AAHsomething"}
    refused = env.client.post("/api/channels", json=body, headers=env.auth)
    assert refused.status_code == 400 and "Unauthorized" in refused.json()["error"]["message"]
    kinds = [c["name"] for c in env.client.get("/api/channels", headers=env.auth).json()["items"]]
    assert "Other" not in kinds


@pytest.mark.parametrize(
    "fixture",
    ["meta/permissions_webhook_test_bkrs.json", "meta/graph_webhook_user_photos_doc_example.json"],
)
def test_other_graph_objects_are_acknowledged_and_ignored(env: Env, fixture: str) -> None:
    answer = post_meta(env, fixture)
    assert answer.status_code == 200 and answer.json() == {"accepted": 0, "ignored": 1}
