"""Search in the inbox, in a real Chromium against a real `hub demo`: an agent types a Turkish
query, sees the matches marked in what visitors wrote however they cased it, and narrows them
with the search's filters."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.servers import HubProcess

pytestmark = pytest.mark.browser


def visitor_says(proc: HubProcess, seed: dict[str, str], text: str) -> str:
    """A web-chat visitor writes one message (what the widget does); its conversation id."""
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
        while json.loads(ws.recv(5))["type"] != "ack":
            pass
    return str(answer.json()["conversation_id"])


def test_a_turkish_query_finds_marks_and_filters(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    tag = uuid.uuid4().hex[:6]
    admin = api_client(proc.base_url, seed["email"], seed["password"])
    first = visitor_says(proc, seed, f"İSTANBUL-{tag} şubesi ne zaman açılır?")
    second = visitor_says(proc, seed, f"<b>Istanbul-{tag}</b>'dan selamlar")
    third = visitor_says(proc, seed, f"Şikayet {tag}: ışık yanmıyor")
    wait_until(
        lambda: len(admin.get("/api/search", params={"q": tag}).json()["messages"]) == 3,
        what="the three messages stored",
    )
    for conversation, change in ((second, {"status": "resolved"}), (first, {"labels": ["vip"]})):
        answer = admin.patch(f"/api/conversations/{conversation}", json=change)
        assert answer.status_code == 202, answer.text
    wait_until(
        lambda: (
            admin.get(f"/api/conversations/{second}").json()["status"] == "resolved"
            and admin.get(f"/api/conversations/{first}").json()["labels"] == ["vip"]
        ),
        what="the status and the label stored",
    )

    page = contexts().new_page()
    log_in(page, proc.base_url, seed["email"], seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.keyboard.press("/")
    page.keyboard.type(f"istanbul-{tag}")
    results = page.locator("[data-ib=search-list] [data-ib=search-result]")
    marks = page.locator("[data-ib=search-list] mark")
    expect(results).to_have_count(2)
    # newest first; each match marked as it was written, the markup shown as text
    expect(marks).to_have_text([f"Istanbul-{tag}", f"İSTANBUL-{tag}"])
    expect(results.first).to_contain_text(f"<b>Istanbul-{tag}</b>'dan selamlar")
    assert page.locator("[data-ib=search-list] b").count() == 0
    screenshot(page, "inbox-search")

    page.locator("[data-ib=search-status]").select_option("resolved")
    expect(marks).to_have_text([f"Istanbul-{tag}"])
    page.locator("[data-ib=search-status]").select_option("")
    expect(marks).to_have_count(2)
    page.locator("[data-ib=search-label]").fill("vip")
    page.locator("[data-ib=search-label]").press("Enter")
    expect(marks).to_have_text([f"İSTANBUL-{tag}"])
    page.locator("[data-ib=search-label]").fill("")
    page.locator("[data-ib=search-label]").press("Enter")
    page.locator("[data-ib=search-until]").fill("2020-01-01")
    page.locator("[data-ib=search-until]").dispatch_event("change")
    expect(page.locator("[data-ib=search-list]")).to_contain_text("Nothing found.")
    page.locator("[data-ib=search-until]").fill("")
    page.locator("[data-ib=search-until]").dispatch_event("change")

    # the dotless and dotted i, and ş, typed the ASCII way
    page.locator("[data-ib=search]").fill(f"SIKAYET {tag}: ISIK")
    expect(marks).to_have_text([f"Şikayet {tag}: ışık"])
    results.first.click()
    expect(page.locator("[data-ib=message]")).to_contain_text([f"Şikayet {tag}: ışık yanmıyor"])
    assert third
