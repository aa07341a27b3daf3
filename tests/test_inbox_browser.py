"""The agent inbox in a real Chromium against a real `hub demo` whose channels talk to the fake
platform on loopback: webhooks arrive live, replies show their delivery status, comments,
attachments, the messaging window, history paging, cut sockets, phones and Turkish."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.fakeplatform import MESSENGER, WHATSAPP, FakePlatform, running_fake
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join
from tests.netcut import cuttable
from tests.payloads import load
from tests.servers import HubProcess, base_env, demo, demo_seed, free_port

pytestmark = pytest.mark.browser


@dataclass
class Site:
    proc: HubProcess
    seed: dict[str, str]
    fake: FakePlatform
    secret: str
    admin: httpx.Client
    data_dir: Path  # where the demo writes its letters (log-only mail)

    @property
    def base(self) -> str:
        return self.proc.base_url

    def meta(self, body: dict[str, Any]) -> None:
        """A webhook signed the way Meta signs it, to the hosted-app endpoint."""
        data = json.dumps(body).encode()
        digest = hmac.new(self.secret.encode(), data, hashlib.sha256).hexdigest()
        answer = httpx.post(
            self.base + "/webhooks/meta",
            content=data,
            headers={"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        page = self.admin.get(f"/api/conversations/{conversation_id}/messages?limit=200")
        return list(page.json()["items"]) if page.status_code == 200 else []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("inbox-hub")
    secret = "app-secret-" + uuid.uuid4().hex
    with running_fake() as fake:
        urls = fake.base_urls()
        port = free_port()
        env = base_env(
            HUB_META_APP_SECRET=secret,
            HUB_GRAPH_URL=urls.graph,
            HUB_INSTAGRAM_GRAPH_URL=urls.instagram,
            HUB_TELEGRAM_API_URL=urls.telegram,
            HUB_VISITOR_MESSAGES_PER_MINUTE="1000",  # one visitor writes 120 lines below
        )
        args = ["demo", "--port", str(port), "--data-dir", str(tmp / "demo-data")]
        proc = HubProcess(args, env, port=port, log_path=tmp / "demo.log").start()
        try:
            seed = demo_seed(tmp)
            admin = api_client(proc.base_url, seed["email"], seed["password"])
            for body in (
                {
                    "kind": "whatsapp",
                    "name": "Shop WhatsApp",
                    "account_id": WHATSAPP.account_id,
                    "access_token": WHATSAPP.token,
                },
                {
                    "kind": "messenger",
                    "name": "Shop Page",
                    "account_id": MESSENGER.account_id,
                    "access_token": MESSENGER.token,
                },
            ):
                answer = admin.post("/api/channels", json=body)
                assert answer.status_code == 201, answer.text
            yield Site(proc, seed, fake, secret, admin, tmp / "demo-data")
            admin.close()
        finally:
            proc.stop()


def whatsapp_text(text: str, sender: str, age_s: float = 5) -> dict[str, Any]:
    body = load("whatsapp/message_text.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = sender
    value["contacts"][0]["profile"]["name"] = f"Customer {sender[-4:]}"
    message = value["messages"][0]
    message["id"] = "wamid." + uuid.uuid4().hex
    message["timestamp"] = str(int(time.time() - age_s))
    message["text"]["body"] = text
    return dict(body)


def whatsapp_status(status: str, platform_id: str) -> dict[str, Any]:
    body = load(f"whatsapp/status_{status}.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    value["statuses"][0]["id"] = platform_id
    return dict(body)


def sender_number() -> str:
    return "90555" + str(uuid.uuid4().int)[:7]


class Visitor:
    """A web-chat visitor on a real socket (what the widget does), for driving the inbox."""

    def __init__(self, site: Site) -> None:
        origin = site.base
        answer = httpx.post(
            site.base + "/api/widget/token",
            json={"channel": site.seed["public_key"]},
            headers={"origin": origin},
        )
        answer.raise_for_status()
        self.conversation_id = answer.json()["conversation_id"]
        self.stack = ExitStack()
        self.ws = self.stack.enter_context(
            ws_connect(site.proc.ws_url + "/ws/visitor", origin=origin)  # type: ignore[arg-type]
        )
        self.ws.send(json.dumps({"type": "hello", "token": answer.json()["token"]}))
        assert json.loads(self.ws.recv(5))["type"] == "welcome"

    def say(self, text: str | None, attachments: list[dict[str, Any]] | None = None) -> None:
        frame: dict[str, Any] = {"type": "message.send", "client_id": uuid.uuid4().hex}
        if text:
            frame["text"] = text
        if attachments:
            frame["attachments"] = attachments
        self.ws.send(json.dumps(frame))
        while (answer := json.loads(self.ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert answer["type"] == "ack", answer

    def received(self, wait_s: float = 0.5) -> list[dict[str, Any]]:
        """Every frame that reaches the visitor within `wait_s` of quiet."""
        frames = []
        while True:
            try:
                frames.append(json.loads(self.ws.recv(wait_s)))
            except TimeoutError:
                return frames

    def close(self) -> None:
        self.stack.close()


@pytest.fixture
def agent(site: Site, contexts: Any) -> Iterator[Any]:
    """The demo admin's inbox, showing conversations of every status; fails the test on any
    uncaught script error in the page."""
    from playwright.sync_api import expect

    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, site.base, site.seed["email"], site.seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.locator("[data-ib=filter-status]").select_option("")  # every status
    yield page
    assert not errors, errors


def agent_page(site: Site, contexts: Any, name: str) -> tuple[Any, str]:
    """A new agent of the demo workspace, signed in to the inbox in a page of their own."""
    from playwright.sync_api import expect

    password = STRONG_PASSWORD
    email = f"agent-{uuid.uuid4().hex[:6]}@demo.example"
    user_id = join(site.admin, {}, email, name, password, data_dir=site.data_dir)
    page = contexts().new_page()
    log_in(page, site.base, email, password)
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    return page, user_id


def conversation_row(page: Any, text: str) -> Any:
    return page.locator("[data-ib=conversation]", has_text=text)


def test_a_webhook_arrives_live_and_the_reply_follows_the_platform_status(
    site: Site, agent: Any
) -> None:
    from playwright.sync_api import expect

    word = "Ethiopia-" + uuid.uuid4().hex[:6]
    site.meta(whatsapp_text(f"Is the {word} in stock?", sender_number()))
    row = conversation_row(agent, word)
    expect(row).to_have_count(1)  # live: the page was not reloaded
    expect(row.locator("[data-ib=unread]")).to_have_text("1")
    expect(row.locator(".icon")).to_have_attribute("data-kind", "whatsapp")
    expect(agent.locator("[data-ib=conversation]").first).to_contain_text(word)  # on top
    conversation_id = row.get_attribute("data-id")
    row.click()
    expect(row.locator("[data-ib=unread]")).to_have_count(0)
    incoming = agent.locator("[data-ib=message][data-direction=in]")
    expect(incoming).to_have_count(1)
    expect(incoming).to_contain_text(word)
    expect(agent.locator("[data-ib=window]")).to_contain_text("left")

    box = agent.locator("[data-ib=reply]")
    box.fill("Yes!")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("Roasted on Tuesday.")
    expect(box).to_have_value("Yes!\nRoasted on Tuesday.")
    box.press("Enter")
    out = agent.locator("[data-ib=message][data-direction=out]")
    expect(out).to_have_count(1)
    expect(out.locator(".text")).to_have_text("Yes!\nRoasted on Tuesday.")
    expect(box).to_have_value("")
    expect(out.locator("[data-ib=delivery]")).to_have_attribute("data-status", "sent")
    stored = wait_until(
        lambda: [
            m
            for m in site.messages(conversation_id)
            if m["direction"] == "out" and m["status"] == "sent"
        ],
        what="the reply stored as sent",
    )
    platform_id = stored[0]["platform_message_id"]
    assert [r for r in site.fake.requests if r.path.endswith(f"/{WHATSAPP.account_id}/messages")]
    site.meta(whatsapp_status("delivered", platform_id))
    expect(out.locator("[data-ib=delivery]")).to_have_attribute("data-status", "delivered")
    site.meta(whatsapp_status("read", platform_id))
    expect(out.locator("[data-ib=delivery]")).to_have_attribute("data-status", "read")
    expect(out).to_have_count(1)  # the status updated the message in place
    screenshot(agent, "inbox-thread")


def test_outside_the_window_replies_are_blocked_but_notes_are_not(site: Site, agent: Any) -> None:
    from playwright.sync_api import expect

    word = "late-" + uuid.uuid4().hex[:6]
    site.meta(whatsapp_text(f"Hello? {word}", sender_number(), age_s=25 * 3600))
    conversation_row(agent, word).click()
    window = agent.locator("[data-ib=window]")
    expect(window).to_contain_text("closed")
    expect(window).to_have_attribute("data-open", "false")
    expect(agent.locator("[data-ib=reply]")).to_be_disabled()
    expect(agent.locator("[data-ib=send]")).to_be_disabled()

    agent.locator("[data-ib=mode-note]").check()
    expect(agent.locator("[data-ib=reply]")).to_be_enabled()
    agent.locator("[data-ib=reply]").fill("Customer wrote after hours; call them.")
    agent.locator("[data-ib=reply]").press("Enter")
    note = agent.locator("[data-ib=message][data-note=true]")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Private note")
    expect(note.locator("[data-ib=delivery]")).to_have_count(0)  # never sent anywhere
    time.sleep(0.3)
    sent = [r for r in site.fake.requests if r.body and "after hours" in json.dumps(r.body)]
    assert not sent


def test_a_comment_shows_as_a_comment_and_can_be_answered_privately(site: Site, agent: Any) -> None:
    from playwright.sync_api import expect

    body = load("messenger/page_feed_comment_batched_two_entries.json")
    body["entry"] = body["entry"][:1]
    body["entry"][0]["id"] = MESSENGER.account_id
    value = body["entry"][0]["changes"][0]["value"]
    value["created_time"] = int(time.time())
    site.meta(body)
    row = agent.locator("[data-ib=conversation]", has=agent.locator(".icon[data-kind=messenger]"))
    expect(row.first).to_be_visible()
    expect(row.first).to_contain_text("Comment")
    row.first.click()
    expect(agent.locator("[data-ib=post]")).to_be_visible()
    expect(agent.locator("[data-ib=message][data-direction=in].comment")).to_have_count(1)
    expect(agent.locator("[data-ib=visibility]")).to_be_visible()
    expect(agent.locator("[data-ib=window]")).to_be_hidden()  # a public reply has no window

    agent.locator("[data-ib=private-reply]").check()
    expect(agent.locator("[data-ib=window]")).to_contain_text("left")  # a private one has 7 days
    agent.locator("[data-ib=reply]").fill("I sent you the details privately.")
    agent.locator("[data-ib=reply]").press("Enter")
    out = agent.locator("[data-ib=message][data-direction=out]")
    expect(out).to_contain_text("Sent as a private message")
    expect(out.locator("[data-ib=delivery]")).to_have_attribute("data-status", "sent")
    private = [
        r for r in site.fake.requests if r.path.endswith(f"/{MESSENGER.account_id}/messages")
    ]
    assert private and "comment_id" in private[-1].body["recipient"]


def test_attachments_render_sensibly_and_markup_is_text(site: Site, agent: Any) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    agent.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    visitor = Visitor(site)
    try:
        xss = "<img src=x onerror=alert(1)> " + uuid.uuid4().hex[:6]
        visitor.say(xss)
        visitor.say(
            "Here you go",
            [
                {"type": "image", "url": "https://cdn.example/photo.jpg", "caption": "The bag"},
                {"type": "file", "url": "https://cdn.example/invoice.pdf", "name": "invoice.pdf"},
                {"type": "location", "latitude": 41.0082, "longitude": 28.9784, "name": "Shop"},
                {"type": "share", "url": "https://social.example/p/1", "caption": "This one"},
                {"type": "story", "url": "https://social.example/s/2"},
                {"type": "file", "url": "javascript:alert(2)", "name": "evil"},
                {"type": "unsupported"},
            ],
        )
    finally:
        visitor.close()
    row = conversation_row(agent, "Here you go")
    row.click()
    messages = agent.locator("[data-ib=message]")
    expect(messages).to_have_count(2)
    first = messages.first
    expect(first.locator(".text")).to_have_text(xss)  # shown as text, never parsed
    expect(agent.locator("img[src=x]")).to_have_count(0)
    assert not dialogs

    cards = messages.nth(1).locator("[data-ib=attachment]")
    expect(cards).to_have_count(7)
    # A URL the sender gave is a link to open on purpose, never loaded by the inbox itself.
    expect(cards.nth(0).locator("img")).to_have_count(0)
    expect(cards.nth(0).locator("a")).to_have_attribute("href", "https://cdn.example/photo.jpg")
    expect(cards.nth(0).locator("a")).to_have_attribute("rel", "noopener noreferrer")
    expect(cards.nth(0)).to_contain_text("The bag")
    expect(cards.nth(1).locator("a")).to_have_attribute("href", "https://cdn.example/invoice.pdf")
    expect(cards.nth(1)).to_contain_text("invoice.pdf")
    expect(cards.nth(2)).to_contain_text("Location")
    expect(cards.nth(2).locator("a")).to_have_attribute(
        "href", "https://www.openstreetmap.org/?mlat=41.0082&mlon=28.9784#map=16/41.0082/28.9784"
    )
    expect(cards.nth(3)).to_contain_text("Shared post")
    expect(cards.nth(4)).to_contain_text("Story")
    expect(cards.nth(5).locator("a")).to_have_count(0)  # a javascript: URL is never a link
    expect(cards.nth(6)).to_contain_text("Unsupported content")
    # The list shows the markup as text too.
    expect(agent.locator("[data-ib=conversation] img")).to_have_count(0)


def test_history_loads_older_pages_when_scrolling_up_without_duplicates(
    site: Site, agent: Any
) -> None:
    from playwright.sync_api import expect

    visitor = Visitor(site)
    tag = uuid.uuid4().hex[:6]
    try:
        for i in range(120):
            visitor.say(f"line {i:03d} {tag}")
    finally:
        visitor.close()
    wait_until(
        lambda: len(site.messages(visitor.conversation_id)) == 120, what="120 stored messages"
    )
    conversation_row(agent, tag).click()
    messages = agent.locator("[data-ib=message]")
    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text(f"line 119 {tag}")
    for count in (100, 120):
        agent.locator("[data-ib=messages]").evaluate("m => { m.scrollTop = 0; }")
        expect(messages).to_have_count(count)
    expect(messages.first).to_contain_text(f"line 000 {tag}")
    expect(agent.locator("[data-ib=history-start]")).to_be_visible()
    ids = messages.evaluate_all("ms => ms.map(m => m.dataset.id)")
    assert len(set(ids)) == 120
    texts = messages.evaluate_all("ms => ms.map(m => m.textContent)")
    assert [t.split(" ")[1] for t in texts] == [f"{i:03d}" for i in range(120)]  # in order


def test_a_cut_socket_reconnects_and_shows_each_missed_message_once(
    site: Site, contexts: Any
) -> None:
    from playwright.sync_api import expect

    with cuttable(site.proc.port or 0) as proxy:
        page = contexts().new_page()
        log_in(page, proxy.base_url, site.seed["email"], site.seed["password"])
        status = page.locator("[data-ib=status]")
        expect(status).to_have_text("Live")
        visitor = Visitor(site)
        tag = uuid.uuid4().hex[:6]
        try:
            visitor.say(f"before {tag}")
            conversation_row(page, tag).click()
            expect(page.locator("[data-ib=message]")).to_have_count(1)
            proxy.cut()
            expect(status).to_contain_text("Reconnecting")
            expect(status).to_have_attribute("data-state", "offline")
            for i in range(3):
                visitor.say(f"while cut {i} {tag}")
            # A reply written while offline waits, marked as sending, and goes out once.
            page.locator("[data-ib=reply]").fill(f"typed offline {tag}")
            page.locator("[data-ib=reply]").press("Enter")
            expect(page.locator("[data-ib=message].sending")).to_have_count(1)
            expect(page.locator("[data-ib=message]")).to_have_count(2)  # really cut
            proxy.restore()
            expect(status).to_have_text("Live", timeout=20_000)
            visitor.say(f"after {tag}")
        finally:
            visitor.close()
        messages = page.locator("[data-ib=message]")
        expect(messages).to_have_count(6)
        expect(page.locator("[data-ib=message].sending")).to_have_count(0)
        page.wait_for_timeout(500)
        texts = messages.evaluate_all("ms => ms.map(m => m.querySelector('.text').textContent)")
        assert sorted(texts) == sorted(
            [
                f"before {tag}",
                *(f"while cut {i} {tag}" for i in range(3)),
                f"typed offline {tag}",
                f"after {tag}",
            ]
        )
        assert texts[:4] == [f"before {tag}", *(f"while cut {i} {tag}" for i in range(3))]
        stored = wait_until(
            lambda: (
                len(site.messages(visitor.conversation_id)) == 6
                and site.messages(visitor.conversation_id)
            )
        )
        assert [m["text"] for m in stored].count(f"typed offline {tag}") == 1
        expect(conversation_row(page, tag)).to_have_count(1)


def test_phone_sized_screen_and_turkish_interface(site: Site, contexts: Any) -> None:
    from playwright.sync_api import expect

    visitor = Visitor(site)
    tag = uuid.uuid4().hex[:6]
    try:
        visitor.say(f"Merhaba {tag}")
    finally:
        visitor.close()
    context = contexts(viewport={"width": 390, "height": 800}, locale="tr-TR")
    page = context.new_page()
    page.goto(site.base + "/")
    expect(page.locator("[data-ib=login-submit]")).to_have_text("Giriş yap")
    log_in(page, site.base, site.seed["email"], site.seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Canlı")
    page.locator("[data-ib=filter-status]").select_option("")
    row = conversation_row(page, tag)
    expect(row).to_be_visible()
    expect(page.locator("[data-ib=thread]")).to_be_hidden()  # one column: the list first
    expect(row.locator(".icon")).to_have_attribute("title", "Web sohbeti")  # the channel type
    screenshot(page, "inbox-phone-list")
    row.click()
    expect(page.locator("[data-ib=messages]")).to_be_visible()
    expect(page.locator("[data-ib=conversations]")).to_be_hidden()
    expect(page.locator("[data-ib=send]")).to_have_text("Gönder")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing sticks out sideways
    screenshot(page, "inbox-phone-thread")
    page.locator("[data-ib=back]").click()
    expect(page.locator("[data-ib=conversations]")).to_be_visible()


def test_two_agents_see_each_others_replies_assignments_notes_and_presence_live(
    site: Site, agent: Any, contexts: Any
) -> None:
    from playwright.sync_api import expect

    other, ayse_id = agent_page(site, contexts, "Ayşe")
    expect(other.locator("[data-ib=admin-link]")).to_be_hidden()

    visitor = Visitor(site)
    tag = uuid.uuid4().hex[:6]
    try:
        visitor.say(f"Can someone help? {tag}")
        visitor.received()
        agent.reload()  # the admin's page learns of the new member on its next load
        expect(agent.locator("[data-ib=status]")).to_have_text("Live")
        agent.locator("[data-ib=filter-status]").select_option("")
        conversation_row(agent, tag).click()
        conversation_row(other, tag).click()
        expect(agent.locator("[data-ib=seen]")).to_contain_text("Seen by Ayşe")

        # Presence: Ayşe steps away; the admin's assignee list says so.
        other.locator("[data-ib=presence]").select_option("away")
        option = agent.locator(f"[data-ib=assignee] option[value='{ayse_id}']")
        expect(option).to_have_attribute("data-presence", "away")

        # A reply and typing from one agent show live to the other.
        agent.locator("[data-ib=reply]").press_sequentially("Hi")
        expect(other.locator("[data-ib=typing]")).to_be_visible()
        agent.locator("[data-ib=reply]").fill("On it!")
        agent.locator("[data-ib=reply]").press("Enter")
        theirs = other.locator("[data-ib=message][data-direction=out]")
        expect(theirs).to_have_count(1)
        expect(theirs).to_contain_text("On it!")

        # Assignment and labels, live on the other page.
        agent.locator("[data-ib=assignee]").select_option(ayse_id)
        expect(other.locator("[data-ib=assignee]")).to_have_value(ayse_id)
        other.locator("[data-ib=filter-assignee]").select_option("me")
        expect(conversation_row(other, "On it!")).to_have_count(1)
        agent.locator("[data-ib=label-input]").fill("VIP")
        agent.locator("[data-ib=label-input]").press("Enter")
        expect(other.locator("[data-ib=label]")).to_have_text(["vip \u00d7"])

        # A private note reaches the other agent, never the visitor.
        agent.locator("[data-ib=mode-note]").check()
        agent.locator("[data-ib=reply]").fill("Gold customer, be nice")
        agent.locator("[data-ib=reply]").press("Enter")
        expect(other.locator("[data-ib=message][data-note=true]")).to_contain_text("Gold customer")
        frames = visitor.received(1.0)
        texts = [
            f["data"]["message"].get("text") for f in frames if f.get("name") == "message.created"
        ]
        assert "On it!" in texts and "Gold customer, be nice" not in texts

        # Snooze for an hour on one page; the other sees until when.
        other.locator("[data-ib=snooze]").select_option("1h")
        expect(agent.locator("[data-ib=subtitle]")).to_contain_text("Snoozed until")
        expect(agent.locator("[data-ib=reopen]")).to_be_visible()
        agent.locator("[data-ib=reopen]").click()
        expect(other.locator("[data-ib=subtitle]")).to_contain_text("Open")

        # Resolve on one page; the other sees it and can reopen.
        other.locator("[data-ib=resolve]").click()
        expect(agent.locator("[data-ib=reopen]")).to_be_visible()
        expect(agent.locator("[data-ib=subtitle]")).to_contain_text("Resolved")
        screenshot(agent, "inbox-two-agents")
        agent.locator("[data-ib=reopen]").click()
        expect(other.locator("[data-ib=resolve]")).to_be_visible()
    finally:
        visitor.close()


def test_search_finds_messages_and_contacts_and_opens_the_contact_panel(
    site: Site, agent: Any
) -> None:
    from playwright.sync_api import expect

    word = "search" + uuid.uuid4().hex[:6]
    site.meta(whatsapp_text(f"Looking for {word}", sender_number()))
    expect(conversation_row(agent, word)).to_have_count(1)
    wait_until(
        lambda: site.admin.get("/api/search", params={"q": word}).json()["messages"],
        what="the message stored",
    )
    agent.keyboard.press("/")
    expect(agent.locator("[data-ib=search]")).to_be_focused()
    agent.keyboard.type(word)
    result = agent.locator("[data-ib=search-result]", has_text=word)
    expect(result).to_have_count(1)
    result.click()
    expect(agent.locator("[data-ib=message]")).to_contain_text([f"Looking for {word}"])
    agent.locator("[data-ib=contact-toggle]").click()
    panel = agent.locator("[data-ib=contact-panel]")
    expect(panel).to_be_visible()
    expect(panel.locator("[data-ib=identity]")).to_contain_text(["Shop WhatsApp"])
    expect(panel.locator("[data-ib=contact-conversation]")).to_have_count(1)
    with agent.expect_download() as download:  # the admin's subject-access export
        panel.locator("[data-ib=contact-export]").click()
    dump = json.loads(Path(download.value.path()).read_text())
    assert [m["text"] for m in dump["messages"]] == [f"Looking for {word}"]


def whatsapp_change(fixture: str, sender: str, target: str) -> dict[str, Any]:
    """A recorded reaction or edit (or, from the edit, a revoke) aimed at our `target`."""
    body = load(f"whatsapp/{fixture}.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    message = value["messages"][0]
    message["from"] = sender
    message["id"] = "wamid." + uuid.uuid4().hex
    message["timestamp"] = str(int(time.time()))
    if fixture == "message_reaction":
        message["reaction"]["message_id"] = target
    else:
        message["edit"]["original_message_id"] = target
    return dict(body)


def test_reactions_edits_and_unsends_change_the_message_in_place(site: Site, agent: Any) -> None:
    from playwright.sync_api import expect

    sender, word = sender_number(), "changes-" + uuid.uuid4().hex[:6]
    first, second = whatsapp_text(f"First {word}", sender), whatsapp_text(f"Second {word}", sender)
    site.meta(first)
    site.meta(second)
    conversation_row(agent, word).click()
    messages = agent.locator("[data-ib=message]")
    expect(messages).to_have_count(2)
    ids = [b["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for b in (first, second)]

    site.meta(whatsapp_change("message_reaction", sender, ids[0]))
    expect(messages.first.locator("[data-ib=reactions]")).to_have_text("\U0001f62e")
    site.meta(whatsapp_change("message_edit", sender, ids[0]))
    expect(messages.first.locator(".text")).to_have_text("Updated image caption")
    expect(messages.first.locator(".meta")).to_contain_text("edited")
    site.meta(whatsapp_change("message_reaction", sender, ids[1]))
    expect(messages.nth(1).locator("[data-ib=reactions]")).to_have_text("\U0001f62e")
    revoke = whatsapp_change("message_edit", sender, ids[1])
    message = revoke["entry"][0]["changes"][0]["value"]["messages"][0]
    message["type"], message["revoke"] = "revoke", message.pop("edit")
    site.meta(revoke)
    expect(messages.nth(1)).to_contain_text("This message was unsent.")
    expect(messages.nth(1).locator("[data-ib=reactions]")).to_have_count(0)  # gone with it
    expect(messages.nth(1)).not_to_contain_text(f"Second {word}")
    expect(messages).to_have_count(2)

    conversation_id = conversation_row(agent, word).get_attribute("data-id")
    wait_until(
        lambda: [
            m for m in site.messages(conversation_id) if m["deleted"] and m["edited"] is False
        ],
        what="the unsend stored",
    )
    agent.reload()  # the same, from the database
    expect(agent.locator("[data-ib=status]")).to_have_text("Live")
    agent.locator("[data-ib=filter-status]").select_option("")
    conversation_row(agent, word).click()
    expect(messages.first.locator("[data-ib=reactions]")).to_have_text("\U0001f62e")
    expect(messages.first.locator(".text")).to_have_text("Updated image caption")
    expect(messages.nth(1)).to_contain_text("This message was unsent.")
    expect(messages.nth(1).locator("[data-ib=reactions]")).to_have_count(0)


def test_a_restarted_hub_forgets_the_cursor_and_the_page_reloads_without_duplicates(
    tmp_path: Path, contexts: Any
) -> None:
    """The embedded default's in-process bus starts empty after a restart, so the page's
    cursor is refused (4409, cursor_too_old) and it reloads over REST."""
    from playwright.sync_api import expect

    proc = demo(tmp_path).start()
    try:
        seed = demo_seed(tmp_path)
        site = Site(
            proc,
            seed,
            None,  # type: ignore[arg-type]
            "",
            api_client(proc.base_url, seed["email"], seed["password"]),
            tmp_path / "demo-data",
        )
        page = contexts().new_page()
        refused: list[str] = []
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda frame: refused.append(frame) if "cursor_too_old" in str(frame) else None,
            ),
        )
        log_in(page, proc.base_url, seed["email"], seed["password"])
        status = page.locator("[data-ib=status]")
        expect(status).to_have_text("Live")
        visitor = Visitor(site)
        try:
            visitor.say("before the restart")
        finally:
            visitor.close()
        conversation_row(page, "before the restart").click()
        expect(page.locator("[data-ib=message]")).to_have_count(1)
        wait_until(lambda: len(site.messages(visitor.conversation_id)) == 1, what="stored")
        site.admin.close()

        proc.stop()
        expect(status).to_have_attribute("data-state", "offline")
        proc.start()
        expect(status).to_have_text("Live", timeout=40_000)
        assert refused, "the old cursor was not refused"
        site.admin = api_client(proc.base_url, seed["email"], seed["password"])
        visitor = Visitor(site)
        try:
            visitor.say("after the restart")
        finally:
            visitor.close()
        expect(conversation_row(page, "after the restart")).to_have_count(1)
        expect(conversation_row(page, "before the restart")).to_have_count(1)
        expect(page.locator("[data-ib=message]")).to_have_count(1)  # reloaded, not doubled
        site.admin.close()
    finally:
        proc.stop()


def test_a_send_the_platform_refuses_shows_failed_with_the_reason(site: Site, agent: Any) -> None:
    from playwright.sync_api import expect

    word = "refused-" + uuid.uuid4().hex[:6]
    site.meta(whatsapp_text(f"Hi {word}", sender_number()))
    conversation_row(agent, word).click()
    expect(agent.locator("[data-ib=message]")).to_have_count(1)
    reason = "(#131026) Message undeliverable"
    site.fake.fail_next(
        f"/{WHATSAPP.account_id}/messages",
        400,
        {"error": {"message": reason, "type": "OAuthException", "code": 131026}},
    )
    agent.locator("[data-ib=reply]").fill("Your order shipped")
    agent.locator("[data-ib=reply]").press("Enter")
    delivery = agent.locator("[data-ib=message][data-direction=out] [data-ib=delivery]")
    expect(delivery).to_have_attribute("data-status", "failed")
    expect(delivery).to_contain_text("Message undeliverable")


def test_routing_set_up_in_the_console_assigns_live_and_the_queue_shows_who_waits(
    site: Site, agent: Any, contexts: Any
) -> None:
    """The admin makes a team in the console's Routing tab and sends the web chat to it; a
    visitor's conversation goes to the team's online member, live in both inboxes; while
    that member is away, the next one waits in the queue the inbox shows, and goes to them
    when they are back."""
    from playwright.sync_api import expect

    kemal, kemal_id = agent_page(site, contexts, "Kemal")
    [webchat] = [
        c for c in site.admin.get("/api/channels").json()["items"] if c["kind"] == "webchat"
    ]

    console = agent.context.new_page()
    console.goto(site.base + "/admin#routing")
    console.locator("[data-ib=team-name]").fill("Support")
    console.locator("[data-ib=team-assignment]").select_option("round_robin")
    console.get_by_role("button", name="Create team").click()
    team_row = console.locator("[data-ib=team]", has_text="Support")
    expect(team_row).to_have_count(1)
    team_row.locator(f"[data-ib=team-member][value='{kemal_id}']").check()
    route = console.locator(f"[data-ib=channel-route][data-id='{webchat['id']}']")
    expect(route.locator("[data-ib=route-team] option", has_text="Support")).to_have_count(1)
    route.locator("[data-ib=route-team]").select_option(label="Support")
    expect(route.locator("[data-ib=route-mode]")).to_be_hidden()  # the team's setting rules
    capacity = console.locator(f"[data-ib=capacity-row][data-id='{kemal_id}'] [data-ib=capacity]")
    capacity.fill("-1")
    capacity.press("Tab")
    expect(console.locator("[data-ib=routing-error]")).to_have_text(
        "A capacity is a whole number from 0 to 1000, or empty."
    )
    capacity.fill("5")
    capacity.press("Tab")

    def capacity_of_kemal() -> Any:
        members = site.admin.get("/api/members").json()["items"]
        return {m["id"]: m["capacity"] for m in members}[kemal_id]

    wait_until(lambda: capacity_of_kemal() == 5)
    # Empty is no limit: Kemal takes the web chat's backlog from earlier tests as well.
    capacity.fill("")
    capacity.press("Tab")
    wait_until(lambda: capacity_of_kemal() is None)
    [team] = site.admin.get("/api/teams").json()["items"]
    try:
        assert team["name"] == "Support" and team["assignment"] == "round_robin"
        wait_until(
            lambda: site.admin.get("/api/teams").json()["items"][0]["member_ids"] == [kemal_id]
        )
        routing = site.admin.get(f"/api/channels/{webchat['id']}").json()["settings"]["routing"]
        assert routing == {"team_id": team["id"], "assignment": "manual"}
        screenshot(console, "admin-routing")

        tag = uuid.uuid4().hex[:6]
        visitor = Visitor(site)
        try:
            visitor.say(f"Routed to someone {tag}")
        finally:
            visitor.close()
        kemal.locator("[data-ib=filter-assignee]").select_option("me")
        expect(conversation_row(kemal, tag)).to_have_count(1)
        mine = conversation_row(agent, tag)
        expect(mine.locator(".tag.who")).to_have_text("Kemal")
        expect(mine.locator(".tag.team")).to_have_text("Support")

        # Kemal steps away: the next conversation waits, and the inbox says so.
        kemal.locator("[data-ib=presence]").select_option("away")
        wait_until(
            lambda: (
                {p["user_id"]: p["state"] for p in site.admin.get("/api/presence").json()["items"]}[
                    kemal_id
                ]
                == "away"
            )
        )
        before = site.admin.get("/api/conversations/queue").json()["unassigned"]
        waiting = uuid.uuid4().hex[:6]
        visitor = Visitor(site)
        try:
            visitor.say(f"Anyone there? {waiting}")
        finally:
            visitor.close()
        queue = agent.locator("[data-ib=queue]")
        expect(queue).to_have_text(f"{before + 1} waiting for an agent")
        queue.click()
        expect(agent.locator("[data-ib=filter-assignee]")).to_have_value("none")
        expect(conversation_row(agent, waiting)).to_have_count(1)
        expect(conversation_row(agent, tag)).to_have_count(0)  # Kemal's
        screenshot(agent, "inbox-queue")
        # Back online: it is Kemal's, and it leaves the queue.
        kemal.locator("[data-ib=presence]").select_option("online")
        expect(conversation_row(kemal, waiting)).to_have_count(1)
        expect(conversation_row(agent, waiting)).to_have_count(0)
        if before:
            expect(queue).to_have_text(f"{before} waiting for an agent")
        else:
            expect(queue).to_be_hidden()
    finally:
        site.admin.patch(f"/api/channels/{webchat['id']}", json={"routing": {}})
        site.admin.delete(f"/api/teams/{team['id']}")
        agent.locator("[data-ib=filter-assignee]").select_option("any")


def test_slash_shortcuts_insert_saved_replies_rendered_for_the_contact(
    site: Site, agent: Any
) -> None:
    """The admin saves a workspace reply with placeholders and an own one in the "Saved
    replies" dialog; typing /shortcut in the composer offers them, and Enter inserts the
    text made out to the contact, which then sends as typed."""
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    visitor = Visitor(site)
    try:
        visitor.say(f"Where is my order? {tag}")
        conversation_row(agent, tag).click()
        agent.locator("[data-ib=canned-open]").click()
        dialog = agent.locator("[data-ib=canned-dialog]")
        expect(dialog).to_be_visible()
        dialog.locator("[data-ib=canned-shortcut]").fill(f"/order{tag}")
        dialog.locator("[data-ib=canned-text]").fill(
            "Hi {{contact.first_name | there}}, {{agent.first_name}} here: it ships today."
        )
        dialog.get_by_role("button", name="Save reply").click()
        expect(dialog.locator(f"[data-ib=canned-item][data-shortcut=order{tag}]")).to_contain_text(
            "Everyone’s"
        )
        dialog.locator("[data-ib=canned-shortcut]").fill(f"ordermine{tag}")
        dialog.locator("[data-ib=canned-text]").fill("Mine: {{contact.name}}")
        dialog.locator("[data-ib=canned-personal]").check()
        dialog.get_by_role("button", name="Save reply").click()
        expect(
            dialog.locator(f"[data-ib=canned-item][data-shortcut=ordermine{tag}]")
        ).to_contain_text("Mine")
        typo = dialog.locator("[data-ib=canned-text]")
        dialog.locator("[data-ib=canned-shortcut]").fill(f"typo{tag}")
        typo.fill("Hi {{contact.nmae}}")
        dialog.get_by_role("button", name="Save reply").click()
        expect(dialog.locator("[data-ib=canned-error]")).to_contain_text("{{contact.nmae}}")
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_be_hidden()

        reply = agent.locator("[data-ib=reply]")
        reply.press_sequentially("/order")
        options = agent.locator("[data-ib=canned-option]")
        expect(options).to_have_count(2)
        expect(options.first).to_have_attribute("aria-selected", "true")
        screenshot(agent, "inbox-canned")
        reply.press("ArrowDown")
        expect(options.nth(1)).to_have_attribute("aria-selected", "true")
        reply.press("ArrowUp")
        reply.press("Enter")  # inserts; does not send
        expect(agent.locator("[data-ib=canned-menu]")).to_be_hidden()
        expect(reply).to_have_value("Hi there, Demo here: it ships today.")
        reply.press("Enter")  # now it sends
        expect(agent.locator("[data-ib=message][data-direction=out]").last).to_contain_text(
            "Hi there, Demo here: it ships today."
        )
        texts = [
            f["data"]["message"].get("text")
            for f in visitor.received(1.0)
            if f.get("name") == "message.created"
        ]
        assert "Hi there, Demo here: it ships today." in texts
        # Escape closes the menu and leaves what was typed.
        reply.press_sequentially("/ordermi")
        expect(agent.locator("[data-ib=canned-option]")).to_have_count(1)
        reply.press("Escape")
        expect(agent.locator("[data-ib=canned-menu]")).to_be_hidden()
        expect(reply).to_have_value("/ordermi")
        reply.fill("")
    finally:
        visitor.close()
