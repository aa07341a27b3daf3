"""The inbox's "Change password" dialog, in Chromium on a real `hub serve`: a weak password
gets the server's own reason, a strong one is taken, and the new password signs in."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.browserkit import log_in, screenshot
from tests.servers import HubProcess, base_env, free_port

pytestmark = pytest.mark.browser


def test_the_inbox_changes_a_password_under_the_servers_rule(tmp_path: Path, contexts: Any) -> None:
    from playwright.sync_api import expect

    env = base_env(
        HUB_SECRET_KEY="pw-" + uuid.uuid4().hex + uuid.uuid4().hex,
        HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUB_DATA_DIR=str(tmp_path),
    )
    email, password = "ops@acme.example", "pw-" + uuid.uuid4().hex
    created = subprocess.run(
        [sys.executable, "-m", "hub.cli", "create-admin", "--workspace", "Acme",
         "--email", email, "--name", "Ops", "--password", password],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    port = free_port()
    web = HubProcess(["serve", "--port", str(port)], env, port, tmp_path / "web.log").start()
    try:
        page = contexts().new_page()
        log_in(page, web.base_url, email, password)
        expect(page.locator("#app")).to_be_visible()
        page.locator("[data-ib=password-open]").click()
        dialog = page.locator("[data-ib=password-dialog]")
        expect(dialog).to_be_visible()
        error = page.locator("[data-ib=password-error]")

        def change(current: str, new: str, again: str | None = None) -> None:
            page.locator("[data-ib=password-current]").fill(current)
            page.locator("[data-ib=password-new]").fill(new)
            page.locator("[data-ib=password-repeat]").fill(new if again is None else again)
            page.locator("[data-ib=password-submit]").click()

        change(password, "short")  # the page's own hint, before asking
        expect(error).to_have_text("The new password needs at least 12 characters.")
        change(password, "aaaaaaaaaaaa")  # the server's rule and its reason
        expect(error).to_contain_text("This password is too easy to guess")
        expect(error).to_contain_text('Repeats like "aaa"')
        screenshot(page, "inbox-password-weak")
        change(password, email)  # their own e-mail
        expect(error).to_contain_text("too easy to guess")
        strong = "Lantern-" + uuid.uuid4().hex[:8] + "-Meadow"
        change("not-the-password", strong)
        expect(error).to_have_text("The current password is wrong.")
        change(password, strong, strong + "x")
        expect(error).to_have_text("The two new passwords differ.")
        change(password, strong)
        expect(page.locator("[data-ib=password-done]")).to_contain_text("Password changed")
        expect(error).to_be_hidden()
        page.locator("[data-ib=password-dialog] form[method=dialog] button").click()
        expect(dialog).to_be_hidden()

        page.locator("[data-ib=logout]").click()
        expect(page.locator("[data-ib=login-email]")).to_be_visible()
        log_in(page, web.base_url, email, password)
        expect(page.locator("[data-ib=login-error]")).to_be_visible()
        log_in(page, web.base_url, email, strong)
        expect(page.locator("#app")).to_be_visible()
    finally:
        printed = web.stop()
    assert "Traceback" not in printed
