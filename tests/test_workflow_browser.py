"""The inbox's workflow pieces in a real Chromium against a real `hub demo`: the Pending action
and the filters' counts, bulk actions on checked conversations, the single-key shortcuts and
their help sheet, the emoji picker, safe links (inbox and widget), and an anonymous visitor
found by the name the inbox shows them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import log_in, screenshot, shop_allowed, wait_until
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join
from tests.servers import HubProcess
from tests.thirdparty import Site

pytestmark = pytest.mark.browser


@dataclass
class Desk:
    proc: HubProcess
    seed: dict[str, str]
    shop: Site
    admin: httpx.Client

    def visitor_says(self, text: str) -> str:
        """A new anonymous visitor writes `text`; their conversation's id once it is stored."""
        answer = httpx.post(
            self.proc.base_url + "/api/widget/token",
            json={"channel": self.seed["public_key"]},
            headers={"origin": self.shop.origin},
        )
        assert answer.status_code == 200, answer.text
        visitor = answer.json()
        with ws_connect(self.proc.ws_url + "/ws/visitor", origin=self.shop.origin) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"type": "hello", "token": visitor["token"]}))
            assert json.loads(ws.recv(5))["type"] == "welcome"
            ws.send(json.dumps({"type": "message.send", "client_id": "c1", "text": text}))
            while json.loads(ws.recv(5))["type"] != "ack":
                pass
        conversation_id = str(visitor["conversation_id"])
        wait_until(lambda: self.conversation(conversation_id), what="stored")
        return conversation_id

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        answer = self.admin.get(f"/api/conversations/{conversation_id}")
        return dict(answer.json()) if answer.status_code == 200 else None

    def counts(self) -> dict[str, Any]:
        return dict(self.admin.get("/api/conversations/counts").json())


@pytest.fixture(scope="module")
def desk(hub: tuple[HubProcess, dict[str, str]]) -> Iterator[Desk]:
    proc, seed = hub
    with shop_allowed(proc, seed) as (shop, admin, _):
        yield Desk(proc, seed, shop, admin)


def inbox(desk: Desk, contexts: Any) -> Any:
    from playwright.sync_api import expect

    page = contexts().new_page()
    log_in(page, desk.proc.base_url, desk.seed["email"], desk.seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    return page


def row(page: Any, text: str) -> Any:
    return page.locator(".convs li", has=page.locator("[data-ib=conversation]", has_text=text))


def test_bulk_actions_counts_and_the_pending_action(desk: Desk, contexts: Any) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:8]
    ids = [desk.visitor_says(f"Order {word} #{n}") for n in range(3)]
    page = inbox(desk, contexts)
    status = page.locator("[data-ib=filter-status]")
    opened = desk.counts()["status"]["open"]
    expect(status.locator("option[value=open]")).to_have_text(f"Open ({opened})")
    expect(page.locator("[data-ib=filter-assignee] option[value=none]")).to_contain_text("(")

    # Check two, then mark them pending in one go.
    for n in (0, 1):
        row(page, f"{word} #{n}").locator("[data-ib=pick]").check()
    expect(page.locator("[data-ib=bulk-count]")).to_have_text("2 selected")
    screenshot(page, "inbox-bulk")
    page.locator("[data-ib=bulk-pending]").click()
    expect(row(page, f"{word} #0")).to_have_count(0)  # no longer open: gone from this view
    expect(row(page, f"{word} #1")).to_have_count(0)
    wait_until(lambda: all(desk.conversation(i)["status"] == "pending" for i in ids[:2]))
    expect(status.locator("option[value=open]")).to_have_text(f"Open ({opened - 2})")
    pending = desk.counts()["status"]["pending"]
    expect(status.locator("option[value=pending]")).to_have_text(f"Pending ({pending})")

    # Select every shown conversation; label and prioritise only ours.
    status.select_option("pending")
    expect(row(page, f"{word} #0")).to_have_count(1)
    page.locator("[data-ib=select-all]").check()
    shown = page.locator("[data-ib=conversation]").count()
    expect(page.locator("[data-ib=bulk-count]")).to_have_text(f"{shown} selected")
    page.locator("[data-ib=bulk-clear]").click()
    expect(page.locator("[data-ib=bulk-count]")).to_have_text("")
    for n in (0, 1):
        row(page, f"{word} #{n}").locator("[data-ib=pick]").check()
    page.locator("[data-ib=bulk-label]").fill("vip")
    page.locator("[data-ib=bulk-label]").press("Enter")
    expect(row(page, f"{word} #0").locator(".tag.label")).to_have_text("vip")
    for n in (0, 1):
        row(page, f"{word} #{n}").locator("[data-ib=pick]").check()
    page.locator("[data-ib=bulk-priority]").focus()
    page.locator("[data-ib=bulk-priority]").select_option("urgent")
    expect(row(page, f"{word} #1").locator(".tag.priority")).to_have_text("Urgent")
    for n in (0, 1):
        row(page, f"{word} #{n}").locator("[data-ib=pick]").check()
    page.locator("[data-ib=bulk-assign]").focus()
    page.locator("[data-ib=bulk-assign]").select_option(
        desk.admin.get("/api/me").json()["user"]["user_id"]
    )
    expect(row(page, f"{word} #0").locator(".tag.who")).to_have_count(1)

    def stored() -> bool:
        rows = [desk.conversation(i) or {} for i in ids[:2]]
        return all(
            r.get("labels") == ["vip"] and r.get("priority") == "urgent" and r.get("assignee_id")
            for r in rows
        )

    wait_until(stored, what="the bulk changes stored")
    assert (desk.conversation(ids[2]) or {}).get("labels") == []

    # The thread's Pending action, beside Resolve.
    status.select_option("open")
    row(page, f"{word} #2").locator("[data-ib=conversation]").click()
    expect(page.locator("[data-ib=pending-action]")).to_be_visible()
    page.locator("[data-ib=pending-action]").click()
    wait_until(lambda: (desk.conversation(ids[2]) or {}).get("status") == "pending")
    expect(page.locator("[data-ib=pending-action]")).to_be_hidden()
    expect(page.locator("[data-ib=resolve]")).to_be_visible()


