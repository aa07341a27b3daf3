"""Accessibility of every main screen, in a real Chromium against a real `hub demo`: axe-core
(the npm package pinned in tests/a11y/package-lock.json, installed by scripts/test) runs on
each screen of SCREENS and must find no serious or critical violation, and on the hub's own
pages none of the landmark and heading rules (STRUCTURE) either, with one h1 and one main.
To check a new screen, add one `Screen` to SCREENS: a name and a function that brings a page
there (and returns the CSS selector of what to check, or None for the whole page).

axe.min.js is put into the page by Playwright, which our pages' Content-Security-Policy
refuses (no inline script); only these tests' browser contexts bypass the policy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import IN_CI, api_client, log_in, screenshot, wait_until
from tests.servers import HubProcess
from tests.thirdparty import Site, third_party

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("serious", "critical")
# Landmarks and headings, whatever axe's impact, on the hub's own pages.
STRUCTURE = (
    "region",
    "landmark-unique",
    "heading-order",
    "landmark-one-main",
    "page-has-heading-one",
)


@dataclass
class Site11y:
    proc: HubProcess
    seed: dict[str, str]
    shop: Site
    word: str  # in the seeded conversation's message

    @property
    def base(self) -> str:
        return self.proc.base_url


@pytest.fixture(scope="module")
def site(hub: tuple[HubProcess, dict[str, str]]) -> Iterator[Site11y]:
    if not AXE.is_file():
        message = f"axe-core is not installed at {AXE} (scripts/test runs npm ci in tests/a11y)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    proc, seed = hub
    with (
        third_party() as shop,
        closing(api_client(proc.base_url, seed["email"], seed["password"])) as admin,
    ):
        channels = admin.get("/api/channels").json()["items"]
        [webchat] = [c for c in channels if c["kind"] == "webchat"]
        origins = sorted(set(webchat["allowed_origins"]) | {shop.origin})
        admin.patch(f"/api/channels/{webchat['id']}", json={"allowed_origins": origins})
        word = uuid.uuid4().hex[:8]
        visitor_says(proc, seed["public_key"], shop.origin, f"Where is my order {word}?")
        wait_until(
            lambda: any(
                word in (c.get("last_message_preview") or "")
                for c in admin.get("/api/conversations").json()["items"]
            ),
            what="the seeded conversation",
        )
        yield Site11y(proc, seed, shop, word)


def visitor_says(proc: HubProcess, public_key: str, origin: str, text: str) -> None:
    answer = httpx.post(
        proc.base_url + "/api/widget/token",
        json={"channel": public_key},
        headers={"origin": origin},
    )
    token = answer.json()["token"]
    with ws_connect(proc.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": uuid.uuid4().hex, "text": text}))
        while json.loads(ws.recv(5))["type"] != "ack":
            pass


# The screens. Each brings `page` to one screen and returns what to check (None: the page).


def inbox_sign_in(page: Any, site: Site11y) -> str | None:
    page.goto(site.base + "/")
    page.locator("[data-ib=login-email]").wait_for()
    return None


def console_sign_in(page: Any, site: Site11y) -> str | None:
    page.goto(site.base + "/admin")
    page.locator("[data-ib=login-email]").wait_for()
    return None


def signed_in(page: Any, site: Site11y, path: str = "/") -> None:
    from playwright.sync_api import expect

    log_in(page, site.base, site.seed["email"], site.seed["password"], path)
    if path == "/":
        expect(page.locator("[data-ib=status]")).to_have_text("Live")


def inbox_thread(page: Any, site: Site11y) -> str | None:
    from playwright.sync_api import expect

    signed_in(page, site)
    page.locator("[data-ib=filter-status]").select_option("")
    page.locator("[data-ib=conversation]", has_text=site.word).click()
    expect(page.locator("[data-ib=message]", has_text=site.word)).to_be_visible()
    return None


def contact_panel(page: Any, site: Site11y) -> str | None:
    from playwright.sync_api import expect

    inbox_thread(page, site)
    page.locator("[data-ib=contact-toggle]").click()
    expect(page.locator("[data-ib=contact-panel]")).to_be_visible()
    return None


def dialog(reach: Callable[[Any, Site11y], str | None], opener: str, name: str) -> Any:
    """A screen that is a dialog opened by the button `opener` on the screen `reach` brings."""

    def screen(page: Any, site: Site11y) -> str | None:
        from playwright.sync_api import expect

        reach(page, site)
        page.locator(f"[data-ib={opener}]").click()
        expect(page.locator(f"[data-ib={name}]")).to_be_visible()
        page.wait_for_load_state("networkidle")
        return None

    return screen


def console_tab(tab: str) -> Callable[[Any, Site11y], str | None]:
    def screen(page: Any, site: Site11y) -> str | None:
        from playwright.sync_api import expect

        signed_in(page, site, "/admin")
        page.locator(f"[data-ib=tab-{tab}]").click()
        expect(page.locator(f"[data-ib=panel-{tab}]")).to_be_visible()
        page.wait_for_load_state("networkidle")
        return None

    return screen


def widget_open(page: Any, site: Site11y) -> str | None:
    from playwright.sync_api import expect

    src = site.base + "/widget.js"
    tag = f'<script src="{src}" data-channel="{site.seed["public_key"]}" async></script>'
    page.goto(site.shop.page(f"/a11y-{uuid.uuid4().hex[:8]}", tag))
    page.locator("[data-sc=launcher]").click()
    expect(page.locator("[data-sc=status]")).to_have_text("Online")
    return "#sosyocrm-chat"  # the widget alone (its shadow root included), not the shop's page


def search_results(page: Any, site: Site11y) -> str | None:
    from playwright.sync_api import expect

    inbox_thread(page, site)
    page.locator("[data-ib=search]").fill(site.word)
    expect(page.locator("[data-ib=search-results] mark").first).to_be_visible()
    return None


def invite_page(page: Any, site: Site11y) -> str | None:
    page.goto(site.base + "/invite")
    page.wait_for_load_state("networkidle")
    return None


def reset_page(page: Any, site: Site11y) -> str | None:
    page.goto(site.base + "/reset")
    page.wait_for_load_state("networkidle")
    return None


@dataclass(frozen=True)
class Screen:
    name: str
    reach: Callable[[Any, Site11y], str | None]
    hub_page: bool = True  # a page of the hub's: landmarks and one h1 are checked too


CONSOLE_TABS = (
    "channels",
    "members",
    "routing",
    "automation",
    "reports",
    "hooks",
    "attributes",
    "workspace",
    "tokens",
    "replies",
    "privacy",
    "status",
    "audit",
)
SCREENS = [
    Screen("inbox-sign-in", inbox_sign_in),
    Screen("console-sign-in", console_sign_in),
    Screen("inbox-thread", inbox_thread),
    Screen("inbox-contact-panel", contact_panel),
    *(Screen(f"console-{tab}", console_tab(tab)) for tab in CONSOLE_TABS),
    Screen("inbox-password", dialog(inbox_thread, "password-open", "password-dialog")),
    Screen("inbox-security", dialog(inbox_thread, "security", "security-dialog")),
    Screen("inbox-sessions", dialog(inbox_thread, "sessions-open", "sessions-dialog")),
    Screen("inbox-saved-replies", dialog(inbox_thread, "canned-open", "canned-dialog")),
    Screen("console-security", dialog(console_tab("channels"), "security", "security-dialog")),
    Screen("inbox-notifications", dialog(inbox_thread, "notify-open", "notify-dialog")),
    Screen("inbox-profile", dialog(inbox_thread, "profile-open", "profile-dialog")),
    Screen("inbox-shortcuts", dialog(inbox_thread, "shortcuts-open", "shortcuts-dialog")),
    Screen("inbox-emoji", dialog(inbox_thread, "emoji-open", "emoji-grid")),
    Screen("inbox-search", search_results),
    Screen("console-profile", dialog(console_tab("channels"), "profile-open", "profile-dialog")),
    Screen("widget-open", widget_open, hub_page=False),
    Screen("invite", invite_page),
    Screen("reset", reset_page),
]


def axe(page: Any, include: str | None) -> list[dict[str, Any]]:
    """axe-core's violations on the page (or within `include`, open shadow roots included)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    context = json.dumps({"include": [[include]]} if include else {"exclude": []})
    found: list[dict[str, Any]] = page.evaluate(
        f"axe.run({context}, {{resultTypes: ['violations']}}).then((r) => r.violations)"
    )
    return found


