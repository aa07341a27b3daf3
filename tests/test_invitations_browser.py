"""Invitations and password reset in a real Chromium against a real `hub demo` that sends its
letters to a real SMTP server on loopback (aiosmtpd): the console invites, the person follows
the e-mailed link, chooses a password on the invite page and lands in the inbox; a forgotten
password is reset from the sign-in screen; the console removes the person and deletes their
account data; an admin invited where two-factor is required enrols on the invite page, and a
member of two workspaces switches between them in the inbox. Every page runs under its
Content-Security-Policy and must log no error."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.browserkit import api_client, log_in, screenshot
from tests.helpers import OTHER_STRONG_PASSWORD, STRONG_PASSWORD
from tests.mailbox import SmtpServer, smtp_server, token_in, wait_letter
from tests.servers import HubProcess, base_env, demo_seed, free_port

pytestmark = pytest.mark.browser

GOOD = STRONG_PASSWORD
BETTER = OTHER_STRONG_PASSWORD


@dataclass
class Site:
    proc: HubProcess
    seed: dict[str, str]
    smtp: SmtpServer
    data_dir: Path
    errors: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.proc.base_url

    def page(self, contexts: Any) -> Any:
        page = contexts().new_page()

        def console_message(message: Any) -> None:
            # Refusals the test provokes (a weak password, a 401) are logged by the browser.
            if message.type == "error" and "status of" not in message.text:
                self.errors.append(f"console: {message.text}")

        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", console_message)
        return page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("invite-hub")
    with smtp_server() as smtp:
        port = free_port()
        env = base_env(**smtp.env())
        args = ["demo", "--port", str(port), "--data-dir", str(tmp / "demo-data")]
        proc = HubProcess(args, env, port=port, log_path=tmp / "demo.log").start()
        try:
            made = Site(proc, demo_seed(tmp), smtp, tmp / "demo-data")
            yield made
            assert not made.errors, made.errors
        finally:
            log = proc.stop()
    assert "/invite#" not in log and "/reset#" not in log  # links never reach the log


def test_an_invited_person_sets_a_password_on_the_invite_page_and_lands_in_the_inbox(
    site: Site, contexts: Any
) -> None:
    from playwright.sync_api import expect

    admin = site.page(contexts)
    log_in(admin, site.base, site.seed["email"], site.seed["password"], "/admin")
    admin.locator("[data-ib=tab-members]").click()
    email = f"deniz-{uuid.uuid4().hex[:6]}@demo.example"
    admin.locator("[data-ib=member-email]").fill(email)
    assert admin.locator("[data-ib=member-password]").count() == 0  # no password to hand over
    before = len(site.smtp.letters())
    admin.locator("[data-ib=member-submit]").click()
    expect(admin.locator("[data-ib=member-added]")).to_have_text(
        f"An invitation is on its way to {email}."
    )
    pending = admin.locator(f"[data-ib=invitation][data-email='{email}']")
    expect(pending).to_be_visible()
    expect(pending.locator("[data-ib=invitation-resend]")).to_be_visible()
    screenshot(admin, "admin-invitations")
    expect(admin.locator(f"[data-ib=member][data-email='{email}']")).to_have_count(0)
    letter = wait_letter(site.smtp.letters, email, after=before)
    token = token_in(letter, "invite")

    person = site.page(contexts)
    person.goto(f"{site.base}/invite#{token}")
    expect(person.locator("[data-ib=invite-lead]")).to_have_text(
        f"Demo workspace invited {email} to join as an agent."
    )
    assert "#" not in person.url  # the token left the address bar
    person.locator("[data-ib=invite-name]").fill("Deniz <b>Yılmaz</b>")
    person.locator("[data-ib=invite-password]").fill("password1234")
    person.locator("[data-ib=invite-submit]").click()
    expect(person.locator("[data-ib=invite-error]")).to_contain_text("too easy to guess")
    screenshot(person, "invite-page")
    person.locator("[data-ib=invite-password]").fill(GOOD)
    person.locator("[data-ib=invite-submit]").click()
    expect(person.locator("[data-ib=status]")).to_have_text("Live")  # the inbox, signed in
    expect(person.locator("[data-ib=me]")).to_have_text("Deniz <b>Yılmaz</b>")

    # The link works once.
    again = site.page(contexts)
    again.goto(f"{site.base}/invite#{token}")
    expect(again.locator("[data-ib=invite-invalid]")).to_be_visible()
    expect(again.locator("[data-ib=invite-form]")).to_be_hidden()

    admin.reload()
    admin.locator("[data-ib=tab-members]").click()
    row = admin.locator(f"[data-ib=member][data-email='{email}']")
    expect(row).to_contain_text("Deniz <b>Yılmaz</b>")
    expect(admin.locator(f"[data-ib=invitation][data-email='{email}']")).to_have_count(0)

    # Removing them and deleting their account data.
    row.locator("[data-ib=member-erase]").click()
    expect(admin.locator("[data-ib=confirm-text]")).to_contain_text("cannot be undone")
    admin.locator("[data-ib=confirm-ok]").click()
    expect(row).to_have_count(0)
    refused = httpx.post(f"{site.base}/api/auth/login", json={"email": email, "password": GOOD})
    assert refused.status_code == 401


def test_a_revoked_invitation_shows_its_page_as_not_working(site: Site, contexts: Any) -> None:
    from playwright.sync_api import expect

    email = f"later-{uuid.uuid4().hex[:6]}@demo.example"
    with closing(api_client(site.base, site.seed["email"], site.seed["password"])) as api:
        before = len(site.smtp.letters())
        assert api.post("/api/members", json={"email": email}).status_code == 202
        token = token_in(wait_letter(site.smtp.letters, email, after=before), "invite")
    admin = site.page(contexts)
    log_in(admin, site.base, site.seed["email"], site.seed["password"], "/admin")
    admin.locator("[data-ib=tab-members]").click()
    pending = admin.locator(f"[data-ib=invitation][data-email='{email}']")
    pending.locator("[data-ib=invitation-revoke]").click()
    admin.locator("[data-ib=confirm-ok]").click()
    expect(pending).to_have_count(0)
    person = site.page(contexts)
    person.goto(f"{site.base}/invite#{token}")
    expect(person.locator("[data-ib=invite-invalid]")).to_contain_text("does not work")


def test_a_forgotten_password_is_reset_from_the_sign_in_screen(site: Site, contexts: Any) -> None:
    from playwright.sync_api import expect

    email = f"forgot-{uuid.uuid4().hex[:6]}@demo.example"
    with closing(api_client(site.base, site.seed["email"], site.seed["password"])) as api:
        before = len(site.smtp.letters())
        assert api.post("/api/members", json={"email": email}).status_code == 202
        token = token_in(wait_letter(site.smtp.letters, email, after=before), "invite")
        body = {"token": token, "name": "Forgetful", "password": GOOD}
        assert api.post("/api/invitations/accept", json=body).status_code == 200

    page = site.page(contexts)
    page.goto(site.base + "/")
    page.locator("[data-ib=forgot-password]").click()
    expect(page).to_have_url(f"{site.base}/reset")
    before = len(site.smtp.letters())
    page.locator("[data-ib=reset-email]").fill(email)
    page.locator("[data-ib=reset-send]").click()
    expect(page.locator("[data-ib=reset-sent]")).to_contain_text("If that e-mail has an account")
    token = token_in(wait_letter(site.smtp.letters, email, after=before), "reset")

    page.goto(f"{site.base}/reset#{token}")  # in the same tab: the page starts again
    expect(page).to_have_url(f"{site.base}/reset")  # the token left the address bar
    expect(page.locator("[data-ib=reset-form]")).to_be_visible()
    page.locator("[data-ib=reset-password]").fill(BETTER)
    page.locator("[data-ib=reset-repeat]").fill(BETTER + "x")
    page.locator("[data-ib=reset-save]").click()
    expect(page.locator("[data-ib=reset-error]")).to_have_text("The two passwords differ.")
    page.locator("[data-ib=reset-repeat]").fill(BETTER)
    page.locator("[data-ib=reset-save]").click()
    expect(page.locator("[data-ib=reset-done]")).to_be_visible()
    screenshot(page, "reset-page")

    log_in(page, site.base, email, GOOD)
    expect(page.locator("[data-ib=login-error]")).to_be_visible()  # the old one is refused
    log_in(page, site.base, email, BETTER)
    expect(page.locator("[data-ib=status]")).to_have_text("Live")

    used = site.page(contexts)
    used.goto(f"{site.base}/reset#{token}")
    used.locator("[data-ib=reset-password]").fill(GOOD + "!")
    used.locator("[data-ib=reset-repeat]").fill(GOOD + "!")
    used.locator("[data-ib=reset-save]").click()
    expect(used.locator("[data-ib=reset-invalid]")).to_be_visible()


def test_an_invited_admin_enrols_on_the_invite_page_then_switches_workspace_in_the_inbox(
    site: Site, contexts: Any
) -> None:
    """Scenario: a second workspace requires two-factor of its admins and invites a new
    admin, who sets a password and must enrol before any session; later the demo workspace
    invites the same account, and the inbox's picker moves the session between the two."""
    import pyotp
    from playwright.sync_api import expect

    second_email, second_password = f"chief-{uuid.uuid4().hex[:6]}@second.example", BETTER
    created = subprocess.run(
        [sys.executable, "-m", "hub.cli", "create-admin", "--workspace", "Second",
         "--email", second_email, "--name", "Chief", "--password", second_password],
        env=base_env(HUB_DATA_DIR=str(site.data_dir), HUB_SECRET_KEY=uuid.uuid4().hex * 2,
                     HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode()),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    email = f"two-places-{uuid.uuid4().hex[:6]}@demo.example"
    with closing(api_client(site.base, second_email, second_password)) as api:
        required = api.patch("/api/workspace", json={"require_two_factor_for_admins": True})
        assert required.status_code == 200, required.text
        second_id = api.get("/api/me").json()["user"]["workspace_id"]
        before = len(site.smtp.letters())
        assert api.post("/api/members", json={"email": email, "role": "admin"}).status_code == 202
        token = token_in(wait_letter(site.smtp.letters, email, after=before), "invite")

    person = site.page(contexts)
    person.goto(f"{site.base}/invite#{token}")
    person.locator("[data-ib=invite-name]").fill("Two Places")
    person.locator("[data-ib=invite-password]").fill(GOOD)
    person.locator("[data-ib=invite-submit]").click()
    # A password alone opens no admin session here: enrolment first, on the invite page.
    secret = person.locator("[data-ib=tf-secret]")
    expect(secret).to_be_visible()
    assert person.evaluate("fetch('/api/me').then((r) => r.status)") == 401
    expect(person.locator("[data-ib=invite-form]")).to_be_hidden()
    totp = pyotp.TOTP(secret.inner_text().strip())
    person.locator("[data-ib=tf-confirm-code]").fill(totp.now())
    person.locator("[data-ib=tf-confirm]").click()
    expect(person.locator("[data-ib=tf-recovery-codes] li")).to_have_count(10)
    person.locator("[data-ib=tf-codes-done]").click()
    expect(person.locator("[data-ib=status]")).to_have_text("Live")  # the inbox, signed in
    expect(person.locator("[data-ib=admin-link]")).to_be_visible()
    expect(person.locator("[data-ib=workspace-pick]")).to_be_hidden()  # one workspace yet

    # The demo workspace invites the same account; accepting asks for its code, and the
    # membership is there either way.
    with closing(api_client(site.base, site.seed["email"], site.seed["password"])) as api:
        demo_id = api.get("/api/me").json()["user"]["workspace_id"]
        before = len(site.smtp.letters())
        assert api.post("/api/members", json={"email": email}).status_code == 202
        token = token_in(wait_letter(site.smtp.letters, email, after=before), "invite")
    accepted = httpx.post(
        f"{site.base}/api/invitations/accept", json={"token": token, "password": GOOD}
    )
    assert accepted.status_code == 200 and accepted.json()["two_factor_required"] is True

    person.reload()
    picker = person.locator("[data-ib=workspace]")
    expect(person.locator("[data-ib=workspace-pick]")).to_be_visible()
    expect(picker).to_have_value(second_id)
    expect(picker.locator("option")).to_have_text(["Second", "Demo workspace"])
    screenshot(person, "inbox-workspace-picker")
    picker.select_option(demo_id)
    expect(picker).to_have_value(demo_id)
    expect(person.locator("[data-ib=status]")).to_have_text("Live")
    expect(person.locator("[data-ib=admin-link]")).to_be_hidden()  # an agent here
    role = person.evaluate("fetch('/api/me').then((r) => r.json()).then((b) => b.user.role)")
    assert role == "agent"
    picker.select_option(second_id)
    expect(person.locator("[data-ib=admin-link]")).to_be_visible()

    # The console has the same picker; as an agent of the demo workspace it shows "Admins only".
    person.goto(site.base + "/admin")
    expect(person.locator("[data-ib=workspace-pick]")).to_be_visible()
    expect(person.locator("[data-ib=workspace]")).to_have_value(second_id)
    person.locator("[data-ib=workspace]").select_option(demo_id)
    expect(person.locator("[data-ib=forbidden]")).to_be_visible()
