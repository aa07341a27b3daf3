"""Two-factor sign-in in a real Chromium against a real `hub demo`: an agent enrols from the
inbox's Security dialog (the key read from the page, the code computed as an authenticator
app would), signs out, and signs in again with password and code; an admin turns on the
console's "require two-factor for admins" switch, and another admin is then taken through
enrolment at sign-in before the console opens."""

from __future__ import annotations

import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.browserkit import api_client, log_in, screenshot
from tests.mailbox import join
from tests.servers import HubProcess

pytestmark = pytest.mark.browser

PASSWORD = "Correct-horse-battery-" + uuid.uuid4().hex[:8]


def steady() -> None:
    """Not within 4 s of a 30-second step's end: the test's codes hold still."""
    while time.time() % 30 > 26:
        time.sleep(0.2)


def watch(page: Any, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))

    def console_message(message: Any) -> None:
        # A 401 from /api/me before signing in is expected; a CSP refusal is not.
        if message.type == "error" and "the server responded with a status of" not in message.text:
            errors.append(f"console: {message.text}")

    page.on("console", console_message)


def add_member(proc: HubProcess, admin: httpx.Client, role: str) -> tuple[str, str]:
    """A new member, invited and accepting by the letter the demo wrote to its mail folder."""
    email, name = f"{role}-{uuid.uuid4().hex[:8]}@demo.example", f"Deniz {role}"
    data_dir = Path(proc.args[proc.args.index("--data-dir") + 1])
    join(admin, {}, email, name, PASSWORD, role, data_dir=data_dir)
    return email, name


def read_enrolment(page: Any) -> pyotp.TOTP:
    """The key the page shows, after checking the QR code drew as an image under the CSP."""
    from playwright.sync_api import expect

    qr = page.locator("[data-ib=tf-qr]")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-ib=tf-qr]');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    secret = page.locator("[data-ib=tf-secret]").inner_text().strip()
    assert len(secret) >= 32
    return pyotp.TOTP(secret)


def test_an_agent_enrols_from_the_inbox_and_signs_in_with_a_code(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    with closing(api_client(proc.base_url, seed["email"], seed["password"])) as admin:
        email, name = add_member(proc, admin, "agent")
    errors: list[str] = []
    page = contexts().new_page()
    watch(page, errors)
    log_in(page, proc.base_url, email, PASSWORD)
    expect(page.locator("#app")).to_be_visible()

    page.locator("[data-ib=security]").click()
    expect(page.locator("[data-ib=tf-status]")).to_be_visible()
    page.locator("[data-ib=tf-enable]").click()
    totp = read_enrolment(page)
    steady()
    # The step before this one: this step's code stays unused for signing in below.
    page.locator("[data-ib=tf-confirm-code]").fill(totp.at(time.time() - 30))
    page.locator("[data-ib=tf-confirm]").click()
    codes = page.locator("[data-ib=tf-recovery-codes] li")
    expect(codes).to_have_count(10)
    assert page.locator("[data-ib=tf-download]").get_attribute("download")
    screenshot(page, "two-factor-recovery-codes", secret="[data-ib=tf-recovery-codes]")
    page.locator("[data-ib=tf-codes-done]").click()
    expect(page.locator("[data-ib=tf-status]")).to_contain_text("10")
    page.keyboard.press("Escape")
    page.locator("[data-ib=logout]").click()
    expect(page.locator("[data-ib=login-form]")).to_be_visible()

    # Password, then the code: the inbox opens; the password alone did not open it.
    log_in(page, proc.base_url, email, PASSWORD)
    expect(page.locator("[data-ib=tf-code]")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    assert page.context.cookies() == [] or all(
        c["name"] != "hub_session" for c in page.context.cookies()
    )
    screenshot(page, "two-factor-code-step")
    page.locator("[data-ib=tf-code]").fill(totp.now())
    page.locator("[data-ib=tf-verify]").click()
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("[data-ib=me]")).to_have_text(name)
    assert "ticket" not in page.url
    assert errors == []


def test_the_console_requires_two_factor_for_admins_and_enrols_them_at_sign_in(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    # A session of the demo admin's from before the switch: it goes on (its sign-in is done).
    admin = api_client(proc.base_url, seed["email"], seed["password"])
    errors: list[str] = []
    page = contexts().new_page()
    watch(page, errors)
    log_in(page, proc.base_url, seed["email"], seed["password"], "/admin")
    expect(page.locator("#app")).to_be_visible()
    page.locator("[data-ib=tab-workspace]").click()
    switch = page.locator("[data-ib=require-two-factor]")
    expect(switch).not_to_be_checked()
    switch.check()
    page.locator("[data-ib=retention-save]").click()
    expect(page.locator("[data-ib=retention-saved]")).to_be_visible()
    assert admin.get("/api/workspace").json()["require_two_factor_for_admins"] is True
    page.reload()
    page.locator("[data-ib=tab-workspace]").click()
    expect(page.locator("[data-ib=require-two-factor]")).to_be_checked()

    # Another admin, without two-factor: enrolment comes before the console.
    email, name = add_member(proc, admin, "admin")
    other = contexts().new_page()
    watch(other, errors)
    log_in(other, proc.base_url, email, PASSWORD, "/admin")
    totp = read_enrolment(other)
    expect(other.locator("#app")).to_be_hidden()
    other.locator("[data-ib=tf-confirm-code]").fill(totp.now())
    other.locator("[data-ib=tf-confirm]").click()
    expect(other.locator("[data-ib=tf-recovery-codes] li")).to_have_count(10)
    other.locator("[data-ib=tf-codes-done]").click()
    expect(other.locator("#app")).to_be_visible()
    expect(other.locator("[data-ib=me]")).to_have_text(name)

    # The first admin sees it in the member list, and can reset it.
    page.locator("[data-ib=tab-members]").click()
    row = page.locator(f"[data-ib=member][data-email='{email}']")
    expect(row.locator("[data-ib=member-reset-two-factor]")).to_be_visible()

    page.locator("[data-ib=tab-workspace]").click()
    page.locator("[data-ib=require-two-factor]").uncheck()
    page.locator("[data-ib=retention-save]").click()
    expect(page.locator("[data-ib=retention-saved]")).to_be_visible()
    admin.close()
    assert errors == []
