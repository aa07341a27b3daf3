"""The contact panel in a real Chromium: a web-chat visitor's page, referrer, browser,
language and live local time show after a widget visit; an agent edits the contact and
another agent's open panel and list follow; a channel that turns visitor info off shows none."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browserkit import log_in, screenshot, shop_allowed, wait_until
from tests.servers import HubProcess
from tests.test_widget_browser import Embed, conversation_of, say

pytestmark = pytest.mark.browser

REFERRER = "https://news.example/article-about-us"


@pytest.fixture(scope="module")
def embed(hub: tuple[HubProcess, dict[str, str]]) -> Iterator[Embed]:
    proc, seed = hub
    with shop_allowed(proc, seed) as (shop, admin, channel_id):
        yield Embed(proc, seed, shop, admin, channel_id)


def visit(embed: Embed, contexts: Any, text: str) -> tuple[Any, str]:
    """A visitor in Istanbul's time zone, speaking Turkish, who came from a news page and
    writes `text`: their page and conversation id."""
    page = contexts(locale="tr-TR", timezone_id="Europe/Istanbul").new_page()
    page.goto(embed.page_url(path=f"/pricing-{uuid.uuid4().hex[:6]}"), referer=REFERRER)
    page.locator("[data-sc=launcher]").click()
    say(page, text)
    kept_token(page, embed)
    return page, conversation_of(page, embed)


def kept_token(page: Any, embed: Embed) -> None:
    """Wait until the widget has kept its visitor token (it may still be writing it)."""
    key = f"sosyocrm:{embed.seed['public_key']}:token"
    page.wait_for_function(f"() => localStorage.getItem({key!r})")


def stored_contact(embed: Embed, conversation_id: str) -> str:
    found = wait_until(
        lambda: (r := embed.admin.get(f"/api/conversations/{conversation_id}")).is_success and r,
        what="the conversation stored",
    )
    return str(found.json()["contact_id"])


def inbox(embed: Embed, contexts: Any) -> Any:
    from playwright.sync_api import expect

    page = contexts().new_page()
    log_in(page, embed.proc.base_url, embed.seed["email"], embed.seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.locator("[data-ib=filter-status]").select_option("")
    return page


def open_panel(page: Any, text: str) -> Any:
    from playwright.sync_api import expect

    page.locator("[data-ib=conversation]", has_text=text).click()
    page.locator("[data-ib=contact-toggle]").click()
    panel = page.locator("[data-ib=contact-panel]")
    expect(panel).to_be_visible()
    return panel


def test_visitor_info_and_an_edit_seen_on_another_agents_page(embed: Embed, contexts: Any) -> None:
    from playwright.sync_api import expect

    word = "pricing" + uuid.uuid4().hex[:6]
    visitor, conversation_id = visit(embed, contexts, f"Question about {word}")
    contact_id = stored_contact(embed, conversation_id)
    wait_until(
        lambda: embed.admin.get(f"/api/contacts/{contact_id}").json()["visitor"],
        what="the visitor's info stored",
    )
    agent, other = inbox(embed, contexts), inbox(embed, contexts)
    panel, seen = open_panel(agent, word), open_panel(other, word)

    # What the widget told: the page, where they came from, browser, language, local time.
    info = panel.locator("[data-ib=contact-visitor]")
    expect(info).to_be_visible()
    expect(info.locator("[data-ib=vi-page]")).to_contain_text(embed.shop.origin + "/pricing-")
    expect(info.locator("[data-ib=vi-referrer]")).to_have_text(REFERRER)
    expect(info.locator("[data-ib=vi-browser]")).to_contain_text("Chrome")
    expect(info.locator("[data-ib=vi-language]")).to_have_text("tr-TR")
    # The visitor's clock as the widget reported it, a moment ago: this minute or the last.
    minutes = agent.evaluate(
        "[0, 60000].map((ago) => new Date(Date.now() - ago).toLocaleTimeString('en',"
        " {timeZone: 'Europe/Istanbul', hour: '2-digit', minute: '2-digit'}))"
    )
    expect(info.locator("[data-ib=vi-local-time]")).to_contain_text(
        re.compile("|".join(re.escape(m) for m in minutes))
    )
    expect(info.locator("[data-ib=vi-local-time]")).to_contain_text("Europe/Istanbul")
    expect(panel.locator("[data-ib=contact-attributes]")).to_have_count(1)

    # A wrong e-mail is refused with its reason, next to the field.
    panel.locator("[data-ib=cf-email]").fill("ayse-at-example")
    panel.locator("[data-ib=cf-save]").click()
    expect(panel.locator("[data-ib=cf-status]")).to_contain_text("does not look right")
    expect(panel.locator("[data-ib=cf-email]")).to_have_attribute("aria-invalid", "true")

    # One agent edits; the other's open panel, header and list follow without a reload.
    panel.locator("[data-ib=cf-name]").fill("Ayşe Yılmaz")
    panel.locator("[data-ib=cf-email]").fill("ayse@example.com")
    panel.locator("[data-ib=cf-phone]").fill("+90 532 123 45 67")
    panel.locator("[data-ib=cf-company]").fill("Örnek A.Ş.")
    panel.locator("[data-ib=cf-notes]").fill("Asked about the yearly plan.")
    panel.locator("[data-ib=cf-save]").click()
    expect(panel.locator("[data-ib=cf-status]")).to_have_text("Saved.")
    expect(panel.locator("[data-ib=cf-phone]")).to_have_value("+905321234567")
    expect(seen.locator("[data-ib=contact-name]")).to_have_text("Ayşe Yılmaz")
    expect(seen.locator("[data-ib=cf-phone]")).to_have_value("+905321234567")
    expect(seen.locator("[data-ib=cf-company]")).to_have_value("Örnek A.Ş.")
    expect(seen.locator("[data-ib=cf-notes]")).to_have_value("Asked about the yearly plan.")
    expect(other.locator("[data-ib=conversation]", has_text=word)).to_contain_text("Ayşe Yılmaz")
    stored = embed.admin.get(f"/api/contacts/{contact_id}").json()
    assert (stored["email"], stored["company"]) == ("ayse@example.com", "Örnek A.Ş.")
    screenshot(agent, "inbox-contact-panel")

    # A name cleared: the heading shows the name the inbox gives the nameless, and the other
    # agent's list forgets the old name too.
    panel.locator("[data-ib=cf-name]").fill("")
    panel.locator("[data-ib=cf-save]").click()
    expect(panel.locator("[data-ib=cf-status]")).to_have_text("Saved.")
    expect(agent.locator("[data-ib=contact-name]")).to_have_text(f"Visitor {contact_id[:6]}")
    row = other.locator("[data-ib=conversation]", has_text=word)
    expect(row).not_to_contain_text("Ayşe Yılmaz")
    visitor.close()


def test_a_channel_without_visitor_info_sends_and_shows_none(embed: Embed, contexts: Any) -> None:
    from playwright.sync_api import expect

    console = contexts().new_page()
    log_in(
        console,
        embed.proc.base_url,
        embed.seed["email"],
        embed.seed["password"],
        path="/admin",
    )
    row = console.locator(f"[data-id='{embed.channel_id}']")
    row.locator("[data-ib=channel-settings]").click()
    box = console.locator("[data-ib=webchat-visitor-info]")
    expect(box).to_be_checked()  # on by default
    box.uncheck()
    console.locator("[data-ib=webchat-save]").click()
    wait_until(
        lambda: (
            embed.admin.get(f"/api/channels/{embed.channel_id}")
            .json()["settings"]
            .get("visitor_info")
            is False
        ),
        what="the setting saved",
    )
    try:
        sent: list[str] = []
        word = "quiet" + uuid.uuid4().hex[:6]
        page = contexts().new_page()
        page.on("request", lambda r: sent.append(r.url))
        page.goto(embed.page_url(), referer=REFERRER)
        page.locator("[data-sc=launcher]").click()
        say(page, f"No tracking {word}")
        kept_token(page, embed)
        conversation_id = conversation_of(page, embed)
        contact = stored_contact(embed, conversation_id)
        agent = inbox(embed, contexts)
        panel = open_panel(agent, word)
        expect(panel.locator("[data-ib=cf-name]")).to_be_visible()
        expect(panel.locator("[data-ib=contact-visitor]")).to_be_hidden()
        assert not [u for u in sent if u.endswith("/api/widget/visitor")]
        assert embed.admin.get(f"/api/contacts/{contact}").json()["visitor"] is None
        refused = httpx.post(
            embed.proc.base_url + "/api/widget/visitor",
            json={
                "token": page.evaluate(
                    f"localStorage.getItem('sosyocrm:{embed.seed['public_key']}:token')"
                )
            },
            headers={"origin": embed.shop.origin},
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "visitor_info_off"
    finally:
        embed.admin.patch(
            f"/api/channels/{embed.channel_id}", json={"settings": {"visitor_info": True}}
        )
