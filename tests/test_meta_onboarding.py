"""Connecting Meta channels as a business does, end to end against the fake platform:
Facebook Login for Business (Pages picked, subscribed, tokens sealed, messages then arrive),
WhatsApp Embedded Signup (what the JavaScript SDK hands the console, posted to the hub), and
a pasted token checked and subscribed, or refused with Meta's reason."""

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
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from adapters.meta import onboarding as ob
from hub.services import Services
from hub.settings import Settings
from hub.web.app import create_app
from tests import faketemplates
from tests.fakeonboarding import (
    APP_ID,
    APP_SECRET,
    ES_CODE,
    ES_USER_ID,
    FB_CODE,
    FB_LONG,
    FB_SHORT,
    FB_USER_ID,
    MANUAL_PAGE,
    FakeOnboarding,
)
from tests.fakeplatform import (
    ACCOUNTS,
    FB,
    INSTAGRAM,
    MESSENGER,
    WABA_ID,
    WHATSAPP,
    Account,
    FakePlatform,
    running_fake,
)
from tests.helpers import Tenant, prepare
from tests.payloads import load

BASE = "https://hub.example"
PAGE_TWO = "109000000000002"
PAGE_TWO_IG = "17841400000000009"
PAGE_TWO_TOKEN = "EAAfake-page-two-token"


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    @property
    def services(self) -> Services:
        found: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return found

    @property
    def onboarding(self) -> FakeOnboarding:
        return FakeOnboarding.of(self.fake)

    def channel_rows(self) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            async with self.services.store.sessions() as s:
                conn = await s.connection()
                table = SQLModel.metadata.tables["channels"]
                rows = await conn.execute(sa.select(table).where(table.c.kind != "webchat"))
                return [dict(r._mapping) for r in rows.all()]

        found: list[dict[str, Any]] = self.client.portal.call(read)  # type: ignore[union-attr]
        return found


