"""Meta's deauthorize and data-deletion callbacks for the person who connected channels, by
the app-scoped id each login stored: the Facebook user of Facebook Login for Business, and
the Instagram professional account of Business Login for Instagram. Against the fake
platform, through the app with its worker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from hub.settings import Settings
from tests.fakeonboarding import APP_SECRET, FB_USER_ID
from tests.fakeplatform import INSTAGRAM, MESSENGER, WABA_ID, WHATSAPP, FakePlatform
from tests.test_meta_onboarding import (
    BASE,
    PAGE_TWO_IG,
    Env,
    arrived,
    connect_pages,
    deliver,
    instagram_message,
    make_env,
    page_message,
    wait,
    whatsapp_message,
)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from make_env(settings)


def sign(user_id: str, secret: str) -> dict[str, str]:
    payload = {"algorithm": "HMAC-SHA256", "issued_at": int(time.time()), "user_id": user_id}
    segment = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    digest = hmac.new(secret.encode(), segment.encode(), hashlib.sha256).digest()
    return {"signed_request": base64.urlsafe_b64encode(digest).decode().rstrip("=") + "." + segment}


def statuses(env: Env) -> dict[str, tuple[str, bool]]:
    return {str(r["id"]): (r["status"], r["secrets"] is not None) for r in env.channel_rows()}


def conversations(env: Env) -> dict[str, int]:
    """How many conversations each channel has, read from the database."""

    async def read() -> dict[str, int]:
        table = SQLModel.metadata.tables["conversations"]
        query = sa.select(table.c.channel_id, sa.func.count()).group_by(table.c.channel_id)
        async with env.services.store.sessions() as s:
            conn = await s.connection()
            return {str(c): int(n) for c, n in (await conn.execute(query)).all()}

    found: dict[str, int] = env.client.portal.call(read)  # type: ignore[union-attr]
    return found


def audited(env: Env, action: str) -> set[str]:
    async def read() -> set[str]:
        table = SQLModel.metadata.tables["audit_events"]
        async with env.services.store.sessions() as s:
            conn = await s.connection()
            rows = await conn.execute(sa.select(table).where(table.c.action == action))
            return {str(r.target_id) for r in rows.all() if r.actor_type == "platform"}

    found: set[str] = env.client.portal.call(read)  # type: ignore[union-attr]
    return found


def deletion_state(env: Env, code: str) -> str:
    answer = env.client.get(f"/privacy/deletion/{code}", headers={"accept": "application/json"})
    return str(answer.json()["status"])


def erase_with_platform_deletion(env: Env) -> None:
    changed = env.client.patch(
        "/api/workspace", json={"platform_deletion_erases": True}, headers=env.auth
    )
    assert changed.status_code == 200 and changed.json()["platform_deletion_erases"] is True


def test_facebook_logins_person_deauthorizes_then_asks_for_deletion(env: Env) -> None:
    pasted = env.client.post(  # a WhatsApp number pasted in: no Facebook user recorded
        "/api/channels",
        json={
            "kind": "whatsapp",
            "name": "WA",
            "account_id": WHATSAPP.account_id,
            "business_account_id": WABA_ID,
            "access_token": WHATSAPP.token,
        },
        headers=env.auth,
    ).json()
    made = connect_pages(env)
    deliver(env, page_message(MESSENGER.account_id, "Page 1"))
    deliver(env, instagram_message(PAGE_TWO_IG, "IG 1"))
    deliver(env, whatsapp_message(WHATSAPP.account_id, "WA 1"))
    for channel, text in ((made["messenger"], "Page 1"), (made["instagram"], "IG 1")):
        arrived(env, channel["id"], text)
    arrived(env, pasted["id"], "WA 1")
    theirs = {made["messenger"]["id"], made["instagram"]["id"]}

    nobody = env.client.post("/privacy/meta/deauthorize", data=sign("10169999999999", APP_SECRET))
    assert nobody.json() == {}
    assert set(statuses(env).values()) == {("connected", True)}
    with env.client.websocket_connect("/ws/agent") as agent:
        agent.send_text(json.dumps({"type": "hello", "token": env.tenant.api_token}))
        assert agent.receive_json()["type"] == "welcome"
        gone = env.client.post("/privacy/meta/deauthorize", data=sign(FB_USER_ID, APP_SECRET))
        assert gone.status_code == 200 and gone.json() == {}
        seen = set()
        while seen != theirs:
            frame = agent.receive_json()
            if frame.get("name") == "channel.updated":
                assert frame["data"]["status"] == "disconnected"
                seen.add(frame["data"]["channel_id"])
    after = statuses(env)
    assert {after[c] for c in theirs} == {("disconnected", False)}
    assert after[pasted["id"]] == ("connected", True)
    assert audited(env, "channel.deauthorized") == theirs
    assert all(conversations(env).get(c) == 1 for c in theirs)  # deauthorizing keeps them
    assert deliver(env, page_message(MESSENGER.account_id, "after"))["accepted"] == 0

    # Connected again, and this time the workspace erases with a platform deletion.
    again = connect_pages(env)
    erase_with_platform_deletion(env)
    deliver(env, page_message(MESSENGER.account_id, "Page 2"))
    arrived(env, again["messenger"]["id"], "Page 2")
    theirs |= {again["messenger"]["id"], again["instagram"]["id"]}
    asked = env.client.post("/privacy/meta/data-deletion", data=sign(FB_USER_ID, APP_SECRET))
    assert asked.status_code == 200, asked.text
    code = asked.json()["confirmation_code"]
    assert asked.json() == {"url": f"{BASE}/privacy/deletion/{code}", "confirmation_code": code}
    assert wait(lambda: deletion_state(env, code) == "done")
    after = statuses(env)
    assert {after[c] for c in theirs} == {("disconnected", False)}
    assert after[pasted["id"]] == ("connected", True)
    left = conversations(env)
    assert not any(left.get(c) for c in theirs)  # every conversation of their channels
    assert left[pasted["id"]] == 1  # the pasted number's stays
    assert audited(env, "channel.deletion_requested") == {
        again["messenger"]["id"],
        again["instagram"]["id"],
    }


def instagram_login(env: Env) -> str:
    started = env.client.post(
        "/api/channels/instagram/authorize", json={"name": "Shop IG"}, headers=env.auth
    )
    state = parse_qs(urlsplit(started.json()["url"]).query)["state"][0]
    done = env.client.get(
        "/oauth/instagram/callback",
        params={"code": FakePlatform.IG_CODE, "state": state},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return str(done.headers["location"].split("=", 1)[1])


def test_instagram_business_logins_account_deauthorizes_then_asks_for_deletion(env: Env) -> None:
    secret = FakePlatform.IG_APP_SECRET  # Business Login for Instagram's app signs these
    first = instagram_login(env)
    [row] = env.channel_rows()
    assert (row["connected_by"], row["connected_via"]) == ("1", "instagram_login")
    deliver(env, instagram_message(INSTAGRAM.account_id, "Hi"))
    arrived(env, first, "Hi")
    assert env.client.post("/privacy/meta/deauthorize", data=sign("1", secret)).json() == {}
    assert statuses(env)[first] == ("disconnected", False)
    assert conversations(env)[first] == 1

    # Without the workspace's say-so a deletion disconnects and keeps the conversations.
    second = instagram_login(env)
    asked = env.client.post("/privacy/meta/data-deletion", data=sign("1", secret))
    code = asked.json()["confirmation_code"]
    assert wait(lambda: deletion_state(env, code) in ("done", "no_data"))
    assert statuses(env)[second] == ("disconnected", False)
    assert conversations(env)[first] == 1

    third = instagram_login(env)
    erase_with_platform_deletion(env)
    deliver(env, instagram_message(INSTAGRAM.account_id, "Again"))
    arrived(env, third, "Again")
    asked = env.client.post("/privacy/meta/data-deletion", data=sign("1", secret))
    code = asked.json()["confirmation_code"]
    assert wait(lambda: deletion_state(env, code) == "done")
    assert statuses(env)[third] == ("disconnected", False)
    left = conversations(env)
    assert not left.get(first) and not left.get(third)
    assert len({first, second, third}) == 3  # a new channel each time: routing was removed


def waiting_rows(env: Env) -> list[str]:
    """The channels of the platform changes still waiting for their message."""

    async def read() -> list[str]:
        table = SQLModel.metadata.tables["waiting_changes"]
        async with env.services.store.sessions() as s:
            conn = await s.connection()
            return [str(r.channel_id) for r in (await conn.execute(sa.select(table))).all()]

    found: list[str] = env.client.portal.call(read)  # type: ignore[union-attr]
    return found


def test_a_platform_deletion_takes_the_changes_waiting_on_their_channels(env: Env) -> None:
    made = connect_pages(env)
    erase_with_platform_deletion(env)
    # A delivery receipt for a message the hub never saw, from someone never stored: it waits
    # on the Page's channel, no contact's.
    receipt = page_message(MESSENGER.account_id, "unused")
    receipt["entry"][0]["messaging"][0] = {
        "sender": {"id": "5550009998887776"},
        "recipient": {"id": MESSENGER.account_id},
        "timestamp": int(time.time() * 1000),
        "delivery": {"mids": ["m_never_seen"], "watermark": int(time.time() * 1000)},
    }
    assert deliver(env, receipt)["accepted"] == 1
    assert wait(lambda: waiting_rows(env) == [made["messenger"]["id"]])
    asked = env.client.post("/privacy/meta/data-deletion", data=sign(FB_USER_ID, APP_SECRET))
    assert asked.status_code == 200, asked.text
    code = asked.json()["confirmation_code"]
    assert wait(lambda: deletion_state(env, code) in ("done", "no_data"))  # no contact stored
    assert waiting_rows(env) == []
