"""Disconnecting a channel (issue 6, item 7): the platform is told to stop delivering (Graph
and graph.instagram.com `subscribed_apps` DELETE, Telegram deleteWebhook) against the fake
platform, the secrets are destroyed, its webhooks are no longer routed whatever the platform
answered, and `?delete_data=true` erases the channel's conversations, messages and
identities while a contact's other channels stay."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.storage.models import Channel
from hub.web.app import create_app
from tests.fakeplatform import (
    INSTAGRAM,
    MESSENGER,
    TELEGRAM,
    WABA_ID,
    WHATSAPP,
    FakePlatform,
    Received,
    running_fake,
)
from tests.helpers import Tenant, prepare
from tests.mailbox import join
from tests.payloads import load
from tests.test_admin import PASSWORD

BASE = "https://hub.example"
META_SECRET = b"hosted-secret-for-tests"


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    def call(self, fn: Any, *args: Any) -> Any:
        return self.client.portal.call(fn, *args)  # type: ignore[union-attr]

    @property
    def services(self) -> Any:
        return self.client.app.state.services  # type: ignore[attr-defined]


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    with running_fake() as fake:
        urls = fake.base_urls()
        root = urls.instagram.rsplit("/instagram", 1)[0]
        settings = settings.with_overrides(
            meta_app_secret=META_SECRET.decode(),
            public_url=BASE,
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            telegram_api_url=urls.telegram,
            instagram_oauth_url=f"{root}/iglogin/oauth",
            instagram_app_id=FakePlatform.IG_APP_ID,
            instagram_app_secret=FakePlatform.IG_APP_SECRET,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(create_app(settings, run_worker=True), base_url=BASE) as client:
            yield Env(client, fake, tenant)


def connect(env: Env, kind: str, *, waba: bool = True) -> str:
    if kind == "instagram":  # Business Login, through the fake OAuth
        started = env.client.post(
            "/api/channels/instagram/authorize", json={"name": "Shop IG"}, headers=env.auth
        )
        state = started.json()["url"].split("state=", 1)[1].split("&", 1)[0]
        done = env.client.get(
            "/oauth/instagram/callback",
            params={"code": FakePlatform.IG_CODE, "state": state},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        return str(done.headers["location"].split("=", 1)[1])
    body: dict[str, Any] = {
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
        }
        | ({"business_account_id": WABA_ID} if waba else {}),
        "telegram": {"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token},
    }[kind]
    answer = env.client.post("/api/channels", json=body, headers=env.auth)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


EXPECTED = {  # kind: (path after the fake's root, the token, where it goes)
    "messenger": (f"/graph/v23.0/{MESSENGER.account_id}/subscribed_apps", MESSENGER.token),
    "whatsapp": (f"/graph/v23.0/{WABA_ID}/subscribed_apps", WHATSAPP.token),
    "instagram": (f"/instagram/v23.0/{INSTAGRAM.account_id}/subscribed_apps", INSTAGRAM.token),
    "telegram": (f"/telegram/bot{TELEGRAM.token}/deleteWebhook", TELEGRAM.token),
}


def unsubscribes(fake: FakePlatform) -> list[Received]:
    return [
        r
        for r in fake.requests
        if r.path.endswith("/deleteWebhook")
        or (r.method == "DELETE" and r.path.endswith("/subscribed_apps"))
    ]


def sealed(env: Env, channel_id: str) -> str | None:
    async def read() -> str | None:
        async with env.services.store.sessions() as s:
            row: Channel | None = await s.get(Channel, uuid.UUID(channel_id))
            assert row is not None and row.status == "disconnected"
            return row.secrets

    result: str | None = env.call(read)
    return result


def meta_webhook(env: Env, kind: str) -> dict[str, Any]:
    if kind == "whatsapp":
        body = load("whatsapp/message_text.json")
        body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = WHATSAPP.account_id
    else:
        body = load(f"{kind}/{'dm_text' if kind == 'instagram' else 'webhook_text_full'}.json")
        account = INSTAGRAM.account_id if kind == "instagram" else MESSENGER.account_id
        body["entry"][0]["id"] = account
        body["entry"][0]["messaging"][0]["recipient"]["id"] = account
    return dict(body)


def post_meta(env: Env, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(body).encode()
    digest = hmac.new(META_SECRET, data, hashlib.sha256).hexdigest()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.parametrize("kind", ["messenger", "whatsapp", "instagram", "telegram"])
def test_disconnecting_unsubscribes_at_the_platform_once_and_stops_routing(
    env: Env, kind: str
) -> None:
    channel_id = connect(env, kind)
    secret = None
    if kind == "telegram":
        [registered] = [r for r in env.fake.requests if r.path.endswith("/setWebhook")]
        secret = registered.body["secret_token"]
    else:
        assert post_meta(env, meta_webhook(env, kind))["accepted"] == 1  # routed before
    env.fake.reset()

    answer = env.client.delete(f"/api/channels/{channel_id}", headers=env.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["unsubscribed"] is True and answer.json()["status"] == "disconnected"
    assert answer.json()["has_secrets"] is False and "data_deletion" not in answer.json()
    [call] = unsubscribes(env.fake)
    path, token = EXPECTED[kind]
    assert call.path == path and not env.fake.rejected
    if kind == "telegram":
        assert call.method == "POST"
    else:
        assert call.method == "DELETE" and call.headers["authorization"] == f"Bearer {token}"
        assert token not in call.query
    assert sealed(env, channel_id) is None

    if kind == "telegram":
        update = load("telegram/update_doc_text_start.json")
        late = env.client.post(
            f"/webhooks/telegram/{channel_id}",
            json=update,
            headers={"x-telegram-bot-api-secret-token": str(secret)},
        )
        assert late.status_code == 404
    else:
        assert post_meta(env, meta_webhook(env, kind)) == {"accepted": 0, "ignored": 1}
    assert len(unsubscribes(env.fake)) == 1


@pytest.mark.parametrize("kind", ["messenger", "telegram"])
def test_a_failing_platform_still_disconnects_and_says_so(
    env: Env, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    channel_id = connect(env, kind)
    failure = (
        {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        if kind == "telegram"
        else {"error": {"message": "(#2) Service temporarily unavailable", "code": 2}}
    )
    env.fake.fail_next(EXPECTED[kind][0].rsplit("/", 1)[-1], 500, failure)
    with caplog.at_level(logging.INFO):
        answer = env.client.delete(f"/api/channels/{channel_id}", headers=env.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["unsubscribed"] is False and answer.json()["status"] == "disconnected"
    assert answer.json()["unsubscribe_note"]
    assert sealed(env, channel_id) is None
    assert EXPECTED[kind][1] not in caplog.text  # no token in the logs
    assert "unsubscribing channel" in caplog.text
    listed = env.client.get("/api/channels", headers=env.auth).json()["items"]
    assert {c["id"]: c["status"] for c in listed}[channel_id] == "disconnected"


def test_whatsapp_without_its_business_account_is_not_unsubscribed_and_says_why(
    env: Env,
) -> None:
    channel_id = connect(env, "whatsapp", waba=False)
    answer = env.client.delete(f"/api/channels/{channel_id}", headers=env.auth)
    assert answer.json()["unsubscribed"] is False
    assert "business_account_id" in answer.json()["unsubscribe_note"]
    assert unsubscribes(env.fake) == [] and sealed(env, channel_id) is None


def rows(env: Env, table: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        t = SQLModel.metadata.tables[table]
        async with env.services.store.sessions() as orm:
            conn = await orm.connection()
            query = sa.select(t).where(t.c.workspace_id == env.tenant.workspace_id)
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]

    result: list[dict[str, Any]] = env.call(read)
    return result


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def merge(env: Env, keep: uuid.UUID, gone: uuid.UUID) -> None:
    """What a contact merge leaves: one contact with an identity on each channel."""

    async def run() -> None:
        tables = SQLModel.metadata.tables
        async with env.services.store.sessions() as orm, orm.begin():
            conn = await orm.connection()
            for name in ("contact_identities", "conversations", "messages"):
                t = tables[name]
                await conn.execute(
                    sa.update(t).where(t.c.contact_id == gone).values(contact_id=keep)
                )
            t = tables["contacts"]
            await conn.execute(sa.delete(t).where(t.c.id == gone))

    env.call(run)


def test_deleting_a_channels_data_keeps_what_its_contacts_have_elsewhere(env: Env) -> None:
    page, wa = connect(env, "messenger"), connect(env, "whatsapp")
    shared = meta_webhook(env, "messenger")
    only_here = meta_webhook(env, "messenger")
    only_here["entry"][0]["messaging"][0]["sender"]["id"] = "5550001112223334"
    only_here["entry"][0]["messaging"][0]["message"]["mid"] = "m_only_here"
    # A delivery receipt for a message the hub never saw: it waits on the page's channel.
    unknown = meta_webhook(env, "messenger")
    unknown["entry"][0]["messaging"][0] = {
        "sender": {"id": "5550009998887776"},
        "recipient": {"id": MESSENGER.account_id},
        "timestamp": 1458668856463,
        "delivery": {"mids": ["m_never_seen"], "watermark": 1458668856253},
    }
    for body in (shared, only_here, meta_webhook(env, "whatsapp"), unknown):
        assert post_meta(env, body)["accepted"] == 1
    wait(lambda: len(rows(env, "messages")) == 3 and len(rows(env, "waiting_changes")) == 1)
    identities = {
        (str(r["channel_id"]), r["platform_user_id"]): r for r in rows(env, "contact_identities")
    }
    psid = shared["entry"][0]["messaging"][0]["sender"]["id"]
    [(_, wa_user)] = [k for k in identities if k[0] == wa]
    person = identities[(page, psid)]["contact_id"]
    merge(env, person, identities[(wa, wa_user)]["contact_id"])

    agent_email = f"agent-{uuid.uuid4().hex[:8]}@acme.example"
    join(env.client, env.auth, agent_email, "Agent", PASSWORD)
    env.client.cookies.clear()
    login = env.client.post("/api/auth/login", json={"email": agent_email, "password": PASSWORD})
    agent = {"x-csrf-token": login.json()["csrf_token"]}
    denied = env.client.delete(f"/api/channels/{page}?delete_data=true", headers=agent)
    assert denied.status_code == 403
    env.client.cookies.clear()
    assert len(rows(env, "messages")) == 3

    answer = env.client.delete(f"/api/channels/{page}?delete_data=true", headers=env.auth)
    assert answer.status_code == 200, answer.text
    deletion = answer.json()["data_deletion"]
    assert deletion["counts"] == {
        "contacts": 1,
        "contacts_kept": 1,
        "conversations": 2,
        "messages": 2,
    }
    done = wait(
        lambda: (
            (r := env.client.get(f"/api/deletions/{deletion['id']}", headers=env.auth).json())[
                "status"
            ]
            == "done"
            and r
        )
    )
    assert done["counts"]["messages"] == 2 and done["counts"]["conversations"] == 2
    assert {str(r["channel_id"]) for r in rows(env, "messages")} == {wa}
    assert {str(r["channel_id"]) for r in rows(env, "conversations")} == {wa}
    assert [(str(r["channel_id"]), r["contact_id"]) for r in rows(env, "contact_identities")] == [
        (wa, person)
    ]
    assert [r["id"] for r in rows(env, "contacts")] == [person]
    assert rows(env, "waiting_changes") == []
    audit = env.client.get("/api/audit?action=channel.data_deleted", headers=env.auth).json()
    [entry] = audit["items"]
    assert entry["detail"]["messages"] == 2 and entry["detail"]["deletion_id"] == deletion["id"]
    # What the bus still had of the page's conversations is gone too; the other one stays.
    conversations = env.client.get("/api/conversations", headers=env.auth).json()["items"]
    assert [c["channel_id"] for c in conversations] == [wa]


def test_delete_data_must_be_true_or_false(env: Env) -> None:
    channel_id = connect(env, "messenger")
    answer = env.client.delete(f"/api/channels/{channel_id}?delete_data=yes", headers=env.auth)
    assert answer.status_code == 400
    assert unsubscribes(env.fake) == []


def test_the_unsubscribe_requests_are_built_without_io() -> None:
    from adapters.outbound import Platforms
    from adapters.registry import adapter_for
    from schemas.message import ChannelKind

    urls = Platforms("https://g/v23.0", "https://i/v23.0", "https://t")
    token = {"access_token": "EAAsecret"}
    messenger, instagram = adapter_for(ChannelKind.MESSENGER), adapter_for(ChannelKind.INSTAGRAM)
    page = messenger.on_disconnect({"page_id": "1"}, {}, token, urls)
    assert not isinstance(page, str) and page.method == "DELETE"
    assert page.url == "https://g/v23.0/1/subscribed_apps" and "EAAsecret" not in repr(page)
    ig = {"instagram_account_id": "17"}
    login = instagram.on_disconnect(ig, {"token_expires_at": "x"}, token, urls)
    assert not isinstance(login, str) and login.url == "https://i/v23.0/17/subscribed_apps"
    assert "Page" in str(instagram.on_disconnect(ig, {}, token, urls))
    assert "bot token" in str(adapter_for(ChannelKind.TELEGRAM).on_disconnect({}, {}, {}, urls))
    assert messenger.interpret_call(200, {"success": True}) == (True, "")
    refused = {"error": {"message": "(#200) Permissions error"}}
    assert adapter_for(ChannelKind.WHATSAPP).interpret_call(403, refused) == (
        False,
        "(#200) Permissions error",
    )
