"""Comments as sellers use them, end to end against the fake platform (tests/fakecomments.py):
automation rules answer a new Instagram or Facebook comment with a private reply (once per
comment, within 7 days of it) and a public one; agents hide, show and delete comments through
REST, and every open inbox sees it; the Page's own hide webhook changes the same state. On
SQLite with the in-process bus, and on Postgres with Redis."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from schemas.message import ChannelKind, conversation_id_for
from tests.fakecomments import comments_of
from tests.fakeplatform import Account, FakePlatform, running_fake
from tests.helpers import STRONG_PASSWORD, Tenant, backends, prepare
from tests.mailbox import join
from tests.payloads import load
from tests.test_api import hello, next_event

APP_SECRET = "hosted-secret-for-comment-tests"
RULES = "/api/automation-rules"
MEDIA = "17895695668004550"  # the Instagram post the rules are about
OTHER_MEDIA = "17895695668009999"
POST = "137542570280222_139560936744456"  # the Page post of messenger/page_feed_* fixtures


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant
    settings: Settings
    channels: dict[str, str]  # kind -> channel id
    instagram: Account
    page: Account

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    def conversation_of(self, kind: str, comment_id: str) -> str:
        return str(
            conversation_id_for(
                self.tenant.workspace_id, uuid.UUID(self.channels[kind]), f"comment:{comment_id}"
            )
        )


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    # Accounts of this test's own: Postgres is shared by the tests, and an account is
    # connected to one channel at a time.
    number = uuid.uuid4().int % 10**8
    instagram = Account(
        ChannelKind.INSTAGRAM, f"178414{number:08d}", "IGAAfake-" + uuid.uuid4().hex
    )
    page = Account(ChannelKind.MESSENGER, f"1020{number:08d}", "EAAfake-" + uuid.uuid4().hex)
    with running_fake((instagram, page)) as fake:
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret=APP_SECRET,
            public_url="https://hub.example",
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            telegram_api_url=urls.telegram,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(
            create_app(settings, run_worker=True), base_url="https://hub.example"
        ) as client:
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            channels = {}
            for account in (instagram, page):
                made = client.post(
                    "/api/channels",
                    json={
                        "kind": account.kind.value,
                        "name": account.kind.value,
                        "account_id": account.account_id,
                        "access_token": account.token,
                    },
                    headers=auth,
                )
                assert made.status_code == 201, made.text
                channels[account.kind.value] = made.json()["id"]
            yield Env(client, fake, tenant, settings, channels, instagram, page)


def deliver(env: Env, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    digest = hmac.new(APP_SECRET.encode(), data, hashlib.sha256).hexdigest()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200, answer.text


def instagram_comment(
    env: Env,
    comment_id: str,
    text: str,
    media_id: str = MEDIA,
    *,
    age: timedelta = timedelta(seconds=5),
    field: str = "comments",
) -> dict[str, Any]:
    """Meta's `comments` sample (the dashboard's test event), on our account, as a top-level
    comment written `age` ago."""
    body = load("instagram/comment_dashboard_test_sample_changes.json")
    entry = body["entry"][0]
    entry["id"] = env.instagram.account_id
    entry["time"] = int((datetime.now(UTC) - age).timestamp())
    change = entry["changes"][0]
    change["field"] = field
    value = change["value"]
    del value["parent_id"]
    value.update(id=comment_id, text=text)
    value["from"]["id"] = "17841405309211844"
    value["media"]["id"] = media_id
    return dict(body)


def page_comment(
    env: Env,
    comment_id: str,
    text: str,
    *,
    age: timedelta = timedelta(seconds=5),
    verb: str = "add",
) -> dict[str, Any]:
    """A Page `feed` comment (bottender's recorded shape), top-level on POST."""
    body = load("messenger/page_feed_comment_batched_two_entries.json")
    body["entry"] = body["entry"][:1]
    entry = body["entry"][0]
    entry["id"] = env.page.account_id
    value = entry["changes"][0]["value"]
    value.update(
        comment_id=comment_id,
        parent_id=POST,
        message=text,
        verb=verb,
        created_time=int((datetime.now(UTC) - age).timestamp()),
    )
    return dict(body)


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def history(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    answer = env.client.get(f"/api/conversations/{conversation_id}/messages", headers=env.auth)
    return list(answer.json()["items"]) if answer.status_code == 200 else []


def notes(env: Env, conversation_id: str) -> list[str]:
    return [m["text"] for m in history(env, conversation_id) if m["note"]]


def add_rule(env: Env, **rule: Any) -> dict[str, Any]:
    answer = env.client.post(RULES, json={"name": "Rule", **rule}, headers=env.auth)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def public_replies(env: Env, comment_id: str) -> list[Any]:
    return [r.body for r in env.fake.requests if r.path.endswith(f"/{comment_id}/replies")]


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


# Rules


def test_comment_rules_are_checked_when_saved(env: Env) -> None:
    def refused(**rule: Any) -> str:
        answer = env.client.post(RULES, json={"name": "R", **rule}, headers=env.auth)
        assert answer.status_code == 400, answer.text
        return error_code(answer)

    private = {"type": "private_reply", "text": "Fiyatı DM ile gönderdik."}
    assert refused(trigger="message.received", actions=[private]) == "invalid_rule"
    assert (
        refused(
            trigger="message.received",
            conditions=[{"field": "post", "op": "in", "values": [MEDIA]}],
            actions=[{"type": "add_label", "label": "x"}],
        )
        == "invalid_rule"
    )
    assert (
        refused(trigger="comment.created", actions=[{"type": "send_reply", "text": "hi"}])
        == "invalid_rule"
    )
    assert refused(trigger="comment.created", actions=[private, private]) == "invalid_rule"
    assert (
        refused(trigger="comment.created", actions=[{"type": "private_reply", "text": ""}])
        == "bad_request"
    )
    assert (
        refused(trigger="comment.created", actions=[{"type": "private_reply", "text": "x" * 1001}])
        == "bad_request"
    )
    assert (
        refused(trigger="comment.created", actions=[{"type": "public_reply", "text": "{{nope}}"}])
        == "unknown_placeholder"
    )
    assert (
        refused(
            trigger="comment.created",
            conditions=[{"field": "post", "op": "contains", "values": [MEDIA]}],
            actions=[private],
        )
        == "bad_request"
    )
    made = add_rule(
        env,
        trigger="comment.created",
        conditions=[
            {"field": "text", "op": "contains", "values": ["fiyat", "price"]},
            {"field": "post", "op": "in", "values": [f" {MEDIA} "]},
        ],
        actions=[private, {"type": "public_reply", "text": "DM'den yazdık!"}],
    )
    assert made["trigger"] == "comment.created" and made["conditions"][1]["values"] == [MEDIA]
    tried = env.client.post(
        f"{RULES}/try",
        json={
            "rule": {k: made[k] for k in ("name", "trigger", "conditions", "actions")},
            "sample": {"text": "FİYATI NE KADAR?", "post_id": MEDIA},
        },
        headers=env.auth,
    )
    assert tried.status_code == 200, tried.text
    assert tried.json()["matched"] is True
    assert tried.json()["reply"] == "Fiyatı DM ile gönderdik."
    elsewhere = env.client.post(
        f"{RULES}/try",
        json={
            "rule": {k: made[k] for k in ("name", "trigger", "conditions", "actions")},
            "sample": {"text": "fıyat?", "post_id": OTHER_MEDIA},
        },
        headers=env.auth,
    )
    assert [c["holds"] for c in elsewhere.json()["conditions"]] == [True, False]


def test_a_comment_gets_one_private_reply_and_one_public_reply_however_often_it_comes(
    env: Env,
) -> None:
    conditions = [
        {"field": "text", "op": "contains", "values": ["fiyat", "price"]},
        {"field": "post", "op": "in", "values": [MEDIA]},
    ]
    first = add_rule(
        env,
        name="Fiyat",
        trigger="comment.created",
        conditions=conditions,
        actions=[
            {"type": "private_reply", "text": "Merhaba {{contact.first_name | there}}, DM attık."},
            {"type": "public_reply", "text": "DM'den yazdık!"},
            {"type": "add_label", "label": "lead"},
        ],
    )
    add_rule(
        env,
        name="Second",
        trigger="comment.created",
        conditions=conditions,
        actions=[{"type": "private_reply", "text": "A second private reply"}],
    )
    comments = comments_of(env.fake)
    deliver(env, instagram_comment(env, "17900000000000001", "FİYATI ne kadar?"))
    deliver(env, instagram_comment(env, "17900000000000001", "FİYATI ne kadar?"))  # redelivered
    deliver(env, instagram_comment(env, "17900000000000002", "Çok güzel olmuş"))  # no keyword
    deliver(env, instagram_comment(env, "17900000000000003", "price?", OTHER_MEDIA))  # other post
    deliver(env, instagram_comment(env, "17900000000000004", "Fıyat?", field="live_comments"))
    conversation_id = env.conversation_of("instagram", "17900000000000001")
    wait(lambda: len(comments.private_replies) >= 2 and len(notes(env, conversation_id)) >= 2)
    wait(lambda: public_replies(env, "17900000000000001"))

    # A redelivery past the inbound de-duplication: the comment's event on the stream again.
    services = env.client.app.state.services  # type: ignore[attr-defined]
    workspace = str(env.tenant.workspace_id)
    events = env.client.portal.call(services.bus.read, workspace, "0-0", 1000)  # type: ignore[union-attr]
    [created] = [
        e
        for e in events
        if e.name == "message.created"
        and json.loads(e.data)["message"]["platform_message_id"] == "17900000000000001"
    ]
    env.client.portal.call(  # type: ignore[union-attr]
        lambda: services.bus.publish(
            workspace, created.name, created.data, conversation_id=conversation_id
        )
    )
    wait(lambda: len(notes(env, conversation_id)) >= 3)
    time.sleep(0.5)  # what a second send would take

    assert sorted(comments.private_replies) == ["17900000000000001", "17900000000000004"]
    [dm] = [
        r.body
        for r in env.fake.requests
        if isinstance(r.body, dict)
        and r.body.get("recipient") == {"comment_id": "17900000000000001"}
    ]
    assert dm["message"] == {"text": "Merhaba test, DM attık."}
    assert public_replies(env, "17900000000000001") == [{"message": "DM'den yazdık!"}]
    assert not public_replies(env, "17900000000000002")
    assert not public_replies(env, "17900000000000003")
    # A live video's comment is answered privately only: Instagram takes no public reply there.
    assert not public_replies(env, "17900000000000004")
    live = notes(env, env.conversation_of("instagram", "17900000000000004"))
    assert any("sent a private reply" in n and "no public reply" in n for n in live), live
    said = notes(env, conversation_id)
    assert any(n.startswith("Rule “Fiyat”: sent a private reply, replied in public") for n in said)
    assert any(
        n.startswith("Rule “Second”:") and "already had its one private reply" in n for n in said
    )
    messages = history(env, conversation_id)
    [private] = [m for m in messages if m["private_reply"]]
    assert private["status"] == "sent" and private["reply_to"] == "17900000000000001"
    conversation = env.client.get(f"/api/conversations/{conversation_id}", headers=env.auth)
    assert conversation.json()["labels"] == ["lead"]
    assert first["id"]

    # An agent's private reply to the same comment is refused in words, before any call.
    before = len(comments.private_replies)
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "again", "text": "One more?", "private_reply": True},
        headers=env.auth,
    )
    refused = wait(
        lambda: [
            m
            for m in history(env, conversation_id)
            if m["id"] == answer.json()["message_id"] and m["status"] == "failed"
        ]
    )
    assert refused[0]["error"]["code"] == "already_replied"
    assert "one per comment" in refused[0]["error"]["message"]
    assert len(comments.private_replies) == before


