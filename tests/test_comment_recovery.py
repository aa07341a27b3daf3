"""Comments when something goes wrong or is connected the other way, end to end against the
fake platform: an Instagram account connected through its Facebook Page moderates through the
Graph API with the Page token; a private reply the platform refused leaves the comment its one
private reply; a rule's reserved private reply lost before it was published is published when
the comment comes again. On SQLite with the in-process bus, and on Postgres with Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from schemas.message import ChannelKind, message_id_for
from tests.fakecomments import comments_of
from tests.fakeonboarding import FakeOnboarding, FakePage
from tests.fakeplatform import Account, running_fake
from tests.helpers import backends, prepare
from tests.test_comments import (
    APP_SECRET,
    Env,
    add_rule,
    deliver,
    env,
    history,
    instagram_comment,
    notes,
    wait,
)

__all__ = ["env"]  # the fixture of tests/test_comments.py, used here too

REFUSED = {  # Meta's refusal of a private reply (Messenger Platform error codes, #10)
    "error": {
        "message": "(#10) This message is sent outside of allowed window.",
        "type": "OAuthException",
        "code": 10,
    }
}


@pytest.fixture(params=["sqlite", "postgres"])
def via_page(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    """An Instagram account connected through its Facebook Page: its channel holds the Page's
    token and names the Page (`page_id`), as Facebook Login for Business connects it."""
    settings = backends(request, settings)
    number = uuid.uuid4().int % 10**8
    page = Account(ChannelKind.MESSENGER, f"1090{number:08d}", "EAAfake-" + uuid.uuid4().hex)
    instagram = Account(ChannelKind.INSTAGRAM, f"178414{number:08d}", page.token)
    with running_fake((page,)) as fake:
        FakeOnboarding.of(fake).pages = [
            FakePage(page.account_id, "Kahve Page", page.token, instagram.account_id, "kahve.pg")
        ]
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret=APP_SECRET,
            public_url="https://hub.example",
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(
            create_app(settings, run_worker=True), base_url="https://hub.example"
        ) as client:
            made = client.post(
                "/api/channels",
                json={
                    "kind": "instagram",
                    "name": "IG",
                    "account_id": instagram.account_id,
                    "page_id": page.account_id,
                    "access_token": page.token,
                },
                headers={"authorization": f"Bearer {tenant.api_token}"},
            )
            assert made.status_code == 201, made.text
            channels = {"instagram": made.json()["id"]}
            yield Env(client, fake, tenant, settings, channels, instagram, page)


def test_an_instagram_account_connected_through_its_page_moderates_with_the_page_token(
    via_page: Env,
) -> None:
    env = via_page
    comment = "17900000000000142"
    deliver(env, instagram_comment(env, comment, "Kötü ürün!!!"))
    conversation_id = env.conversation_of("instagram", comment)
    [stored] = wait(lambda: history(env, conversation_id))
    one = f"/api/conversations/{conversation_id}/messages/{stored['id']}"

    hidden = env.client.post(f"{one}/hide", headers=env.auth)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["hidden"] is True
    shown = env.client.post(f"{one}/unhide", headers=env.auth)
    assert shown.status_code == 200 and shown.json()["hidden"] is False
    gone = env.client.delete(one, headers=env.auth)
    assert gone.status_code == 200 and gone.json()["deleted"] is True

    fake = comments_of(env.fake)
    assert fake.hidden == {comment: False} and fake.deleted == {comment}
    calls = [
        (r.method, r.path.split("/")[1], r.query, r.body, r.headers["authorization"])
        for r in env.fake.requests
        if comment in r.path
    ]
    bearer = f"Bearer {env.page.token}"
    assert calls == [
        ("POST", "graph", "hide=true", None, bearer),
        ("POST", "graph", "hide=false", None, bearer),
        ("DELETE", "graph", "", None, bearer),
    ]
    assert [r for r, _ in env.fake.rejected if comment in r.path] == []
    listed = env.client.get("/api/channels", headers=env.auth).json()["items"]
    [channel] = [c for c in listed if c["id"] == env.channels["instagram"]]
    assert channel["status"] == "connected"  # the token was never sent where it is refused


def _private_reply(env: Env, conversation_id: str, client_id: str) -> dict[str, Any]:
    """An agent's private reply, once the send group has settled it."""
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": client_id, "text": f"DM {client_id}", "private_reply": True},
        headers=env.auth,
    )
    assert answer.status_code in (200, 201, 202), answer.text
    message_id = answer.json()["message_id"]
    [settled] = wait(
        lambda: [
            m
            for m in history(env, conversation_id)
            if m["id"] == message_id and m["status"] != "pending"
        ]
    )
    return dict(settled)


