"""The console's screens for the admin tasks that had only an API (issue 24, item 6), in a
real Chromium against a real `hub demo`: API tokens (made, shown once, revoked), saved
replies (added, refused for an unknown placeholder, edited, deleted), privacy (a contact's
export downloaded, their erasure filed and followed to the end), and the Profile dialog (name,
password, sessions) in the console and the inbox. Each effect is checked through the API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join
from tests.servers import HubProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def admin(hub: tuple[HubProcess, dict[str, str]]) -> Iterator[httpx.Client]:
    proc, seed = hub
    client = api_client(proc.base_url, seed["email"], seed["password"])
    try:
        yield client
    finally:
        client.close()


def open_tab(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any, tab: str, **options: Any
) -> Any:
    """The console signed in as the demo admin, on `tab`, reached from the keyboard: the
    first tab focused, then the arrow keys."""
    from playwright.sync_api import expect

    proc, seed = hub
    page = contexts(**options).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    log_in(page, proc.base_url, seed["email"], seed["password"], "/admin")
    expect(page.locator("#app")).to_be_visible()
    page.locator("[data-ib=tab-channels]").focus()
    for _ in range(12):
        if page.locator(f"[data-ib=tab-{tab}]").get_attribute("aria-selected") == "true":
            break
        page.keyboard.press("ArrowRight")
    expect(page.locator(f"[data-ib=tab-{tab}]")).to_be_focused()
    expect(page.locator(f"[data-ib=panel-{tab}]")).to_be_visible()
    return page


def test_an_admin_makes_a_token_sees_it_once_and_revokes_it(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, _ = hub
    page = open_tab(hub, contexts, "tokens", permissions=["clipboard-read", "clipboard-write"])
    name = f"Order system {uuid.uuid4().hex[:6]}"
    page.locator("[data-ib=token-name]").fill(name)
    page.keyboard.press("Enter")
    shown = page.locator("[data-ib=token-shown]")
    expect(shown).to_be_visible()
    expect(shown).to_be_focused()
    token = page.locator("[data-ib=token-value]").inner_text()
    assert token.startswith("hubt_")
    page.locator("[data-ib=token-copy]").click()
    expect(page.locator("[data-ib=token-copied]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    row = page.locator("[data-ib=token]", has_text=name)
    expect(row.locator("[data-ib=token-state]")).to_have_text("Active")
    screenshot(page, "admin-tokens", secret="[data-ib=token-value]")
    bearer = {"authorization": f"Bearer {token}"}
    assert httpx.get(proc.base_url + "/api/me", headers=bearer).status_code == 200

    # Done forgets it: not on the page, and not after a reload either.
    page.locator("[data-ib=token-done]").click()
    expect(shown).to_be_hidden()
    assert token not in page.content()
    page.reload()
    expect(row).to_be_visible()
    assert token not in page.content()

    row.locator("[data-ib=token-revoke]").click()
    page.locator("[data-ib=confirm-ok]").click()
    expect(row.locator("[data-ib=token-state]")).to_contain_text("Revoked")
    expect(row.locator("[data-ib=token-revoke]")).to_have_count(0)
    assert httpx.get(proc.base_url + "/api/me", headers=bearer).status_code == 401
    assert page.errors == []


def test_an_admin_keeps_the_workspaces_saved_replies(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    page = open_tab(hub, contexts, "replies")
    shortcut = f"hi-{uuid.uuid4().hex[:6]}"
    page.locator("[data-ib=reply-shortcut]").fill("/" + shortcut)
    page.locator("[data-ib=reply-text]").fill("Hello {{contact.nmae}}!")
    page.locator("[data-ib=reply-submit]").click()
    error = page.locator("[data-ib=reply-error]")
    expect(error).to_contain_text("Unknown placeholder {{contact.nmae}}")  # the server's words
    expect(page.locator("[data-ib=reply-text]")).to_be_focused()
    page.locator("[data-ib=reply-text]").fill("Hello {{contact.first_name | there}}!")
    page.locator("[data-ib=reply-submit]").click()
    row = page.locator(f"[data-ib=reply][data-shortcut='{shortcut}']")
    expect(row).to_contain_text("Everyone")
    expect(error).to_be_hidden()
    screenshot(page, "admin-saved-replies")

    def stored() -> list[dict[str, Any]]:
        items = admin.get("/api/canned-responses").json()["items"]
        return [c for c in items if c["shortcut"] == shortcut]

    [made] = stored()
    assert made["personal"] is False and made["text"] == "Hello {{contact.first_name | there}}!"

    # Edit, from the keyboard.
    row.locator("[data-ib=reply-edit]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-ib=reply-shortcut]")).to_be_focused()
    expect(page.locator("[data-ib=reply-text]")).to_have_value(made["text"])
    page.locator("[data-ib=reply-text]").fill("Welcome back, {{contact.first_name | friend}}.")
    page.locator("[data-ib=reply-submit]").click()
    expect(row).to_contain_text("Welcome back")
    wait_until(lambda: stored()[0]["text"].startswith("Welcome back"), what="the edit stored")

    row.locator("[data-ib=reply-delete]").click()
    page.locator("[data-ib=confirm-ok]").click()
    expect(row).to_have_count(0)
    assert stored() == []
    assert page.errors == []


def a_visitor_writes(proc: HubProcess, seed: dict[str, str], name: str, text: str) -> None:
    """A web-chat visitor gives a name and writes, as the widget does: a token, the name over
    REST, the message on the visitor socket."""
    from websockets.sync.client import connect

    origin = {"origin": proc.base_url}
    token = httpx.post(
        proc.base_url + "/api/widget/token", json={"channel": seed["public_key"]}, headers=origin
    ).json()["token"]
    with connect(proc.ws_url + "/ws/visitor", origin=proc.base_url) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": "m1", "text": text}))
        while (frame := json.loads(ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert frame["type"] == "ack", frame
    named = httpx.post(
        proc.base_url + "/api/widget/profile", json={"token": token, "name": name}, headers=origin
    )
    assert named.status_code == 204, named.text


def test_an_admin_exports_a_contact_then_erases_them_and_follows_it(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any, admin: httpx.Client, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    name, text = f"Zeynep {uuid.uuid4().hex[:6]}", f"my order {uuid.uuid4().hex[:8]}"
    a_visitor_writes(proc, seed, name, text)

    def contact() -> list[dict[str, Any]]:
        return admin.get("/api/contacts", params={"q": name}).json()["items"]

    [found] = wait_until(contact, what="the contact stored")
    page = open_tab(hub, contexts, "privacy")
    page.locator("[data-ib=privacy-query]").fill(name)
    page.keyboard.press("Enter")
    row = page.locator(f"[data-ib=privacy-contact][data-id='{found['id']}']")
    expect(row).to_contain_text(name)

    row.locator("[data-ib=privacy-export]").click()
    ready = page.locator("[data-ib=export-row]").first
    expect(ready).to_have_attribute("data-state", "ready")
    expect(ready.locator("[data-ib=export-state]")).to_contain_text("Ready")
    screenshot(page, "admin-exports")
    with page.expect_download() as caught:
        ready.locator("[data-ib=export-download]").click()
    saved = tmp_path / "export.json"
    caught.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert document["contact"]["id"] == found["id"] and document["contact"]["name"] == name
    assert [m["text"] for m in document["messages"]] == [text]
    exported = admin.get("/api/audit", params={"action": "contact.exported"}).json()["items"]
    assert any(e["target_id"] == found["id"] for e in exported)

    row.locator("[data-ib=privacy-erase]").click()
    expect(page.locator("[data-ib=confirm-title]")).to_contain_text(name)
    page.locator("[data-ib=confirm-ok]").click()
    expect(page.locator("[data-ib=privacy-notice]")).to_contain_text("Erasure started")
    code = page.locator("[data-ib=privacy-notice]").inner_text().split(": ")[-1].rstrip(".")
    filed = page.locator(f"[data-ib=deletion][data-code='{code}']")
    expect(filed).to_have_attribute("data-status", "done")  # the list refreshed itself
    expect(filed.locator("[data-ib=deletion-progress]")).to_contain_text("1 contacts")
    expect(filed.locator("[data-ib=deletion-progress]")).to_contain_text("1 messages")
    assert admin.get(f"/api/contacts/{found['id']}").status_code == 404
    deletions = admin.get("/api/deletions").json()["items"]
    assert [d["status"] for d in deletions if d["confirmation_code"] == code] == ["done"]
    expect(row).to_have_count(0)  # the search was run again: they are gone

    # By an id on a channel, for someone the hub holds nothing of.
    [channel] = [c for c in admin.get("/api/channels").json()["items"] if c["kind"] == "webchat"]
    page.locator("[data-ib=deletion-channel]").select_option(channel["id"])
    page.locator("[data-ib=deletion-platform-id]").fill("nobody-" + uuid.uuid4().hex[:8])
    page.locator("[data-ib=deletion-platform-id]").press("Enter")
    page.locator("[data-ib=confirm-ok]").click()
    expect(page.locator("[data-ib=privacy-notice]")).not_to_contain_text(code)
    second = page.locator("[data-ib=privacy-notice]").inner_text().split(": ")[-1].rstrip(".")
    nothing = page.locator(f"[data-ib=deletion][data-code='{second}']")
    expect(nothing.locator("[data-ib=deletion-status]")).to_have_text("Done: nothing was held")
    screenshot(page, "admin-deletions")
    deletions = admin.get("/api/deletions").json()["items"]
    assert [d["status"] for d in deletions if d["confirmation_code"] == second] == ["no_data"]
    assert page.errors == []


def test_the_profile_renames_changes_the_password_and_ends_other_sessions(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    proc, _ = hub
    data_dir = (proc.log_path or Path()).parent / "demo-data"
    email, password = f"ops-{uuid.uuid4().hex[:6]}@demo.example", STRONG_PASSWORD
    user_id = join(admin, {}, email, "Ops Person", password, "admin", data_dir=data_dir)
    other = api_client(proc.base_url, email, password)  # another browser of theirs

    page = contexts().new_page()
    log_in(page, proc.base_url, email, password, "/admin")
    expect(page.locator("#app")).to_be_visible()
    page.locator("[data-ib=profile-open]").click()
    dialog = page.locator("[data-ib=profile-dialog]")
    expect(dialog).to_be_visible()
    expect(page.locator("[data-ib=profile-name]")).to_be_focused()
    expect(page.locator("[data-ib=profile-email]")).to_have_text(email)
    # Accepting the invitation, the other client, and this browser.
    expect(page.locator("[data-ib=profile-session]")).to_have_count(3)
    expect(page.locator("[data-ib=profile-session][data-current=true]")).to_contain_text(
        "This browser"
    )

    page.locator("[data-ib=profile-name]").fill("   ")
    page.keyboard.press("Enter")
    expect(page.locator("[data-ib=profile-error]")).to_have_text(
        "Give your name: it is how your team sees you."
    )
    page.locator("[data-ib=profile-name]").fill("Ops Kişisi")
    page.keyboard.press("Enter")
    expect(page.locator("[data-ib=profile-saved]")).to_have_text("Saved.")
    expect(page.locator("[data-ib=me]")).to_have_text("Ops Kişisi")
    members = admin.get("/api/members").json()["items"]
    assert [m["name"] for m in members if m["id"] == user_id] == ["Ops Kişisi"]

    page.locator("[data-ib=profile-password-current]").fill(password)
    page.locator("[data-ib=profile-password-new]").fill("aaaaaaaaaaaa")
    page.locator("[data-ib=profile-password-repeat]").fill("aaaaaaaaaaaa")
    page.locator("[data-ib=profile-password-submit]").click()
    expect(page.locator("[data-ib=profile-password-error]")).to_contain_text("too easy to guess")
    screenshot(page, "admin-profile")

    page.locator("[data-ib=profile-sessions-end-others]").click()
    expect(page.locator("[data-ib=profile-session]")).to_have_count(1)
    assert other.get("/api/me").status_code == 401  # that browser is signed out

    new_password = "Pw-" + uuid.uuid4().hex
    page.locator("[data-ib=profile-password-current]").fill(password)
    page.locator("[data-ib=profile-password-new]").fill(new_password)
    page.locator("[data-ib=profile-password-repeat]").fill(new_password)
    page.locator("[data-ib=profile-password-submit]").click()
    expect(page.locator("[data-ib=profile-password-done]")).to_contain_text("Password changed")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # This page goes on (its new CSRF token works), and the new password signs in.
    page.locator("[data-ib=tab-tokens]").click()
    expect(page.locator("[data-ib=tokens]")).to_be_visible()
    refused = httpx.post(
        proc.base_url + "/api/auth/login", json={"email": email, "password": password}
    )
    assert refused.status_code == 401
    api_client(proc.base_url, email, new_password).close()

    # The inbox has the same dialog.
    inbox = contexts().new_page()
    log_in(inbox, proc.base_url, email, new_password)
    expect(inbox.locator("#app")).to_be_visible()
    inbox.locator("[data-ib=profile-open]").click()
    expect(inbox.locator("[data-ib=profile-name]")).to_have_value("Ops Kişisi")
    other.close()


def test_the_new_screens_speak_turkish_and_fit_a_phone(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    phone = {"width": 390, "height": 800}
    page = open_tab(hub, contexts, "tokens", locale="tr-TR", viewport=phone)
    width = "document.documentElement.scrollWidth"
    expect(page.locator("[data-ib=tab-tokens]")).to_have_text("API anahtarları")
    expect(page.locator("[data-ib=tab-replies]")).to_have_text("Kayıtlı yanıtlar")
    expect(page.locator("[data-ib=tab-privacy]")).to_have_text("Gizlilik")
    expect(page.locator("[data-ib=token-create]")).to_have_text("Anahtar oluştur")
    expect(page.locator("[data-ib=profile-open]")).to_have_text("Profil")
    assert page.evaluate(width) <= 390  # nothing sticks out sideways
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-ib=reply-form]")).to_contain_text("Kısayol")
    assert page.evaluate(width) <= 390
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-ib=deletions]")).to_contain_text("Silme istekleri")
    expect(page.locator("[data-ib=privacy-find]")).to_contain_text("Bir kişi bulun")
    assert page.evaluate(width) <= 390
    page.locator("[data-ib=profile-open]").click()
    expect(page.locator("[data-ib=profile-dialog]")).to_contain_text("Oturumlar")
    assert page.evaluate(width) <= 390
    assert page.errors == []