def test_no_private_reply_past_7_days_of_the_comment(env: Env) -> None:
    add_rule(
        env,
        name="Late",
        trigger="comment.created",
        conditions=[{"field": "text", "op": "contains", "values": ["stok"]}],
        actions=[
            {"type": "private_reply", "text": "Stokta var."},
            {"type": "public_reply", "text": "Evet!"},
        ],
    )
    old = "139560936744456_139620233400001"
    deliver(env, page_comment(env, old, "STOKTA var mı?", age=timedelta(days=7, minutes=1)))
    conversation_id = env.conversation_of("messenger", old)
    [note] = wait(lambda: notes(env, conversation_id))
    assert "no private reply" in note and "within 7 days" in note
    wait(lambda: [r for r in env.fake.requests if r.path.endswith(f"/{old}/comments")])
    assert comments_of(env.fake).private_replies == []  # a public reply has no window

    # An agent's private reply is refused in words too; a public one still goes out.
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "late", "text": "DM?", "private_reply": True},
        headers=env.auth,
    )
    [failed] = wait(
        lambda: [
            m
            for m in history(env, conversation_id)
            if m["id"] == answer.json()["message_id"] and m["status"] == "failed"
        ]
    )
    assert failed["error"]["code"] == "window_closed"
    assert "within 7 days of the comment" in failed["error"]["message"]
    assert comments_of(env.fake).private_replies == []
    shown = env.client.get(f"/api/conversations/{conversation_id}", headers=env.auth).json()
    assert shown["window"]["open"] is True and shown["window"]["closes_at"] is None
    closes = datetime.fromisoformat(shown["window"]["private_reply_closes_at"])
    assert closes < datetime.now(UTC)


