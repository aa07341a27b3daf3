"""Business Login for Instagram end to end against the fake platform: authorize, callback,
token exchanges, account, webhook subscription, routing, and the long-lived token's refresh."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from schemas.message import utc_now
from tests.fakeplatform import INSTAGRAM, FakePlatform, running_fake
from tests.helpers import Tenant, prepare
from tests.payloads import load

BASE = "https://hub.example"


@pytest.fixture
def env(settings: Settings) -> Iterator[tuple[TestClient, FakePlatform, Tenant]]:
    with running_fake() as fake:
        root = fake.base_urls().instagram.rsplit("/instagram", 1)[0]
        settings = settings.with_overrides(
            public_url=BASE,
            meta_app_secret="hosted-meta-secret",
            instagram_graph_url=fake.base_urls().instagram,
            instagram_oauth_url=f"{root}/iglogin/oauth",
            instagram_app_id=FakePlatform.IG_APP_ID,
            instagram_app_secret=FakePlatform.IG_APP_SECRET,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(create_app(settings, run_worker=True), base_url=BASE) as client:
            yield client, fake, tenant


def start(client: TestClient, tenant: Tenant) -> dict[str, list[str]]:
    answer = client.post(
        "/api/channels/instagram/authorize",
        json={"name": "Shop IG"},
        headers={"authorization": f"Bearer {tenant.api_token}"},
    )
    assert answer.status_code == 200, answer.text
    return parse_qs(urlsplit(answer.json()["url"]).query)


def test_connecting_an_instagram_account(env: tuple[TestClient, FakePlatform, Tenant]) -> None:
    client, fake, tenant = env
    query = start(client, tenant)
    assert query["scope"] == [
        "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments"
    ]
    assert query["redirect_uri"] == [f"{BASE}/oauth/instagram/callback"]
    done = client.get(
        "/oauth/instagram/callback",
        params={"code": FakePlatform.IG_CODE, "state": query["state"][0]},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/?connected=")
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == [
        "access_token",
        "access_token",
        "me",
        "subscribed_apps",
    ]
    assert not fake.rejected
    auth = {"authorization": f"Bearer {tenant.api_token}"}
    listed = client.get("/api/channels", headers=auth)
    [channel] = [c for c in listed.json()["items"] if c["kind"] == "instagram"]
    assert (
        channel["name"] == "Shop IG" and channel["status"] == "connected" and channel["has_secrets"]
    )
    assert INSTAGRAM.token not in listed.text

    body = load("instagram/dm_text.json")  # now routed to the new channel by its account id
    body["entry"][0]["id"] = INSTAGRAM.account_id
    body["entry"][0]["messaging"][0]["recipient"]["id"] = INSTAGRAM.account_id
    data = json.dumps(body).encode()
    signature = hmac.new(b"hosted-meta-secret", data, hashlib.sha256).hexdigest()
    routed = client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={signature}"}
    )
    assert routed.json() == {"accepted": 1, "ignored": 0}


def test_a_forged_or_cancelled_callback_connects_nothing(
    env: tuple[TestClient, FakePlatform, Tenant],
) -> None:
    client, fake, tenant = env
    forged = client.get(
        "/oauth/instagram/callback", params={"code": FakePlatform.IG_CODE, "state": "forged"}
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "oauth_failed"
    state = start(client, tenant)["state"][0]
    cancelled = client.get(
        "/oauth/instagram/callback",
        params={"error": "access_denied", "state": state},
        follow_redirects=False,
    )
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/?instagram=cancelled"
    wrong_code = client.get("/oauth/instagram/callback", params={"code": "stolen", "state": state})
    assert wrong_code.status_code == 400
    assert not [r for r in fake.requests if r.path.endswith("subscribed_apps")]
    channels = client.get(
        "/api/channels", headers={"authorization": f"Bearer {tenant.api_token}"}
    ).json()
    assert [c for c in channels["items"] if c["kind"] == "instagram"] == []


def connect(client: TestClient, tenant: Tenant) -> str:
    state = start(client, tenant)["state"][0]
    done = client.get(
        "/oauth/instagram/callback",
        params={"code": FakePlatform.IG_CODE, "state": state},
        follow_redirects=False,
    )
    return done.headers["location"].split("=", 1)[1]


def test_tokens_are_refreshed_before_they_expire(
    env: tuple[TestClient, FakePlatform, Tenant],
) -> None:
    client, fake, tenant = env
    channel_id = uuid.UUID(connect(client, tenant))
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    refresher = services.token_refresher()
    assert client.portal.call(refresher.refresh_due, utc_now()) == 0  # 60 days left: not yet  # type: ignore[union-attr]
    later = utc_now() + timedelta(days=55)
    assert client.portal.call(refresher.refresh_due, later) == 1  # type: ignore[union-attr]
    [asked] = [r for r in fake.requests if r.path.endswith("/refresh_access_token")]
    assert asked.body["access_token"] == INSTAGRAM.token
    resolved = client.portal.call(services.channels.by_id, channel_id)  # type: ignore[union-attr]
    assert resolved.secrets["access_token"].startswith("IGQrefreshed-")


def test_a_failed_refresh_asks_for_a_reconnect(
    env: tuple[TestClient, FakePlatform, Tenant],
) -> None:
    client, fake, tenant = env
    connect(client, tenant)
    fake.fail_next(
        "/refresh_access_token", 400, {"error": {"message": "Session expired", "code": 190}}
    )
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    later = utc_now() + timedelta(days=55)
    assert client.portal.call(services.token_refresher().refresh_due, later) == 0  # type: ignore[union-attr]
    channels = client.get(
        "/api/channels", headers={"authorization": f"Bearer {tenant.api_token}"}
    ).json()
    assert [c["status"] for c in channels["items"] if c["kind"] == "instagram"] == [
        "needs_reconnect"
    ]
