"""An erased person leaves the open inbox live (the `contact.deleted` event), in a real
Chromium against a real `hub demo`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import api_client, log_in, wait_until
from tests.servers import HubProcess

pytestmark = pytest.mark.browser


def visitor_says(proc: HubProcess, public_key: str, text: str) -> str:
    """A web-chat visitor writes once; answers their conversation id."""
    origin = proc.base_url
    answer = httpx.post(
        origin + "/api/widget/token", json={"channel": public_key}, headers={"origin": origin}
    )
    answer.raise_for_status()
    with ws_connect(proc.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": answer.json()["token"]}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": "v1", "text": text}))
        while json.loads(ws.recv(5))["type"] != "ack":
            pass
    return str(answer.json()["conversation_id"])


def test_an_erased_contact_leaves_the_list_and_the_open_thread(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, proc.base_url, seed["email"], seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.locator("[data-ib=filter-status]").select_option("")

    gone, kept = "forget-" + uuid.uuid4().hex[:6], "keep-" + uuid.uuid4().hex[:6]
    erased_id = visitor_says(proc, seed["public_key"], f"Please {gone} me")
    visitor_says(proc, seed["public_key"], f"Please {kept} me")
    row = page.locator("[data-ib=conversation]", has_text=gone)
    expect(row).to_have_count(1)
    row.click()
    expect(page.locator("[data-ib=message]", has_text=gone)).to_have_count(1)

    admin = api_client(proc.base_url, seed["email"], seed["password"])
    try:
        stored = wait_until(
            lambda: (got := admin.get(f"/api/conversations/{erased_id}")).is_success and got,
            what="the conversation stored",
        )
        contact_id = stored.json()["contact_id"]
        filed = admin.post("/api/deletions", json={"contact_id": contact_id})
        assert filed.status_code == 202, filed.text
    finally:
        admin.close()

    expect(row).to_have_count(0)  # live, without a reload
    expect(page.locator("[data-ib=placeholder]")).to_be_visible()
    expect(page.locator("[data-ib=pane]")).to_be_hidden()
    expect(page.locator("[data-ib=message]", has_text=gone)).to_have_count(0)
    expect(page.locator("[data-ib=conversation]", has_text=kept)).to_have_count(1)
    assert not errors, errors
