"""Channel secrets: sealed at rest, never in an answer (but the one-time reveals) or a log
line, and re-encrypted under a new key by `hub rotate-keys` while channels keep working.
On SQLite and on the real Postgres."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import col, select
from starlette.testclient import TestClient

from hub import cli
from hub.channels.options import rotate_identity_secret
from hub.settings import Settings
from hub.storage.audit import verify
from hub.storage.engine import make_engine, migrate_async, sessionmaker
from hub.storage.models import AuditEvent, Channel
from hub.storage.rotation import rotate_secrets
from hub.storage.store import Store
from hub.storage.vault import SecretUnreadable, Vault
from hub.web.app import create_app
from schemas.message import utc_now
from tests.databases import dump, own_database
from tests.fakeonboarding import MANUAL_PAGE
from tests.fakeplatform import INSTAGRAM, MESSENGER, TELEGRAM, WHATSAPP, FakePlatform, running_fake
from tests.helpers import ORIGIN, Tenant, make_tenant, prepare
from tests.payloads import load
from tests.servers import HubProcess, base_env, free_port

T = TypeVar("T")
BASE = "https://hub.example"
HOSTED_APP_SECRET = "hosted-meta-app-secret-0a1b2c"
OWN = {
    "messenger_app_secret": "messenger-own-app-secret-9f8e7d",
    "whatsapp_app_secret": "whatsapp-own-app-secret-6c5b4a",
    "whatsapp_verify_token": "whatsapp-chosen-verify-token-3e2d",
    "instagram_manual_token": MANUAL_PAGE.token,  # a Page token the fake knows
}

# Not stored, but passing through: the hub's own app secrets, Instagram's short-lived token
# and the authorization code.
CONFIGURED = {
    "hosted_app_secret": HOSTED_APP_SECRET,
    "instagram_app_secret": FakePlatform.IG_APP_SECRET,
    "instagram_short_token": FakePlatform.IG_SHORT,
    "instagram_code": FakePlatform.IG_CODE,
}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with own_database(request, tmp_path, request.param) as settings:
        yield settings


def platform_settings(settings: Settings, fake: FakePlatform) -> Settings:
    urls = fake.base_urls()
    return settings.with_overrides(
        public_url=BASE,
        meta_app_secret=HOSTED_APP_SECRET,
        graph_url=urls.graph,
        instagram_graph_url=urls.instagram,
        telegram_api_url=urls.telegram,
        instagram_oauth_url=urls.instagram.rsplit("/instagram", 1)[0] + "/iglogin/oauth",
        instagram_app_id=FakePlatform.IG_APP_ID,
        instagram_app_secret=FakePlatform.IG_APP_SECRET,
    )


@dataclass
class Flow:
    """Drives a hub through its API as an admin, keeping every answer it got: the one-time
    reveals apart from the rest."""

    client: httpx.Client  # a TestClient, or a plain client of a real `hub serve`
    tenant: Tenant
    answers: list[str] = field(default_factory=list)
    revealed: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def call(self, method: str, path: str, *, reveal: bool = False, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tenant.api_token}", **kw.pop("headers", {})}
        answer = self.client.request(method, path, headers=headers, **kw)
        (self.revealed if reveal else self.answers).append(answer.text)
        assert answer.status_code < 400, f"{method} {path}: {answer.text}"
        return answer

    def connect(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = self.call("POST", "/api/channels", reveal=True, json=body).json()
        self.channels[name] = made
        return made


def connect_every_kind(flow: Flow) -> None:
    """Every kind of channel secret: Meta access tokens (hosted app and own app), own apps'
    secrets and verify tokens (chosen and generated), a Telegram bot token and its generated
    webhook secret, an Instagram Business Login token, and a web chat's identity secret."""
    page = flow.connect(
        "messenger",
        {
            "kind": "messenger",
            "name": "Page",
            "account_id": MESSENGER.account_id,
            "access_token": MESSENGER.token,
            "app_secret": OWN["messenger_app_secret"],
        },
    )
    flow.connect(
        "whatsapp",
        {
            "kind": "whatsapp",
            "name": "WA",
            "account_id": WHATSAPP.account_id,
            "access_token": WHATSAPP.token,
            "app_secret": OWN["whatsapp_app_secret"],
            "verify_token": OWN["whatsapp_verify_token"],
        },
    )
    flow.connect(
        "instagram_manual",
        {
            "kind": "instagram",
            "name": "IG by hand",
            "account_id": MANUAL_PAGE.instagram_id,
            "page_id": MANUAL_PAGE.page_id,
            "access_token": OWN["instagram_manual_token"],
        },
    )
    bot = flow.connect("telegram", {"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token})
    site = f"/api/channels/{flow.tenant.channel_id}/identity-secret"
    identity = flow.call("POST", site, reveal=True).json()["identity_secret"]
    flow.secrets |= OWN | {
        "messenger_token": MESSENGER.token,
        "whatsapp_token": WHATSAPP.token,
        "messenger_verify_token": page["webhook"]["verify_token"],
        "bot_token": TELEGRAM.token.split(":", 1)[1],  # the part before ":" is the bot's id
        "webhook_secret": bot["webhook"]["secret_token"],
        "identity_secret": identity,
        # Members' credentials: a password is kept as an argon2 hash, an API token as a digest.
        "password": flow.tenant.password,
        "api_token": flow.tenant.api_token,
    }

    authorize = flow.call("POST", "/api/channels/instagram/authorize", json={"name": "IG"})
    state = httpx.URL(authorize.json()["url"]).params["state"]
    flow.call(
        "GET",
        "/oauth/instagram/callback",
        params={"code": FakePlatform.IG_CODE, "state": state},
        follow_redirects=False,
    )
    flow.secrets["instagram_token"] = INSTAGRAM.token

    # The secrets at work: the platforms' webhook handshake, an identified visitor.
    challenge = {"hub.mode": "subscribe", "hub.challenge": "4711"}
    verified = flow.call(
        "GET",
        f"/webhooks/meta/{page['id']}",
        params=challenge | {"hub.verify_token": page["webhook"]["verify_token"]},
    )
    assert verified.text == "4711"
    user_hash = hmac.new(identity.encode(), b"customer-7", hashlib.sha256).hexdigest()
    visitor = {"channel": flow.tenant.public_key, "user_id": "customer-7", "user_hash": user_hash}
    flow.call("POST", "/api/widget/token", json=visitor, headers={"origin": ORIGIN})
    flow.call("DELETE", f"/api/channels/{flow.channels['instagram_manual']['id']}")


def telegram_round_trip(flow: Flow, fake: FakePlatform, text: str) -> None:
    """A Telegram update comes in (its webhook secret checked) and a reply goes out (with the
    bot token) through the fake platform: the channel's secrets open."""
    bot = flow.channels["telegram"]
    update = load("telegram/update_private_text_message.json")
    update["update_id"] += uuid.uuid4().int % 1_000_000
    delivered = flow.client.post(
        f"/webhooks/telegram/{bot['id']}",
        content=json.dumps(update),
        headers={"x-telegram-bot-api-secret-token": bot["webhook"]["secret_token"]},
    )
    assert delivered.status_code == 200 and delivered.json()["accepted"] == 1, delivered.text

    def conversation() -> Any:
        items = flow.call("GET", "/api/conversations").json()["items"]
        return next((c for c in items if c["channel_kind"] == "telegram"), None)

    conversation_id = eventually(conversation)["id"]
    path = f"/api/conversations/{conversation_id}/messages"
    sent_id = flow.call("POST", path, json={"client_id": uuid.uuid4().hex, "text": text}).json()

    def status() -> Any:
        items = flow.call("GET", path).json()["items"]
        mine = [m for m in items if m["id"] == sent_id["message_id"]]
        return mine and mine[0]["status"] in ("sent", "failed") and mine[0]

    assert eventually(status)["status"] == "sent"
    assert any(r.body.get("text") == text for r in fake.requests if r.path.endswith("sendMessage"))


def eventually(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@contextmanager
def running_hub(settings: Settings, tenant: Tenant) -> Iterator[Flow]:
    app = create_app(settings, run_worker=True)
    with TestClient(app, base_url=BASE) as client:
        yield Flow(client, tenant)


def leaks(secrets: dict[str, str], text: str | bytes) -> list[str]:
    haystack = text if isinstance(text, bytes) else text.encode()
    return sorted(name for name, value in secrets.items() if value.encode() in haystack)


# At rest, in answers and in logs


def test_no_secret_at_rest_in_answers_or_in_logs(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running_fake() as fake:
        settings = platform_settings(db, fake)
        [tenant] = prepare(settings, "acme")
        with running_hub(settings, tenant) as flow:
            connect_every_kind(flow)
            test_client: Any = flow.client  # with the app's services and its event loop
            refresher = test_client.app.state.services.token_refresher()
            later = utc_now() + timedelta(days=55)
            refreshed = test_client.portal.call(refresher.refresh_due, later)
            assert refreshed == 1
            [fresh] = [r.answer for r in fake.requests if r.path.endswith("refresh_access_token")]
            flow.secrets["refreshed_token"] = fresh["access_token"]
            telegram_round_trip(flow, fake, "Merhaba!")
            for channel in flow.call("GET", "/api/channels/health").json()["items"]:
                flow.call("GET", f"/api/channels/{channel['id']}")
            flow.call("GET", "/api/channels")
            flow.call("GET", "/api/audit", params={"limit": 200})
        assert not fake.rejected

    stored = dump(settings)
    assert b"Bot" in stored and MESSENGER.account_id.encode() in stored  # the dump sees rows
    assert leaks(flow.secrets, stored) == []
    assert leaks(flow.secrets, "\n".join(flow.answers)) == []
    # The documented exceptions: the connect answers and the identity secret, shown once.
    revealed = leaks(flow.secrets, "\n".join(flow.revealed))
    assert {"messenger_verify_token", "webhook_secret", "identity_secret"} <= set(revealed)

    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not (r.name == "httpx" and BASE in r.getMessage())  # the test client's own requests
    )
    assert "HTTP Request: POST" in logged and "sendMessage" in logged  # the hub's own calls
    assert leaks(flow.secrets | CONFIGURED, logged) == []


def test_a_real_hub_prints_no_secret(tmp_path: Path) -> None:
    with running_fake() as fake:
        urls = fake.base_urls()
        env = base_env(
            HUB_SECRET_KEY="s" * 48,
            HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            HUB_DATA_DIR=str(tmp_path),
            HUB_PUBLIC_URL=BASE,
            HUB_META_APP_SECRET=HOSTED_APP_SECRET,
            HUB_GRAPH_URL=urls.graph,
            HUB_INSTAGRAM_GRAPH_URL=urls.instagram,
            HUB_TELEGRAM_API_URL=urls.telegram,
            HUB_INSTAGRAM_OAUTH_URL=urls.instagram.rsplit("/instagram", 1)[0] + "/iglogin/oauth",
            HUB_INSTAGRAM_APP_ID=FakePlatform.IG_APP_ID,
            HUB_INSTAGRAM_APP_SECRET=FakePlatform.IG_APP_SECRET,
        )
        [tenant] = prepare(Settings.from_env(env), "acme")
        port = free_port()
        hub = HubProcess(["serve", "--port", str(port)], env, port, tmp_path / "serve.log")
        hub.start()
        try:
            with httpx.Client(base_url=hub.base_url, timeout=10) as client:
                flow = Flow(client, tenant)
                connect_every_kind(flow)
                telegram_round_trip(flow, fake, "Merhaba!")
        finally:
            printed = hub.stop()
    assert "HTTP Request: POST" in printed and "Traceback" not in printed
    assert leaks(flow.secrets | CONFIGURED, printed) == []
    assert leaks(flow.secrets, "\n".join(flow.answers)) == []


# Rotation


def test_rotate_keys_moves_every_secret_to_the_newest_key(
    db: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with running_fake() as fake:
        under_a = platform_settings(db, fake).with_overrides(encryption_keys=(key_a,))
        [tenant] = prepare(under_a, "acme")
        with running_hub(under_a, tenant) as flow:
            connect_every_kind(flow)
        before = with_store(under_a, sealed)
        assert len(before) == 5  # messenger, whatsapp, telegram, instagram, the web chat
        for value in before.values():
            with pytest.raises(SecretUnreadable):  # a key list without A cannot open them
                Vault((key_b,)).open(value)
            Vault((key_a,)).open(value)

        for name, value in {
            "HUB_SECRET_KEY": under_a.secret_key,
            "HUB_ENCRYPTION_KEYS": f"{key_b},{key_a}",
            "HUB_DATA_DIR": str(under_a.data_dir),
            "DATABASE_URL": under_a.database_url,
        }.items():
            monkeypatch.setenv(name, value)
        cli.main(["rotate-keys", "--batch", "2"])  # three batches: the last one short
        assert "Rotated 5 sealed secrets" in capsys.readouterr().out
        after = with_store(under_a, sealed)
        assert after.keys() == before.keys()
        for channel_id, value in after.items():
            assert value != before[channel_id]
            assert Vault((key_b,)).open(value) == Vault((key_a,)).open(before[channel_id])
        cli.main(["rotate-keys"])  # nothing left to do
        assert "Rotated 0 sealed secrets" in capsys.readouterr().out
        first, second = with_store(under_a, rotations)
        assert (first["count"], first["unreadable"], second["count"]) == (5, 0, 0)
        assert first["columns"]["channels.secrets"] == 5  # counted per sealed column
        assert first["columns"]["webhook_endpoints.secret"] == 0

        only_b = under_a.with_overrides(encryption_keys=(key_b,))
        with running_hub(only_b, tenant) as working:
            working.channels = flow.channels
            telegram_round_trip(working, fake, "Still here after the rotation")


def with_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings)
        try:
            return await use(Store(sessionmaker(engine)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def sealed(store: Store) -> dict[uuid.UUID, str]:
    async with store.sessions() as s:
        query = select(Channel.id, Channel.secrets).where(col(Channel.secrets).is_not(None))
        return {channel_id: value for channel_id, value in (await s.exec(query)).all() if value}


async def rotations(store: Store) -> list[dict[str, Any]]:
    assert (await verify(store.sessions)).ok
    query = select(AuditEvent).where(AuditEvent.action == "secrets.rotated")
    async with store.sessions() as s:
        found = (await s.exec(query.order_by(col(AuditEvent.id)))).all()
    assert all(r.actor_type == "system" and r.workspace_id is None for r in found)
    return [r.detail for r in found]


async def test_rotate_keys_leaves_alone_and_reports_what_no_key_opens(db: Settings) -> None:
    await migrate_async(db)
    engine = make_engine(db)
    try:
        store = Store(sessionmaker(engine))
        tenant = await make_tenant(db)
        vault = Vault(db.encryption_keys)
        await rotate_identity_secret(
            store, vault, tenant.workspace_id, tenant.channel_id, actor_id=tenant.admin_id, ip=None
        )
        [before] = (await sealed(store)).values()
        done = await rotate_secrets(store, Vault((Fernet.generate_key().decode(),)))
        assert (done.rotated, done.current) == (0, 0)
        assert done.unreadable == (f"channels.secrets {tenant.channel_id}",)
        assert list((await sealed(store)).values()) == [before]  # untouched
        assert vault.is_current(before)
    finally:
        await engine.dispose()
