"""Real Chromium for browser tests (a pytest plugin loaded by conftest.py).

Outside CI a missing Chromium skips the tests that use these fixtures; with CI=true they
fail instead. Set CHROMIUM to use another binary than /usr/bin/chromium. Screenshots of the
main screens go to test-artifacts/ at the repository root (printed at the end of the run).
With HUB_DOCS_SCREENSHOTS set to a folder (scripts/screenshots sets docs/img), each one is also
kept there as the documentation's picture of that screen: the visible part only, made smaller.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import tiers
from tests.servers import HubProcess, demo, demo_seed
from tests.thirdparty import third_party

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as in conftest.py
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DOCS_SHOTS = os.environ.get("HUB_DOCS_SCREENSHOTS", "")
DOCS_WIDTH = 900  # pixels: wide enough to read, small enough to keep in the repository


def _need_chromium() -> None:
    tiers.require("browser", "Chromium")
    if (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) or shutil.which(CHROMIUM):
        return
    message = f"Chromium is not installed at {CHROMIUM} (set CHROMIUM to its path)"
    if IN_CI:
        pytest.fail(message + " (CI=true: browser tests fail instead of skipping)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[HubProcess, dict[str, str]]]:
    """A real `hub demo` (SQLite, in-process bus) with its seeded admin and web-chat channel."""
    tmp: Path = tmp_path_factory.mktemp("browser-hub")
    proc = demo(tmp).start()
    try:
        yield proc, demo_seed(tmp)
    finally:
        proc.stop()


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    """New isolated browser contexts (own cookies and storage), closed after the test."""
    made: list[Any] = []

    def new(**options: Any) -> Any:
        context = browser.new_context(**({"viewport": {"width": 1200, "height": 800}} | options))
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


def log_in(page: Any, base: str, email: str, password: str, path: str = "/") -> None:
    page.goto(base + path)
    page.locator("[data-ib=login-email]").fill(email)
    page.locator("[data-ib=login-password]").fill(password)
    page.locator("[data-ib=login-submit]").click()


def screenshot(page: Any, name: str, *, secret: str | None = None) -> Path:
    """Keep a picture of a main screen under test-artifacts/ (CI prints where). `secret`, a
    selector, covers what must never be in a picture (a token, recovery codes) with a block."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    mask = [page.locator(secret)] if secret else []
    page.screenshot(path=str(path), full_page=True, mask=mask)
    if DOCS_SHOTS:
        _keep_for_docs(page, Path(DOCS_SHOTS) / f"{name}.png", mask)
    return path


def _keep_for_docs(page: Any, target: Path, mask: list[Any]) -> None:
    """The visible part of the page, scaled to DOCS_WIDTH and reduced to 256 colours."""
    from io import BytesIO

    from PIL import Image

    picture = Image.open(BytesIO(page.screenshot(mask=mask)))
    if picture.width > DOCS_WIDTH:
        height = round(picture.height * DOCS_WIDTH / picture.width)
        picture = picture.resize((DOCS_WIDTH, height), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    picture.convert("RGB").quantize(256).save(target, optimize=True)


def api_client(base: str, email: str, password: str) -> httpx.Client:
    """An httpx client logged in as that user, with the CSRF header set."""
    client = httpx.Client(base_url=base, timeout=5)
    answer = client.post("/api/auth/login", json={"email": email, "password": password})
    answer.raise_for_status()
    client.headers["x-csrf-token"] = answer.json()["csrf_token"]
    return client


@contextmanager
def shop_allowed(proc: HubProcess, seed: dict[str, str]) -> Iterator[tuple[Any, httpx.Client, str]]:
    """A third-party site on loopback that the demo's web-chat channel allows, an admin's API
    client, and the channel's id: where the widget tests put the widget."""
    with (
        third_party() as shop,
        closing(api_client(proc.base_url, seed["email"], seed["password"])) as admin,
    ):
        [webchat] = [
            c for c in admin.get("/api/channels").json()["items"] if c["kind"] == "webchat"
        ]
        origins = sorted(set(webchat["allowed_origins"]) | {shop.origin})
        answer = admin.patch(f"/api/channels/{webchat['id']}", json={"allowed_origins": origins})
        assert answer.status_code == 200, answer.text
        yield shop, admin, webchat["id"]


def wait_until(check: Any, timeout_s: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS}")