def readable(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} nodes)")
        for node in v["nodes"][:5]:
            lines.append(f"    at {node['target']}: {node['failureSummary'].splitlines()[-1]}")
            lines.append(f"       {node['html'][:160]}")
    return "\n".join(lines)


LANDMARKS = """() => {
  const shown = (e) => e.getClientRects().length > 0;
  return {
    h1: [...document.querySelectorAll('h1')].filter(shown).length,
    main: [...document.querySelectorAll('main, [role=main]')].filter(shown).length,
  };
}"""


@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_no_serious_or_critical_violations(site: Site11y, contexts: Any, screen: Screen) -> None:
    page = contexts(bypass_csp=True).new_page()
    include = screen.reach(page, site)
    found = [
        v
        for v in axe(page, include)
        if v["impact"] in FAILING or (screen.hub_page and v["id"] in STRUCTURE)
    ]
    assert not found, f"axe on {screen.name}:\n{readable(found)}"
    if screen.hub_page:
        assert page.evaluate(LANDMARKS) == {"h1": 1, "main": 1}, screen.name


def test_axe_finds_a_planted_violation(site: Site11y, contexts: Any) -> None:
    """The check itself works: a nameless button in the widget's shadow root is found."""
    page = contexts(bypass_csp=True).new_page()
    include = widget_open(page, site)
    page.evaluate(
        "document.getElementById('sosyocrm-chat').shadowRoot.querySelector('.p')"
        ".append(document.createElement('button'))"
    )
    assert "button-name" in [v["id"] for v in axe(page, include)]