# Moderation


def _agent_token(env: Env) -> str:
    """A second agent of the workspace, with an API token of their own."""
    import asyncio

    from hub.accounts.auth import Principal
    from hub.storage.engine import make_engine, sessionmaker
    from hub.storage.store import Store

    email = f"agent-{uuid.uuid4().hex[:8]}@acme.example"
    user_id = join(env.client, env.auth, email, "Deniz", STRONG_PASSWORD)

    async def make() -> str:
        engine = make_engine(env.settings)
        try:
            store = Store(sessionmaker(engine))
            principal = Principal(uuid.UUID(user_id), env.tenant.workspace_id, "agent", "token")
            _, token = await store.create_api_token(principal, "tests")
            return token
        finally:
            await engine.dispose()

    return asyncio.run(make())


@pytest.mark.parametrize("kind", ["instagram", "messenger"])
def test_hide_show_and_delete_reach_the_platform_and_every_inbox(env: Env, kind: str) -> None:
    comment = "17900000000000042" if kind == "instagram" else "139560936744456_139620233400042"
    body = (
        instagram_comment(env, comment, "Kötü ürün!!!")
        if kind == "instagram"
        else page_comment(env, comment, "Kötü ürün!!!")
    )
    deliver(env, body)
    conversation_id = env.conversation_of(kind, comment)
    [stored] = wait(lambda: history(env, conversation_id))
    one = f"/api/conversations/{conversation_id}/messages/{stored['id']}"
    other = _agent_token(env)
    fake = comments_of(env.fake)

    with env.client.websocket_connect("/ws/agent") as watcher:
        hello(watcher, other)
        hidden = env.client.post(f"{one}/hide", headers=env.auth)
        assert hidden.status_code == 200, hidden.text
        assert hidden.json() | {"event_id": ""} == {
            "message_id": stored["id"],
            "hidden": True,
            "deleted": False,
            "event_id": "",
        }
        seen = next_event(watcher, "message.updated")["data"]
        assert seen["message_id"] == stored["id"] and seen["changes"] == {"hidden": True}
        assert seen["conversation_id"] == conversation_id and seen["by"]
        assert fake.hidden == {comment: True}
        wait(lambda: history(env, conversation_id)[0]["hidden"] is True)  # a reload shows it

        shown = env.client.post(f"{one}/unhide", headers=env.auth)
        assert shown.status_code == 200 and shown.json()["hidden"] is False
        assert next_event(watcher, "message.updated")["data"]["changes"] == {"hidden": False}
        assert fake.hidden == {comment: False}
        wait(lambda: history(env, conversation_id)[0]["hidden"] is False)

        gone = env.client.delete(one, headers=env.auth)
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert next_event(watcher, "message.updated")["data"]["changes"] == {"deleted": True}
        assert fake.deleted == {comment}
        after = wait(lambda: (m := history(env, conversation_id)[0])["deleted"] and m)
        assert after["text"] is None

    if kind == "instagram":
        calls = [(r.method, r.query, r.body) for r in env.fake.requests if comment in r.path]
        assert calls == [
            ("POST", "hide=true", None),
            ("POST", "hide=false", None),
            ("DELETE", "", None),
        ]
    else:
        calls = [(r.method, r.query, r.body) for r in env.fake.requests if comment in r.path]
        assert calls == [
            ("POST", "", {"is_hidden": True}),
            ("POST", "", {"is_hidden": False}),
            ("DELETE", "", None),
        ]
    assert env.fake.rejected == []
    again = env.client.post(f"{one}/hide", headers=env.auth)
    assert again.status_code == 409 and error_code(again) == "conflict"
    audit = env.client.get("/api/audit", params={"action": "comment."}, headers=env.auth)
    actions = sorted(r["action"] for r in audit.json()["items"] if r["target_id"] == stored["id"])
    assert actions == ["comment.deleted", "comment.hidden", "comment.unhidden"]
    assert "Kötü" not in json.dumps(audit.json())