def test_shortcuts_act_on_the_open_conversation_but_never_while_typing(
    desk: Desk, contexts: Any
) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:8]
    conversation_id = desk.visitor_says(f"Shortcut {word}")
    page = inbox(desk, contexts)
    row(page, word).locator("[data-ib=conversation]").click()
    expect(page.locator("[data-ib=message]", has_text=word)).to_be_visible()
    expect(page.locator("[data-ib=reply]")).to_be_focused()  # the thread is loaded

    reply = page.locator("[data-ib=reply]")
    reply.focus()
    reply.type("ape")  # typed text, not the a, p and e shortcuts
    expect(reply).to_have_value("ape")
    assert (desk.conversation(conversation_id) or {}).get("status") == "open"
    reply.fill("")
    page.locator("[data-ib=title]").click()  # out of the field

    page.keyboard.press("a")
    wait_until(lambda: (desk.conversation(conversation_id) or {}).get("assignee_id"))
    page.keyboard.press("p")
    wait_until(lambda: (desk.conversation(conversation_id) or {}).get("status") == "pending")
    page.keyboard.press("e")
    wait_until(lambda: (desk.conversation(conversation_id) or {}).get("status") == "resolved")
    page.keyboard.press("n")
    expect(reply).to_be_focused()
    expect(page.locator("[data-ib=mode-note]")).to_be_checked()
    page.locator("[data-ib=title]").click()
    page.keyboard.press("r")
    expect(reply).to_be_focused()
    expect(page.locator("[data-ib=mode-reply]")).to_be_checked()
    page.locator("[data-ib=title]").click()

    page.keyboard.press("?")
    sheet = page.locator("[data-ib=shortcuts-dialog]")
    expect(sheet).to_be_visible()
    for key in ("/", "r", "n", "e", "p", "a", "?", "Escape"):
        expect(sheet.locator("kbd", has_text=key).first).to_be_visible()
    expect(sheet).to_contain_text("Assign to me")
    screenshot(page, "inbox-shortcuts")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()


