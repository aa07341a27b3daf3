"""The pages under their Content-Security-Policy in a real Chromium against a real `hub demo`:
the inbox, the console and the demo shop (with the widget carrying a visitor's message to the
inbox and the answer back) work, and the browser reports no violation of the policy on any of
them: neither a console message ("Refused to ...", "... violates the following Content
Security Policy directive ...") nor a `securitypolicyviolation` event."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browserkit import log_in, wait_until
from tests.servers import HubProcess

pytestmark = pytest.mark.browser

WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
}, true);
"""
SDK_STUB = "window.__sdkLoaded = true;"


def watched(context: Any) -> tuple[Any, list[str]]:
    page = context.new_page()
    seen: list[str] = []
    page.on(
        "console",
        lambda m: (
            seen.append(m.text)
            if "Refused to" in m.text or "Content Security Policy" in m.text
            else None
        ),
    )
    page.add_init_script(WATCH)
    return page, seen


def violations(page: Any, seen: list[str]) -> list[str]:
    page.wait_for_timeout(200)  # console messages arrive through this call
    return seen + list(page.evaluate("window.__violations || []"))


def test_inbox_and_demo_widget_work_under_the_policy_with_no_violation(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    base = proc.base_url
    agent, agent_seen = watched(contexts())
    log_in(agent, base, seed["email"], seed["password"])
    expect(agent.locator("[data-ib=status]")).to_have_text("Live")

    visitor, visitor_seen = watched(contexts())
    visitor.goto(f"{base}/demo?channel={seed['public_key']}")
    launcher = visitor.locator("[data-sc=launcher]")
    expect(launcher).to_be_visible()
    # The widget's styles applied (a constructed stylesheet, no inline <style>).
    assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"
    assert (
        visitor.locator(".swatch.huila").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(75, 54, 33)"
    )  # the demo shop's own stylesheet
    launcher.click()
    expect(visitor.locator("[data-sc=status]")).to_have_text("Online")
    visitor.locator("[data-sc=input]").fill("Is the Huila in stock?")
    visitor.locator("[data-sc=input]").press("Enter")
    mine = visitor.locator("[data-sc=message][data-direction=in]")
    expect(mine).to_have_count(1)

    conversation = agent.locator("[data-ib=conversation]", has_text="Huila")
    expect(conversation).to_have_count(1)  # arrived live in the inbox
    conversation.click()
    expect(agent.locator("[data-ib=message][data-direction=in]")).to_contain_text("Huila")
    agent.locator("[data-ib=reply]").fill("It is: roasted on Tuesday.")
    agent.locator("[data-ib=reply]").press("Enter")
    expect(visitor.locator("[data-sc=message][data-direction=out]")).to_contain_text(
        "roasted on Tuesday"
    )

    assert violations(agent, agent_seen) == []
    assert violations(visitor, visitor_seen) == []


def test_console_works_under_its_policy_and_may_load_metas_sdk(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    from playwright.sync_api import expect

    proc, seed = hub
    context = contexts()
    # Meta's SDK from its own host, answered here by a stand-in: the policy must let it load.
    context.route(
        "https://connect.facebook.net/**",
        lambda route: route.fulfill(body=SDK_STUB, content_type="application/javascript"),
    )
    page, seen = watched(context)
    log_in(page, proc.base_url, seed["email"], seed["password"], path="/admin")
    tabs = page.locator("[role=tab]")
    expect(tabs.first).to_be_visible()
    for i in range(tabs.count()):
        tabs.nth(i).click()
        expect(tabs.nth(i)).to_have_attribute("aria-selected", "true")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.src = 'https://connect.facebook.net/en_US/sdk.js'; document.head.append(s); }"
    )
    # Polled by evaluate: wait_for_function evaluates a string, which the policy refuses.
    wait_until(lambda: page.evaluate("window.__sdkLoaded === true"), what="the SDK")
    assert violations(page, seen) == []

    # Anything else from elsewhere is refused, and the refusal is what the watch would see.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.src = 'https://elsewhere.example/x.js'; document.head.append(s); }"
    )
    wait_until(lambda: page.evaluate("window.__violations.length > 0"), what="a violation")
    assert any("script-src" in v for v in violations(page, seen))
