"""Custom attributes in a real Chromium against a real `hub demo`: an admin defines them in the
console and uses one in an automation rule's condition ("Try it"); an agent edits values in
the inbox (the thread's side and the contact panel), another open inbox shows the change
live, links are safe, and the list filters by an attribute."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.servers import HubProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def admin(hub: tuple[HubProcess, dict[str, str]]) -> Iterator[httpx.Client]:
    proc, seed = hub
    client = api_client(proc.base_url, seed["email"], seed["password"])
    yield client
    client.close()


def page_of(contexts: Any, hub: tuple[HubProcess, dict[str, str]], path: str = "/") -> Any:
    """The demo admin signed in at `path`; fails the test on an uncaught script error."""
    proc, seed = hub
    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    log_in(page, proc.base_url, seed["email"], seed["password"], path)
    return page


def visitor_writes(hub: tuple[HubProcess, dict[str, str]], text: str) -> str:
    """A web-chat visitor's first message (what the widget does); its conversation id."""
    proc, seed = hub
    origin = proc.base_url
    answer = httpx.post(
        origin + "/api/widget/token",
        json={"channel": seed["public_key"]},
        headers={"origin": origin},
    )
    answer.raise_for_status()
    with ws_connect(proc.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": answer.json()["token"]}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": uuid.uuid4().hex, "text": text}))
        while json.loads(ws.recv(5))["type"] not in ("ack", "error"):
            pass
    return str(answer.json()["conversation_id"])