def test_emoji_picker_inserts_at_the_caret(desk: Desk, contexts: Any) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:8]
    desk.visitor_says(f"Emoji {word}")
    page = inbox(desk, contexts)
    row(page, word).locator("[data-ib=conversation]").click()
    expect(page.locator("[data-ib=message]", has_text=word)).to_be_visible()
    reply = page.locator("[data-ib=reply]")
    expect(reply).to_be_focused()  # the thread is loaded and has put the caret here
    reply.fill("Hello there")
    reply.evaluate("(r) => { r.selectionStart = r.selectionEnd = 5; }")  # after "Hello"
    page.locator("[data-ib=emoji-open]").click()
    grid = page.locator("[data-ib=emoji-grid]")
    expect(grid).to_be_visible()
    expect(page.locator("[data-ib=emoji-open]")).to_have_attribute("aria-expanded", "true")
    expect(grid.locator("[role=gridcell]").first).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")  # one row down: the 10th
    expect(grid.locator("[role=gridcell]").nth(9)).to_be_focused()
    expect(grid.locator("[role=gridcell]").nth(9)).to_have_attribute("aria-label", "surprised face")
    screenshot(page, "inbox-emoji")
    page.keyboard.press("Enter")
    expect(grid).to_be_hidden()
    expect(reply).to_have_value("Hello😮 there")
    expect(reply).to_be_focused()

    page.locator("[data-ib=emoji-open]").click()
    page.keyboard.press("Escape")
    expect(grid).to_be_hidden()
    expect(page.locator("[data-ib=emoji-open]")).to_be_focused()
    expect(page.locator("[data-ib=pane]")).to_be_visible()  # Escape closed the grid only


def test_only_web_addresses_become_links_in_the_inbox_and_the_widget(
    desk: Desk, contexts: Any
) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:8]
    text = f"Links {word}: javascript:alert(1) data:text/html,hi https://example.com/a?b=1."
    page = contexts().new_page()
    src, key = desk.proc.base_url + "/widget.js", desk.seed["public_key"]
    tag = f'<script src="{src}" data-channel="{key}" async></script>'
    page.goto(desk.shop.page(f"/p-{word}", tag))
    page.locator("[data-sc=launcher]").click()
    page.locator("[data-sc=input]").fill(text)
    page.locator("[data-sc=input]").press("Enter")
    mine = page.locator("[data-sc=message][data-direction=in]")
    expect(mine).to_contain_text(word)

    agent = inbox(desk, contexts)
    row(agent, word).locator("[data-ib=conversation]").click()
    shown = agent.locator("[data-ib=message]", has_text=word)
    for place in (shown, mine):
        link = place.locator("a[href^=http]")
        expect(link).to_have_count(1)
        expect(link).to_have_attribute("href", "https://example.com/a?b=1")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_text("https://example.com/a?b=1")
        assert place.locator("a").count() == 1  # javascript: and data: stay text
        expect(place).to_contain_text("javascript:alert(1) data:text/html,hi")

    # The agent's reply, with the same text, in the widget.
    agent.locator("[data-ib=reply]").fill(text.replace("Links", "Back"))
    agent.locator("[data-ib=send]").click()
    theirs = page.locator("[data-sc=message][data-direction=out]", has_text="Back")
    expect(theirs.locator("a")).to_have_count(1)
    expect(theirs.locator("a")).to_have_attribute("rel", "noopener noreferrer")
    expect(theirs.locator("a")).to_have_attribute("href", "https://example.com/a?b=1")


def test_an_anonymous_visitor_is_found_by_the_shown_name(desk: Desk, contexts: Any) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:8]
    conversation_id = desk.visitor_says(f"Nameless {word}")
    contact_id = (desk.conversation(conversation_id) or {})["contact"]["id"]
    page = inbox(desk, contexts)
    name = row(page, word).locator(".name")
    expect(name).to_have_text(f"Visitor {contact_id[:6]}")
    page.locator("[data-ib=search]").fill(f"Visitor {contact_id[:6]}")
    result = page.locator("[data-ib=search-result]", has_text=f"Visitor {contact_id[:6]}")
    expect(result).to_have_count(1)
    result.click()
    expect(page.locator("[data-ib=contact-panel]")).to_be_visible()
    expect(page.locator("[data-ib=contact-name]")).to_have_text(f"Visitor {contact_id[:6]}")


