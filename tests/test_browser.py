"""The widget and the agent inbox in a real Chromium against a real `hub demo`
(fixtures in tests/browserkit.py)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browserkit import log_in
from tests.servers import HubProcess

pytestmark = pytest.mark.browser


def wait_persisted(base: str, seed: dict[str, str], count: int, timeout_s: float = 10) -> None:
    """Wait until the persist worker has stored `count` messages in the one conversation."""
    with httpx.Client(base_url=base, timeout=5) as client:
        login = {"email": seed["email"], "password": seed["password"]}
        client.post("/api/auth/login", json=login).raise_for_status()
        deadline = time.monotonic() + timeout_s
        while True:
            items = client.get("/api/conversations").json()["items"]
            stored = 0
            if items:
                page = client.get(f"/api/conversations/{items[0]['id']}/messages").json()
                stored = len(page["items"])
            if stored >= count or time.monotonic() > deadline:
                assert stored == count, f"{stored} messages stored, expected {count}"
                return
            time.sleep(0.1)


def test_visitor_and_agent_chat_live_and_visitor_keeps_conversation_across_reload(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    base = proc.base_url

    # The agent is logged in before the visitor writes: the conversation must arrive live.
    agent = contexts().new_page()
    log_in(agent, base, seed["email"], seed["password"])
    expect(agent.locator("[data-ib=status]")).to_have_text("Live")
    expect(agent.locator("[data-ib=conversation]")).to_have_count(0)

    visitor = contexts().new_page()
    visitor.goto(f"{base}/demo?channel={seed['public_key']}")
    visitor.locator("[data-sc=launcher]").click()
    expect(visitor.locator("[data-sc=panel]")).to_be_visible()
    expect(visitor.locator("[data-sc=status]")).to_have_text("Online")
    visitor.locator("[data-sc=input]").fill("Hi! Is the <b>Ethiopia</b> in stock?")
    visitor.locator("[data-sc=input]").press("Enter")
    mine = visitor.locator("[data-sc=message][data-direction=in]")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("Hi! Is the <b>Ethiopia</b> in stock?")
    expect(mine.locator("b")).to_have_count(0)  # shown as text, never parsed as markup
    expect(mine).to_have_attribute("data-id", re.compile(r"^[0-9a-f-]{36}$"))  # acked via its event
    expect(visitor.locator("[data-sc=input]")).to_have_value("")

    conversation = agent.locator("[data-ib=conversation]")
    expect(conversation).to_have_count(1)  # arrived live: the agent page was not reloaded
    expect(conversation).to_contain_text("Ethiopia")
    conversation.click()
    incoming = agent.locator("[data-ib=message][data-direction=in]")
    expect(incoming).to_have_count(1)
    expect(incoming).to_contain_text("Hi! Is the <b>Ethiopia</b> in stock?")
    expect(incoming.locator("b")).to_have_count(0)

    # Typing shows on both sides.
    visitor.locator("[data-sc=input]").press_sequentially("Also")
    expect(agent.locator("[data-ib=typing]")).to_be_visible()
    visitor.locator("[data-sc=input]").fill("")
    # The hub answers an agent's typing/send for a conversation not stored yet with not_found
    # (it looks the conversation up in the database); the reply is retried by the inbox, typing
    # is not, so let the persist worker catch up first.
    wait_persisted(base, seed, 1)
    agent.locator("[data-ib=reply]").press_sequentially("Y")
    expect(visitor.locator("[data-sc=typing]")).to_be_visible()
    expect(visitor.locator("[data-sc=typing]")).to_have_text("Demo admin is typing…")

    agent.locator("[data-ib=reply]").fill("Yes, roasted on Tuesday.\nShall I reserve a bag?")
    agent.locator("[data-ib=reply]").press("Enter")
    expect(agent.locator("[data-ib=message][data-direction=out]")).to_have_count(1)
    expect(agent.locator("[data-ib=reply]")).to_have_value("")
    reply = visitor.locator("[data-sc=message][data-direction=out]")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("Shall I reserve a bag?")
    expect(visitor.locator("[data-sc=typing]")).to_be_hidden()

    # After a reload the visitor sees the history and continues the same conversation.
    token = visitor.evaluate(f"localStorage.getItem('sosyocrm:{seed['public_key']}:token')")
    assert token
    visitor.reload()
    expect(visitor.locator("[data-sc=panel]")).to_be_visible()  # the panel stays open in this tab
    expect(visitor.locator("[data-sc=message]")).to_have_count(2)
    expect(visitor.locator("[data-sc=status]")).to_have_text("Online")
    visitor.locator("[data-sc=input]").fill("Yes please, one bag.")
    visitor.locator("[data-sc=input]").press("Enter")
    expect(visitor.locator("[data-sc=message][data-direction=in]")).to_have_count(2)
    assert visitor.evaluate(f"localStorage.getItem('sosyocrm:{seed['public_key']}:token')")

    expect(incoming).to_have_count(2)  # live, in the open conversation
    expect(incoming.last).to_contain_text("Yes please, one bag.")
    expect(conversation).to_have_count(1)
    expect(conversation).to_contain_text("Yes please, one bag.")

    # The history is the database's too: a fresh load of the inbox shows all three messages.
    wait_persisted(base, seed, 3)
    agent.reload()
    expect(conversation).to_have_count(1)
    conversation.click()
    expect(agent.locator("[data-ib=message]")).to_have_count(3)


def test_widget_is_isolated_in_a_shadow_root_and_talks_only_to_the_hub(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    hub_origin = proc.base_url
    page = contexts().new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda socket: requests.append(socket.url))
    # The shop's hostile styles, as a constructed stylesheet: the demo page's policy refuses
    # an inline <style> element.
    page.add_init_script("""
        document.addEventListener('DOMContentLoaded', () => {
            const sheet = new CSSStyleSheet();
            sheet.replaceSync('button { background: red !important; color: red !important; }'
                + ' div, section { font-family: cursive !important; display: block; }');
            document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
        });
    """)
    page.goto(f"{hub_origin}/demo?channel={seed['public_key']}")
    launcher = page.locator("[data-sc=launcher]")
    expect(launcher).to_be_visible()

    placement = page.evaluate("""() => {
        const host = document.getElementById('sosyocrm-chat');
        return {
            inBody: host !== null && host.parentElement === document.body,
            shadow: host !== null && host.shadowRoot !== null,
            inLightDom: document.querySelector('[data-sc]') !== null,
            pageButton: (() => {
                const b = document.body.appendChild(document.createElement('button'));
                const color = getComputedStyle(b).backgroundColor;
                b.remove();
                return color;
            })(),
        };
    }""")
    assert placement["inBody"] and placement["shadow"]
    assert not placement["inLightDom"]

    red = "rgb(255, 0, 0)"
    assert placement["pageButton"] == red  # the page's style is live outside the widget
    assert launcher.evaluate("e => getComputedStyle(e).backgroundColor") != red
    assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"
    box = launcher.bounding_box()
    assert box is not None and box["x"] > 1000 and box["y"] > 600  # bottom-right

    launcher.click()
    expect(page.locator("[data-sc=status]")).to_have_text("Online")
    send = page.locator("[data-sc=send]")
    assert send.evaluate("e => getComputedStyle(e).backgroundColor") != red
    messages = page.locator("[data-sc=messages]")
    assert "cursive" not in messages.evaluate("e => getComputedStyle(e).fontFamily")

    window_api = page.evaluate("Object.keys(window.SosyoChat).sort()")
    assert window_api == ["close", "identify", "off", "on", "open", "reset", "toggle"]
    page.evaluate("window.SosyoChat.close()")
    expect(page.locator("[data-sc=panel]")).to_be_hidden()
    page.evaluate("window.SosyoChat.toggle()")
    expect(page.locator("[data-sc=panel]")).to_be_visible()

    host = urlsplit(hub_origin).netloc
    allowed = {f"http://{host}", f"ws://{host}"}
    foreign = [u for u in requests if "{0.scheme}://{0.netloc}".format(urlsplit(u)) not in allowed]
    assert requests and not foreign, foreign
    assert any(url.endswith("/api/widget/token") for url in requests)
    assert f"ws://{host}/ws/visitor" in requests  # the token travels in hello, never in the URL


def test_wrong_password_shows_an_error_and_no_inbox(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    page = contexts().new_page()
    log_in(page, proc.base_url, seed["email"], "not-the-password")
    error = page.locator("[data-ib=login-error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Wrong e-mail or password")
    expect(page.locator("[data-ib=login-submit]")).to_be_enabled()
    expect(page.locator("[data-ib=conversations]")).to_be_hidden()
    expect(page.locator("[data-ib=conversation]")).to_have_count(0)
    expect(page.locator("[data-ib=logout]")).to_be_hidden()