# Every action from the keyboard: Tab, Shift+Tab, Enter, the arrows and typing; no clicks.


def tab_to(page: Any, matches: str, back: bool = False, most: int = 80) -> None:
    """Press Tab (Shift+Tab) until the focused element satisfies `matches`, a JS predicate
    of `e`: the element is reachable from the keyboard, in order."""
    for _ in range(most):
        if page.evaluate(
            f"(() => {{ const e = document.activeElement; return !!e && ({matches}); }})()"
        ):
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    focused = page.evaluate("document.activeElement && document.activeElement.outerHTML")
    raise AssertionError(f"no element with {matches} by keyboard; at {str(focused)[:200]}")


def keyboard_sign_in(page: Any, site: Site11y, path: str) -> None:
    page.goto(site.base + path)
    page.locator("[data-ib=login-email]").wait_for()
    tab_to(page, "e.dataset.ib === 'login-email'")
    page.keyboard.type(site.seed["email"])
    tab_to(page, "e.dataset.ib === 'login-password'")
    page.keyboard.type(site.seed["password"])
    page.keyboard.press("Enter")


def test_an_agent_answers_and_resolves_with_the_keyboard_only(site: Site11y, contexts: Any) -> None:
    from playwright.sync_api import expect

    word = uuid.uuid4().hex[:8]
    visitor_says(site.proc, site.seed["public_key"], site.shop.origin, f"Keyboard {word}")
    page = contexts().new_page()
    keyboard_sign_in(page, site, "/")
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    row = page.locator("[data-ib=conversation]", has_text=word)
    expect(row).to_be_visible()
    tab_to(page, f"e.dataset.ib === 'conversation' && e.textContent.includes('{word}')")
    page.keyboard.press("Enter")
    expect(page.locator("[data-ib=message]", has_text=word)).to_be_visible()
    tab_to(page, "e.dataset.ib === 'reply'")
    page.keyboard.type(f"On its way {word}")
    page.keyboard.press("Enter")
    sent = page.locator("[data-ib=message]", has_text=f"On its way {word}")
    expect(sent).to_be_visible()
    conversation_id = row.get_attribute("data-id")
    tab_to(page, "e.dataset.ib === 'resolve'", back=True)
    page.keyboard.press("Enter")
    with closing(api_client(site.base, site.seed["email"], site.seed["password"])) as admin:
        wait_until(
            lambda: (
                admin.get(f"/api/conversations/{conversation_id}").json()["status"] == "resolved"
            ),
            what="the conversation resolved",
        )
    expect(page.locator("[data-ib=reopen]")).to_be_focused()  # the focus is not lost
    screenshot(page, "inbox-keyboard")


def test_an_admin_changes_a_setting_with_the_keyboard_only(site: Site11y, contexts: Any) -> None:
    from playwright.sync_api import expect

    page = contexts().new_page()
    keyboard_sign_in(page, site, "/admin")
    expect(page.locator("[data-ib=tab-channels]")).to_be_visible()
    tab_to(page, "e.getAttribute('role') === 'tab'")  # the selected tab; the arrows move on
    for _ in range(12):
        if page.locator("[data-ib=tab-workspace]").get_attribute("aria-selected") == "true":
            break
        page.keyboard.press("ArrowRight")
    expect(page.locator("[data-ib=tab-workspace]")).to_be_focused()
    expect(page.locator("[data-ib=panel-workspace]")).to_be_visible()
    expect(page.locator("[data-ib=retention-current]")).not_to_be_empty()  # the tab has loaded
    tab_to(page, "e.dataset.ib === 'retention-days'")
    page.keyboard.press("Control+A")
    page.keyboard.type("45")
    tab_to(page, "e.dataset.ib === 'retention-save'")
    page.keyboard.press("Enter")
    expect(page.locator("[data-ib=retention-saved]")).to_be_visible()
    expect(page.locator("[data-ib=retention-current]")).to_contain_text("45")
    with closing(api_client(site.base, site.seed["email"], site.seed["password"])) as admin:
        assert admin.get("/api/workspace").json()["retention_days"] == 45  # kept
