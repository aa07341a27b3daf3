"""The console's Status tab after Redis lost the hub's data, in a real Chromium against a real
`hub serve` on a private Redis: the warning shows until `hub bus acknowledge-loss`."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests import privateservices
from tests.browserkit import log_in, screenshot, wait_until
from tests.servers import HubProcess, base_env, free_port
from tests.test_faults import _need_private

pytestmark = [pytest.mark.browser, pytest.mark.redis]

PASSWORD = "status-password-42"


def test_the_status_tab_warns_of_a_bus_loss_until_acknowledged(
    tmp_path: Path, contexts: Any
) -> None:
    from playwright.sync_api import expect

    _need_private()
    with privateservices.private_redis() as redis_server:
        env = base_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
            REDIS_URL=redis_server.url,
            HUB_SECRET_KEY="busloss-" + uuid.uuid4().hex + uuid.uuid4().hex,
            HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )

        def hub(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "hub.cli", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        hub("create-admin", "--workspace", "Ops", "--email", "ops@example.com",
            "--password", PASSWORD)  # fmt: skip
        port = free_port()
        web = HubProcess(["serve", "--port", str(port)], env, port, tmp_path / "web.log").start()
        try:
            page = contexts().new_page()
            log_in(page, web.base_url, "ops@example.com", PASSWORD, "/admin")
            expect(page.locator("#app")).to_be_visible()
            page.locator("[data-ib=tab-status]").click()
            banner = page.locator("[data-ib=status-bus-loss]")
            expect(page.locator("[data-ib=status-updated]")).to_contain_text("Updated at")
            expect(banner).to_be_hidden()

            redis_server.restart_empty()
            refresh = page.locator("[data-ib=status-refresh]")
            wait_until(
                lambda: refresh.click() or banner.is_visible(),
                timeout_s=20,
                what="the warning",
            )
            expect(banner).to_contain_text("lost its data")
            expect(banner).to_contain_text("hub bus acknowledge-loss")
            screenshot(page, "admin-status-bus-loss")
            page.locator("[data-ib=language]").select_option("tr")
            refresh.click()
            expect(banner).to_contain_text(re.compile("verilerini kaybetti"))
            page.locator("[data-ib=language]").select_option("en")

            assert "Acknowledged" in hub("bus", "acknowledge-loss")
            wait_until(
                lambda: refresh.click() or banner.is_hidden(), timeout_s=10, what="no warning"
            )
        finally:
            web.stop()
