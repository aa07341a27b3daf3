"""In a real Chromium: a Telegram group's thread names each participant, and a
click-to-WhatsApp ad's referral is shown to the agent (issue 21, items 3 and 8)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browserkit import log_in
from tests.fakeplatform import TELEGRAM, WHATSAPP, running_fake
from tests.payloads import load
from tests.servers import HubProcess, base_env, demo_seed, free_port
from tests.test_admin_browser import signed_in
from tests.test_inbox_browser import Site

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path: Path, browser: Any) -> Iterator[Site]:
    """A demo hub with an https public URL (Telegram takes only https webhooks)."""
    secret = "app-secret-" + uuid.uuid4().hex
    with running_fake() as fake:
        urls = fake.base_urls()
        port = free_port()
        env = base_env(
            HUB_PUBLIC_URL="https://hub.example",
            HUB_META_APP_SECRET=secret,
            HUB_GRAPH_URL=urls.graph,
            HUB_TELEGRAM_API_URL=urls.telegram,
        )
        args = ["demo", "--port", str(port), "--data-dir", str(tmp_path / "demo-data")]
        proc = HubProcess(args, env, port=port, log_path=tmp_path / "demo.log").start()
        try:
            seed = demo_seed(tmp_path)
            with signed_in(proc.base_url, seed["email"], seed["password"]) as admin:
                body = {
                    "kind": "whatsapp",
                    "name": "Shop WhatsApp",
                    "account_id": WHATSAPP.account_id,
                    "access_token": WHATSAPP.token,
                }
                assert admin.post("/api/channels", json=body).status_code == 201
                yield Site(proc, seed, fake, secret, admin, tmp_path / "demo-data")
        finally:
            proc.stop()


def test_a_group_names_its_participants_and_an_ad_referral_is_shown(
    site: Site, contexts: Any
) -> None:
    from playwright.sync_api import expect

    agent = contexts().new_page()
    errors: list[str] = []
    agent.on("pageerror", lambda error: errors.append(str(error)))
    log_in(agent, site.base, site.seed["email"], site.seed["password"])
    expect(agent.locator("[data-ib=status]")).to_have_text("Live")  # live before the updates
    channel = site.admin.post(
        "/api/channels", json={"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token}
    )
    assert channel.status_code == 201, channel.text
    secret = channel.json()["webhook"]["secret_token"]
    first = load("telegram/update_group_text_message.json")
    first["message"]["date"] = int(time.time()) - 10
    second = copy.deepcopy(first)
    second["update_id"] += 1
    second["message"].update(message_id=240, date=first["message"]["date"] + 5, text="me too")
    second["message"]["from"] = {"id": 5550001, "is_bot": False, "first_name": "Ayşe"}
    for update in (first, second):
        answer = httpx.post(
            f"{site.base}/webhooks/telegram/{channel.json()['id']}",
            content=json.dumps(update),
            headers={"x-telegram-bot-api-secret-token": secret},
        )
        assert answer.status_code == 200, answer.text
    row = agent.locator("[data-ib=conversation]", has_text="Bottender")
    expect(row).to_contain_text("Group")
    row.click()
    thread = agent.locator("[data-ib=message][data-direction=in]")
    expect(thread).to_have_count(2)
    expect(thread.nth(0).locator(".meta")).to_contain_text("user_first user_last")
    expect(thread.nth(1).locator(".meta")).to_contain_text("Ayşe")

    body = load("whatsapp/message_text_ctwa_referral.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    value["messages"][0]["timestamp"] = str(int(time.time()))
    site.meta(body)
    agent.locator("[data-ib=conversation]", has_text="Sheena Nelson").click()
    referral = agent.locator("[data-ib=referral]")
    expect(referral).to_contain_text("120226305854810726")
    expect(referral).to_contain_text("Chat with us")
    assert errors == []
