"""Sessions in a real Chromium: the inbox's "Sessions" dialog lists where the agent is signed
in and signs another browser out; an inbox whose session is ended elsewhere has its socket
closed (4410), its next socket token refused, and shows the sign-in form with the reason;
every connection it opened sent a token of its own (tokens work once)."""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browserkit import api_client, log_in
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join
from tests.servers import HubProcess

pytestmark = pytest.mark.browser


def test_sessions_are_listed_and_signed_out_and_the_inbox_follows(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    page = contexts().new_page()
    hellos: list[str] = []
    closes: list[Any] = []

    def watch(ws: Any) -> None:
        def sent(payload: Any) -> None:
            frame = json.loads(payload) if isinstance(payload, str) else {}
            if frame.get("type") == "hello":
                hellos.append(frame["token"])

        ws.on("framesent", sent)
        ws.on("close", lambda _: closes.append(ws.url))

    page.on("websocket", watch)
    log_in(page, proc.base_url, seed["email"], seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    elsewhere = contexts().new_page()
    log_in(elsewhere, proc.base_url, seed["email"], seed["password"])
    expect(elsewhere.locator("[data-ib=status]")).to_have_text("Live")

    # The dialog: both browsers, this one marked; sign the other one out.
    page.locator("[data-ib=sessions-open]").click()
    items = page.locator("[data-ib=session-item]")
    expect(items).to_have_count(2)
    mine = page.locator("[data-ib=session-item][data-current=true]")
    expect(mine).to_contain_text("This browser")
    expect(mine.locator("[data-ib=session-end]")).to_have_count(0)
    page.locator("[data-ib=session-item][data-current=false] [data-ib=session-end]").click()
    expect(items).to_have_count(1)
    expect(elsewhere.locator("[data-ib=login-error]")).to_contain_text("Your session has ended")
    page.keyboard.press("Escape")
    expect(page.locator("[data-ib=status]")).to_have_text("Live")

    with httpx.Client(base_url=proc.base_url, timeout=10) as other:
        login = {"email": seed["email"], "password": seed["password"]}
        csrf = other.post("/api/auth/login", json=login).json()["csrf_token"]
        listed = other.get("/api/me/sessions").json()["items"]
        assert len([s for s in listed if not s["current"]]) >= 1  # the browser's
        ended = other.delete("/api/me/sessions", headers={"x-csrf-token": csrf})
        assert ended.status_code == 200 and ended.json()["ended"] >= 1

    error = page.locator("[data-ib=login-error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Your session has ended")
    expect(page.locator("[data-ib=logout]")).to_be_hidden()
    assert closes  # the hub closed the inbox's socket
    assert hellos and len(set(hellos)) == len(hellos)  # a fresh token for every connection


def test_an_admin_signs_a_member_out_from_the_console(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    """The Members tab's "Sign out" ends every session of that member in the workspace: their
    open inbox returns to the sign-in form with the reason."""
    from playwright.sync_api import expect

    proc, seed = hub
    email, password = f"leaver-{uuid.uuid4().hex[:8]}@demo.example", STRONG_PASSWORD
    with closing(api_client(proc.base_url, seed["email"], seed["password"])) as admin:
        data_dir = Path(proc.args[proc.args.index("--data-dir") + 1])
        join(admin, {}, email, "Leyla Leaver", password, data_dir=data_dir)
    agent = contexts().new_page()
    log_in(agent, proc.base_url, email, password)
    expect(agent.locator("[data-ib=status]")).to_have_text("Live")

    console = contexts().new_page()
    log_in(console, proc.base_url, seed["email"], seed["password"], "/admin")
    console.locator("[data-ib=tab-members]").click()
    row = console.locator(f"[data-ib=member][data-email='{email}']")
    row.locator("[data-ib=member-sign-out]").click()
    expect(console.locator("[data-ib=member-added]")).to_contain_text("Leyla Leaver is signed out")
    error = agent.locator("[data-ib=login-error]")
    expect(error).to_contain_text("Your session has ended")
    expect(row).to_be_visible()  # still a member