def test_moderation_is_refused_in_words(env: Env) -> None:
    comment = "17900000000000077"
    deliver(env, instagram_comment(env, comment, "spam spam"))
    conversation_id = env.conversation_of("instagram", comment)
    [stored] = wait(lambda: history(env, conversation_id))
    one = f"/api/conversations/{conversation_id}/messages/{stored['id']}"
    env.fake.fail_next(
        f"/{comment}",
        400,
        {"error": {"message": "(#10) Permission denied", "type": "OAuthException", "code": 10}},
    )
    refused = env.client.post(f"{one}/hide", headers=env.auth)
    assert refused.status_code == 502 and error_code(refused) == "platform_refused"
    assert "Permission denied" in refused.json()["error"]["message"]
    assert history(env, conversation_id)[0]["hidden"] is False
    # Not a comment, and not in this conversation.
    elsewhere = f"/api/conversations/{uuid.uuid4()}/messages/{stored['id']}/hide"
    assert env.client.post(elsewhere, headers=env.auth).status_code == 404
    env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "n1", "text": "a note", "note": True},
        headers=env.auth,
    )
    note = wait(lambda: [m for m in history(env, conversation_id) if m["note"]])[0]
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages/{note['id']}/hide", headers=env.auth
    )
    assert answer.status_code == 400 and error_code(answer) == "bad_request"


