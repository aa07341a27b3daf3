"""Comments in a real Chromium against a real `hub demo` whose Page talks to the fake platform:
the inbox's Hide button hides a comment on the platform and in every open inbox at once, a
reload still shows it hidden, Show brings it back, and Delete (asked twice) deletes it; the
console makes a comment rule with a private and a public reply."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.fakecomments import comments_of
from tests.fakeplatform import MESSENGER
from tests.payloads import load
from tests.test_admin_browser import Console, console, open_console
from tests.test_inbox_browser import Site, agent, agent_page, conversation_row, site

pytestmark = pytest.mark.browser
__all__ = ["agent", "console", "site"]  # the inbox's and console's fixtures, used by name


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


def test_a_comment_rule_is_made_in_the_console(console: Console, contexts: Any) -> None:
    """The Automation tab offers the comment trigger, the post condition and the private and
    public replies, only together: an auto-reply is not offered for comments, nor a private
    reply for other triggers."""
    from playwright.sync_api import expect

    page = open_console(console, contexts)
    page.locator("[data-ib=tab-automation]").click()
    page.locator("[data-ib=new-rule]").click()
    form = page.locator("[data-ib=rule-form]")
    page.locator("[data-ib=rule-name]").fill("Fiyat soranlara DM")
    page.locator("[data-ib=rule-trigger]").select_option("message.received")
    action = form.locator("[data-ib=action]").nth(0)
    assert action.locator("[data-ib=action-type] option[value=private_reply]").is_disabled()
    page.locator("[data-ib=rule-trigger]").select_option("comment.created")
    assert action.locator("[data-ib=action-type] option[value=send_reply]").is_disabled()
    page.locator("[data-ib=add-condition]").click()
    text = form.locator("[data-ib=condition]").nth(0)
    text.locator("[data-ib=condition-values]").fill("fiyat, price")
    page.locator("[data-ib=add-condition]").click()
    post = form.locator("[data-ib=condition]").nth(1)
    post.locator("[data-ib=condition-field]").select_option("post")
    post.locator("[data-ib=condition-values]").fill("17895695668004550")
    action.locator("[data-ib=action-type]").select_option("private_reply")
    action.locator("[data-ib=action-value]").fill("Merhaba, fiyatı DM ile gönderdik.")
    expect(action).to_contain_text("once per comment")
    page.locator("[data-ib=add-action]").click()
    second = form.locator("[data-ib=action]").nth(1)
    second.locator("[data-ib=action-type]").select_option("public_reply")
    second.locator("[data-ib=action-value]").fill("DM'den yazdık!")
    page.locator("[data-ib=save-rule]").click()
    expect(form).to_be_hidden()
    row = page.locator("[data-ib=rule]").filter(has_text="Fiyat soranlara DM")
    expect(row.locator("[data-ib=rule-when]")).to_contain_text("comments on an Instagram")
    [saved] = [
        r
        for r in console.admin.get("/api/automation-rules").json()["items"]
        if r["name"] == "Fiyat soranlara DM"
    ]
    assert saved["trigger"] == "comment.created"
    assert saved["conditions"] == [
        {"field": "text", "op": "contains", "values": ["fiyat", "price"]},
        {"field": "post", "op": "in", "values": ["17895695668004550"]},
    ]
    assert saved["actions"] == [
        {"type": "private_reply", "text": "Merhaba, fiyatı DM ile gönderdik."},
        {"type": "public_reply", "text": "DM'den yazdık!"},
    ]
    assert console.errors == []  # no script error in the console page