def test_the_widget_has_an_emoji_picker_too(desk: Desk, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = contexts(locale="tr-TR").new_page()
    src, key = desk.proc.base_url + "/widget.js", desk.seed["public_key"]
    page.goto(
        desk.shop.page(
            f"/p-{uuid.uuid4().hex[:8]}",
            f'<script src="{src}" data-channel="{key}" async></script>',
        )
    )
    page.locator("[data-sc=launcher]").click()
    field = page.locator("[data-sc=input]")
    field.fill("Merhaba")
    opener = page.locator("[data-sc=emoji]")
    expect(opener).to_have_attribute("aria-label", "Emoji")
    opener.click()
    grid = page.locator("[data-sc=emoji-grid]")
    expect(grid).to_be_visible()
    cells = grid.locator("[role=gridcell]")
    expect(cells.first).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(cells.nth(8)).to_be_focused()
    expect(cells.nth(8)).to_have_attribute("aria-label", "beğendim")  # Turkish names
    page.keyboard.press("Enter")
    expect(grid).to_be_hidden()
    expect(field).to_have_value("Merhaba👍")
    expect(field).to_be_focused()
    opener.click()
    page.keyboard.press("Escape")
    expect(grid).to_be_hidden()
    expect(opener).to_be_focused()
    expect(page.locator("[data-sc=panel]")).to_be_visible()  # the chat stays open


def test_read_receipts_survive_reloads_in_the_inbox_and_the_widget(
    desk: Desk, contexts: Any
) -> None:
    """After a reload: the inbox shows our reply read by the visitor and "Seen by" the other
    agent who opened the conversation; the widget shows the visitor's message read."""
    from playwright.sync_api import expect

    email = f"agent-{uuid.uuid4().hex[:6]}@demo.example"
    data_dir = Path(desk.proc.args[desk.proc.args.index("--data-dir") + 1])
    join(desk.admin, {}, email, "Ayşe", STRONG_PASSWORD, data_dir=data_dir)
    word = uuid.uuid4().hex[:8]
    widget = contexts().new_page()
    src, key = desk.proc.base_url + "/widget.js", desk.seed["public_key"]
    widget.goto(
        desk.shop.page(f"/p-{word}", f'<script src="{src}" data-channel="{key}" async></script>')
    )
    widget.locator("[data-sc=launcher]").click()
    widget.locator("[data-sc=input]").fill(f"Question {word}")
    widget.locator("[data-sc=input]").press("Enter")
    mine = widget.locator("[data-sc=message][data-direction=in]")
    expect(mine).to_contain_text("Sent")

    ayse = contexts().new_page()
    log_in(ayse, desk.proc.base_url, email, STRONG_PASSWORD)
    expect(ayse.locator("[data-ib=status]")).to_have_text("Live")
    row(ayse, word).locator("[data-ib=conversation]").click()  # Ayşe reads it

    agent = inbox(desk, contexts)
    row(agent, word).locator("[data-ib=conversation]").click()  # so do we
    expect(agent.locator("[data-ib=seen]")).to_contain_text("Ayşe")
    expect(mine).to_contain_text("Read")
    agent.locator("[data-ib=reply]").fill(f"Answer {word}")
    agent.locator("[data-ib=send]").click()
    expect(widget.locator("[data-sc=message][data-direction=out]")).to_contain_text(word)
    reply = agent.locator("[data-ib=message]", has_text=f"Answer {word}")
    expect(reply.locator("[data-ib=delivery]")).to_have_attribute("data-status", "read")

    for page in (agent, widget):
        page.reload()
    expect(agent.locator("[data-ib=status]")).to_have_text("Live")
    row(agent, word).locator("[data-ib=conversation]").click()
    reply = agent.locator("[data-ib=message]", has_text=f"Answer {word}")
    expect(reply.locator("[data-ib=delivery]")).to_have_attribute("data-status", "read")
    expect(agent.locator("[data-ib=seen]")).to_contain_text("Ayşe")
    widget.locator("[data-sc=launcher]").click()
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("Read")