def test_a_comment_hidden_on_the_page_is_hidden_here(env: Env) -> None:
    comment = "139560936744456_139620233400099"
    deliver(env, page_comment(env, comment, "Hello"))
    conversation_id = env.conversation_of("messenger", comment)
    wait(lambda: history(env, conversation_id))
    hide = load("messenger/page_feed_change_comment_hide.json")
    hide["value"]["comment_id"] = comment
    hide["value"]["created_time"] = int(time.time())
    envelope = {
        "object": "page",
        "entry": [{"id": env.page.account_id, "time": int(time.time() * 1000), "changes": [hide]}],
    }
    with env.client.websocket_connect("/ws/agent") as watcher:
        hello(watcher, env.tenant.api_token)
        deliver(env, envelope)
        seen = next_event(watcher, "message.updated")["data"]
        assert seen["changes"] == {"hidden": True} and seen["conversation_id"] == conversation_id
    wait(lambda: history(env, conversation_id)[0]["hidden"] is True)


def test_a_private_reply_is_forgotten_a_day_after_its_comment_could_have_one(env: Env) -> None:
    from hub.comments.replies import CommentReplies, ReplySweeper
    from hub.storage.models import CommentReply

    services = env.client.app.state.services  # type: ignore[attr-defined]
    replies = CommentReplies(services.store.sessions)
    workspace, channel = env.tenant.workspace_id, uuid.UUID(env.channels["instagram"])
    old, new = uuid.uuid4(), uuid.uuid4()
    portal = env.client.portal
    assert portal is not None
    assert portal.call(replies.reserve, workspace, channel, "c-old", old)
    assert portal.call(replies.reserve, workspace, channel, "c-new", new)
    assert not portal.call(replies.reserve, workspace, channel, "c-new", old)  # taken

    async def age() -> None:
        async with services.store.sessions() as s, s.begin():
            row = await s.get(CommentReply, (channel, "c-old"))
            assert row is not None
            row.reserved_at = datetime.now(UTC) - timedelta(days=8, minutes=1)
            s.add(row)

    portal.call(age)
    portal.call(ReplySweeper(services.store.sessions, every_s=3600).round)
    assert portal.call(replies.holder, workspace, channel, "c-old") is None
    assert portal.call(replies.holder, workspace, channel, "c-new") == new
