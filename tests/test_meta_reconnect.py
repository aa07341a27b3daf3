"""Connecting again an account a workspace has, through another login, and connecting a
number another workspace holds: against the fake platform, through the app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from adapters.meta.instagram_login import Account as IgAccount
from hub.channels import metaapps
from hub.channels.metaapps import AppChannel
from hub.settings import Settings
from schemas.message import utc_now
from tests.fakeonboarding import ES_CODE, FB_USER_ID
from tests.fakeplatform import WABA_ID, WHATSAPP
from tests.helpers import make_tenant
from tests.test_meta_onboarding import PAGE_TWO, PAGE_TWO_IG, Env, connect_pages, make_env

OLD_IG_USER = "ig-app-scoped-7001"


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from make_env(settings)


def by_instagram_login(env: Env, app_user_id: str) -> str:
    """The Instagram account of the second Page connected with Business Login for Instagram,
    as its callback stores it (`Channels.connect_instagram`)."""
    account = IgAccount(PAGE_TWO_IG, "kahve.shop", "https://cdn.example/k.jpg", app_user_id)
    channel = env.client.portal.call(  # type: ignore[union-attr]
        env.services.channels.connect_instagram,
        env.tenant.workspace_id,
        env.tenant.admin_id,
        "IG",
        account,
        "IGAAfake-" + uuid.uuid4().hex,
        utc_now() + timedelta(days=5),
    )
    return str(channel.id)


def app_channel(env: Env, channel_id: str) -> AppChannel:
    channels = env.client.portal.call(  # type: ignore[union-attr]
        metaapps.meta_channels, env.services.store, env.services.vault
    )
    [found] = [c for c in channels if str(c.channel_id) == channel_id]
    return found


def set_routing(env: Env, channel_id: str) -> None:
    """An admin's own setting, which no login owns."""

    async def write() -> None:
        table = SQLModel.metadata.tables["channels"]
        async with env.services.store.sessions() as s, s.begin():
            conn = await s.connection()
            row = (
                await conn.execute(sa.select(table).where(table.c.id == uuid.UUID(channel_id)))
            ).one()
            settings = {**row.settings, "routing": {"mode": "manual"}}
            await conn.execute(
                sa.update(table)
                .where(table.c.id == uuid.UUID(channel_id))
                .values(settings=settings)
            )

    env.client.portal.call(write)  # type: ignore[union-attr]


def test_a_reconnect_through_another_login_leaves_nothing_of_the_previous_one(env: Env) -> None:
    channel_id = by_instagram_login(env, OLD_IG_USER)
    set_routing(env, channel_id)
    due = env.services.channels.instagram_tokens_due
    later = utc_now() + timedelta(days=30)
    assert len(env.client.portal.call(due, later)) == 1  # type: ignore[union-attr]

    made = connect_pages(env)  # the same account, through Facebook Login for Business
    assert made["instagram"]["id"] == channel_id
    [row] = [r for r in env.channel_rows() if str(r["id"]) == channel_id]
    assert (row["connected_by"], row["connected_via"]) == (FB_USER_ID, "facebook_login")
    assert "token_expires_at" not in row["settings"]
    assert "connected_by_user_id" not in row["settings"]
    assert "picture_url" not in row["settings"]
    assert row["settings"]["page_name"] == "Kahve Shop"
    assert row["settings"]["routing"] == {"mode": "manual"}
    # The refresher leaves the Page token alone; the previous person names it no more.
    assert env.client.portal.call(due, later) == []  # type: ignore[union-attr]
    assert not metaapps.connected_by(app_channel(env, channel_id), OLD_IG_USER)
    assert metaapps.connected_by(app_channel(env, channel_id), FB_USER_ID)

    # And back through Business Login for Instagram: nothing of the Page stays.
    assert by_instagram_login(env, "ig-app-scoped-7002") == channel_id
    [row] = [r for r in env.channel_rows() if str(r["id"]) == channel_id]
    assert row["account_ids"] == {"instagram_account_id": PAGE_TWO_IG}
    assert (row["connected_by"], row["connected_via"]) == ("ig-app-scoped-7002", "instagram_login")
    assert "page_name" not in row["settings"] and row["settings"]["token_expires_at"]
    assert row["settings"]["routing"] == {"mode": "manual"}
    assert env.services.vault.open(row["secrets"]).keys() == {"access_token"}
    assert not metaapps.connected_by(app_channel(env, channel_id), FB_USER_ID)
    assert PAGE_TWO not in str(row["account_ids"])


def test_embedded_signup_changes_nothing_at_meta_for_a_number_another_workspace_holds(
    env: Env, settings: Settings
) -> None:
    other = env.client.portal.call(make_tenant, settings, "other")  # type: ignore[union-attr]
    held = env.client.post(
        "/api/channels",
        json={
            "kind": "whatsapp",
            "name": "Theirs",
            "account_id": WHATSAPP.account_id,
            "business_account_id": WABA_ID,
            "access_token": WHATSAPP.token,
        },
        headers={"authorization": f"Bearer {other.api_token}"},
    )
    assert held.status_code == 201, held.text
    env.onboarding.subscribed.clear()
    finished = env.client.post(
        "/api/channels/whatsapp/signup",
        json={"code": ES_CODE, "waba_id": WABA_ID, "phone_number_id": WHATSAPP.account_id},
        headers=env.auth,
    )
    assert finished.status_code == 409, finished.text
    assert env.onboarding.registered == {}  # its PIN at Meta is still the other workspace's
    assert env.onboarding.subscribed == {}
    assert not [r for r in env.fake.requests if r.path.endswith("/register")]


def test_embedded_signup_refuses_a_number_its_waba_does_not_list(env: Env) -> None:
    other_waba = "102000000000077"
    env.onboarding.wabas[other_waba] = ["106540000000099"]
    finished = env.client.post(
        "/api/channels/whatsapp/signup",
        json={"code": ES_CODE, "waba_id": other_waba, "phone_number_id": WHATSAPP.account_id},
        headers=env.auth,
    )
    assert finished.status_code == 400, finished.text
    assert finished.json()["error"]["code"] == "wrong_account"
    assert env.onboarding.registered == {} and env.onboarding.subscribed == {}
    listed = [r for r in env.fake.requests if r.path.endswith("/phone_numbers")]
    assert [r.path.split("/")[-2] for r in listed] == [other_waba]
    assert env.channel_rows() == []
