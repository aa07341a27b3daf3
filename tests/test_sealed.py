"""Every sealed secret rotates: each column that holds Fernet tokens is marked sealed in the
models (so `hub rotate-keys` finds it), and after a rotation and a restart with the new key
alone, every channel and outbound webhook still works on a real hub."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from websockets.sync.client import connect

from hub.settings import Settings
from hub.storage.models import SEALED
from hub.storage.rotation import sealed_columns
from hub.storage.vault import SecretUnreadable, Vault
from tests.databases import own_database
from tests.fakeplatform import MESSENGER, WHATSAPP, FakePlatform, running_fake
from tests.helpers import ORIGIN, prepare
from tests.payloads import load
from tests.receiver import Receiver, running_receiver
from tests.servers import HubProcess, base_env, free_port
from tests.test_secrets import (
    BASE,
    CONFIGURED,
    HOSTED_APP_SECRET,
    OWN,
    Flow,
    connect_every_kind,
    eventually,
    platform_settings,
    running_hub,
    telegram_round_trip,
    with_store,
)

# A Fernet token: version 0x80 and a 64-bit timestamp whose high bytes are zero, then at
# least 65 more bytes (IV, one block, HMAC), in url-safe base64.
FERNET = re.compile(r"gAAAAA[A-Za-z0-9_\-]{80,}={0,2}")


def marked() -> set[str]:
    return {f"{c.table.name}.{c.name}" for c in sealed_columns()}  # type: ignore[attr-defined]


@pytest.mark.unit
def test_the_marked_columns_are_text_in_tables_with_a_primary_key() -> None:
    found = list(sealed_columns())
    assert {"channels.secrets", "webhook_endpoints.secret"} <= marked()
    for column in found:
        assert column.info == SEALED
        assert isinstance(column.type, sa.Text | sa.String), column
        assert column.table.primary_key.columns, column  # rotation walks by primary key


def fernet_columns(database: Path) -> dict[str, int]:
    """Every column of every table holding a value with a Fernet token in it, with a count."""
    found: dict[str, int] = {}
    conn = sqlite3.connect(database)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for name, value in zip(names, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if FERNET.search(text):
                        found[f"{table}.{name}"] = found.get(f"{table}.{name}", 0) + 1
    finally:
        conn.close()
    return found


def test_every_column_holding_fernet_tokens_is_marked_sealed(
    settings: Settings, receiver: Receiver
) -> None:
    """Seeds every feature that seals something (every kind of channel secret, an outbound
    webhook, a two-factor secret), then reads every value of every table: a column that holds
    a Fernet token and is not marked would be skipped by `hub rotate-keys`, and breaks once
    the old key goes."""
    with running_fake() as fake:
        settings = platform_settings(settings, fake).with_overrides(hooks_allow_private=True)
        [tenant] = prepare(settings, "acme")
        with running_hub(settings, tenant) as flow:
            connect_every_kind(flow)
            flow.call(
                "POST", "/api/hooks", json={"url": receiver.url, "events": ["message.created"]}
            )
            # A TOTP secret: two-factor is the person's own, from a session (not a token).
            login = {"email": tenant.email, "password": tenant.password}
            signed = flow.client.post("/api/auth/login", json=login)
            csrf = {"x-csrf-token": signed.json()["csrf_token"]}
            setup = flow.client.post("/api/me/two-factor/setup", headers=csrf)
            code = pyotp.TOTP(setup.json()["secret"]).now()
            confirmed = flow.client.post(
                "/api/me/two-factor/confirm", json={"code": code}, headers=csrf
            )
            assert confirmed.status_code == 200, confirmed.text
    found = fernet_columns(Path(settings.database_url.split("///", 1)[1]))
    seeded = {"channels.secrets", "webhook_endpoints.secret", "users.totp_secret"}
    assert seeded <= found.keys()  # the scan sees them
    assert set(found) <= marked(), f"sealed but not marked: {sorted(set(found) - marked())}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as made:
        yield made


# End to end: rotate, drop the old key, restart


def signed_meta(flow: Flow, channel: str, app_secret: str, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    digest = hmac.new(app_secret.encode(), data, hashlib.sha256).hexdigest()
    answer = flow.client.post(
        f"/webhooks/meta/{flow.channels[channel]['id']}",
        content=data,
        headers={"x-hub-signature-256": f"sha256={digest}"},
    )
    assert answer.status_code == 200 and answer.json()["accepted"] >= 1, answer.text


def reply_is_sent(flow: Flow, fake: FakePlatform, kind: str, text: str) -> None:
    """The newest conversation of that kind gets an agent's reply, which the fake platform
    accepts: the channel's access token opened."""

    def conversation() -> Any:
        items = flow.call("GET", "/api/conversations").json()["items"]
        return next((c for c in items if c["channel_kind"] == kind), None)

    path = f"/api/conversations/{eventually(conversation)['id']}/messages"
    sent = flow.call("POST", path, json={"client_id": uuid.uuid4().hex, "text": text}).json()

    def status() -> Any:
        mine = [m for m in flow.call("GET", path).json()["items"] if m["id"] == sent["message_id"]]
        return mine and mine[0]["status"] in ("sent", "failed") and mine[0]

    assert eventually(status)["status"] == "sent"
    assert any(text in json.dumps(r.body) for r in fake.requests)