def test_an_admin_defines_attributes_and_uses_one_in_a_rule(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    page = page_of(contexts, hub, "/admin")
    page.locator("[data-ib=tab-attributes]").click()
    panel = page.locator("[data-ib=panel-attributes]")
    expect(panel.locator("[data-ib=no-attributes]")).to_be_visible()

    def define(key: str, label: str, kind: str, applies: str, options: str = "") -> None:
        panel.locator("[data-ib=new-attribute]").click()
        panel.locator("[data-ib=attribute-key]").fill(key)
        panel.locator("[data-ib=attribute-label]").fill(label)
        panel.locator("[data-ib=attribute-type]").select_option(kind)
        panel.locator("[data-ib=attribute-applies]").select_option(applies)
        expect(panel.locator("[data-ib=attribute-options]")).to_be_visible(visible=kind == "list")
        if options:
            panel.locator("[data-ib=attribute-options]").fill(options)
        panel.locator("[data-ib=save-attribute]").click()
        expect(panel.locator(f"[data-ib=attribute][data-key={key}]")).to_be_visible()

    # What the console checks before asking the server, and what the server refuses.
    panel.locator("[data-ib=new-attribute]").click()
    panel.locator("[data-ib=attribute-key]").fill("Bad Key")
    panel.locator("[data-ib=save-attribute]").click()
    expect(panel.locator("[data-ib=attribute-error]")).to_have_text(
        "Give a key: lowercase letters, digits and _, starting with a letter."
    )
    panel.locator("[data-ib=cancel-attribute]").click()
    define("tier", "Tier", "list", "contact", "free, gold")
    define("seats", "Seats", "number", "contact")
    define("order_no", "Order", "text", "conversation")
    panel.locator("[data-ib=new-attribute]").click()
    panel.locator("[data-ib=attribute-key]").fill("tier")
    panel.locator("[data-ib=attribute-label]").fill("Again")
    panel.locator("[data-ib=save-attribute]").click()
    expect(panel.locator("[data-ib=attribute-error]")).to_have_text(
        "An attribute with that key exists already."
    )
    panel.locator("[data-ib=cancel-attribute]").click()
    # Rename a list and give it another option.
    panel.locator("[data-ib=attribute][data-key=tier] [data-ib=edit-attribute]").click()
    expect(panel.locator("[data-ib=attribute-key]")).to_be_disabled()
    panel.locator("[data-ib=attribute-label]").fill("Plan")
    panel.locator("[data-ib=attribute-options]").fill("free, gold, vip")
    panel.locator("[data-ib=save-attribute]").click()
    expect(panel.locator("[data-ib=attribute-saved]")).to_have_text("Saved Plan.")
    row = panel.locator("[data-ib=attribute][data-key=tier]")
    expect(row.locator("[data-ib=attribute-name]")).to_have_text("Plan")
    expect(row).to_contain_text("free, gold, vip")
    screenshot(page, "admin-attributes")
    # Delete one, after the page's own confirmation.
    panel.locator("[data-ib=attribute][data-key=seats] [data-ib=delete-attribute]").click()
    page.locator("[data-ib=confirm-ok]").click()
    expect(panel.locator("[data-ib=attribute][data-key=seats]")).to_have_count(0)
    keys = [d["key"] for d in admin.get("/api/attributes").json()["items"]]
    assert sorted(keys) == ["order_no", "tier"]
    actions = {r["action"] for r in admin.get("/api/audit").json()["items"]}
    assert {"attribute.created", "attribute.updated", "attribute.deleted"} <= actions

    # The rule editor offers the attributes as conditions, and "Try it" checks them.
    page.locator("[data-ib=tab-automation]").click()
    expect(page.locator("[data-ib=no-rules]")).to_be_visible()  # the tab has loaded
    page.locator("[data-ib=new-rule]").click()
    page.locator("[data-ib=rule-name]").fill("Gold plans")
    page.locator("[data-ib=add-condition]").click()
    condition = page.locator("[data-ib=condition]").last
    condition.locator("[data-ib=condition-field]").select_option("contact_attribute")
    expect(condition.locator("[data-ib=condition-key] option")).to_have_text(["Plan"])
    condition.locator("[data-ib=condition-op]").select_option("equals")
    condition.locator("[data-ib=condition-values]").fill("gold")
    page.locator("[data-ib=add-condition]").click()
    second = page.locator("[data-ib=condition]").last
    second.locator("[data-ib=condition-field]").select_option("conversation_attribute")
    second.locator("[data-ib=condition-op]").select_option("is_set")
    expect(second.locator("[data-ib=condition-values]")).to_be_hidden()
    page.locator("[data-ib=action] [data-ib=action-value]").first.fill("gold")
    page.locator("[data-ib=try-attributes]").fill("tier=gold, order_no=A-1")
    page.locator("[data-ib=try-rule]").click()
    expect(page.locator("[data-ib=try-verdict]")).to_have_attribute("data-matched", "true")
    page.locator("[data-ib=try-attributes]").fill("tier=free, order_no=A-1")
    page.locator("[data-ib=try-rule]").click()
    expect(page.locator("[data-ib=try-verdict]")).to_have_attribute("data-matched", "false")
    page.locator("[data-ib=save-rule]").click()
    expect(page.locator("[data-ib=rule] [data-ib=rule-title]")).to_have_text(["Gold plans"])
    [rule] = admin.get("/api/automation-rules").json()["items"]
    assert rule["conditions"] == [
        {"field": "contact_attribute", "key": "tier", "op": "equals", "values": ["gold"]},
        {"field": "conversation_attribute", "key": "order_no", "op": "is_set", "values": []},
    ]
    admin.delete(f"/api/automation-rules/{rule['id']}")

    # In Turkish.
    page.evaluate("localStorage.setItem('hub.lang', 'tr')")
    page.goto(hub[0].base_url + "/admin#attributes")
    page.reload()  # a new hash alone would not load the page again
    expect(page.locator("[data-ib=tab-attributes]")).to_have_text("Özel alanlar")
    expect(panel.locator("[data-ib=new-attribute]")).to_have_text("Yeni alan")
    expect(panel.locator("[data-ib=attribute][data-key=tier] td").nth(2)).to_have_text("Liste")
    page.evaluate("localStorage.removeItem('hub.lang')")
    assert not page.errors, page.errors


def test_an_agent_edits_values_sees_them_live_and_filters_the_list(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    existing = {d["key"]: d["id"] for d in admin.get("/api/attributes").json()["items"]}
    for body in (
        {"key": "plan", "label": "Plan", "type": "list", "options": ["free", "gold"]},
        {"key": "site", "label": "Website", "type": "link"},
        {"key": "renewal", "label": "Renewal", "type": "date"},
    ):
        if body["key"] not in existing:
            made = admin.post("/api/attributes", json=body | {"applies_to": "contact"})
            assert made.status_code == 201, made.text
    if "ref" not in existing:
        body = {"key": "ref", "label": "Reference", "type": "text", "applies_to": "conversation"}
        assert admin.post("/api/attributes", json=body).status_code == 201
    first = visitor_writes(hub, "Hello, about my plan")
    second = visitor_writes(hub, "Another question")
    # The pages list what is stored: an acked message may still be on its way to the store.
    for conversation in (first, second):
        wait_until(
            lambda c=conversation: admin.get(f"/api/conversations/{c}").status_code == 200,
            what=f"conversation {conversation} stored",
        )

    page = page_of(contexts, hub)
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    other = page_of(contexts, hub)
    expect(other.locator("[data-ib=status]")).to_have_text("Live")
    for p in (page, other):
        p.locator(f"[data-ib=conversation][data-id='{first}']").click()

    # The thread's side: the conversation's own attributes.
    mine = page.locator("[data-ib=conversation-attributes]")
    row = mine.locator("[data-ib=attribute-row][data-key=ref]")
    expect(row).to_be_visible()
    row.locator("[data-ib=attribute-input]").fill("A-1042")
    mine.locator("[data-ib=conversation-attributes-save]").click()
    expect(mine.locator("[data-ib=conversation-attributes-status]")).to_have_text("Saved.")
    # The other open inbox shows it without a reload.
    theirs = other.locator(
        "[data-ib=conversation-attributes] [data-ib=attribute-row][data-key=ref]"
    )
    expect(theirs.locator("[data-ib=attribute-input]")).to_have_value("A-1042")

    # The contact panel: the contact's attributes, each by its type.
    page.locator("[data-ib=contact-toggle]").click()
    contact = page.locator("[data-ib=contact-attributes]")
    expect(contact).to_be_visible()
    contact.locator("[data-ib=attribute-row][data-key=plan] select").select_option("gold")
    link = contact.locator("[data-ib=attribute-row][data-key=site] [data-ib=attribute-input]")
    link.fill("javascript:alert(1)")
    contact.locator("[data-ib=contact-attributes-save]").click()
    expect(contact.locator("[data-ib=contact-attributes-status]")).to_have_text(
        "Enter a link starting with http:// or https://."
    )
    link.fill("https://shop.example/account?id=7")
    date = contact.locator("[data-ib=attribute-row][data-key=renewal] [data-ib=attribute-input]")
    date.fill("2027-01-31")
    contact.locator("[data-ib=contact-attributes-save]").click()
    expect(contact.locator("[data-ib=contact-attributes-status]")).to_have_text("Saved.")
    shown = contact.locator("[data-ib=attribute-link]")
    expect(shown).to_have_attribute("href", "https://shop.example/account?id=7")
    expect(shown).to_have_attribute("rel", "noopener noreferrer")
    expect(shown).to_have_attribute("target", "_blank")
    contact_id = admin.get(f"/api/conversations/{first}").json()["contact"]["id"]
    stored = admin.get(f"/api/contacts/{contact_id}/attributes").json()["values"]
    assert stored == {
        "plan": "gold",
        "site": "https://shop.example/account?id=7",
        "renewal": "2027-01-31",
    }
    # Another agent's change while this one edits: it shows, and the unsaved edit stays.
    link.fill("https://shop.example/draft")
    admin.patch(
        f"/api/contacts/{contact_id}/attributes", json={"values": {"renewal": "2027-02-28"}}
    )
    expect(date).to_have_value("2027-02-28")
    expect(link).to_have_value("https://shop.example/draft")
    contact.locator("[data-ib=contact-attributes-save]").click()
    expect(shown).to_have_attribute("href", "https://shop.example/draft")
    stored = admin.get(f"/api/contacts/{contact_id}/attributes").json()["values"]
    assert stored["site"] == "https://shop.example/draft" and stored["renewal"] == "2027-02-28"
    # A value another agent sets through the API arrives live too.
    admin.patch(f"/api/contacts/{contact_id}/attributes", json={"values": {"plan": "free"}})
    other.locator("[data-ib=contact-toggle]").click()
    plan = other.locator(
        "[data-ib=contact-attributes] [data-ib=attribute-row][data-key=plan] select"
    )
    expect(plan).to_have_value("free")
    admin.patch(f"/api/contacts/{contact_id}/attributes", json={"values": {"plan": "gold"}})
    expect(plan).to_have_value("gold")
    screenshot(page, "inbox-attributes")

    # The list's filter: only the conversations whose attribute has that value.
    rows = page.locator("[data-ib=conversation]")
    expect(page.locator(f"[data-ib=conversation][data-id='{second}']")).to_be_visible()
    page.locator("[data-ib=attribute-filter-key]").select_option("plan")
    page.locator("[data-ib=attribute-filter-value]").fill("gold")
    page.locator("[data-ib=attribute-filter-value]").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", first)
    page.locator("[data-ib=attribute-filter-key]").select_option("ref")
    page.locator("[data-ib=attribute-filter-value]").fill("A-1042")
    page.locator("[data-ib=attribute-filter-value]").press("Enter")
    expect(rows).to_have_count(1)
    page.locator("[data-ib=attribute-filter-value]").fill("nothing-like-it")
    page.locator("[data-ib=attribute-filter-value]").press("Enter")
    expect(rows).to_have_count(0)
    page.locator("[data-ib=attribute-filter-key]").select_option("")
    expect(page.locator(f"[data-ib=conversation][data-id='{second}']")).to_be_visible()
    wait_until(lambda: rows.count() >= 2, what="the whole list back")
    assert not page.errors and not other.errors, (page.errors, other.errors)
