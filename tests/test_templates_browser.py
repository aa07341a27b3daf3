"""WhatsApp templates in a real Chromium against a real `hub demo` whose WhatsApp channel talks
to the fake platform: the inbox composer offers templates when the 24-hour window is closed
(and says why), shows the chosen one's variables and a live preview, and sends it; the
console lists a channel's templates with their status and syncs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import faketemplates
from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.fakeplatform import WABA_ID, WHATSAPP, FakePlatform, running_fake
from tests.payloads import load
from tests.servers import HubProcess, base_env, demo_seed, free_port

pytestmark = pytest.mark.browser


@dataclass
class Site:
    proc: HubProcess
    seed: dict[str, str]
    fake: FakePlatform
    secret: str
    admin: httpx.Client
    channel_id: str

    @property
    def base(self) -> str:
        return self.proc.base_url

    def customer_writes(self, text: str, age_s: float) -> None:
        body = load("whatsapp/message_text.json")
        value = body["entry"][0]["changes"][0]["value"]
        value["metadata"]["phone_number_id"] = WHATSAPP.account_id
        sender = "90555" + str(uuid.uuid4().int)[:7]
        value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = sender
        message = value["messages"][0]
        message["id"] = "wamid." + uuid.uuid4().hex
        message["timestamp"] = str(int(time.time() - age_s))
        message["text"]["body"] = text
        data = json.dumps(body).encode()
        digest = hmac.new(self.secret.encode(), data, hashlib.sha256).hexdigest()
        answer = httpx.post(
            self.base + "/webhooks/meta",
            content=data,
            headers={"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("templates-hub")
    secret = "app-secret-" + uuid.uuid4().hex
    with running_fake() as fake:
        urls = fake.base_urls()
        port = free_port()
        env = base_env(
            HUB_META_APP_SECRET=secret,
            HUB_GRAPH_URL=urls.graph,
            HUB_INSTAGRAM_GRAPH_URL=urls.instagram,
            HUB_TELEGRAM_API_URL=urls.telegram,
        )
        args = ["demo", "--port", str(port), "--data-dir", str(tmp / "demo-data")]
        proc = HubProcess(args, env, port=port, log_path=tmp / "demo.log").start()
        try:
            seed = demo_seed(tmp)
            admin = api_client(proc.base_url, seed["email"], seed["password"])
            body = {
                "kind": "whatsapp",
                "name": "Shop WhatsApp",
                "account_id": WHATSAPP.account_id,
                "business_account_id": WABA_ID,
                "access_token": WHATSAPP.token,
            }
            answer = admin.post("/api/channels", json=body)
            assert answer.status_code == 201, answer.text
            channel_id = answer.json()["id"]
            wait_until(
                lambda: admin.get(f"/api/channels/{channel_id}/templates").json()["items"],
                what="the templates synced on connect",
            )
            yield Site(proc, seed, fake, secret, admin, channel_id)
            admin.close()
        finally:
            proc.stop()


@pytest.fixture
def page(site: Site, contexts: Any) -> Iterator[Any]:
    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, errors


def template_sends(fake: FakePlatform) -> list[dict[str, Any]]:
    return [
        r.body["template"]
        for r in fake.requests
        if isinstance(r.body, dict) and r.body.get("type") == "template"
    ]


def test_the_composer_offers_templates_when_the_window_is_closed_and_sends_one(
    site: Site, page: Any
) -> None:
    from playwright.sync_api import expect

    word = "late-" + uuid.uuid4().hex[:6]
    site.customer_writes(f"Is my order coming? {word}", age_s=25 * 3600)
    log_in(page, site.base, site.seed["email"], site.seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.locator("[data-ib=filter-status]").select_option("")
    page.locator("[data-ib=conversation]", has_text=word).click()

    window = page.locator("[data-ib=window]")
    expect(window).to_contain_text("WhatsApp only lets a business write first with an approved")
    expect(page.locator("[data-ib=reply]")).to_be_disabled()
    page.locator("[data-ib=templates-open]").click()
    select = page.locator("[data-ib=template-select]")
    expect(select.locator("option")).to_have_count(4)  # the approved ones only
    select.select_option(label="welcome_back · tr")
    values = page.locator("[data-ib=template-value]")
    expect(values).to_have_count(1)
    preview = page.locator("[data-ib=template-preview]")
    expect(preview).to_contain_text("Merhaba {{1}}")
    values.first.fill("Ada")
    expect(preview).to_contain_text("Merhaba Ada, sizi yeniden görmek güzel!")
    screenshot(page, "inbox-template")
    page.locator("[data-ib=template-send]").click()

    sent = wait_until(lambda: template_sends(site.fake), what="the template at the fake")
    assert sent[-1]["name"] == "welcome_back"
    assert sent[-1]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}
    ]
    mine = page.locator("[data-ib=message]", has_text="Merhaba Ada, sizi yeniden görmek güzel!")
    expect(mine).to_have_count(1)
    expect(mine.locator("[data-ib=delivery]")).to_have_attribute("data-status", "sent")
    expect(page.locator("[data-ib=template-form]")).to_be_hidden()
    expect(window).to_have_attribute("data-open", "false")  # the template reopened nothing
    assert site.fake.rejected == []


def test_a_template_the_hub_refuses_is_said_in_words(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    word = "refused-" + uuid.uuid4().hex[:6]
    site.customer_writes(f"Hello again {word}", age_s=30 * 3600)
    faketemplates.of(site.fake).set_status("hello_world", "DISABLED")  # since the last sync
    log_in(page, site.base, site.seed["email"], site.seed["password"])
    page.locator("[data-ib=filter-status]").select_option("")
    page.locator("[data-ib=conversation]", has_text=word).click()
    page.locator("[data-ib=templates-open]").click()
    page.locator("[data-ib=template-select]").select_option(label="hello_world · en_US")
    expect(page.locator("[data-ib=template-preview]")).to_contain_text("Hello World")
    page.locator("[data-ib=template-send]").click()
    failed = page.locator("[data-ib=message]", has_text="Welcome and congratulations!")
    expect(failed).to_contain_text("disabled")


def test_the_console_lists_a_channels_templates_and_syncs_them(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    log_in(page, site.base, site.seed["email"], site.seed["password"], "/admin")
    channel = page.locator("[data-ib=channel]", has_text="Shop WhatsApp")
    channel.locator("[data-ib=templates-open]").click()
    rows = channel.locator("[data-ib=template]")
    expect(rows).to_have_count(len(faketemplates.CATALOGUE))
    expect(channel.locator("[data-ib=template][data-name=spring_sale]")).to_contain_text("PAUSED")
    faketemplates.of(site.fake).set_status("new_offer", "APPROVED")
    channel.locator("[data-ib=templates-sync]").click()
    expect(channel.locator("[data-ib=templates-notice]")).to_contain_text("Synced: 6 templates.")
    expect(channel.locator("[data-ib=template][data-name=new_offer]")).to_have_attribute(
        "data-status", "APPROVED"
    )
    screenshot(page, "admin-templates")
