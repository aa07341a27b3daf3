"""The console's Facebook Pages picker in a real Chromium, against a real `hub demo` whose Graph
API is the fake platform: back from Facebook Login for Business, the admin ticks a Page for
Messenger and another Page's Instagram account, and both channels are connected; then the
workspace's choice of what Meta's data deletion erases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browserkit import api_client, log_in
from tests.fakeonboarding import APP_ID, APP_SECRET, FB_CODE, FakeOnboarding
from tests.fakeplatform import MESSENGER, FakePlatform, running_fake
from tests.servers import HubProcess, base_env, demo_seed, free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[HubProcess, dict[str, str], FakePlatform]]:
    with running_fake() as fake:
        port = free_port()
        env = base_env(
            HUB_META_APP_ID=APP_ID,
            HUB_META_APP_SECRET=APP_SECRET,
            HUB_GRAPH_URL=fake.base_urls().graph,
            HUB_INSTAGRAM_GRAPH_URL=fake.base_urls().instagram,
        )
        args = ["demo", "--port", str(port), "--data-dir", str(tmp_path / "demo-data")]
        proc = HubProcess(args, env, port=port, log_path=tmp_path / "demo.log").start()
        try:
            yield proc, demo_seed(tmp_path), fake
        finally:
            proc.stop()


def test_the_admin_picks_pages_after_facebook_login(
    hub: tuple[HubProcess, dict[str, str], FakePlatform], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed, fake = hub
    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, proc.base_url, seed["email"], seed["password"], "/admin")
    expect(page.locator("[data-ib=channel]").first).to_be_visible()
    page.locator("[data-ib=connect-open]").click()
    page.locator("[data-ib=connect-kind]").select_option("messenger")
    expect(page.locator("[data-ib=facebook-login]")).to_be_visible()

    # Facebook's dialog is not reachable here: the admin's sign-in is started over the API
    # and the browser comes back through the callback, as Facebook would send it.
    admin = api_client(proc.base_url, seed["email"], seed["password"])
    try:
        url = admin.post("/api/channels/facebook/authorize").json()["url"]
    finally:
        admin.close()
    state = parse_qs(urlsplit(url).query)["state"][0]
    page.goto(f"{proc.base_url}/oauth/facebook/callback?code={FB_CODE}&state={state}")
    picker = page.locator("[data-ib=facebook-picker]")
    expect(picker).to_be_visible()
    rows = picker.locator("[data-ib=facebook-page]")
    expect(rows).to_have_count(3)
    first = rows.filter(has_text="Kahve Co")
    second = rows.filter(has_text="Kahve Shop")
    expect(first.locator("[data-ib=pick-instagram]")).to_have_count(0)
    expect(second).to_contain_text("@kahve.shop")
    picker.locator("[data-ib=facebook-connect]").click()
    expect(page.locator("[data-ib=facebook-error]")).to_be_visible()  # nothing ticked yet
    first.locator("[data-ib=pick-messenger]").check()
    second.locator("[data-ib=pick-instagram]").check()
    picker.locator("[data-ib=facebook-connect]").click()
    expect(page.locator("[data-ib=channels-notice]")).to_have_text("Connected 2 channel(s).")
    expect(picker).to_be_hidden()
    channels = page.locator("[data-ib=channel]")
    expect(channels.filter(has_text="Kahve Co")).to_have_count(1)
    expect(channels.filter(has_text="@kahve.shop")).to_have_count(1)
    assert "facebook_pages" not in page.url  # the ticket left the address bar
    assert set(FakeOnboarding.of(fake).subscribed) == {MESSENGER.account_id, "109000000000002"}

    # What Meta's data-deletion request of whoever connected them erases: the workspace says.
    page.locator("[data-ib=tab-workspace]").click()
    erases = page.locator("[data-ib=platform-deletion]")
    expect(erases).not_to_be_checked()
    erases.check()
    page.locator("[data-ib=retention-save]").click()
    expect(page.locator("[data-ib=retention-saved]")).to_be_visible()
    admin = api_client(proc.base_url, seed["email"], seed["password"])
    try:
        assert admin.get("/api/workspace").json()["platform_deletion_erases"] is True
    finally:
        admin.close()
    assert errors == []