def test_a_private_reply_the_platform_refused_leaves_the_comment_its_private_reply(
    env: Env,
) -> None:
    comment = "17900000000000201"
    deliver(env, instagram_comment(env, comment, "Fiyat?"))
    conversation_id = env.conversation_of("instagram", comment)
    wait(lambda: history(env, conversation_id))

    env.fake.fail_next("/messages", 400, REFUSED)
    refused = _private_reply(env, conversation_id, "first")
    assert refused["status"] == "failed" and "allowed window" in refused["error"]["message"]

    # Meta received nothing: the comment still has its one private reply to give.
    sent = _private_reply(env, conversation_id, "second")
    assert sent["status"] == "sent", sent
    assert comments_of(env.fake).private_replies == [comment, comment]  # refused, then sent

    # Once it went out, it is the comment's one private reply.
    again = _private_reply(env, conversation_id, "third")
    assert again["status"] == "failed" and again["error"]["code"] == "already_replied"
    assert comments_of(env.fake).private_replies == [comment, comment]


def test_a_rules_reserved_private_reply_is_published_when_the_comment_comes_again(
    env: Env,
) -> None:
    """A worker that reserved the rule's private reply and died before publishing it: the
    reservation names the rule's message, and the comment's next delivery publishes it."""
    from hub.comments.replies import CommentReplies

    rule = add_rule(
        env,
        name="Fiyat",
        trigger="comment.created",
        conditions=[{"field": "text", "op": "contains", "values": ["fiyat"]}],
        actions=[{"type": "private_reply", "text": "Fiyatı DM ile gönderdik."}],
    )
    comment = "17900000000000301"
    conversation_id = env.conversation_of("instagram", comment)
    channel = uuid.UUID(env.channels["instagram"])
    mine = message_id_for(channel, f"s:{conversation_id}:private:{rule['id']}:{comment}")
    services = env.client.app.state.services  # type: ignore[attr-defined]
    portal = env.client.portal
    assert portal is not None
    replies = CommentReplies(services.store.sessions)
    assert portal.call(replies.reserve, env.tenant.workspace_id, channel, comment, mine)

    deliver(env, instagram_comment(env, comment, "Fiyat ne?"))
    [private] = wait(lambda: [m for m in history(env, conversation_id) if m["private_reply"]])
    assert private["id"] == str(mine)
    wait(lambda: comments_of(env.fake).private_replies == [comment])
    wait(
        lambda: [
            m
            for m in history(env, conversation_id)
            if m["id"] == str(mine) and m["status"] == "sent"
        ]
    )


def test_a_rules_failed_private_reply_is_not_sent_again_and_frees_the_comment(env: Env) -> None:
    """The rule's private reply was refused; the comment comes again past the inbound
    de-duplication: the rule sends nothing a second time and says so, and an agent can still
    make the comment's one private reply."""
    import json

    add_rule(
        env,
        name="Fiyat",
        trigger="comment.created",
        conditions=[{"field": "text", "op": "contains", "values": ["fiyat"]}],
        actions=[{"type": "private_reply", "text": "Fiyatı DM ile gönderdik."}],
    )
    comment = "17900000000000401"
    conversation_id = env.conversation_of("instagram", comment)
    env.fake.fail_next("/messages", 400, REFUSED)
    deliver(env, instagram_comment(env, comment, "Fiyat ne?"))
    [failed] = wait(
        lambda: [
            m
            for m in history(env, conversation_id)
            if m["private_reply"] and m["status"] == "failed"
        ]
    )

    services = env.client.app.state.services  # type: ignore[attr-defined]
    workspace = str(env.tenant.workspace_id)
    events = env.client.portal.call(services.bus.read, workspace, "0-0", 1000)  # type: ignore[union-attr]
    [created] = [
        e
        for e in events
        if e.name == "message.created"
        and json.loads(e.data)["message"]["platform_message_id"] == comment
    ]
    env.client.portal.call(  # type: ignore[union-attr]
        lambda: services.bus.publish(
            workspace, created.name, created.data, conversation_id=conversation_id
        )
    )
    wait(
        lambda: any("earlier one to this comment failed" in n for n in notes(env, conversation_id))
    )
    assert comments_of(env.fake).private_replies == [comment]  # the refused one only

    sent = _private_reply(env, conversation_id, "agent")
    assert sent["status"] == "sent", sent
    assert comments_of(env.fake).private_replies == [comment, comment]
    assert [m["id"] for m in history(env, conversation_id) if m["private_reply"]] == [
        failed["id"],
        sent["id"],
    ]
