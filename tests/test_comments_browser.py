"""Moderating a comment from the inbox, in a real Chromium against a real `hub demo` whose
Page talks to the fake platform: the Hide button hides it on the platform and in every open
inbox at once, a reload still shows it hidden, Show brings it back, and Delete (asked twice)
deletes it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.fakecomments import comments_of
from tests.fakeplatform import MESSENGER
from tests.payloads import load
from tests.test_inbox_browser import Site, agent, agent_page, conversation_row, site

pytestmark = pytest.mark.browser
__all__ = ["agent", "site"]  # the inbox tests' fixtures, used here by name


def page_comment(comment_id: str, text: str) -> dict[str, Any]:
    body = load("messenger/page_feed_comment_batched_two_entries.json")
    body["entry"] = body["entry"][:1]
    body["entry"][0]["id"] = MESSENGER.account_id
    value = body["entry"][0]["changes"][0]["value"]
    value.update(
        comment_id=comment_id,
        parent_id=value["post_id"],
        message=text,
        created_time=int(time.time()),
    )
    return dict(body)


def test_the_hide_button_hides_a_comment_everywhere_and_it_stays_hidden(
    site: Site, agent: Any, contexts: Any
) -> None:
    from playwright.sync_api import expect

    word = "spam-" + uuid.uuid4().hex[:6]
    comment = f"139560936744456_{uuid.uuid4().int % 10**15}"
    site.meta(page_comment(comment, f"Cheap followers at {word}"))
    conversation_row(agent, word).click()
    incoming = agent.locator("[data-ib=message][data-direction=in].comment")
    expect(incoming).to_have_count(1)
    other, _ = agent_page(site, contexts, "Deniz")
    other.locator("[data-ib=filter-status]").select_option("")
    conversation_row(other, word).click()
    theirs = other.locator("[data-ib=message][data-direction=in].comment")
    expect(theirs.locator("[data-ib=comment-hide]")).to_be_visible()

    incoming.locator("[data-ib=comment-hide]").click()
    for seen in (incoming, theirs):  # this inbox and the other agent's, live
        expect(seen).to_have_attribute("data-hidden", "true")
        expect(seen.locator(".hidden-tag")).to_have_text("Hidden")
        expect(seen.locator("[data-ib=comment-unhide]")).to_be_visible()
        expect(seen.locator("[data-ib=comment-hide]")).to_have_count(0)
    assert comments_of(site.fake).hidden[comment] is True
    [call] = [r for r in site.fake.requests if r.path.endswith(f"/{comment}")]
    assert (call.method, call.body) == ("POST", {"is_hidden": True})

    agent.reload()
    conversation_row(agent, word).click()
    expect(incoming).to_have_attribute("data-hidden", "true")  # kept, not only shown

    theirs.locator("[data-ib=comment-unhide]").click()
    expect(incoming).to_have_attribute("data-hidden", "false")
    expect(incoming.locator(".hidden-tag")).to_have_count(0)
    assert comments_of(site.fake).hidden[comment] is False

    delete = incoming.locator("[data-ib=comment-delete]")
    delete.click()
    expect(delete).to_have_text("Delete for good?")
    assert comment not in comments_of(site.fake).deleted  # one click asks, it does not delete
    delete.click()
    expect(theirs).to_contain_text("This comment was deleted.")
    expect(incoming.locator("[data-ib=comment-tools]")).to_have_count(0)
    assert comment in comments_of(site.fake).deleted
    other.close()