def make_env(settings: Settings) -> Iterator[Env]:
    # The second Page sends too: its Instagram account answers through it.
    with running_fake((*ACCOUNTS, Account(FB, PAGE_TWO, PAGE_TWO_TOKEN))) as fake:
        urls = fake.base_urls()
        root = urls.instagram.rsplit("/instagram", 1)[0]
        settings = settings.with_overrides(
            public_url=BASE,
            meta_app_id=APP_ID,
            meta_app_secret=APP_SECRET,
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            instagram_oauth_url=f"{root}/iglogin/oauth",
            instagram_app_id=FakePlatform.IG_APP_ID,
            instagram_app_secret=FakePlatform.IG_APP_SECRET,
            whatsapp_signup_config_id="771000000000001",
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(create_app(settings, run_worker=True), base_url=BASE) as client:
            yield Env(client, fake, tenant)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from make_env(settings)


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def deliver(env: Env, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(body).encode()
    digest = hmac.new(APP_SECRET.encode(), data, hashlib.sha256).hexdigest()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def page_message(page_id: str, text: str) -> dict[str, Any]:
    body = load("messenger/webhook_text_full.json")
    entry = body["entry"][0]
    message = entry["messaging"][0]
    entry["id"] = message["recipient"]["id"] = page_id
    message["sender"]["id"] = str(2 * 10**15 + uuid.uuid4().int % 10**15)
    message["message"] |= {"text": text, "mid": "mid." + uuid.uuid4().hex}
    entry["time"] = message["timestamp"] = int(time.time() * 1000)
    return body


def instagram_message(account_id: str, text: str) -> dict[str, Any]:
    body = load("instagram/dm_text.json")
    entry = body["entry"][0]
    message = entry["messaging"][0]
    entry["id"] = message["recipient"]["id"] = account_id
    message["sender"]["id"] = str(3 * 10**15 + uuid.uuid4().int % 10**15)
    message["message"] = {"mid": "aWdf" + uuid.uuid4().hex, "text": text}
    entry["time"] = message["timestamp"] = int(time.time() * 1000)
    return body


def whatsapp_message(phone_number_id: str, text: str) -> dict[str, Any]:
    body = load("whatsapp/message_text.json")
    value = body["entry"][0]["changes"][0]["value"]
    body["entry"][0]["id"] = WABA_ID
    value["metadata"]["phone_number_id"] = phone_number_id
    value["messages"][0] |= {"id": "wamid." + uuid.uuid4().hex, "text": {"body": text}}
    value["messages"][0]["timestamp"] = str(int(time.time()))
    return body


def arrived(env: Env, channel_id: str, text: str) -> str:
    """The message reaches the inbox of that channel (stored, listed over REST); answers
    its conversation's id."""

    def found() -> str | None:
        items = env.client.get("/api/conversations", headers=env.auth).json()["items"]
        mine = [
            c["id"]
            for c in items
            if c["channel_id"] == channel_id and c["last_message_preview"] == text
        ]
        return str(mine[0]) if mine else None

    return str(wait(found))


def facebook_sign_in(env: Env) -> str:
    """The admin goes through Facebook Login for Business; answers the picker's ticket."""
    started = env.client.post("/api/channels/facebook/authorize", headers=env.auth)
    assert started.status_code == 200, started.text
    query = parse_qs(urlsplit(started.json()["url"]).query)
    done = env.client.get(
        "/oauth/facebook/callback",
        params={"code": FB_CODE, "state": query["state"][0]},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith("/admin?facebook_pages=")
    return location.split("=", 1)[1]


def connect_pages(env: Env) -> dict[str, dict[str, Any]]:
    ticket = facebook_sign_in(env)
    picked = env.client.post(
        f"/api/channels/facebook/pages/{ticket}",
        json={"messenger": [MESSENGER.account_id], "instagram": [PAGE_TWO]},
        headers=env.auth,
    )
    assert picked.status_code == 201, picked.text
    return {c["kind"]: c for c in picked.json()["items"]}


def test_facebook_login_connects_the_picked_pages_and_their_instagram_accounts(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started = env.client.post("/api/channels/facebook/authorize", headers=env.auth)
    url = urlsplit(started.json()["url"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://www.facebook.com/v23.0/dialog/oauth"
    assert query["client_id"] == [APP_ID] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{BASE}/oauth/facebook/callback"]
    assert query["scope"] == [",".join(ob.SCOPES)] == [",".join(started.json()["scopes"])]
    forged = env.client.get("/oauth/facebook/callback", params={"code": FB_CODE, "state": "x"})
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "oauth_failed"

    ticket = facebook_sign_in(env)
    asked = [r.path.split("/v23.0/", 1)[-1] for r in env.fake.requests]
    assert asked == ["oauth/access_token"] * 2 + ["me"] + ["me/accounts"] * 3  # one Page a call
    assert not env.fake.rejected
    listed = env.client.get(f"/api/channels/facebook/pages/{ticket}", headers=env.auth)
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == [
        {
            "page_id": MESSENGER.account_id,
            "name": "Kahve Co",
            "instagram_account_id": None,
            "instagram_username": None,
            "connected": [],
        },
        {
            "page_id": PAGE_TWO,
            "name": "Kahve Shop",
            "instagram_account_id": PAGE_TWO_IG,
            "instagram_username": "kahve.shop",
            "connected": [],
        },
        {
            "page_id": MANUAL_PAGE.page_id,
            "name": MANUAL_PAGE.name,
            "instagram_account_id": MANUAL_PAGE.instagram_id,
            "instagram_username": MANUAL_PAGE.instagram_username,
            "connected": [],
        },
    ]
    assert "EAA" not in listed.text  # no Page token reaches the browser
    no_ig = env.client.post(
        f"/api/channels/facebook/pages/{ticket}",
        json={"instagram": [MESSENGER.account_id]},
        headers=env.auth,
    )
    assert no_ig.status_code == 400

    picked = env.client.post(
        f"/api/channels/facebook/pages/{ticket}",
        json={"messenger": [MESSENGER.account_id], "instagram": [PAGE_TWO]},
        headers=env.auth,
    )
    assert picked.status_code == 201, picked.text
    made = {c["kind"]: c for c in picked.json()["items"]}
    assert made["messenger"]["name"] == "Kahve Co" and made["instagram"]["name"] == "@kahve.shop"
    subscribed = env.onboarding.subscribed
    assert set(subscribed) == {MESSENGER.account_id, PAGE_TWO}
    assert set(subscribed[PAGE_TWO].split(",")) == set(ob.PAGE_FIELDS)
    assert not env.fake.rejected

    rows = {r["kind"]: r for r in env.channel_rows()}
    tokens = {"messenger": MESSENGER.token, "instagram": "EAAfake-page-two-token"}
    for kind, token in tokens.items():
        row = rows[kind]
        assert token not in row["secrets"] and FB_LONG not in row["secrets"]
        sealed = env.services.vault.open(row["secrets"])
        assert sealed == {"access_token": token} | (
            {"page_id": PAGE_TWO} if kind == "instagram" else {}
        )
        assert (row["connected_by"], row["connected_via"]) == (FB_USER_ID, "facebook_login")
    again = env.client.get(f"/api/channels/facebook/pages/{ticket}", headers=env.auth).json()
    assert [p["connected"] for p in again["items"]] == [["messenger"], ["instagram"], []]

    assert deliver(env, page_message(MESSENGER.account_id, "Merhaba sayfa")) == {
        "accepted": 1,
        "ignored": 0,
    }
    assert deliver(env, instagram_message(PAGE_TWO_IG, "Merhaba IG"))["accepted"] == 1
    arrived(env, made["messenger"]["id"], "Merhaba sayfa")
    conversation = arrived(env, made["instagram"]["id"], "Merhaba IG")

    # The agent answers the Instagram account through its Page, with the Page token.
    answer = env.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"client_id": "ig-1", "text": "Hoş geldiniz"},
        headers=env.auth,
    )
    assert answer.status_code == 202, answer.text
    sent = wait(
        lambda: [r for r in env.fake.requests if r.path == f"/graph/v23.0/{PAGE_TWO}/messages"]
    )
    assert sent[0].headers["authorization"] == f"Bearer {PAGE_TWO_TOKEN}"
    assert sent[0].body["message"] == {"text": "Hoş geldiniz"}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "oauth/access_token" in logged  # httpx's request lines are there, masked
    for secret in (APP_SECRET, FB_CODE, FB_SHORT, FB_LONG, MESSENGER.token, PAGE_TWO_TOKEN):
        assert secret not in logged


def test_a_refused_code_or_an_expired_ticket_connects_nothing(env: Env) -> None:
    started = env.client.post("/api/channels/facebook/authorize", headers=env.auth)
    state = parse_qs(urlsplit(started.json()["url"]).query)["state"][0]
    refused = env.client.get("/oauth/facebook/callback", params={"code": "stolen", "state": state})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "platform_refused"
    assert error["platform"] == {
        "status": 400,
        "code": "100",
        "message": "(#100) Invalid verification code format.",
    }
    missing = env.client.get("/api/channels/facebook/pages/nope", headers=env.auth)
    assert missing.status_code == 404
    assert env.channel_rows() == [] and env.onboarding.subscribed == {}


def test_embedded_signup_registers_the_number_and_subscribes_its_waba(env: Env) -> None:
    config = env.client.get("/api/channels/whatsapp/signup", headers=env.auth)
    assert config.json() == {
        "app_id": APP_ID,
        "config_id": "771000000000001",
        "sdk_version": "v23.0",
    }
    # What the JavaScript SDK delivers: FB.login's code, and the session info message
    # {type: "WA_EMBEDDED_SIGNUP", event: "FINISH", data: {phone_number_id, waba_id}}.
    refused = env.client.post(
        "/api/channels/whatsapp/signup",
        json={"code": "stolen", "waba_id": WABA_ID, "phone_number_id": WHATSAPP.account_id},
        headers=env.auth,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["platform"]["code"] == "100"
    faketemplates.of(env.fake).put(faketemplates.HELLO, waba_id=WABA_ID)
    finished = env.client.post(
        "/api/channels/whatsapp/signup",
        json={
            "code": ES_CODE,
            "waba_id": WABA_ID,
            "phone_number_id": WHATSAPP.account_id,
            "name": "Kahve WA",
        },
        headers=env.auth,
    )
    assert finished.status_code == 201, finished.text
    channel = finished.json()
    assert channel["kind"] == "whatsapp" and channel["status"] == "connected"
    assert WABA_ID in env.onboarding.subscribed
    pin = env.onboarding.registered[WHATSAPP.account_id]
    assert len(pin) == 6 and pin.isdigit()
    [row] = env.channel_rows()
    assert WHATSAPP.token not in row["secrets"] and pin not in row["secrets"]
    assert env.services.vault.open(row["secrets"]) == {"access_token": WHATSAPP.token, "pin": pin}
    assert row["account_ids"] == {
        "phone_number_id": WHATSAPP.account_id,
        "business_account_id": WABA_ID,
    }
    assert (row["connected_by"], row["connected_via"]) == (ES_USER_ID, "embedded_signup")
    assert row["settings"]["display_phone_number"] == "+90 555 000 0001"
    assert deliver(env, whatsapp_message(WHATSAPP.account_id, "Selam"))["accepted"] == 1
    arrived(env, channel["id"], "Selam")
    # Its templates are synced, as for a number connected any other way.
    listed = env.client.get(f"/api/channels/{channel['id']}/templates", headers=env.auth)
    assert [t["name"] for t in listed.json()["items"]] == [faketemplates.HELLO["name"]]


def paste(env: Env, **body: Any) -> Any:
    return env.client.post("/api/channels", json=body, headers=env.auth)


def test_a_pasted_token_is_checked_and_its_account_subscribed(env: Env) -> None:
    bad = paste(env, kind="messenger", name="P", account_id=MESSENGER.account_id, access_token="x")
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": "platform_refused",
        "message": "Meta refused the token: (#190) Invalid OAuth access token - "
        "Cannot parse access token",
        "platform": {
            "status": 400,
            "code": "190",
            "message": "(#190) Invalid OAuth access token - Cannot parse access token",
        },
    }
    other = paste(
        env, kind="messenger", name="P", account_id=PAGE_TWO, access_token=MESSENGER.token
    )
    assert other.status_code == 400 and other.json()["error"]["code"] == "platform_refused"
    wrong_ig = paste(
        env,
        kind="instagram",
        name="IG",
        account_id="17841400000000077",
        page_id=PAGE_TWO,
        access_token="EAAfake-page-two-token",
    )
    assert wrong_ig.status_code == 400 and wrong_ig.json()["error"]["code"] == "wrong_account"
    assert env.channel_rows() == [] and env.onboarding.subscribed == {}
    assert len(env.fake.rejected) == 2  # the bad token and the other Page's
    env.fake.rejected.clear()

    page = paste(
        env,
        kind="messenger",
        name="Page",
        account_id=MESSENGER.account_id,
        access_token=MESSENGER.token,
    )
    assert page.status_code == 201, page.text
    assert (page.json()["subscribed"], page.json()["subscribe_note"]) == (True, None)
    via_page = paste(
        env,
        kind="instagram",
        name="IG",
        account_id=PAGE_TWO_IG,
        page_id=PAGE_TWO,
        access_token="EAAfake-page-two-token",
    )
    assert via_page.status_code == 201 and via_page.json()["subscribed"] is True
    assert set(env.onboarding.subscribed) == {MESSENGER.account_id, PAGE_TWO}
    number = paste(
        env,
        kind="whatsapp",
        name="WA",
        account_id=WHATSAPP.account_id,
        business_account_id=WABA_ID,
        access_token=WHATSAPP.token,
    )
    assert number.status_code == 201 and number.json()["subscribed"] is True
    assert WABA_ID in env.onboarding.subscribed
    login_token = paste(
        env,
        kind="instagram",
        name="IG login",
        account_id=INSTAGRAM.account_id,
        access_token=INSTAGRAM.token,
    )
    assert login_token.status_code == 201 and login_token.json()["subscribed"] is True
    [ig_subscribe] = [
        r
        for r in env.fake.requests
        if r.path.startswith("/instagram/") and r.path.endswith("/subscribed_apps")
    ]
    assert INSTAGRAM.account_id in ig_subscribe.path
    assert not env.fake.rejected

    rows = {str(r["id"]): r for r in env.channel_rows()}
    assert rows[login_token.json()["id"]]["connected_by"] == "1"  # /me's app-scoped id
    assert rows[page.json()["id"]]["connected_by"] is None  # a Page token names no person
    assert rows[via_page.json()["id"]]["account_ids"]["page_id"] == PAGE_TWO
    assert deliver(env, page_message(MESSENGER.account_id, "Pasted works"))["accepted"] == 1
    arrived(env, page.json()["id"], "Pasted works")


def test_an_unreachable_platform_connects_unchecked_and_says_so(settings: Settings) -> None:
    closed = "http://127.0.0.1:9/graph/v23.0"  # the discard port: nothing listens
    settings = settings.with_overrides(public_url=BASE, graph_url=closed)
    [tenant] = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url=BASE) as client:
        answer = client.post(
            "/api/channels",
            json={"kind": "messenger", "name": "P", "account_id": "42", "access_token": "t"},
            headers={"authorization": f"Bearer {tenant.api_token}"},
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["subscribed"] is False
    assert "could not be reached" in answer.json()["subscribe_note"]
