"""Notifications and @mentions in a real Chromium (notifications permitted by the test)
against a real `hub demo`: the unread count in the title and on the icon, the sound (made with
the Web Audio API) and the desktop notification of a new conversation while the tab is hidden,
whose click opens it; preferences kept across a reload and obeyed; an @mention chosen from the
note composer's menu, highlighted in the note, telling the mentioned agent and filling their
"Mentions" filter; and the service worker showing a push delivered to it over CDP.

The init script wraps `window.Notification` and the Web Audio API's `createOscillator` to
record what the page asked of the browser (it observes browser APIs, it patches nothing of
ours). A headless tab is never hidden by itself, so the script also lets the test say that it
is (`document.hidden`, `visibilityState`), as a tab in the background would."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join
from tests.servers import HubProcess

pytestmark = pytest.mark.browser

WATCH = """
(() => {
  window.__notes = [];
  window.__tones = 0;
  window.__hidden = false;
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      const o = options || {};
      window.__notes.push({ title, body: o.body || '', tag: o.tag || '' });
      window.__lastNote = this;
    }
  }
  Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
  Recorded.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Recorded;
  const make = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () {
    window.__tones += 1;
    return make.call(this);
  };
  Object.defineProperty(Document.prototype, 'hidden', {
    get: () => window.__hidden, configurable: true });
  Object.defineProperty(Document.prototype, 'visibilityState', {
    get: () => (window.__hidden ? 'hidden' : 'visible'), configurable: true });
})();
"""


def visitor_says(proc: HubProcess, seed: dict[str, str], text: str) -> None:
    origin = proc.base_url
    token = httpx.post(
        origin + "/api/widget/token",
        json={"channel": seed["public_key"]},
        headers={"origin": origin},
    ).json()["token"]
    with connect(proc.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": "c1", "text": text}))
        while (frame := json.loads(ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert frame["type"] == "ack", frame


def inbox(proc: HubProcess, contexts: Any, email: str, password: str) -> Any:
    from playwright.sync_api import expect

    context = contexts()
    context.grant_permissions(["notifications"], origin=proc.base_url)
    page = context.new_page()
    page.add_init_script(WATCH)
    log_in(page, proc.base_url, email, password)
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    return page


def test_unread_title_icon_sound_desktop_notification_and_preferences(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    page = inbox(proc, contexts, seed["email"], seed["password"])
    page.locator("[data-ib=filter-status]").select_option("")
    expect(page).to_have_title("SosyoCRM inbox")
    plain_icon = page.locator("link[rel=icon]").get_attribute("href") or ""
    page.locator("[data-ib=me]").click()  # a user gesture: the page may play sounds from now on
    page.evaluate("window.__hidden = true")

    visitor_says(proc, seed, "Hello, is my order on its way?")
    expect(page).to_have_title("(1) SosyoCRM inbox")
    icon = page.locator("link[rel=icon]").get_attribute("href") or ""
    assert icon.startswith("data:image/png;base64,") and icon != plain_icon
    wait_until(lambda: page.evaluate("window.__tones") >= 2, what="the new conversation's sound")
    notes = wait_until(lambda: page.evaluate("window.__notes"), what="a desktop notification")
    assert notes[0]["title"] == "New conversation"
    assert "Hello, is my order on its way?" in notes[0]["body"]

    # Its click brings the tab back and opens the conversation, which is then read.
    page.evaluate("window.__hidden = false; window.__lastNote.onclick()")
    expect(page.locator("[data-ib=messages]")).to_contain_text("Hello, is my order on its way?")
    expect(page).to_have_title("SosyoCRM inbox")
    assert page.locator("link[rel=icon]").get_attribute("href") != icon

    # Preferences: no sound for new conversations, kept across a reload.
    page.locator("[data-ib=notify-open]").click()
    dialog = page.locator("[data-ib=notify-dialog]")
    expect(dialog).to_be_visible()
    box = dialog.locator("[data-ib=notify-sound_new_conversation]")
    expect(box).to_be_checked()
    box.uncheck()
    expect(dialog).to_contain_text("Saved.")
    screenshot(page, "inbox-notifications")
    page.reload()
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.locator("[data-ib=notify-open]").click()
    expect(page.locator("[data-ib=notify-sound_new_conversation]")).not_to_be_checked()
    expect(page.locator("[data-ib=notify-desktop]")).to_be_checked()
    page.keyboard.press("Escape")
    page.locator("[data-ib=me]").click()
    page.evaluate("window.__hidden = true")
    visitor_says(proc, seed, "A second visitor, a second question")
    expect(page).to_have_title("(1) SosyoCRM inbox")
    wait_until(lambda: len(page.evaluate("window.__notes")) == 1, what="the second notification")
    assert page.evaluate("window.__tones") == 0  # the sound was turned off


def test_a_mention_in_a_note_tells_the_agent_and_fills_their_filter(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    data_dir = Path(proc.args[proc.args.index("--data-dir") + 1])
    admin_api = api_client(proc.base_url, seed["email"], seed["password"])
    address = "deniz.mention@example.com"
    agent_id = join(admin_api, {}, address, "Deniz Mention", STRONG_PASSWORD, data_dir=data_dir)
    visitor_says(proc, seed, "Where is the invoice for my order?")

    agent = inbox(proc, contexts, address, STRONG_PASSWORD)
    agent.locator("[data-ib=me]").click()
    agent.evaluate("window.__hidden = true")

    page = inbox(proc, contexts, seed["email"], seed["password"])
    page.locator("[data-ib=filter-status]").select_option("")
    page.locator("[data-ib=conversation]", has_text="Where is the invoice").click()
    page.locator("[data-ib=mode-note]").check()
    reply = page.locator("[data-ib=reply]")
    reply.click()
    reply.press_sequentially("@Den")
    option = page.locator("[data-ib=mention-option]")
    expect(option).to_have_count(1)
    expect(option).to_have_text("@Deniz Mention")
    expect(page.locator("[data-ib=mention-menu]")).to_be_visible()
    reply.press("Enter")  # takes the member, does not send
    expect(reply).to_have_value("@Deniz Mention ")
    reply.press_sequentially("could you send the invoice?")
    reply.press("Enter")
    note = page.locator("[data-ib=message][data-note=true]", has_text="could you send")
    expect(note.locator("[data-ib=mention]")).to_have_text("@Deniz Mention")
    expect(note).not_to_have_class(re.compile(r"\bsending\b"))  # acknowledged
    screenshot(page, "inbox-mentions")
    mentioned = api_client(proc.base_url, address, STRONG_PASSWORD)
    listed = wait_until(
        lambda: mentioned.get("/api/conversations?mentions=me").json()["items"],
        what="the mention kept",
    )
    assert len(listed) == 1 and agent_id
    assert admin_api.get("/api/conversations?mentions=me").json()["items"] == []

    told = wait_until(
        lambda: [n for n in agent.evaluate("window.__notes") if "mentioned you" in n["title"]],
        what="the mentioned agent's desktop notification",
    )
    assert "could you send the invoice?" in told[0]["body"]
    assert agent.evaluate("window.__tones") >= 2
    agent.evaluate("window.__hidden = false")
    agent.locator("[data-ib=filter-status]").select_option("")
    agent.locator("[data-ib=filter-assignee]").select_option("mentions")
    rows = agent.locator("[data-ib=conversation]")
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-id", listed[0]["id"])


def test_the_service_worker_shows_a_push_and_its_click_opens_the_conversation(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    proc, seed = hub
    page = inbox(proc, contexts, seed["email"], seed["password"])
    page.evaluate(
        "navigator.serviceWorker.register('/sw.js', { scope: '/' })"
        ".then(() => navigator.serviceWorker.ready)"
    )
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    found = wait_until(  # the sync API hands CDP events over while it waits on the page
        lambda: (
            page.wait_for_timeout(50)
            or [r for r in registrations if r["scopeURL"] == proc.base_url + "/"]
        ),
        what="the service worker's registration",
    )
    conversation_id = "0b9f6f3e-6d0c-4b55-9a59-2f3a1c6f8e10"
    payload = {"kind": "assigned", "conversation_id": conversation_id, "preview": "Hello there"}

    def delivered_and_shown() -> Any:
        # Delivered again until shown: a worker that is still starting may miss the first.
        # The same tag replaces the notice, so it is shown once however often it is delivered.
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": proc.base_url,
                "registrationId": found[0]["registrationId"],
                "data": json.dumps(payload),
            },
        )
        page.wait_for_timeout(500)
        return page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(ns => ns.map(n => ({ title: n.title, body: n.body, tag: n.tag })))"
        )

    shown = wait_until(delivered_and_shown, timeout_s=20, what="the push's notification")
    assert shown == [
        {
            "title": "A conversation was assigned to you",
            "body": "Hello there",
            "tag": conversation_id,
        }
    ]


def test_a_mention_keeps_the_notes_links_and_the_mentions_filter_keeps_its_counts(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    data_dir = Path(proc.args[proc.args.index("--data-dir") + 1])
    admin_api = api_client(proc.base_url, seed["email"], seed["password"])
    address = "ayla.links@example.com"
    agent_id = join(admin_api, {}, address, "Ayla Links", STRONG_PASSWORD, data_dir=data_dir)
    visitor_says(proc, seed, "Links question one")
    visitor_says(proc, seed, "Links question two")
    [conversation_id] = wait_until(
        lambda: [
            c["id"]
            for c in admin_api.get("/api/conversations").json()["items"]
            if c["last_message_preview"] == "Links question one"
        ],
        what="the visitor's conversation",
    )
    note = admin_api.post(
        f"/api/conversations/{conversation_id}/messages",
        json={
            "client_id": "links-1",
            "text": "@Ayla Links see https://example.com/guide for the steps",
            "note": True,
            "mentions": [agent_id],
        },
    )
    assert note.status_code == 202, note.text
    agent_api = api_client(proc.base_url, address, STRONG_PASSWORD)
    wait_until(
        lambda: agent_api.get("/api/conversations?mentions=me").json()["items"],
        what="the mention kept",
    )
    every_open = admin_api.get("/api/conversations/counts").json()["status"]["open"]
    assert every_open >= 2

    page = inbox(proc, contexts, address, STRONG_PASSWORD)
    status_open = page.locator("[data-ib=filter-status] option[value=open]")
    expect(status_open).to_have_text(f"Open ({every_open})")
    page.locator("[data-ib=filter-assignee]").select_option("mentions")
    rows = page.locator("[data-ib=conversation]")
    expect(rows).to_have_count(1)
    expect(status_open).to_have_text("Open (1)")  # the counts of the Mentions filter

    rows.first.click()
    shown = page.locator("[data-ib=message][data-note=true]", has_text="for the steps")
    expect(shown.locator("[data-ib=mention]")).to_have_text("@Ayla Links")
    link = shown.locator(".bubble > .text a")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", "https://example.com/guide")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    expect(shown.locator(".bubble > .text")).to_have_text(
        "@Ayla Links see https://example.com/guide for the steps"
    )
    screenshot(page, "inbox-mention-links")