def every_channel_works(flow: Flow, fake: FakePlatform, label: str) -> None:
    page = flow.channels["messenger"]
    handshake = {"hub.mode": "subscribe", "hub.challenge": "77", "hub.verify_token": ""}
    handshake["hub.verify_token"] = page["webhook"]["verify_token"]
    assert flow.call("GET", f"/webhooks/meta/{page['id']}", params=handshake).text == "77"

    body = load("messenger/webhook_text_full.json")
    entry = body["entry"][0]
    entry["id"] = entry["messaging"][0]["recipient"]["id"] = MESSENGER.account_id
    entry["time"] = entry["messaging"][0]["timestamp"] = int((time.time() - 60) * 1000)
    entry["messaging"][0]["message"]["mid"] = "m_" + uuid.uuid4().hex
    signed_meta(flow, "messenger", OWN["messenger_app_secret"], body)
    reply_is_sent(flow, fake, "messenger", f"Messenger {label}")

    body = load("whatsapp/message_text.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    value["messages"][0]["timestamp"] = str(int(time.time() - 60))
    value["messages"][0]["id"] = "wamid." + uuid.uuid4().hex
    signed_meta(flow, "whatsapp", OWN["whatsapp_app_secret"], body)
    reply_is_sent(flow, fake, "whatsapp", f"WhatsApp {label}")

    telegram_round_trip(flow, fake, f"Telegram {label}")

    identity = flow.secrets["identity_secret"]
    user_hash = hmac.new(identity.encode(), b"customer-9", hashlib.sha256).hexdigest()
    visitor = {"channel": flow.tenant.public_key, "user_id": "customer-9", "user_hash": user_hash}
    flow.call("POST", "/api/widget/token", json=visitor, headers={"origin": ORIGIN})


def hook_delivers_signed(
    flow: Flow, hub: HubProcess, receiver: Receiver, secret: str, text: str
) -> None:
    """A visitor's message reaches the receiver, signed with the endpoint's one secret."""
    body = {"channel": flow.tenant.public_key}
    token = flow.call("POST", "/api/widget/token", json=body, headers={"origin": ORIGIN})
    with connect(hub.ws_url + "/ws/visitor", additional_headers={"origin": ORIGIN}) as ws:
        ws.send(json.dumps({"type": "hello", "token": token.json()["token"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": "c1", "text": text}))
        while (frame := json.loads(ws.recv(timeout=10)))["type"] not in ("ack", "error"):
            pass
        assert frame["type"] == "ack", frame

    def arrived() -> Any:
        return [r for r in receiver.requests if text in r["body"]]

    [request] = eventually(arrived)
    headers, body = request["headers"], request["body"]
    expected = hmac.new(
        secret.encode(), f"{headers['x-hub-timestamp']}.{body}".encode(), hashlib.sha256
    ).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"


@pytest.mark.postgres
def test_rotate_drop_the_old_key_restart_and_everything_still_works(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver
) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with running_fake() as fake, own_database(request, tmp_path, "postgres") as db:
        urls = fake.base_urls()
        common = dict(
            HUB_SECRET_KEY="s" * 48,
            HUB_DATA_DIR=str(tmp_path),
            DATABASE_URL=db.database_url,
            HUB_PUBLIC_URL=BASE,
            HUB_META_APP_SECRET=HOSTED_APP_SECRET,
            HUB_GRAPH_URL=urls.graph,
            HUB_INSTAGRAM_GRAPH_URL=urls.instagram,
            HUB_TELEGRAM_API_URL=urls.telegram,
            HUB_INSTAGRAM_OAUTH_URL=urls.instagram.rsplit("/instagram", 1)[0] + "/iglogin/oauth",
            HUB_INSTAGRAM_APP_ID=FakePlatform.IG_APP_ID,
            HUB_INSTAGRAM_APP_SECRET=FakePlatform.IG_APP_SECRET,
            HUB_HOOKS_ALLOW_PRIVATE="true",
        )
        lists = (key_a, f"{key_b},{key_a}", key_b)
        env = {keys: base_env(**common, HUB_ENCRYPTION_KEYS=keys) for keys in lists}
        [tenant] = prepare(Settings.from_env(env[key_a]), "acme")
        flow = Flow(httpx.Client(), tenant)

        def serving(keys: str) -> HubProcess:
            port = free_port()
            log = tmp_path / f"serve-{len(list(tmp_path.glob('serve-*')))}.log"
            hub = HubProcess(["serve", "--port", str(port)], env[keys], port, log).start()
            flow.client = httpx.Client(base_url=hub.base_url, timeout=10)
            return hub

        hub = serving(key_a)
        try:
            connect_every_kind(flow)
            made = flow.call(
                "POST", "/api/hooks", reveal=True,
                json={"url": receiver.url, "events": ["message.created"]},
            ).json()  # fmt: skip
            hook_secret = made["secret"]
            every_channel_works(flow, fake, "under key A")
            hook_delivers_signed(flow, hub, receiver, hook_secret, "Hook under key A")
        finally:
            hub.stop()
        under_a = sealed_values(Settings.from_env(env[key_a]))
        assert {name for name, _ in under_a} >= {"channels.secrets", "webhook_endpoints.secret"}

        hub = serving(f"{key_b},{key_a}")  # the new key first, on every process
        try:
            rotated = subprocess.run(
                [sys.executable, "-m", "hub.cli", "rotate-keys", "--batch", "2"],
                env=env[f"{key_b},{key_a}"], capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert rotated.returncode == 0, rotated.stderr
            assert f"Rotated {len(under_a)} sealed secrets" in rotated.stdout
            assert "webhook_endpoints.secret: 1 rotated" in rotated.stdout
            assert "channels.secrets: " in rotated.stdout
        finally:
            printed = hub.stop()
        assert "Traceback" not in printed

        after = sealed_values(Settings.from_env(env[key_b]))
        only_b, only_a = Vault((key_b,)), Vault((key_a,))
        assert len(after) == len(under_a)
        for (name, value), (_, before) in zip(after, under_a, strict=True):
            assert only_b.open(value) == only_a.open(before), name  # the same secret, new key
            with pytest.raises(SecretUnreadable):
                only_a.open(value)

        hub = serving(key_b)  # the old key dropped
        try:
            every_channel_works(flow, fake, "under key B alone")
            hook_delivers_signed(flow, hub, receiver, hook_secret, "Hook under key B alone")
        finally:
            printed = hub.stop()
        assert "Traceback" not in printed and "secret_unreadable" not in printed
        assert not fake.rejected
        leaked = [v for v in (hook_secret, *CONFIGURED.values()) if v in printed]
        assert leaked == []


def sealed_values(settings: Settings) -> list[tuple[str, str]]:
    """(table.column, value) of every sealed value, in a stable order."""

    async def read(store: Any) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        async with store.sessions() as s:
            conn = await s.connection()
            for column in sealed_columns():
                key = list(column.table.primary_key.columns)
                query = sa.select(column).where(column.is_not(None)).order_by(*key)
                name = f"{column.table.name}.{column.name}"
                found += [(name, v) for (v,) in (await conn.execute(query)).all()]
        return found

    return with_store(settings, read)
