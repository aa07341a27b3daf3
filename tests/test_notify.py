"""Notifications against a real `hub demo` on loopback: preferences, the VAPID key, push
subscriptions (their endpoint checked), Web Push on assignment and @mention to a push service
on loopback that verifies the VAPID JWT and decrypts what it gets, a 410 that removes a
subscription, the "Mentions" filter, and a removed member's subscriptions and preferences
going with them."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.browserkit import api_client, wait_until
from tests.helpers import STRONG_PASSWORD
from tests.mailbox import join
from tests.pushservice import Browser, PushService, decrypted, running_push_service, verified
from tests.servers import HubProcess, demo, demo_seed


@dataclass
class Site:
    proc: HubProcess
    seed: dict[str, str]
    admin: httpx.Client
    data_dir: Path

    @property
    def base(self) -> str:
        return self.proc.base_url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("notify-hub")
    proc = demo(tmp).start()
    try:
        seed = demo_seed(tmp)
        admin = api_client(proc.base_url, seed["email"], seed["password"])
        yield Site(proc, seed, admin, tmp / "demo-data")
        admin.close()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def push() -> Iterator[PushService]:
    with running_push_service() as service:
        yield service


def new_agent(site: Site, name: str) -> tuple[str, httpx.Client]:
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    user_id = join(site.admin, {}, address, name, STRONG_PASSWORD, data_dir=site.data_dir)
    return user_id, api_client(site.base, address, STRONG_PASSWORD)


def visitor_says(site: Site, text: str) -> str:
    """A web-chat visitor writes, as the widget does; answers the conversation's id."""
    origin = site.base
    token = httpx.post(
        site.base + "/api/widget/token",
        json={"channel": site.seed["public_key"]},
        headers={"origin": origin},
    ).json()["token"]
    with connect(site.proc.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": "c1", "text": text}))
        while (frame := json.loads(ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert frame["type"] == "ack", frame
    found = wait_until(
        lambda: [
            c["id"]
            for c in site.admin.get("/api/conversations").json()["items"]
            if c["last_message_preview"] == text
        ],
        what="the visitor's conversation",
    )
    conversation_id: str = found[0]
    return conversation_id


def rows(site: Site, table: str) -> int:
    with sqlite3.connect(site.data_dir / "hub.db") as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return count


def kept(site: Site, endpoint: str) -> int:
    """How many push subscriptions of this endpoint the hub keeps."""
    with sqlite3.connect(site.data_dir / "hub.db") as db:
        count: int = db.execute(
            "SELECT count(*) FROM push_subscriptions WHERE endpoint = ?", (endpoint,)
        ).fetchone()[0]
        return count


def test_preferences_are_kept_per_agent(site: Site) -> None:
    _, agent = new_agent(site, "Pref Agent")
    defaults = agent.get("/api/me/notifications")
    assert defaults.status_code == 200
    assert all(defaults.json().values()) and "sound_new_conversation" in defaults.json()
    changed = agent.put(
        "/api/me/notifications", json={"sound_own_messages": False, "push_team": False}
    )
    assert changed.status_code == 200, changed.text
    again = agent.get("/api/me/notifications").json()
    assert again["sound_own_messages"] is False and again["push_team"] is False
    assert again["sound_new_conversation"] is True
    assert site.admin.get("/api/me/notifications").json()["push_team"] is True  # theirs only
    wrong = agent.put("/api/me/notifications", json={"sound": "loud"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "bad_request"
    assert httpx.get(site.base + "/api/me/notifications").status_code == 401


def test_subscription_endpoints_are_checked(site: Site) -> None:
    keys = Browser().keys()
    for endpoint in (
        "http://push.example.com/send/1",  # plain http, not loopback
        "https://10.1.2.3/send/1",  # a private address
        "https://[::ffff:192.168.0.1]/x",
        "ftp://push.example.com/x",
        "https://user@push.example.com/x",
    ):
        answer = site.admin.post(
            "/api/me/push-subscriptions", json={"endpoint": endpoint, "keys": keys}
        )
        assert answer.status_code == 400, (endpoint, answer.text)
        assert answer.json()["error"]["code"] == "invalid_push_endpoint"
    short = site.admin.post(
        "/api/me/push-subscriptions",
        json={"endpoint": "https://push.example.com/x", "keys": {"p256dh": "AA", "auth": "B"}},
    )
    assert short.status_code == 400
    gone = site.admin.request(
        "DELETE", "/api/me/push-subscriptions", json={"endpoint": "https://push.example.com/n"}
    )
    assert gone.status_code == 404


def test_web_push_on_assignment_and_mention_verified_and_decrypted(
    site: Site, push: PushService
) -> None:
    key = site.admin.get("/api/push/key")
    assert key.status_code == 200
    public_key = key.json()["public_key"]
    assert len(public_key) == 87  # 65 bytes, base64url
    assert site.admin.get("/api/push/key").json()["public_key"] == public_key  # made once

    agent_id, agent = new_agent(site, "Deniz Push")
    browser, stale = Browser(), Browser()
    for path, who in (("/push/deniz", browser), ("/push/stale", stale)):
        made = agent.post(
            "/api/me/push-subscriptions",
            json={"endpoint": push.base + path, "keys": who.keys(), "expirationTime": None},
        )
        assert made.status_code == 201, made.text
    push.statuses["/push/stale"] = 410  # the browser dropped it: the hub must forget it

    conversation_id = visitor_says(site, "Merhaba, siparişim nerede? " + "x" * 100)
    assigned = site.admin.patch(
        f"/api/conversations/{conversation_id}", json={"assignee_id": agent_id}
    )
    assert assigned.status_code == 202, assigned.text
    first = wait_until(lambda: push.at("/push/deniz"), what="the assignment's push")[0]
    claims = verified(first, public_key, push.base)
    assert claims["aud"] == push.base
    notice = decrypted(first, browser)
    assert notice["kind"] == "assigned" and notice["conversation_id"] == conversation_id
    assert notice["preview"].startswith("Merhaba, siparişim nerede?")
    assert len(notice["preview"]) <= 80  # a short preview, never the whole message
    assert int(first.headers["ttl"]) > 0
    # The 410 removed the stale subscription: it is no longer there to delete.
    wait_until(lambda: push.at("/push/stale"), what="the stale endpoint's request")
    gone = wait_until(
        lambda: (
            agent.request(
                "DELETE", "/api/me/push-subscriptions", json={"endpoint": push.base + "/push/stale"}
            ).status_code
            == 404
        ),
        what="the 410'd subscription to go",
    )
    assert gone

    # A note mentions the agent (and an id that is no member: ignored).
    note = site.admin.post(
        f"/api/conversations/{conversation_id}/messages",
        json={
            "client_id": "n1",
            "text": "@Deniz Push can you look at this order?",
            "note": True,
            "mentions": [agent_id, str(uuid.uuid4())],
        },
    )
    assert note.status_code == 202, note.text
    mentioned = wait_until(lambda: push.at("/push/deniz")[1:], what="the mention's push")[0]
    verified(mentioned, public_key, push.base)
    told = decrypted(mentioned, browser)
    assert told == {
        "kind": "mention",
        "conversation_id": conversation_id,
        "preview": "@Deniz Push can you look at this order?",
    }
    # The Mentions filter: the agent's, not the writer's.
    mine = agent.get("/api/conversations?mentions=me").json()["items"]
    assert [c["id"] for c in mine] == [conversation_id]
    assert site.admin.get("/api/conversations?mentions=me").json()["items"] == []
    bad = agent.get("/api/conversations?mentions=you")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"

    # Preferences are obeyed: no push for mentions; the assignment after it still comes.
    prefs = agent.put("/api/me/notifications", json={"push_mentions": False})
    assert prefs.status_code == 200
    site.admin.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "n2", "text": "@Deniz Push again", "note": True, "mentions": [agent_id]},
    )
    site.admin.patch(f"/api/conversations/{conversation_id}", json={"assignee_id": None})
    site.admin.patch(f"/api/conversations/{conversation_id}", json={"assignee_id": agent_id})
    third = wait_until(lambda: push.at("/push/deniz")[2:], what="the second assignment's push")
    assert [decrypted(r, browser)["kind"] for r in third] == ["assigned"]

    # A removed member's subscriptions and preferences go with them.
    assert rows(site, "push_subscriptions") >= 1 and rows(site, "notification_prefs") >= 1
    before_prefs = rows(site, "notification_prefs")
    removed = site.admin.delete(f"/api/members/{agent_id}")
    assert removed.status_code == 204, removed.text
    assert rows(site, "push_subscriptions") == 0
    assert rows(site, "notification_prefs") == before_prefs - 1


def test_the_service_worker_is_served_at_the_root(site: Site) -> None:
    answer = httpx.get(site.base + "/sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/javascript")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "showNotification" in answer.text and "notificationclick" in answer.text


def test_a_note_sent_on_the_socket_keeps_its_mentions(site: Site) -> None:
    agent_id, agent = new_agent(site, "Socket Mention")
    conversation_id = visitor_says(site, "A question asked on the socket test")
    token = site.admin.post("/api/agent/socket-token").json()["token"]
    with connect(site.proc.ws_url + "/ws/agent", origin=site.base) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        frame = {
            "type": "message.send",
            "client_id": "s1",
            "conversation_id": conversation_id,
            "text": "@Socket Mention look",
            "note": True,
            "mentions": [agent_id],
        }
        ws.send(json.dumps(frame))
        seen: list[dict[str, object]] = []
        while not any(f.get("name") == "mention.created" for f in seen):
            seen.append(json.loads(ws.recv(5)))
        [event] = [f for f in seen if f.get("name") == "mention.created"]
        assert event["data"] == {
            "conversation_id": conversation_id,
            "message_id": next(f["message_id"] for f in seen if f["type"] == "ack"),
            "user_ids": [agent_id],
            "by": site.seed.get("user_id") or event["data"]["by"],  # type: ignore[index]
            "preview": "@Socket Mention look",
        }
    listed = agent.get("/api/conversations?mentions=me").json()["items"]
    assert [c["id"] for c in listed] == [conversation_id]


def test_a_conversation_in_the_team_queue_is_pushed_to_its_members(
    site: Site, push: PushService
) -> None:
    public_key = site.admin.get("/api/push/key").json()["public_key"]
    member_id, member = new_agent(site, "Team Member")
    outsider_id, outsider = new_agent(site, "Not In Team")
    browsers = {"/push/team-member": Browser(), "/push/outsider": Browser()}
    for (path, browser), client in zip(browsers.items(), (member, outsider), strict=True):
        made = client.post(
            "/api/me/push-subscriptions",
            json={"endpoint": push.base + path, "keys": browser.keys()},
        )
        assert made.status_code == 201, made.text
    team = site.admin.post("/api/teams", json={"name": "Billing", "member_ids": [member_id]})
    assert team.status_code == 201, team.text
    conversation_id = visitor_says(site, "A billing question for the team")
    moved = site.admin.patch(
        f"/api/conversations/{conversation_id}", json={"team_id": team.json()["id"]}
    )
    assert moved.status_code == 202, moved.text
    [request] = wait_until(lambda: push.at("/push/team-member"), what="the team's push")
    verified(request, public_key, push.base)
    notice = decrypted(request, browsers["/push/team-member"])
    assert notice == {
        "kind": "team",
        "conversation_id": conversation_id,
        "preview": "A billing question for the team",
    }
    # The agent outside the team hears of its own assignment only.
    site.admin.patch(f"/api/conversations/{conversation_id}", json={"assignee_id": outsider_id})
    [own] = wait_until(lambda: push.at("/push/outsider"), what="the outsider's assignment push")
    assert decrypted(own, browsers["/push/outsider"])["kind"] == "assigned"


def test_erasing_the_person_takes_the_mentions_in_their_conversations(site: Site) -> None:
    agent_id, agent = new_agent(site, "Erased Mention")
    conversation_id = visitor_says(site, "Please forget me after this")

    def kept() -> int:
        with sqlite3.connect(site.data_dir / "hub.db") as db:
            found: int = db.execute(
                "SELECT count(*) FROM mentions WHERE conversation_id IN (?, ?)",
                (conversation_id, conversation_id.replace("-", "")),
            ).fetchone()[0]
            return found

    note = site.admin.post(
        f"/api/conversations/{conversation_id}/messages",
        json={
            "client_id": "e1",
            "text": "@Erased Mention see",
            "note": True,
            "mentions": [agent_id],
        },
    )
    assert note.status_code == 202, note.text
    wait_until(lambda: kept() == 1, what="the mention stored")
    contact_id = site.admin.get(f"/api/conversations/{conversation_id}").json()["contact_id"]
    filed = site.admin.post("/api/deletions", json={"contact_id": contact_id})
    assert filed.status_code == 202, filed.text
    one = f"/api/deletions/{filed.json()['id']}"
    wait_until(lambda: site.admin.get(one).json()["status"] == "done", timeout_s=15, what="erased")
    assert kept() == 0
    assert agent.get("/api/conversations?mentions=me").json()["items"] == []


def test_a_key_that_is_no_p256_point_is_refused(site: Site) -> None:
    keys = Browser().keys()
    # 65 bytes that look like an uncompressed point (0x04 ...) but lie on no curve.
    not_a_point = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
    short_auth = base64.urlsafe_b64encode(b"a" * 20).rstrip(b"=").decode()  # not 16 bytes
    for bad in ({**keys, "p256dh": not_a_point}, {**keys, "auth": short_auth}):
        answer = site.admin.post(
            "/api/me/push-subscriptions",
            json={"endpoint": "https://push.example.com/k", "keys": bad},
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_push_keys"


def test_a_bad_subscription_row_does_not_stop_the_others(site: Site, push: PushService) -> None:
    agent_id, agent = new_agent(site, "Bad Row Agent")
    browser = Browser()
    made = agent.post(
        "/api/me/push-subscriptions",
        json={"endpoint": push.base + "/push/good-after-bad", "keys": browser.keys()},
    )
    assert made.status_code == 201, made.text
    not_a_point = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
    with sqlite3.connect(site.data_dir / "hub.db") as db:  # as a row kept before the check
        workspace_id, created_at = db.execute(
            "SELECT workspace_id, created_at FROM push_subscriptions WHERE endpoint = ?",
            (push.base + "/push/good-after-bad",),
        ).fetchone()
        db.execute(
            "INSERT INTO push_subscriptions (id, workspace_id, user_id, endpoint, p256dh, auth,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                uuid.uuid4().hex,
                workspace_id,
                uuid.UUID(agent_id).hex,
                push.base + "/push/bad-row",
                not_a_point,
                browser.keys()["auth"],
                created_at,
            ),
        )
    conversation_id = visitor_says(site, "A question while a bad row is kept")
    site.admin.patch(f"/api/conversations/{conversation_id}", json={"assignee_id": agent_id})
    [got] = wait_until(lambda: push.at("/push/good-after-bad"), what="the good browser's push")
    assert decrypted(got, browser)["conversation_id"] == conversation_id
    assert push.at("/push/bad-row") == []
    wait_until(
        lambda: kept(site, push.base + "/push/bad-row") == 0,
        what="the sender to delete the row its keys cannot encrypt for",
    )
    time.sleep(1.5)  # a failed batch would be retried (0.2 s, 0.4 s, ...) and pushed again
    assert len(push.at("/push/good-after-bad")) == 1  # the batch was not sent again


def test_logging_out_forgets_the_browsers_subscription(site: Site) -> None:
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    join(site.admin, {}, address, "Shared Browser", STRONG_PASSWORD, data_dir=site.data_dir)
    agent = api_client(site.base, address, STRONG_PASSWORD)
    endpoint = "https://push.example.com/shared/" + uuid.uuid4().hex
    made = agent.post(
        "/api/me/push-subscriptions", json={"endpoint": endpoint, "keys": Browser().keys()}
    )
    assert made.status_code == 201, made.text
    out = agent.post("/api/auth/logout", json={"push_endpoint": endpoint})
    assert out.status_code == 204, out.text
    assert kept(site, endpoint) == 0
    plain = api_client(site.base, address, STRONG_PASSWORD)
    assert plain.post("/api/auth/logout").status_code == 204  # no body: still fine


def test_counts_under_the_mentions_filter(site: Site) -> None:
    agent_id, agent = new_agent(site, "Counted Mention")
    conversation_id = visitor_says(site, "A question to count under mentions")
    note = site.admin.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "m1", "text": "@Counted Mention", "note": True, "mentions": [agent_id]},
    )
    assert note.status_code == 202, note.text
    counts = wait_until(
        lambda: (
            c
            if (c := agent.get("/api/conversations/counts?mentions=me").json())["status"]["open"]
            else None
        ),
        what="the mention to be counted",
    )
    assert counts["status"] == {"open": 1, "pending": 0, "snoozed": 0, "resolved": 0}
    assert site.admin.get("/api/conversations/counts?mentions=me").json()["status"]["open"] == 0
    bad = agent.get("/api/conversations/counts?mentions=you")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
