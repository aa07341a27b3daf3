"""Merging contacts in a real Chromium: an agent merges two web-chat visitors (one person) in
the contact panel, sees both conversations under the kept contact, undoes, merges again and
confirms; the merged-away contact is then gone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browserkit import screenshot, shop_allowed, wait_until
from tests.servers import HubProcess
from tests.test_contact_browser import inbox, open_panel, stored_contact, visit
from tests.test_widget_browser import Embed

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def embed(hub: tuple[HubProcess, dict[str, str]]) -> Iterator[Embed]:
    proc, seed = hub
    with shop_allowed(proc, seed) as (shop, admin, channel_id):
        yield Embed(proc, seed, shop, admin, channel_id)


def merge_in_panel(page: Any, panel: Any, name: str) -> None:
    from playwright.sync_api import expect

    panel.locator("[data-ib=merge-open]").click()
    dialog = page.locator("[data-ib=merge-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-ib=merge-query]").fill(name)
    dialog.locator("[data-ib=merge-candidate]", has_text=name).click()
    expect(dialog.locator("[data-ib=merge-ask]")).to_contain_text(name)
    dialog.locator("[data-ib=merge-do]").click()
    expect(dialog).to_be_hidden()
    expect(panel.locator("[data-ib=merge-state]")).to_have_text(f"Merged with {name}")


def test_an_agent_merges_undoes_merges_again_and_confirms(embed: Embed, contexts: Any) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:6]
    _, kept_conversation = visit(embed, contexts, f"Instagram side {word}")
    _, other_conversation = visit(embed, contexts, f"WhatsApp side {word}")
    other_id = stored_contact(embed, other_conversation)
    name = f"Beyza {word}"
    assert embed.admin.patch(f"/api/contacts/{other_id}", json={"name": name}).is_success
    page = inbox(embed, contexts)
    panel = open_panel(page, f"Instagram side {word}")
    conversations = panel.locator("[data-ib=contact-conversation]")
    expect(conversations).to_have_count(1)

    merge_in_panel(page, panel, name)
    # Both channels' conversations under the kept contact.
    expect(conversations).to_have_count(2)
    expect(conversations.filter(has_text=f"WhatsApp side {word}")).to_have_count(1)
    panel.locator("[data-ib=merge-undo]").scroll_into_view_if_needed()
    screenshot(page, "inbox-merge")

    panel.locator("[data-ib=merge-undo]").click()
    expect(panel.locator("[data-ib=merge-open]")).to_be_visible()
    expect(conversations).to_have_count(1)
    assert embed.admin.get(f"/api/contacts/{other_id}").json()["conversations"]

    merge_in_panel(page, panel, name)
    page.once("dialog", lambda d: d.accept())
    panel.locator("[data-ib=merge-confirm]").click()
    expect(panel.locator("[data-ib=merge-open]")).to_be_visible()
    expect(conversations).to_have_count(2)
    wait_until(
        lambda: embed.admin.get(f"/api/contacts/{other_id}").status_code == 404,
        what="the merged-away contact deleted",
    )
    kept = embed.admin.get(f"/api/conversations/{kept_conversation}").json()["contact_id"]
    moved = embed.admin.get(f"/api/conversations/{other_conversation}").json()["contact_id"]
    assert kept == moved
