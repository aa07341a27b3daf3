"""The admin console (/admin) in a real Chromium against a real `hub demo` whose Telegram bot
API is the fake platform on loopback: connecting and disconnecting channels, members, the
audit log, web-chat settings, an agent's "Admins only", a phone screen, Turkish, keyboard."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browserkit import log_in, screenshot, wait_until
from tests.fakeonboarding import FakeOnboarding, FakePage
from tests.fakeplatform import MESSENGER, TELEGRAM, WHATSAPP, FakePlatform, running_fake
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join, outbox, token_in, wait_letter
from tests.receiver import Receiver, running_receiver
from tests.servers import HubProcess, base_env, demo_seed, free_port

pytestmark = pytest.mark.browser

PUBLIC = "https://hub.example"  # what the platforms are told (Telegram wants https)
PASSWORD = "initial-password-42"


@dataclass
class Console:
    proc: HubProcess
    seed: dict[str, str]
    fake: FakePlatform
    admin: httpx.Client
    data_dir: Path  # where the demo writes its letters (log-only mail)
    errors: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.proc.base_url

    def add_agent(self, name: str = "Deniz Agent") -> tuple[str, str]:
        email = f"agent-{uuid.uuid4().hex[:8]}@demo.example"
        return email, join(self.admin, {}, email, name, PASSWORD, data_dir=self.data_dir)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Console]:
    tmp: Path = tmp_path_factory.mktemp("admin-hub")
    with running_fake() as fake:
        port = free_port()
        env = base_env(
            HUB_PUBLIC_URL=PUBLIC,
            HUB_TELEGRAM_API_URL=fake.base_urls().telegram,
            HUB_GRAPH_URL=fake.base_urls().graph,  # disconnecting a Page unsubscribes it
            HUB_INSTAGRAM_APP_ID="990000000000001",
            HUB_INSTAGRAM_APP_SECRET="ig-app-secret-for-tests",
            HUB_HOOKS_ALLOW_PRIVATE="true",  # the receiver below is on loopback
            HUB_HOOKS_BACKOFF="0.3,0.3,0.3,0.3,0.3",
            HUB_HOOKS_RETRY_S="0.2",
        )
        args = ["demo", "--port", str(port), "--data-dir", str(tmp / "demo-data")]
        proc = HubProcess(args, env, port=port, log_path=tmp / "demo.log").start()
        try:
            seed = demo_seed(tmp)
            with signed_in(proc.base_url, seed["email"], seed["password"]) as admin:
                yield Console(proc, seed, fake, admin, tmp / "demo-data")
        finally:
            proc.stop()


@contextmanager
def signed_in(base: str, email: str, password: str) -> Iterator[httpx.Client]:
    """Like browserkit.api_client, for a hub whose public URL is https: its session cookie is
    Secure, which httpx keeps off plain http, so the client sends it as a header itself."""
    with httpx.Client(base_url=base, timeout=5) as client:
        answer = client.post("/api/auth/login", json={"email": email, "password": password})
        answer.raise_for_status()
        client.headers["cookie"] = f"hub_session={answer.cookies['hub_session']}"
        client.headers["x-csrf-token"] = answer.json()["csrf_token"]
        client.cookies.clear()
        yield client


def open_console(console: Console, contexts: Any, **options: Any) -> Any:
    """A page logged in to /admin as the demo admin, recording script errors."""
    from playwright.sync_api import expect

    page = contexts(**options).new_page()
    watch(page, console.errors)
    log_in(page, console.base, console.seed["email"], console.seed["password"], "/admin")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("[data-ib=channel]").first).to_be_visible()
    return page


def watch(page: Any, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))

    def console_message(message: Any) -> None:
        # A 401 from /api/me before signing in, or a refusal the test provokes, is expected.
        if message.type == "error" and "the server responded with a status of" not in message.text:
            errors.append(f"console: {message.text}")

    page.on("console", console_message)


def channel_row(page: Any, name: str) -> Any:
    return page.locator("[data-ib=channel]").filter(
        has=page.locator("[data-ib=channel-name]", has_text=re.compile(f"^{re.escape(name)}$"))
    )


@pytest.fixture(autouse=True)
def no_script_errors(console: Console) -> Iterator[None]:
    console.errors.clear()
    yield
    assert console.errors == []


# Signing in, and who may see the console


def test_sign_in_then_channels_with_their_health(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = contexts().new_page()
    watch(page, console.errors)
    page.goto(console.base + "/admin")
    expect(page.locator("[data-ib=login-form]")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    log_in(page, console.base, console.seed["email"], "wrong-password", "/admin")
    expect(page.locator("[data-ib=login-error]")).to_have_text("Wrong e-mail or password.")
    page.locator("[data-ib=login-password]").fill(console.seed["password"])
    page.locator("[data-ib=login-password]").press("Enter")
    site = channel_row(page, "Website chat")
    expect(site).to_have_attribute("data-kind", "webchat")
    expect(site.locator("[data-ib=health]")).to_have_text("Connected")
    expect(site.locator("[data-ib=health]")).to_have_attribute("data-health", "connected")
    expect(site.locator("[data-ib=last-event]")).to_have_text(
        re.compile(r"^(No events yet|Last event .+)$")
    )
    expect(page.locator("[data-ib=me]")).to_have_text("Demo admin")
    expect(page.locator("[data-ib=inbox-link]")).to_have_attribute("href", "/")
    screenshot(page, "admin-channels")


def test_an_agent_sees_admins_only_and_the_api_refuses(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    email, _ = console.add_agent("Ayla Agent")
    page = contexts().new_page()
    watch(page, console.errors)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    log_in(page, console.base, email, PASSWORD, "/admin")
    forbidden = page.locator("[data-ib=forbidden]")
    expect(forbidden).to_be_visible()
    expect(forbidden).to_contain_text("Admins only")
    expect(forbidden.get_by_role("link")).to_have_attribute("href", "/")
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("[data-ib=channel]")).to_have_count(0)
    expect(page.locator("[data-ib=member]")).to_have_count(0)
    assert not {"/api/channels/health", "/api/audit", "/api/members"} & set(asked)

    channel = f"/api/channels/{console.admin.get('/api/channels').json()['items'][0]['id']}"
    with signed_in(console.base, email, PASSWORD) as agent:
        assert agent.get("/api/audit").status_code == 403
        new = {"email": "x@demo.example", "role": "admin"}
        assert agent.post("/api/members", json=new).status_code == 403
        assert agent.patch(channel, json={"name": "Mine"}).status_code == 403
        assert agent.delete(channel).status_code == 403
    page.locator("[data-ib=forbidden-logout]").click()
    expect(page.locator("[data-ib=login-form]")).to_be_visible()


# Channels


def test_connect_telegram_see_what_to_paste_and_disconnect_with_confirmation(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts, permissions=["clipboard-read", "clipboard-write"])
    page.locator("[data-ib=connect-open]").click()
    form = page.locator("[data-ib=connect-form]")
    expect(form).to_be_visible()
    page.locator("[data-ib=connect-kind]").select_option("telegram")
    expect(form.locator("#help-bot")).to_contain_text("@BotFather")
    expect(page.locator("[data-ib=connect-account]")).to_be_hidden()
    page.locator("[data-ib=connect-name]").fill("Support bot")
    page.locator("[data-ib=connect-bot]").fill(TELEGRAM.token)
    page.locator("[data-ib=connect-submit]").click()

    result = page.locator("[data-ib=connected]")
    expect(result).to_be_visible()
    expect(result).to_be_focused()
    expect(result.locator("[data-ib=connected-title]")).to_have_text("“Support bot” is connected")
    url = page.locator("[data-ib=webhook-url]")
    expect(url).to_have_text(re.compile(rf"^{PUBLIC}/webhooks/telegram/[0-9a-f-]{{36}}$"))
    expect(page.locator("[data-ib=token-label]")).to_contain_text("Secret token")
    token = page.locator("[data-ib=verify-token]")
    expect(token).to_have_text(re.compile(r"^[A-Za-z0-9_-]{32,}$"))
    [registered] = [r for r in console.fake.requests if r.path.endswith("/setWebhook")]
    assert registered.body["url"] == url.text_content()  # what Telegram was told, shown
    assert registered.body["secret_token"] == token.text_content()
    expect(form).to_be_hidden()
    assert page.locator("[data-ib=connect-bot]").input_value() == ""  # the token left the page
    page.locator("[data-ib=copy-url]").click()
    expect(page.locator("[data-ib=copied]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url.text_content()
    screenshot(page, "admin-connected", secret="[data-ib=verify-token]")
    page.locator("[data-ib=connected-done]").click()
    expect(result).to_be_hidden()
    expect(token).to_have_text("")  # shown once

    bot = channel_row(page, "Support bot")
    expect(bot.locator("[data-ib=health]")).to_have_text("Connected")
    bot.locator("[data-ib=disconnect]").click()
    dialog = page.locator("[data-ib=confirm-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-ib=confirm-title]")).to_have_text("Disconnect “Support bot”?")
    page.keyboard.press("Escape")  # keyboard: Escape cancels
    expect(dialog).to_be_hidden()
    bot.locator("[data-ib=disconnect]").click()
    page.locator("[data-ib=confirm-cancel]").click()
    expect(dialog).to_be_hidden()
    expect(bot.locator("[data-ib=health]")).to_have_text("Connected")
    assert not [r for r in console.fake.requests if r.path.endswith("/deleteWebhook")]

    bot.locator("[data-ib=disconnect]").click()
    page.locator("[data-ib=confirm-ok]").click()
    expect(bot.locator("[data-ib=health]")).to_have_text("Disconnected")
    expect(bot.locator("[data-ib=health]")).to_have_attribute("data-health", "disconnected")
    expect(bot.locator("[data-ib=disconnect]")).to_have_count(0)
    expect(page.locator("[data-ib=channels-notice]")).to_have_text("“Support bot” is disconnected.")
    wait_until(
        lambda: [r for r in console.fake.requests if r.path.endswith("/deleteWebhook")],
        what="deleteWebhook",
    )
    statuses = {c["name"]: c["status"] for c in console.admin.get("/api/channels").json()["items"]}
    assert statuses["Support bot"] == "disconnected"


def test_disconnecting_can_also_delete_the_channels_data(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    page_id = str(900000000000000 + uuid.uuid4().int % 99999)
    body = {"kind": "messenger", "name": "Old page", "account_id": page_id, "access_token": "t"}
    pages = FakeOnboarding.of(console.fake).pages
    known = FakePage(page_id, "Old page", "t")
    pages.append(known)  # connecting reads the Page with its token
    assert console.admin.post("/api/channels", json=body).status_code == 201
    pages.remove(known)  # then the fake forgets it: unsubscribing it fails
    page = open_console(console, contexts)
    row = channel_row(page, "Old page")
    row.locator("[data-ib=disconnect]").click()
    option = page.locator("[data-ib=confirm-option]")
    expect(option).to_be_visible()
    expect(option).to_have_text("Also delete all conversations and messages of this channel")
    expect(page.locator("[data-ib=confirm-option-box]")).not_to_be_checked()
    page.locator("[data-ib=confirm-option-box]").check()
    page.locator("[data-ib=confirm-ok]").click()
    expect(row.locator("[data-ib=health]")).to_have_text("Disconnected")
    notice = page.locator("[data-ib=channels-notice]")
    expect(notice).to_contain_text("“Old page” is disconnected.")
    expect(notice).to_contain_text("The platform could not be told to stop sending")
    expect(notice).to_contain_text("Deleting its conversations and messages has started.")
    assert [r for r, _ in console.fake.rejected if r.path.endswith(f"/{page_id}/subscribed_apps")]
    audit = console.admin.get("/api/audit", params={"action": "channel.data_deleted"}).json()
    assert audit["items"] and audit["items"][0]["detail"]["deletion_id"]


def test_connect_messenger_with_its_own_app_and_the_verify_token_verifies(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    page.locator("[data-ib=connect-open]").click()
    page.locator("[data-ib=connect-kind]").select_option("messenger")
    expect(page.locator("[data-ib=account-label]")).to_have_text("Page ID")
    expect(page.locator("[data-ib=help-account]")).to_contain_text("Page transparency")
    expect(page.locator("[data-ib=help-token]")).to_contain_text("pages_messaging")
    expect(page.locator("#help-secret")).to_contain_text("App settings → Basic → App secret")
    expect(page.locator("[data-ib=connect-bot]")).to_be_hidden()
    page.locator("[data-ib=connect-name]").fill("Shop Page")
    page.locator("[data-ib=connect-submit]").click()
    expect(page.locator("[data-ib=connect-error]")).to_have_text(
        "Fill in the account ID and the access token."
    )
    page.locator("[data-ib=connect-account]").fill(MESSENGER.account_id)
    page.locator("[data-ib=connect-token]").fill(MESSENGER.token)
    page.locator("[data-ib=connect-secret]").fill("own-app-secret-" + uuid.uuid4().hex)
    page.locator("[data-ib=connect-submit]").click()

    expect(page.locator("[data-ib=connected-steps]")).to_contain_text("Verify and save")
    url = page.locator("[data-ib=webhook-url]")
    expect(url).to_have_text(re.compile(rf"^{PUBLIC}/webhooks/meta/[0-9a-f-]{{36}}$"))
    expect(page.locator("[data-ib=token-label]")).to_have_text("Verify token")
    verify = page.locator("[data-ib=verify-token]").text_content()
    assert verify and len(verify) >= 24
    # The token shown is the one the hub checks when Meta verifies the callback URL.
    path = urlsplit(url.text_content() or "").path
    handshake = {"hub.mode": "subscribe", "hub.verify_token": verify, "hub.challenge": "1158201444"}
    answer = httpx.get(console.base + path, params=handshake)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    wrong = httpx.get(console.base + path, params=handshake | {"hub.verify_token": "nope"})
    assert wrong.status_code == 403

    page.locator("[data-ib=connected-done]").click()
    page.locator("[data-ib=connect-open]").click()  # the same Page again: refused
    page.locator("[data-ib=connect-kind]").select_option("messenger")
    page.locator("[data-ib=connect-name]").fill("Shop Page again")
    page.locator("[data-ib=connect-account]").fill(MESSENGER.account_id)
    page.locator("[data-ib=connect-token]").fill(MESSENGER.token)
    page.locator("[data-ib=connect-submit]").click()
    expect(page.locator("[data-ib=connect-error]")).to_contain_text("already")
    expect(page.locator("[data-ib=connected]")).to_be_hidden()
    expect(channel_row(page, "Shop Page").locator("[data-ib=health]")).to_have_text("Connected")


def test_instagram_goes_through_the_business_login(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    seen: list[str] = []

    def instagram(route: Any) -> None:
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>Instagram login</p>")

    page.route("https://www.instagram.com/**", instagram)
    page.locator("[data-ib=connect-open]").click()
    page.locator("[data-ib=connect-kind]").select_option("instagram")
    expect(page.locator("[data-ib=account-label]")).to_have_text("Instagram account ID")
    page.locator("[data-ib=connect-name]").fill("Shop Instagram")
    page.locator("[data-ib=instagram-login]").click()
    page.wait_for_url("https://www.instagram.com/**")
    [url] = seen
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["990000000000001"]
    assert query["redirect_uri"] == [f"{PUBLIC}/oauth/instagram/callback"]
    assert query["state"][0]


def test_web_chat_settings_are_saved_and_shown_after_reload(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    site = channel_row(page, "Website chat")
    site.locator("[data-ib=channel-settings]").click()
    form = page.locator("[data-ib=webchat-form]")
    expect(form).to_be_visible()
    expect(page.locator("[data-ib=webchat-name]")).to_be_focused()
    expect(page.locator("[data-ib=webchat-snippet]")).to_contain_text(
        f'data-channel="{console.seed["public_key"]}"'
    )
    origins = page.locator("[data-ib=webchat-origins]")
    kept = origins.input_value()
    origins.fill(kept + "\nhttps://shop.example/checkout")
    page.locator("[data-ib=webchat-save]").click()
    expect(page.locator("[data-ib=webchat-error]")).to_contain_text("is not an origin")
    expect(origins).to_have_attribute("aria-invalid", "true")
    expect(origins).to_be_focused()

    origins.fill(kept + "\nHTTPS://Shop.Example:443/")
    page.locator("[data-ib=webchat-widget-title]").fill("Kahve & Co. sohbet")
    page.locator("[data-ib=webchat-greeting]").fill("Merhaba! <b>How</b> can we help?")
    page.locator("[data-ib=webchat-colour]").fill("#0a7f5c")
    page.locator("[data-ib=webchat-locale]").select_option("tr")
    page.locator("[data-ib=webchat-save]").click()
    expect(page.locator("[data-ib=webchat-saved]")).to_have_text("Saved.")
    expect(page.locator("[data-ib=webchat-error]")).to_be_hidden()
    expect(origins).to_have_value(re.compile(r"(^|\n)https://shop\.example$"))

    page.reload()
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    expect(page.locator("[data-ib=webchat-widget-title]")).to_have_value("Kahve & Co. sohbet")
    expect(page.locator("[data-ib=webchat-greeting]")).to_have_value(
        "Merhaba! <b>How</b> can we help?"
    )
    expect(page.locator("[data-ib=webchat-colour]")).to_have_value("#0a7f5c")
    expect(page.locator("[data-ib=webchat-locale]")).to_have_value("tr")
    expect(page.locator("[data-ib=webchat-origins]")).to_have_value(
        re.compile(r"https://shop\.example")
    )
    stored = console.admin.get("/api/channels/health").json()["items"]
    [chat] = [c for c in stored if c["kind"] == "webchat"]
    assert chat["settings"] == {
        "title": "Kahve & Co. sohbet",
        "greeting": "Merhaba! <b>How</b> can we help?",
        "colour": "#0a7f5c",
        "locale": "tr",
        # what the form says about the rest, untouched: the defaults, always open
        "position": "right",
        "prechat": {"enabled": False, "require_email": False},
        "consent_required": False,
        "visitor_info": True,
    }
    assert "https://shop.example" in chat["allowed_origins"]
    page.locator("[data-ib=webchat-close]").click()
    expect(page.locator("[data-ib=webchat-form]")).to_be_hidden()
    expect(channel_row(page, "Website chat").locator("[data-ib=channel-settings]")).to_be_focused()


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def web_chat(console: Console) -> dict[str, Any]:
    [chat] = [
        c for c in console.admin.get("/api/channels").json()["items"] if c["kind"] == "webchat"
    ]
    return dict(console.admin.get(f"/api/channels/{chat['id']}").json())


def test_web_chat_position_prechat_consent_and_business_hours(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    expect(page.locator("[data-ib=webchat-form]")).to_be_visible()
    page.locator("[data-ib=webchat-widget-title]").fill("Kahve & Co.")
    page.locator("[data-ib=webchat-greeting]").fill("Hello!")
    page.locator("[data-ib=webchat-colour]").fill("#0a7f5c")
    page.locator("[data-ib=webchat-locale]").select_option("en")
    page.locator("[data-ib=webchat-position]").select_option("left")
    require_email = page.locator("[data-ib=webchat-prechat-email]")
    expect(require_email).to_be_disabled()  # only with the pre-chat form
    page.locator("[data-ib=webchat-prechat]").check()
    require_email.check()
    consent = page.locator("[data-ib=webchat-consent]")
    expect(page.locator("#help-consent")).to_contain_text("no cookie and no local storage")
    consent.focus()
    page.keyboard.press("Space")  # keyboard: a checkbox toggles with Space
    expect(consent).to_be_checked()

    hours = page.locator("[data-ib=webchat-hours]")
    expect(page.locator("[data-ib=webchat-always-open]")).to_be_checked()
    expect(hours).to_be_hidden()
    page.locator("[data-ib=webchat-set-hours]").check()
    expect(hours).to_be_visible()
    zone = page.locator("[data-ib=webchat-timezone]")
    expect(zone).to_be_focused()
    assert page.locator("#timezones option[value='Europe/Istanbul']").count() == 1
    day = {d: page.locator(f"[data-ib=hours-day][data-day={d}]") for d in (*WEEKDAYS, "sat", "sun")}
    for name in WEEKDAYS:
        day[name].locator("[data-ib=hours-closed]").uncheck()
        day[name].locator("[data-ib=hours-start]").fill("09:00")
        day[name].locator("[data-ib=hours-end]").fill("18:00")
    for name in ("sat", "sun"):
        day[name].locator("[data-ib=hours-closed]").check()
        expect(day[name].locator("[data-ib=hours-start]")).to_be_disabled()
    offline = "We are away: leave a message <b>and</b> we write back."
    page.locator("[data-ib=webchat-offline]").fill(offline)

    # A time zone the hub does not know: the hub's own words, next to the form.
    zone.fill("Europe/Atlantis")
    page.locator("[data-ib=webchat-save]").click()
    chat = web_chat(console)
    bad_hours = {"timezone": "Europe/Atlantis", "days": {"mon": [["09:00", "18:00"]]}}
    refused = console.admin.patch(
        f"/api/channels/{chat['id']}", json={"settings": {"hours": bad_hours}}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_timezone"
    error = page.locator("[data-ib=webchat-error]")
    expect(error).to_have_text(refused.json()["error"]["message"])
    expect(zone).to_have_attribute("aria-invalid", "true")
    expect(zone).to_be_focused()
    assert "hours" not in web_chat(console)["settings"]  # nothing of it was kept

    zone.fill("Europe/Istanbul")
    page.locator("[data-ib=webchat-save]").click()
    expect(page.locator("[data-ib=webchat-saved]")).to_have_text("Saved.")
    expect(error).to_be_hidden()
    expect(zone).not_to_have_attribute("aria-invalid", "true")
    screenshot(page, "admin-webchat-settings")

    page.reload()
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    expect(page.locator("[data-ib=webchat-position]")).to_have_value("left")
    expect(page.locator("[data-ib=webchat-prechat]")).to_be_checked()
    expect(require_email).to_be_enabled()
    expect(require_email).to_be_checked()
    expect(consent).to_be_checked()
    expect(page.locator("[data-ib=webchat-set-hours]")).to_be_checked()
    expect(hours).to_be_visible()
    expect(zone).to_have_value("Europe/Istanbul")
    for name in WEEKDAYS:
        expect(day[name].locator("[data-ib=hours-closed]")).not_to_be_checked()
        expect(day[name].locator("[data-ib=hours-start]")).to_have_value("09:00")
        expect(day[name].locator("[data-ib=hours-end]")).to_have_value("18:00")
    for name in ("sat", "sun"):
        expect(day[name].locator("[data-ib=hours-closed]")).to_be_checked()
    expect(page.locator("[data-ib=webchat-offline]")).to_have_value(offline)

    assert web_chat(console)["settings"] == {
        "title": "Kahve & Co.",
        "greeting": "Hello!",
        "colour": "#0a7f5c",
        "locale": "en",
        "position": "left",
        "prechat": {"enabled": True, "require_email": True},
        "consent_required": True,
        "visitor_info": True,
        "hours": {
            "timezone": "Europe/Istanbul",
            "days": {name: [["09:00", "18:00"]] for name in WEEKDAYS},  # a closed day: left out
            "offline_message": offline,
        },
    }

    # A phone: the week still fits, one day under another.
    page.set_viewport_size({"width": 390, "height": 800})
    expect(day["sun"]).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # Back to always open: the hours go, the rest stays.
    page.locator("[data-ib=webchat-always-open]").check()
    expect(hours).to_be_hidden()
    page.locator("[data-ib=webchat-save]").click()
    expect(page.locator("[data-ib=webchat-saved]")).to_have_text("Saved.")
    settings = web_chat(console)["settings"]
    assert "hours" not in settings
    assert settings["position"] == "left"


def test_identity_secret_is_shown_once_and_turns_verification_on(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    chat = web_chat(console)
    origin = next(o for o in chat["allowed_origins"] if o != "*")

    def widget_config() -> dict[str, Any]:
        answer = httpx.get(
            console.base + "/api/widget/config",
            params={"channel": chat["public_key"]},
            headers={"Origin": origin},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    assert widget_config()["identity"] is False
    page = open_console(console, contexts, permissions=["clipboard-read", "clipboard-write"])
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    section = page.locator("[data-ib=identity]")
    expect(section).to_contain_text("HMAC-SHA256")
    expect(section).to_contain_text("SosyoChat.identify")
    expect(page.locator("[data-ib=identity-example]")).to_contain_text("hashlib.sha256")
    status = page.locator("[data-ib=identity-status]")
    expect(status).to_have_text("Identity verification is off.")
    result = page.locator("[data-ib=identity-result]")
    expect(result).to_be_hidden()

    page.locator("[data-ib=identity-generate]").click()  # no secret yet: nothing to confirm
    expect(result).to_be_visible()
    expect(result).to_be_focused()
    shown = page.locator("[data-ib=identity-secret]")
    expect(shown).to_have_text(re.compile(r"^\S{32,}$"))
    secret = shown.text_content() or ""
    expect(result).to_contain_text("Shown only this once")
    expect(status).to_have_text("Identity verification is on.")
    page.locator("[data-ib=copy-identity-secret]").click()
    expect(page.locator("[data-ib=identity-copied]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert widget_config()["identity"] is True
    assert secret not in str(web_chat(console))  # the channel's JSON never holds it

    # The secret shown is the one the hub checks, computed as the page's example says.
    def identified(user_hash: str) -> httpx.Response:
        body = {"channel": chat["public_key"], "user_id": "42", "user_hash": user_hash}
        return httpx.post(console.base + "/api/widget/token", json=body, headers={"Origin": origin})

    good = hmac.new(secret.encode(), b"42", hashlib.sha256).hexdigest()
    assert identified(good).status_code == 200, identified(good).text
    assert identified(good).json()["identified"] is True
    assert identified("0" * 64).status_code in (400, 401, 403)

    # A new secret would break the one in use: the page asks first; cancelling keeps it.
    page.locator("[data-ib=identity-generate]").click()
    dialog = page.locator("[data-ib=confirm-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-ib=confirm-title]")).to_have_text("Replace the identity secret?")
    page.locator("[data-ib=confirm-cancel]").click()
    expect(dialog).to_be_hidden()
    expect(shown).to_have_text(secret)

    page.locator("[data-ib=webchat-close]").click()  # closing the section clears it
    expect(shown).to_have_text("")
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    expect(result).to_be_hidden()
    expect(shown).to_have_text("")

    page.reload()
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    expect(page.locator("[data-ib=webchat-form]")).to_be_visible()
    expect(status).to_have_text("Identity verification is on.")
    expect(result).to_be_hidden()
    assert secret not in page.content()
    assert widget_config()["identity"] is True


# Members


def test_admin_adds_an_agent_changes_the_role_and_removes_them(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    page.locator("[data-ib=tab-members]").click()
    expect(page.locator("[data-ib=panel-members]")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#members$"))
    email = f"selin-{uuid.uuid4().hex[:6]}@demo.example"
    page.locator("[data-ib=member-email]").fill("")
    page.locator("[data-ib=member-submit]").click()
    expect(page.locator("[data-ib=member-error]")).to_have_text("Fill in the e-mail.")
    page.locator("[data-ib=member-email]").fill(email)
    page.locator("[data-ib=member-submit]").click()
    expect(page.locator("[data-ib=member-added]")).to_have_text(
        f"An invitation is on its way to {email}."
    )
    expect(page.locator(f"[data-ib=invitation][data-email='{email}']")).to_be_visible()
    # The person accepts the e-mailed link (the invite page has its own browser test).
    token = token_in(wait_letter(lambda: outbox(console.data_dir), email), "invite")
    password = STRONG_PASSWORD
    body = {"token": token, "name": "Selin <i>Agent</i>", "password": password}
    assert httpx.post(console.base + "/api/invitations/accept", json=body).status_code == 200
    page.reload()
    page.locator("[data-ib=tab-members]").click()
    expect(page.locator(f"[data-ib=invitation][data-email='{email}']")).to_have_count(0)
    row = page.locator(f"[data-ib=member][data-email='{email}']")
    expect(row).to_contain_text("Selin <i>Agent</i>")  # text, never markup
    expect(row.locator("i")).to_have_count(0)
    expect(row.locator("[data-ib=member-role]")).to_have_value("agent")
    with signed_in(console.base, email, password) as agent:  # the chosen password works
        assert agent.get("/api/me").json()["user"]["role"] == "agent"

        def role() -> str:
            items = console.admin.get("/api/members").json()["items"]
            return str(next(m["role"] for m in items if m["email"] == email))

        row.locator("[data-ib=member-role]").select_option("admin")
        wait_until(lambda: role() == "admin", what="the promotion")
        screenshot(page, "admin-members")
        row.locator("[data-ib=member-role]").select_option("agent")
        wait_until(lambda: role() == "agent", what="the demotion")

        # The demo admin is the last admin: demoting them is refused and the choice undone.
        me = page.locator(f"[data-ib=member][data-email='{console.seed['email']}']")
        expect(me).to_contain_text("(you)")
        expect(me.locator("[data-ib=member-remove]")).to_have_count(0)
        me.locator("[data-ib=member-role]").select_option("agent")
        expect(page.locator("[data-ib=members-error]")).to_contain_text("at least one admin")
        expect(me.locator("[data-ib=member-role]")).to_have_value("admin")

        row.locator("[data-ib=member-remove]").click()
        expect(page.locator("[data-ib=confirm-title]")).to_have_text("Remove Selin <i>Agent</i>?")
        page.locator("[data-ib=confirm-ok]").click()
        expect(row).to_have_count(0)
        assert agent.get("/api/me").status_code == 401  # their session ended with it


# The audit log


def test_audit_log_shows_who_did_what_from_which_ip_and_filters(
    console: Console, contexts: Any
) -> None:
    from playwright.sync_api import expect

    email, agent_id = console.add_agent("Mert Agent")
    with signed_in(console.base, email, PASSWORD):
        pass  # Mert logs in once
    page = open_console(console, contexts)
    page.locator("[data-ib=tab-audit]").click()
    rows = page.locator("[data-ib=audit-row]")
    newest = rows.first
    expect(newest).to_have_attribute("data-action", "login.succeeded")  # this page's login
    expect(newest).to_contain_text("Demo admin")
    expect(newest.locator("[data-ib=audit-ip]")).to_have_text("127.0.0.1")
    screenshot(page, "admin-audit")

    page.locator("[data-ib=audit-action]").select_option("member.")
    page.locator("[data-ib=audit-apply]").click()
    expect(rows.first).to_have_attribute("data-action", re.compile(r"^member\."))
    for action in rows.evaluate_all("rows => rows.map(r => r.dataset.action)"):
        assert action.startswith("member.")
    added = rows.filter(has_text="Mert Agent")
    expect(added.first).to_contain_text("Added a member")
    expect(added.first.locator("[data-ib=audit-ip]")).to_have_text("127.0.0.1")

    page.locator("[data-ib=audit-action]").select_option("login")
    page.locator("[data-ib=audit-actor]").select_option(agent_id)
    page.locator("[data-ib=audit-apply]").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-action", "login.succeeded")
    expect(rows.first).to_contain_text("Mert Agent")
    expect(rows.first.locator("[data-ib=audit-ip]")).to_have_text("127.0.0.1")

    page.locator("[data-ib=audit-since]").fill("2099-01-01T00:00")
    page.locator("[data-ib=audit-apply]").click()
    expect(rows).to_have_count(0)
    expect(page.locator("[data-ib=audit-empty]")).to_be_visible()
    page.locator("[data-ib=audit-reset]").click()
    expect(rows.first).to_be_visible()
    expect(page.locator("[data-ib=audit-empty]")).to_be_hidden()


# A phone, Turkish, the keyboard


def test_phone_screen_turkish_and_keyboard(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts, viewport={"width": 390, "height": 800})
    width = "document.documentElement.scrollWidth"
    assert page.evaluate(width) <= 390  # nothing sticks out sideways
    screenshot(page, "admin-channels-phone")

    channels = page.locator("[data-ib=tab-channels]")
    channels.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-ib=tab-members]")).to_be_focused()
    expect(page.locator("[data-ib=tab-members]")).to_have_attribute("aria-selected", "true")
    expect(page.locator("[data-ib=member]").first).to_be_visible()
    assert page.evaluate(width) <= 390
    screenshot(page, "admin-members-phone")
    page.keyboard.press("End")
    expect(page.locator("[data-ib=panel-audit]")).to_be_visible()
    expect(page.locator("[data-ib=audit-row]").first).to_be_visible()
    assert page.evaluate(width) <= 390
    screenshot(page, "admin-audit-phone")
    page.keyboard.press("Home")
    expect(channels).to_be_focused()
    page.keyboard.press("Tab")  # from the tabs into the panel: the connect button
    expect(page.locator("[data-ib=connect-open]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-ib=connect-kind]")).to_be_focused()

    page.locator("[data-ib=language]").select_option("tr")
    expect(channels).to_have_text("Kanallar")
    expect(page.locator("[data-ib=connect-open]")).to_have_text("Kanal bağla")
    expect(channel_row(page, "Website chat").locator("[data-ib=health]")).to_have_text("Bağlı")
    expect(page.locator("html")).to_have_attribute("lang", "tr")
    channel_row(page, "Website chat").locator("[data-ib=channel-settings]").click()
    expect(page.locator("[data-ib=webchat-hours-group] legend")).to_have_text("Çalışma saatleri")
    monday = page.locator("[data-ib=hours-day][data-day=mon]")
    expect(monday).to_contain_text("Pazartesi")
    expect(monday.locator("[data-ib=hours-start]")).to_have_attribute(
        "aria-label", "Pazartesi: açılış saati"
    )
    expect(page.locator("[data-ib=identity]")).to_contain_text("Kimlik doğrulama")
    assert page.evaluate(width) <= 390
    page.locator("[data-ib=tab-audit]").click()
    expect(page.locator("[data-ib=audit-row]").first).to_contain_text("Giriş yaptı")
    page.locator("[data-ib=language]").select_option("en")
    expect(channels).to_have_text("Channels")


# The workspace's data retention


def test_admin_sets_how_long_messages_are_kept(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    page.locator("[data-ib=tab-workspace]").click()
    expect(page).to_have_url(re.compile(r"#workspace$"))
    current, days = (
        page.locator("[data-ib=retention-current]"),
        page.locator("[data-ib=retention-days]"),
    )
    expect(current).to_have_text("Messages are kept forever.")
    expect(days).to_have_value("")
    days.fill("0")
    page.locator("[data-ib=retention-save]").click()
    expect(page.locator("[data-ib=retention-error]")).to_have_text(
        "Enter a whole number of days from 1 to 3650, or leave it empty."
    )
    expect(days).to_be_focused()
    assert console.admin.get("/api/workspace").json()["retention_days"] is None
    days.fill("400")
    page.locator("[data-ib=retention-save]").click()
    expect(page.locator("[data-ib=retention-saved]")).to_have_text("Saved.")
    expect(page.locator("[data-ib=retention-error]")).to_be_hidden()
    expect(current).to_have_text("Messages are kept for 400 days.")
    assert console.admin.get("/api/workspace").json()["retention_days"] == 400
    screenshot(page, "admin-retention")

    page.locator("[data-ib=language]").select_option("tr")
    expect(page.locator("[data-ib=tab-workspace]")).to_have_text("Çalışma alanı")
    expect(current).to_have_text("Mesajlar 400 gün saklanıyor.")
    page.locator("[data-ib=language]").select_option("en")
    expect(current).to_have_text("Messages are kept for 400 days.")
    expect(days).to_have_value("400")
    days.fill("")
    page.locator("[data-ib=retention-save]").click()
    expect(current).to_have_text("Messages are kept forever.")
    assert console.admin.get("/api/workspace").json()["retention_days"] is None
    page.locator("[data-ib=tab-audit]").click()
    page.locator("[data-ib=audit-action]").select_option("retention.")
    page.locator("[data-ib=audit-apply]").click()
    rows = page.locator("[data-ib=audit-row]")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Changed the message retention")


# Status


def test_status_tab_shows_live_figures_to_admins_only(console: Console, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    inbox = page.context.new_page()  # the same admin in the inbox: one agent socket, whose
    watch(inbox, console.errors)  # presence event is delivered back to it
    inbox.goto(console.base + "/")
    expect(inbox.locator("[data-ib=status]")).to_have_attribute("data-state", "live")

    page.locator("[data-ib=tab-status]").click()
    expect(page).to_have_url(re.compile(r"#status$"))
    expect(page.locator("[data-ib=panel-status]")).to_be_visible()
    agents = page.locator("[data-ib=st-agents]")
    latency = page.locator("[data-ib=st-latency]")

    def live() -> bool:
        page.locator("[data-ib=status-refresh]").click()
        return bool(
            agents.get_attribute("data-value") == "1" and latency.get_attribute("data-value")
        )

    wait_until(live, what="the inbox's socket and its delivered presence event")
    expect(agents).to_have_text("1")
    expect(latency).to_have_text(re.compile(r"^[\d.,]+ ms / [\d.,]+ ms$"))
    assert float(page.locator("[data-ib=st-rate]").get_attribute("data-value") or 0) > 0
    stream = int(page.locator("[data-ib=st-stream]").get_attribute("data-value") or 0)
    assert stream >= 1
    groups = page.locator("[data-ib=st-groups] tr")
    expect(groups.filter(has_text="Saving history")).to_have_count(1)
    health = page.locator("[data-ib=st-channels] td").filter(has_text=re.compile("^Connected$"))
    expect(health).to_have_count(1)  # other tests here leave disconnected channels too
    expect(page.locator("[data-ib=status-updated]")).to_contain_text("Updated at")
    expect(page.locator("[data-ib=status-error]")).to_be_hidden()
    screenshot(page, "admin-status")

    inbox.close()  # the socket goes, and the next refresh says so
    wait_until(
        lambda: (
            (page.locator("[data-ib=status-refresh]").click() or agents.get_attribute("data-value"))
            == "0"
        ),
        what="the closed socket to leave the count",
    )
    page.locator("[data-ib=language]").select_option("tr")
    expect(page.locator("[data-ib=tab-status]")).to_have_text("Durum")
    expect(page.get_by_role("row", name=re.compile("Temsilci bağlantıları"))).to_have_count(1)
    page.locator("[data-ib=language]").select_option("en")
    expect(page.locator("[data-ib=tab-status]")).to_have_text("Status")

    email, _ = console.add_agent("Status Agent")
    with signed_in(console.base, email, PASSWORD) as agent:
        refused = agent.get("/api/status")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_any_channel_gets_business_hours_and_an_auto_reply(console: Console, contexts: Any) -> None:
    """A WhatsApp number's settings show its name and business hours only (the widget's look
    is web chat's); the hours and the auto-reply are saved, and a typo in a placeholder is
    refused with the reason."""
    from playwright.sync_api import expect

    body = {
        "kind": "whatsapp",
        "name": "Shop number",
        "account_id": WHATSAPP.account_id,
        "access_token": WHATSAPP.token,
    }
    made = console.admin.post("/api/channels", json=body)
    assert made.status_code == 201, made.text
    channel_id = made.json()["id"]
    try:
        page = open_console(console, contexts)
        channel_row(page, "Shop number").locator("[data-ib=channel-settings]").click()
        expect(page.locator("[data-ib=webchat-title]")).to_have_text(
            "Channel settings: Shop number"
        )
        for web_only in ("webchat-origins", "webchat-greeting", "webchat-prechat", "identity"):
            expect(page.locator(f"[data-ib={web_only}]")).to_be_hidden()
        expect(page.locator("[data-ib=webchat-offline]")).to_be_hidden()
        page.locator("[data-ib=webchat-set-hours]").check()
        page.locator("[data-ib=webchat-timezone]").fill("Europe/Istanbul")
        reply = page.locator("[data-ib=hours-auto-reply]")
        reply.fill("Hi {{contact.frist_name}}")
        page.locator("[data-ib=webchat-save]").click()
        expect(page.locator("[data-ib=webchat-error]")).to_contain_text("{{contact.frist_name}}")
        reply.fill("Hi {{contact.first_name | there}}, we open at 09:00.")
        page.locator("[data-ib=webchat-save]").click()
        expect(page.locator("[data-ib=webchat-saved]")).to_have_text("Saved.")
        hours = console.admin.get(f"/api/channels/{channel_id}").json()["settings"]["hours"]
        assert hours["timezone"] == "Europe/Istanbul"
        assert hours["auto_reply"] == "Hi {{contact.first_name | there}}, we open at 09:00."
        assert hours["days"]["mon"] == [["09:00", "18:00"]] and "sun" not in hours["days"]
        screenshot(page, "admin-channel-hours")
        # Back to always open: the hours and the reply go.
        page.locator("[data-ib=webchat-always-open]").check()
        page.locator("[data-ib=webchat-save]").click()
        expect(page.locator("[data-ib=webchat-saved]")).to_have_text("Saved.")
        assert "hours" not in console.admin.get(f"/api/channels/{channel_id}").json()["settings"]
    finally:
        console.admin.delete(f"/api/channels/{channel_id}")


def say_as_a_visitor(console: Console, text: str) -> None:
    """A web-chat visitor writes, as the widget does: a token, then a message on its socket."""
    from websockets.sync.client import connect

    origin = console.base
    answer = httpx.post(
        console.base + "/api/widget/token",
        json={"channel": console.seed["public_key"]},
        headers={"origin": origin},
    )
    answer.raise_for_status()
    with connect(console.proc.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": answer.json()["token"]}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": "r1", "text": text}))
        while (frame := json.loads(ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert frame["type"] == "ack", frame


def test_reports_tab_shows_the_hubs_figures_a_chart_and_a_csv(
    console: Console, contexts: Any
) -> None:
    """The Reports tab shows what GET /api/reports answers for the same period (the figures
    themselves are checked against hand-computed ones in tests/test_reports.py): totals, a bar
    per row, the table, and a CSV link; a period the wrong way round is refused."""
    from playwright.sync_api import expect

    say_as_a_visitor(console, "A question for the report")
    wait_until(
        lambda: console.admin.get("/api/conversations").json()["items"], what="the conversation"
    )
    page = open_console(console, contexts, timezone_id="Europe/Istanbul")
    page.locator("[data-ib=tab-reports]").click()
    expect(page).to_have_url(re.compile(r"#reports$"))
    expect(page.locator("[data-ib=report-timezone]")).to_have_value("Europe/Istanbul")
    first = page.locator("[data-ib=report-from]").input_value()
    last = page.locator("[data-ib=report-to]").input_value()
    page.locator("[data-ib=report-by]").select_option("channel")
    page.locator("[data-ib=report-show]").click()
    params = {"from": first, "to": last, "by": "channel", "timezone": "Europe/Istanbul"}
    expected = console.admin.get("/api/reports", params=params).json()
    assert (
        expected["totals"]["messages_in"] >= 1 and expected["totals"]["conversations_opened"] >= 1
    )
    rows = page.locator("[data-ib=report-row]")
    expect(rows).to_have_count(len(expected["rows"]))
    expect(rows.filter(has_text="Website chat")).to_have_count(1)
    expect(page.locator("[data-ib=report-bar]")).to_have_count(len(expected["rows"]))
    opened = page.locator("[data-ib=report-total][data-measure=conversations_opened] strong")
    expect(opened).to_have_text(str(expected["totals"]["conversations_opened"]))
    inbound = page.locator("[data-ib=report-total][data-measure=messages_in] strong")
    expect(inbound).to_have_text(str(expected["totals"]["messages_in"]))
    csv_link = page.locator("[data-ib=report-csv]")
    expect(csv_link).to_be_visible()
    href = csv_link.get_attribute("href") or ""
    assert "format=csv" in href and "by=channel" in href
    download = console.admin.get(href)
    assert download.status_code == 200 and download.text.startswith("key,label,")
    page.locator("[data-ib=report-measure]").select_option("messages_in")
    expect(page.locator("[data-ib=report-chart] svg")).to_have_attribute(
        "aria-label", "Bar chart: Messages in"
    )
    screenshot(page, "admin-reports")
    page.locator("[data-ib=report-from]").fill(last)
    page.locator("[data-ib=report-to]").fill(first)
    page.locator("[data-ib=report-show]").click()
    expect(page.locator("[data-ib=report-error]")).to_have_text(
        "Give a first and a last day, the first not after the last, at most a year apart."
    )


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with running_receiver() as made:
        yield made


def test_an_outbound_webhook_is_added_fails_dies_and_is_sent_again(
    console: Console, contexts: Any, hook_receiver: Receiver
) -> None:
    """Integrations: an endpoint on a receiver on loopback; its signing secret is shown once;
    while the receiver answers 500 the delivery is retried, then dead and listed; after the
    receiver recovers, "Send again" delivers it, signed with that secret."""
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    page.locator("[data-ib=tab-hooks]").click()
    page.locator("[data-ib=hook-url]").fill(hook_receiver.url)
    page.get_by_role("button", name="Add", exact=True).click()
    made = page.locator("[data-ib=hook-made]")
    expect(made).to_be_visible()
    secret = page.locator("[data-ib=hook-secret]").text_content() or ""
    assert secret.startswith("whsec_")
    expect(page.locator("[data-ib=hook]")).to_have_count(1)
    hook_receiver.otherwise = 500
    say_as_a_visitor(console, "For the webhook")
    wait_until(lambda: len(hook_receiver.requests) >= 6, what="six attempts")
    page.locator("[data-ib=delivery-status]").select_option("dead")
    dead = page.locator("[data-ib=delivery][data-status=dead]")
    wait_until(
        lambda: console.admin.get("/api/hooks/deliveries", params={"status": "dead"}).json()[
            "items"
        ],
        what="a dead delivery",
    )
    page.locator("[data-ib=delivery-status]").select_option("")
    page.locator("[data-ib=delivery-status]").select_option("dead")
    expect(dead).to_have_count(1)
    expect(dead).to_contain_text("HTTP 500")
    screenshot(page, "admin-hooks", secret="[data-ib=hook-secret]")
    hook_receiver.otherwise = 200
    dead.locator("[data-ib=delivery-replay]").click()
    expect(dead).to_have_count(0)
    wait_until(lambda: len(hook_receiver.requests) == 7, what="the replay")
    last = hook_receiver.requests[-1]
    signed = hmac.new(
        secret.encode(),
        f"{last['headers']['x-hub-timestamp']}.{last['body']}".encode(),
        hashlib.sha256,
    ).hexdigest()
    assert last["headers"]["x-hub-signature-256"] == f"sha256={signed}"
    assert json.loads(last["body"])["data"]["message"]["text"] == "For the webhook"
    page.locator("[data-ib=hook-remove]").click()
    page.locator("[data-ib=confirm-ok]").click()
    expect(page.locator("[data-ib=hook]")).to_have_count(0)


# Automation rules

REFUND_REPLY = "Sorry to hear that, {{contact.first_name | there}}. A person will write soon."


def rule_names(console: Console) -> list[str]:
    return [r["name"] for r in console.admin.get("/api/automation-rules").json()["items"]]


def rule_of(console: Console, rule_id: str) -> dict[str, Any]:
    items = console.admin.get("/api/automation-rules").json()["items"]
    return next(r for r in items if r["id"] == rule_id)


def test_an_automation_rule_is_tried_saved_and_acts_in_the_inbox(
    console: Console, contexts: Any
) -> None:
    """A rule made in the Automation tab is tried on made-up messages first (each condition's
    outcome, and the reply made out to the contact when it matches), saved, and then acts on a
    visitor's message: a label, the priority, the auto-reply and a note saying what it did,
    through the API and in the inbox. Switched off, it stays off after a reload."""
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    page.locator("[data-ib=tab-automation]").click()
    expect(page).to_have_url(re.compile(r"#automation$"))
    page.locator("[data-ib=new-rule]").click()
    form = page.locator("[data-ib=rule-form]")
    expect(page.locator("[data-ib=rule-name]")).to_be_focused()
    page.locator("[data-ib=rule-name]").fill("Refunds")
    page.locator("[data-ib=rule-trigger]").select_option("message.received")
    page.locator("[data-ib=add-condition]").click()
    condition = form.locator("[data-ib=condition]")
    expect(condition).to_have_count(1)
    expect(condition.locator("[data-ib=condition-field]")).to_be_focused()
    condition.locator("[data-ib=condition-field]").select_option("text")
    condition.locator("[data-ib=condition-op]").select_option("contains")
    condition.locator("[data-ib=condition-values]").fill("refund")
    actions = form.locator("[data-ib=action]")
    expect(actions).to_have_count(1)  # a rule needs one: a new one starts with a row
    actions.nth(0).locator("[data-ib=action-type]").select_option("add_label")
    actions.nth(0).locator("[data-ib=action-value]").fill("refund")
    page.locator("[data-ib=add-action]").click()
    actions.nth(1).locator("[data-ib=action-type]").select_option("set_priority")
    actions.nth(1).locator("[data-ib=action-value]").select_option("high")
    page.locator("[data-ib=add-action]").click()
    actions.nth(2).locator("[data-ib=action-type]").select_option("send_reply")
    actions.nth(2).locator("[data-ib=action-value]").fill(REFUND_REPLY)
    # One priority a rule: the option is not offered twice.
    assert actions.nth(2).locator("[data-ib=action-type] option[value=set_priority]").is_disabled()

    result = page.locator("[data-ib=try-result]")
    page.locator("[data-ib=try-text]").fill("I want a refund")
    page.locator("[data-ib=try-name]").fill("Ada Lovelace")
    page.locator("[data-ib=try-rule]").click()
    expect(result.locator("[data-ib=try-verdict]")).to_have_text("Matches")
    outcome = result.locator("[data-ib=try-condition]")
    expect(outcome).to_have_count(1)
    expect(outcome).to_have_attribute("data-holds", "true")
    expect(outcome).to_contain_text("✓")
    expect(outcome).to_contain_text("Message text contains: refund")
    expect(result.locator("[data-ib=try-does]")).to_have_text(
        "It would add the label refund, set the priority to High, send an auto-reply."
    )
    expect(result.locator("[data-ib=try-reply]")).to_have_text(
        "Sorry to hear that, Ada. A person will write soon."
    )
    screenshot(page, "admin-automation-try")
    page.locator("[data-ib=try-text]").fill("hello")
    page.locator("[data-ib=try-rule]").click()
    expect(result.locator("[data-ib=try-verdict]")).to_have_text("Does not match")
    expect(outcome).to_have_attribute("data-holds", "false")
    expect(outcome).to_contain_text("✗")
    expect(result.locator("[data-ib=try-reply]")).to_have_count(0)
    assert "Refunds" not in rule_names(console)  # trying saves nothing

    page.locator("[data-ib=save-rule]").click()
    expect(form).to_be_hidden()
    expect(page.locator("[data-ib=rule-saved]")).to_have_text("The rule “Refunds” was saved.")
    row = page.locator("[data-ib=rule]").filter(has_text="Refunds")
    expect(row).to_have_count(1)
    expect(row.locator("[data-ib=rule-when]")).to_have_text("A contact’s message comes in")
    expect(row.locator("[data-ib=rule-enabled]")).to_be_checked()
    expect(page.locator("[data-ib=no-rules]")).to_be_hidden()
    [saved] = [
        r
        for r in console.admin.get("/api/automation-rules").json()["items"]
        if r["name"] == "Refunds"
    ]
    assert (saved["name"], saved["trigger"], saved["enabled"]) == (
        "Refunds",
        "message.received",
        True,
    )
    assert saved["conditions"] == [{"field": "text", "op": "contains", "values": ["refund"]}]
    assert saved["actions"] == [
        {"type": "add_label", "label": "refund"},
        {"type": "set_priority", "priority": "high"},
        {"type": "send_reply", "text": REFUND_REPLY},
    ]

    say_as_a_visitor(console, "Where is my refund?")

    def acted() -> dict[str, Any] | None:
        found = console.admin.get("/api/conversations", params={"label": "refund"}).json()
        return next((c for c in found["items"] if c["priority"] == "high"), None)

    conversation = wait_until(acted, timeout_s=15, what="the rule's label and priority")
    assert conversation["labels"] == ["refund"]
    messages_url = f"/api/conversations/{conversation['id']}/messages"

    def reply_and_note() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = console.admin.get(messages_url).json()["items"]
        system = [m for m in items if m["sender"].get("type") == "system"]
        return system if len(system) >= 2 else None

    system = wait_until(reply_and_note, timeout_s=15, what="the auto-reply and the note")
    [reply] = [m for m in system if not m["note"]]
    [note] = [m for m in system if m["note"]]
    assert reply["text"].startswith("Sorry to hear that") and reply["direction"] == "out"
    assert note["text"].startswith("Rule “Refunds”:"), note["text"]
    assert "labelled refund" in note["text"] and "priority high" in note["text"]

    # Switched off, and still off after a reload.
    row.locator("[data-ib=rule-enabled]").uncheck()
    expect(row).to_have_attribute("data-enabled", "false")
    wait_until(
        lambda: not rule_of(console, saved["id"])["enabled"], what="the rule to be switched off"
    )
    page.reload()
    expect(row.locator("[data-ib=rule-enabled]")).not_to_be_checked()
    expect(page.locator("[data-ib=automation-error]")).to_be_hidden()

    # The inbox shows what the rule did: the conversation's tags and the note as activity.
    inbox = page.context.new_page()
    watch(inbox, console.errors)
    inbox.goto(console.base + "/")
    expect(inbox.locator("[data-ib=status]")).to_have_attribute("data-state", "live")
    listed = inbox.locator(f"[data-ib=conversation][data-id='{conversation['id']}']")
    expect(listed.locator(".tag.label")).to_have_text("refund")
    expect(listed.locator("span.tag.priority")).to_have_attribute("data-priority", "high")
    expect(listed).to_contain_text("Sorry to hear that")  # the rule's note is not the preview
    # The priority filter: "Low" hides it, "High" shows it again.
    inbox.locator("[data-ib=filter-priority]").select_option("low")
    expect(listed).to_be_hidden()
    inbox.locator("[data-ib=filter-priority]").select_option("high")
    expect(listed).to_be_visible()
    listed.click()
    activity = inbox.locator("[data-ib=message].activity")
    expect(activity).to_have_count(1)
    expect(activity).to_contain_text("Rule “Refunds”")
    screenshot(inbox, "inbox-rule-activity")


def test_automation_rules_on_a_phone_in_turkish_moved_edited_and_deleted(
    console: Console, contexts: Any
) -> None:
    """The Automation tab by keyboard on a phone: rules move up and down (their positions are
    saved), one is edited, an incomplete rule is refused by the page and a reply with an
    unknown placeholder by the server, both saying why; in Turkish; and a rule is deleted
    after the page's own confirmation. The rules here are off, so they never act."""
    from playwright.sync_api import expect

    def made(name: str, **rule: Any) -> str:
        answer = console.admin.post("/api/automation-rules", json={"name": name} | rule)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    closed = {"field": "business_hours", "op": "closed", "values": []}
    first = made(
        "Night shift",
        enabled=False,
        trigger="conversation.created",
        conditions=[closed],
        actions=[{"type": "snooze", "minutes": 60}],
    )
    second = made(
        "Web visitors",
        enabled=False,
        trigger="message.received",
        conditions=[{"field": "channel_kind", "op": "in", "values": ["webchat"]}],
        actions=[{"type": "add_label", "label": "web"}],
    )
    try:
        page = open_console(console, contexts, viewport={"width": 390, "height": 800})
        width = "document.documentElement.scrollWidth"
        page.locator("[data-ib=tab-channels]").focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        expect(page.locator("[data-ib=tab-automation]")).to_be_focused()
        expect(page.locator("[data-ib=panel-automation]")).to_be_visible()
        rows = page.locator("[data-ib=rule]")
        night, web = rows.filter(has_text="Night shift"), rows.filter(has_text="Web visitors")
        expect(night.locator("[data-ib=rule-summary]")).to_have_text(
            "The channel is closed (business hours) → snooze it for 60 minutes"
        )
        expect(web.locator("[data-ib=rule-enabled]")).not_to_be_checked()
        assert page.evaluate(width) <= 390

        def order() -> list[str]:
            return [n for n in rule_names(console) if n in ("Night shift", "Web visitors")]

        assert order() == ["Night shift", "Web visitors"]
        night.locator("[data-ib=rule-down]").focus()
        page.keyboard.press("Enter")
        wait_until(lambda: order() == ["Web visitors", "Night shift"], what="the move")
        expect(rows.last).to_contain_text("Night shift")
        expect(night.locator("[data-ib=rule-down]")).to_be_disabled()  # last now: the focus
        expect(night.locator("[data-ib=rule-up]")).to_be_focused()  # goes to the other way
        page.keyboard.press("Enter")
        wait_until(lambda: order() == ["Night shift", "Web visitors"], what="the move back")

        web.locator("[data-ib=rule-edit]").click()
        form = page.locator("[data-ib=rule-form]")
        expect(form).to_be_visible()
        expect(page.locator("[data-ib=rule-name]")).to_have_value("Web visitors")
        condition = form.locator("[data-ib=condition]")
        expect(condition.locator("[data-ib=condition-field]")).to_have_value("channel_kind")
        expect(condition.locator("[data-ib=condition-value][value=webchat]")).to_be_checked()
        expect(condition.locator("[data-ib=condition-value][value=telegram]")).not_to_be_checked()
        condition.locator("[data-ib=condition-value][value=telegram]").check()
        page.locator("[data-ib=add-condition]").click()
        added = condition.nth(1)
        added.locator("[data-ib=condition-field]").select_option("business_hours")
        expect(added.locator("[data-ib=condition-values]")).to_have_count(0)
        expect(added.locator("[data-ib=condition-op]")).to_have_value("open")
        assert page.evaluate(width) <= 390
        screenshot(page, "admin-automation-phone")
        page.locator("[data-ib=rule-name]").fill("Web and Telegram")
        page.locator("[data-ib=save-rule]").click()
        expect(form).to_be_hidden()
        expect(rows.filter(has_text="Web and Telegram")).to_have_count(1)
        changed = rule_of(console, second)
        assert changed["conditions"] == [
            {"field": "channel_kind", "op": "in", "values": ["webchat", "telegram"]},
            {"field": "business_hours", "op": "open", "values": []},
        ]
        assert changed["enabled"] is False  # editing leaves the switch alone

        page.locator("[data-ib=new-rule]").click()
        error = page.locator("[data-ib=rule-error]")
        page.locator("[data-ib=save-rule]").click()
        expect(error).to_have_text("Give the rule a name.")
        expect(page.locator("[data-ib=rule-name]")).to_be_focused()
        page.keyboard.type("Typo")
        action = form.locator("[data-ib=action]").first
        action.locator("[data-ib=action-type]").select_option("send_reply")
        action.locator("[data-ib=action-value]").fill("Hi {{contact.frist_name}}")
        page.locator("[data-ib=save-rule]").click()
        expect(error).to_contain_text("{{contact.frist_name}}")
        expect(error).to_have_attribute("role", "alert")
        assert "Typo" not in rule_names(console)
        page.locator("[data-ib=cancel-rule]").click()
        expect(form).to_be_hidden()
        expect(page.locator("[data-ib=new-rule]")).to_be_focused()

        page.locator("[data-ib=language]").select_option("tr")
        expect(page.locator("[data-ib=tab-automation]")).to_have_text("Otomasyon")
        expect(page.locator("[data-ib=new-rule]")).to_have_text("Yeni kural")
        expect(night.locator("[data-ib=rule-when]")).to_have_text("Bir konuşma başladığında")
        expect(night.locator("[data-ib=rule-summary]")).to_have_text(
            "Kanal kapalı (çalışma saatleri) → 60 dakika erteler"
        )
        assert page.evaluate(width) <= 390
        page.locator("[data-ib=language]").select_option("en")
        expect(page.locator("[data-ib=tab-automation]")).to_have_text("Automation")

        night.locator("[data-ib=rule-delete]").click()
        expect(page.locator("[data-ib=confirm-title]")).to_have_text(
            "Delete the rule “Night shift”?"
        )
        page.locator("[data-ib=confirm-cancel]").click()
        assert "Night shift" in rule_names(console)
        night.locator("[data-ib=rule-delete]").click()
        page.locator("[data-ib=confirm-ok]").click()
        expect(night).to_have_count(0)
        assert "Night shift" not in rule_names(console)
    finally:
        for rule_id in (first, second):
            console.admin.delete(f"/api/automation-rules/{rule_id}")


def test_admin_strings_have_the_same_keys_in_english_and_turkish(
    console: Console, contexts: Any
) -> None:
    page = contexts().new_page()
    page.goto(console.base + "/admin")
    keys = page.evaluate(
        """async () => {
          const strings = (await import('/static/admin-strings.js')).default;
          return { en: Object.keys(strings.en).sort(), tr: Object.keys(strings.tr).sort() };
        }"""
    )
    assert set(keys["en"]) - set(keys["tr"]) == set(), "missing in Turkish"
    assert set(keys["tr"]) - set(keys["en"]) == set(), "missing in English"
