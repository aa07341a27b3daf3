"""The admin console's API (hub.accounts.routes, hub.channels.routes, hub.routing.routes):
members, the audit log and channel settings, through the app on SQLite and on the real Postgres."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from hub.accounts.members import Actor, LastAdmin, Members
from hub.settings import Settings
from hub.storage.engine import make_engine, migrate_async, sessionmaker
from hub.storage.store import Store
from hub.web.app import create_app
from hub.web.openapi import document
from tests.fakeplatform import TG, Account, FakePlatform, running_fake
from tests.helpers import ORIGIN, Tenant, prepare
from tests.mailbox import join

BASE = "https://hub.example"
DELETION_ID = "0f0f0f0f-0000-4000-8000-000000000001"  # no such request: the role decides first
TEAM_ID = "0f0f0f0f-0000-4000-8000-000000000002"  # no such team either
PASSWORD = "correct-horse-battery"


@dataclass
class As:
    """Requests as one logged-in user (the client's own cookie jar stays empty)."""

    client: TestClient
    cookie: str
    csrf: str
    user_id: str

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"cookie": f"hub_session={self.cookie}", "x-csrf-token": self.csrf}
        self.client.cookies.clear()
        return self.client.request(
            method, url, headers=headers | kwargs.pop("headers", {}), **kwargs
        )


@dataclass
class Env:
    client: TestClient
    acme: Tenant
    globex: Tenant
    admin: As
    bot: Account  # a Telegram bot of this test's own (Postgres is shared by the tests)
    fake: FakePlatform

    def log_in(self, email: str, password: str) -> As:
        self.client.cookies.clear()
        answer = self.client.post("/api/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        cookie = answer.cookies["hub_session"]
        self.client.cookies.clear()
        body = answer.json()
        return As(self.client, cookie, body["csrf_token"], body["user"]["user_id"])

    def add_agent(self, email: str | None = None, role: str = "agent") -> tuple[As, str]:
        """A new member, invited by the admin and accepting the e-mailed link."""
        email = email or f"agent-{uuid.uuid4().hex[:8]}@acme.example"
        self.client.cookies.clear()
        headers = {"cookie": f"hub_session={self.admin.cookie}", "x-csrf-token": self.admin.csrf}
        user_id = join(self.client, headers, email, "Ayşe Agent", PASSWORD, role)
        return self.log_in(email, PASSWORD), user_id


def new_member(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "role": "agent"} | extra


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1]
        )
    bot_id = str(7_100_000_000 + uuid.uuid4().int % 100_000_000)
    bot = Account(TG, bot_id, f"{bot_id}:AAHfake-admin-test-token")
    with running_fake((bot,)) as fake:  # connecting a Telegram bot calls setWebhook
        settings = settings.with_overrides(
            public_url=BASE,
            telegram_api_url=fake.base_urls().telegram,
            cache_ttl_s=0.001,
            instagram_app_id="990000000000001",
            instagram_app_secret="ig-app-secret-for-tests",
        )
        acme, globex = prepare(settings, "acme", "globex")
        with TestClient(create_app(settings, run_worker=True), base_url=BASE) as client:
            made = Env(client, acme, globex, As(client, "", "", ""), bot, fake)
            made.admin = made.log_in(acme.email, acme.password)
            yield made


def audit(who: As, **params: Any) -> list[dict[str, Any]]:
    answer = who("GET", "/api/audit", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


# Members


def test_admin_adds_an_agent_changes_the_role_and_removes_them(env: Env) -> None:
    listed = env.admin("GET", "/api/members").json()["items"]
    assert [(m["email"], m["role"]) for m in listed] == [(env.acme.email, "admin")]

    agent, agent_id = env.add_agent("New.Agent@Acme.example")  # invited, and accepted
    [member] = [m for m in env.admin("GET", "/api/members").json()["items"] if m["id"] == agent_id]
    assert member["email"] == "new.agent@acme.example" and member["role"] == "agent"
    assert member["name"] == "Ayşe Agent"
    assert set(member) == {
        "id",
        "name",
        "email",
        "role",
        "capacity",
        "created_at",
        "two_factor",
    }

    assert agent("GET", "/api/me").json()["user"]["role"] == "agent"
    seen_by_agent = agent("GET", "/api/members").json()["items"]  # agents may list members
    assert {m["email"] for m in seen_by_agent} == {env.acme.email, "new.agent@acme.example"}

    one = f"/api/members/{member['id']}"
    promoted = env.admin("PATCH", one, json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert agent("GET", "/api/me").json()["user"]["role"] == "admin"  # at once
    assert env.admin("PATCH", one, json={"role": "agent"}).json()["role"] == "agent"

    assert env.admin("DELETE", one).status_code == 204
    assert agent("GET", "/api/me").status_code == 401  # the session ends with the membership
    assert env.admin("DELETE", one).status_code == 404
    assert env.admin("PATCH", one, json={"role": "admin"}).status_code == 404
    left = env.admin("GET", "/api/members").json()["items"]
    assert [m["email"] for m in left] == [env.acme.email]
    actions = [e["action"] for e in audit(env.admin, action="member.")]
    assert actions == [
        "member.removed",
        "member.role_changed",
        "member.role_changed",
        "member.added",
    ]


def test_inviting_a_member_refuses_what_does_not_fit(env: Env) -> None:
    email = f"x-{uuid.uuid4().hex[:6]}@acme.example"
    for bad in ({"email": "nobody"}, {"role": "owner"}, {"password": PASSWORD}, {"name": "N"}):
        answer = env.admin("POST", "/api/members", json=new_member(email) | bad)
        assert answer.status_code == 400 and code(answer) == "bad_request", bad
    assert env.admin("POST", "/api/members", json=new_member(email)).status_code == 202
    again = env.admin("POST", "/api/members", json=new_member(email.upper()))
    assert again.status_code == 202  # a new invitation replaces the pending one
    assert len(env.admin("GET", "/api/invitations").json()["items"]) == 1
    member = env.admin("POST", "/api/members", json=new_member(env.acme.email))
    assert member.status_code == 409 and code(member) == "conflict"


def test_a_user_of_another_workspace_is_invited_not_enrolled(env: Env) -> None:
    answer = env.admin("POST", "/api/members", json=new_member(env.globex.email))
    assert answer.status_code == 202
    assert set(answer.json()) == {"id", "email", "role", "invited_by", "created_at", "expires_at"}
    emails = {m["email"] for m in env.admin("GET", "/api/members").json()["items"]}
    assert env.globex.email not in emails  # a member only once they accept


def test_the_last_admin_can_be_neither_demoted_nor_removed(env: Env) -> None:
    me = f"/api/members/{env.admin.user_id}"
    demoted = env.admin("PATCH", me, json={"role": "agent"})
    assert demoted.status_code == 409 and code(demoted) == "last_admin"
    removed = env.admin("DELETE", me)
    assert removed.status_code == 409 and code(removed) == "last_admin"
    assert env.admin("GET", "/api/me").json()["user"]["role"] == "admin"

    second, second_id = env.add_agent(role="admin")
    assert env.admin("PATCH", me, json={"role": "agent"}).status_code == 200  # one admin is left
    last = second("PATCH", f"/api/members/{second_id}", json={"role": "agent"})
    assert last.status_code == 409 and code(last) == "last_admin"
    assert second("DELETE", f"/api/members/{second_id}").status_code == 409
    assert second("DELETE", me).status_code == 204  # an agent, so not the last admin


def test_an_agent_cannot_escalate_itself(env: Env) -> None:
    agent, agent_id = env.add_agent()
    for role in ("admin", "agent"):
        answer = agent("PATCH", f"/api/members/{agent_id}", json={"role": role})
        assert answer.status_code == 403 and code(answer) == "forbidden"
    assert agent("GET", "/api/me").json()["user"]["role"] == "agent"
    roles = {m["id"]: m["role"] for m in env.admin("GET", "/api/members").json()["items"]}
    assert roles[agent_id] == "agent"


def test_members_of_another_workspace_are_out_of_reach(env: Env) -> None:
    theirs = f"/api/members/{env.globex.admin_id}"
    assert env.admin("PATCH", theirs, json={"role": "agent"}).status_code == 404
    assert env.admin("DELETE", theirs).status_code == 404
    assert env.admin("PATCH", "/api/members/not-a-uuid", json={"role": "agent"}).status_code == 404
    globex = env.log_in(env.globex.email, env.globex.password)
    assert globex("GET", "/api/me").json()["user"]["role"] == "admin"


# Who may call what


SNEAKY_RULE = {
    "name": "Sneaky",
    "trigger": "message.received",
    "actions": [{"type": "resolve"}],
}


TICKET = "a-facebook-sign-in-ticket"


def admin_endpoints(env: Env) -> list[tuple[str, str, dict[str, Any] | None]]:
    channel = f"/api/channels/{env.acme.channel_id}"
    member = f"/api/members/{env.acme.admin_id}"
    return [
        ("POST", "/api/channels", {"kind": "webchat", "name": "Sneaky"}),
        ("DELETE", channel, None),
        ("DELETE", member + "/two-factor", None),
        ("PATCH", channel, {"name": "Renamed"}),
        ("POST", channel + "/identity-secret", None),
        ("POST", "/api/channels/instagram/authorize", {"name": "IG"}),
        ("POST", "/api/channels/facebook/authorize", None),
        ("GET", f"/api/channels/facebook/pages/{TICKET}", None),
        ("POST", f"/api/channels/facebook/pages/{TICKET}", {"messenger": ["1"]}),
        ("GET", "/api/channels/whatsapp/signup", None),
        (
            "POST",
            "/api/channels/whatsapp/signup",
            {"code": "c", "waba_id": "1", "phone_number_id": "2"},
        ),
        ("POST", "/api/members", new_member("sneaky@acme.example", role="admin")),
        ("PATCH", member, {"role": "agent"}),
        ("DELETE", member, None),
        ("POST", member + "/sign-out", None),
        ("GET", "/api/invitations", None),
        ("POST", f"/api/invitations/{TEAM_ID}/resend", {}),
        ("DELETE", f"/api/invitations/{TEAM_ID}", None),
        ("GET", "/api/audit", None),
        ("POST", "/api/deletions", {"contact_id": str(uuid.uuid4())}),
        ("GET", "/api/deletions", None),
        ("GET", f"/api/deletions/{DELETION_ID}", None),
        ("GET", "/api/status", None),
        ("POST", "/api/teams", {"name": "Sneaky"}),
        ("PATCH", f"/api/teams/{TEAM_ID}", {"name": "Renamed"}),
        ("DELETE", f"/api/teams/{TEAM_ID}", None),
        ("GET", "/api/reports", None),  # the role decides before the period is read
        ("GET", "/api/hooks", None),
        ("POST", "/api/hooks", {"url": "https://example.com/hook"}),
        ("DELETE", f"/api/hooks/{TEAM_ID}", None),
        ("GET", "/api/hooks/deliveries", None),
        ("POST", f"/api/hooks/deliveries/{TEAM_ID}/replay", None),
        ("GET", "/api/automation-rules", None),
        ("POST", "/api/automation-rules", SNEAKY_RULE),
        ("POST", "/api/automation-rules/try", {"rule": SNEAKY_RULE}),
        ("PATCH", f"/api/automation-rules/{TEAM_ID}", {"enabled": False}),
        ("DELETE", f"/api/automation-rules/{TEAM_ID}", None),
        (
            "POST",
            "/api/attributes",
            {"key": "sneaky", "label": "Sneaky", "type": "text", "applies_to": "contact"},
        ),
        ("PATCH", f"/api/attributes/{TEAM_ID}", {"label": "Renamed"}),
        ("DELETE", f"/api/attributes/{TEAM_ID}", None),
    ]


def test_the_list_covers_every_admin_operation(env: Env) -> None:
    documented = {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if "(admins)" in operation["summary"]
    }
    templates = {
        str(env.acme.channel_id): "{channel_id}",
        str(env.acme.admin_id): "{user_id}",
        DELETION_ID: "{deletion_id}",
        TEAM_ID: "{team_id}",
        TICKET: "{ticket}",
    }
    hooks = {"/api/hooks/{team_id}": "/api/hooks/{hook_id}"}
    hooks["/api/hooks/deliveries/{team_id}/replay"] = "/api/hooks/deliveries/{delivery_id}/replay"
    hooks["/api/automation-rules/{team_id}"] = "/api/automation-rules/{rule_id}"
    hooks["/api/invitations/{team_id}"] = "/api/invitations/{invitation_id}"
    hooks["/api/invitations/{team_id}/resend"] = "/api/invitations/{invitation_id}/resend"
    hooks["/api/attributes/{team_id}"] = "/api/attributes/{attribute_id}"
    listed = set()
    for method, path, _ in admin_endpoints(env):
        for value, template in templates.items():
            path = path.replace(value, template)
        listed.add((method, hooks.get(path, path)))
    assert listed == documented


def test_an_agent_gets_403_on_every_admin_endpoint(env: Env) -> None:
    agent, _ = env.add_agent()
    for method, path, body in admin_endpoints(env):
        answer = agent(method, path, json=body) if body is not None else agent(method, path)
        assert answer.status_code == 403, (method, path, answer.text)
        assert code(answer) == "forbidden"
    # The role is why: the same harmless request succeeds for the admin.
    authorize = env.admin("POST", "/api/channels/instagram/authorize", json={"name": "IG"})
    assert authorize.status_code == 200
    # Nothing happened: the channel is connected and named as before, the admin is admin.
    channel = env.admin("GET", f"/api/channels/{env.acme.channel_id}").json()
    assert (channel["status"], channel["name"]) == ("connected", "Site")
    assert channel["has_secrets"] is False  # no identity secret was made
    roles = {m["email"]: m["role"] for m in env.admin("GET", "/api/members").json()["items"]}
    assert roles[env.acme.email] == "admin" and "sneaky@acme.example" not in roles
    names = [c["name"] for c in env.admin("GET", "/api/channels").json()["items"]]
    assert "Sneaky" not in names


def test_without_a_session_every_console_endpoint_answers_401(env: Env) -> None:
    env.client.cookies.clear()
    reads = [("GET", "/api/members", None), ("GET", f"/api/channels/{env.acme.channel_id}", None)]
    for method, path, body in [*admin_endpoints(env), *reads]:
        answer = env.client.request(method, path, json=body)
        assert answer.status_code == 401, (method, path)


def test_changes_need_the_csrf_token(env: Env) -> None:
    answer = env.admin(
        "PATCH",
        f"/api/channels/{env.acme.channel_id}",
        json={"name": "x"},
        headers={"x-csrf-token": "forged"},
    )
    assert answer.status_code == 403 and code(answer) == "csrf_failed"


# The audit log


def test_audit_rows_carry_the_ip_and_the_actor(env: Env) -> None:
    _, agent_id = env.add_agent()
    rows = audit(env.admin)
    assert rows[0]["action"] == "login.succeeded" and rows[0]["actor_id"] == agent_id
    assert rows[0]["ip"] == "testclient"  # the peer address the server saw
    sent = next(r for r in rows if r["action"] == "invitation.sent")
    assert sent["actor_id"] == env.admin.user_id and sent["actor_name"] == "acme admin"
    assert sent["target_type"] == "invitation" and sent["ip"] == "testclient"
    assert sent["detail"] == {"role": "agent"}
    added = next(r for r in rows if r["action"] == "member.added")
    assert added["actor_id"] == agent_id and added["actor_name"] == "Ayşe Agent"  # accepted
    assert (added["target_type"], added["target_id"]) == ("user", agent_id)
    assert added["ip"] == "testclient"
    assert added["detail"] == {"role": "agent", "invitation": sent["target_id"]}
    assert rows[-1]["action"] == "workspace.created" and rows[-1]["actor_type"] == "system"
    assert all(r["ip"] is None for r in rows if r["actor_type"] == "system")
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)


def test_audit_filters_and_pages(env: Env) -> None:
    agent, agent_id = env.add_agent()
    agent("GET", "/api/me")
    env.admin("PATCH", f"/api/channels/{env.acme.channel_id}", json={"name": "Shop"})
    logins = audit(env.admin, action="login")
    assert {r["action"] for r in logins} == {"login.succeeded"} and len(logins) == 2
    assert {r["action"] for r in audit(env.admin, action="channel.")} == {"channel.updated"}
    assert audit(env.admin, action="login.succeeded%") == []  # a prefix, not a pattern
    mine = audit(env.admin, actor_id=agent_id)
    assert [r["action"] for r in mine] == ["login.succeeded", "member.added", "invitation.accepted"]

    everything = audit(env.admin)
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert audit(env.admin, since=future) == []
    assert len(audit(env.admin, until=future)) == len(everything)
    oldest = everything[-1]["at"]
    assert [r["id"] for r in audit(env.admin, until=oldest)] == []
    assert everything[-1]["id"] in [r["id"] for r in audit(env.admin, since=oldest)]

    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = env.admin("GET", "/api/audit", params=params).json()
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in everything]  # newest first, nothing twice or missed

    for bad in ({"since": "yesterday"}, {"until": "2026-01-01T00:00:00"}, {"cursor": "x"}):
        answer = env.admin("GET", "/api/audit", params=bad)
        assert answer.status_code == 400 and code(answer) == "bad_request", bad
    assert env.admin("GET", "/api/audit", params={"limit": 0}).status_code == 400


def test_audit_is_per_workspace(env: Env) -> None:
    globex = env.log_in(env.globex.email, env.globex.password)
    theirs = audit(globex)
    ours = audit(env.admin)
    assert {r["id"] for r in theirs}.isdisjoint(r["id"] for r in ours)
    assert all(r["actor_id"] != env.globex.admin_id for r in ours)


def test_channel_connect_and_disconnect_are_audited_with_the_ip(env: Env) -> None:
    bot = {"kind": "telegram", "name": "Bot", "bot_token": env.bot.token}
    connected = env.admin("POST", "/api/channels", json=bot)
    assert connected.status_code == 201, connected.text
    channel_id = connected.json()["id"]
    assert env.admin("DELETE", f"/api/channels/{channel_id}").status_code == 200
    rows = audit(env.admin, action="channel.")
    assert [(r["action"], r["target_id"], r["ip"]) for r in rows] == [
        ("channel.disconnected", channel_id, "testclient"),
        ("channel.connected", channel_id, "testclient"),
    ]


def test_an_account_connected_in_another_workspace_is_a_conflict_and_left_alone(
    env: Env,
) -> None:
    """On Postgres the caller's row-level security shows only its own workspace's accounts;
    the check looks past it, so the other workspace's bot is never re-pointed."""
    bot = {"kind": "telegram", "name": "Bot", "bot_token": env.bot.token}
    assert env.admin("POST", "/api/channels", json=bot).status_code == 201
    hooks = len([r for r in env.fake.requests if r.path.endswith("/setWebhook")])
    globex = env.log_in(env.globex.email, env.globex.password)
    again = globex("POST", "/api/channels", json=bot)
    assert again.status_code == 409 and code(again) == "conflict"
    assert len([r for r in env.fake.requests if r.path.endswith("/setWebhook")]) == hooks


# Channels and web-chat settings


def test_web_chat_settings_are_saved_normalized_and_used(env: Env) -> None:
    one = f"/api/channels/{env.acme.channel_id}"
    patch = {
        "name": "Shop chat",
        "allowed_origins": [
            "https://Store.Example:443/",
            "http://localhost:8080",
            "https://çiçek.tr",
        ],
        "settings": {"title": "Merhaba", "greeting": "How can we help?", "colour": "#0A7F5C"},
    }
    answer = env.admin("PATCH", one, json=patch)
    assert answer.status_code == 200, answer.text
    channel = answer.json()
    assert channel["name"] == "Shop chat"
    assert channel["allowed_origins"] == [
        "https://store.example",
        "http://localhost:8080",
        "https://xn--iek-1lab.tr",
    ]
    assert channel["settings"] == {
        "title": "Merhaba",
        "greeting": "How can we help?",
        "colour": "#0a7f5c",
    }
    assert env.admin("GET", one).json() == channel
    changed = env.admin("PATCH", one, json={"settings": {"locale": "tr", "greeting": None}})
    assert changed.json()["settings"] == {"title": "Merhaba", "colour": "#0a7f5c", "locale": "tr"}
    [updated, first] = audit(env.admin, action="channel.updated")
    assert updated["detail"] == {"fields": ["settings.greeting", "settings.locale"]}
    assert first["detail"]["fields"] == [
        "name",
        "allowed_origins",
        "settings.colour",
        "settings.greeting",
        "settings.title",
    ]
    assert first["ip"] == "testclient"

    # The widget follows the new origins.
    def widget(origin: str) -> int:
        body = {"channel": env.acme.public_key}
        response = env.client.post("/api/widget/token", json=body, headers={"origin": origin})
        return response.status_code

    assert widget("http://localhost:8080") == 200
    assert widget(ORIGIN) == 403  # no longer listed


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example/path",
        "shop.example",
        "ftp://shop.example",
        "https://shop.example?x=1",
        "https://user@shop.example",
        "https://shop.example:99999",
        "https://sh op.example",
        "https://",
        "javascript:alert(1)",
    ],
)
def test_a_bad_origin_is_refused_with_its_code(env: Env, origin: str) -> None:
    one = f"/api/channels/{env.acme.channel_id}"
    answer = env.admin("PATCH", one, json={"allowed_origins": ["https://ok.example", origin]})
    assert answer.status_code == 400 and code(answer) == "invalid_origin", answer.text
    assert env.admin("GET", one).json()["allowed_origins"] == [ORIGIN]  # unchanged


def test_bad_widget_settings_are_refused(env: Env) -> None:
    one = f"/api/channels/{env.acme.channel_id}"
    for colour in ("red", "#12345", "#1234567", "#gggggg", "0a7f5c"):
        answer = env.admin("PATCH", one, json={"settings": {"colour": colour}})
        assert answer.status_code == 400 and code(answer) == "invalid_colour", colour
    for settings in ({"locale": "de"}, {"title": ""}, {"title": "x" * 61}, {"font": "Comic"}):
        answer = env.admin("PATCH", one, json={"settings": settings})
        assert answer.status_code == 400 and code(answer) == "bad_request", settings
    assert env.admin("GET", one).json()["settings"] == {}
    connect = {"kind": "webchat", "name": "Bad", "allowed_origins": ["https://a.example/x"]}
    refused = env.admin("POST", "/api/channels", json=connect)
    assert refused.status_code == 400 and code(refused) == "invalid_origin"


def test_web_chat_fields_on_another_kind_and_other_workspaces(env: Env) -> None:
    bot = {"kind": "telegram", "name": "Bot", "bot_token": env.bot.token}
    telegram = env.admin("POST", "/api/channels", json=bot).json()
    one = f"/api/channels/{telegram['id']}"
    for patch in ({"allowed_origins": ["https://a.example"]}, {"settings": {"title": "Hi"}}):
        answer = env.admin("PATCH", one, json=patch)
        assert answer.status_code == 400 and code(answer) == "not_webchat"
    renamed = env.admin("PATCH", one, json={"name": "Support bot"}).json()
    assert renamed["name"] == "Support bot" and renamed["kind"] == "telegram"
    theirs = f"/api/channels/{env.globex.channel_id}"
    assert env.admin("GET", theirs).status_code == 404
    assert env.admin("PATCH", theirs, json={"name": "Mine"}).status_code == 404
    assert env.admin("GET", f"/api/channels/{uuid.uuid4()}").status_code == 404


def test_no_secret_or_password_in_any_answer(env: Env) -> None:
    bot = {"kind": "telegram", "name": "Bot", "bot_token": env.bot.token}
    connected = env.admin("POST", "/api/channels", json=bot)
    secret_token = connected.json()["webhook"]["secret_token"]  # shown this once
    one = f"/api/channels/{connected.json()['id']}"
    agent, agent_id = env.add_agent()
    answers = [
        env.admin("GET", "/api/channels"),
        env.admin("GET", one),
        env.admin("PATCH", one, json={"name": "Renamed bot"}),
        env.admin("GET", "/api/members"),
        env.admin("PATCH", f"/api/members/{agent_id}", json={"role": "agent"}),
        env.admin("GET", "/api/audit"),
        agent("GET", "/api/members"),
        env.admin("POST", "/api/members", json=new_member(f"n-{uuid.uuid4().hex[:6]}@a.example")),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201, 202), answer.text
        for secret in (env.bot.token, secret_token, PASSWORD, env.acme.password, "$argon2"):
            assert secret not in answer.text
        assert not keys(answer.json()) & {"password", "password_hash", "secrets", "bot_token"}


def keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value))
    return set()


def test_channel_health_shows_when_each_channel_last_heard_from_someone(env: Env) -> None:
    def site() -> dict[str, Any]:
        items = env.admin("GET", "/api/channels/health").json()["items"]
        [found] = [c for c in items if c["id"] == str(env.acme.channel_id)]
        return dict(found)

    before = site()
    assert before["last_event_at"] is None and before["status"] == "connected"
    assert before["settings"] == {} and "secrets" not in before
    body = {"channel": env.acme.public_key}
    token = env.client.post("/api/widget/token", json=body, headers={"origin": ORIGIN}).json()
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token["token"]}))
        assert ws.receive_json()["type"] == "welcome"
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v-1", "text": "Hello"}))
        while ws.receive_json()["type"] != "ack":
            pass
    deadline = time.monotonic() + 10
    while site()["last_event_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the persist worker stores the conversation in the background
    heard = datetime.fromisoformat(site()["last_event_at"])
    assert abs(heard - datetime.now(UTC)) < timedelta(minutes=1)
    one = env.admin("GET", f"/api/channels/{env.acme.channel_id}").json()
    assert one["last_event_at"] == site()["last_event_at"]
    agent, _ = env.add_agent()  # any member may read channel health
    assert agent("GET", "/api/channels/health").json()["items"][0]["last_event_at"]


@pytest.mark.postgres
async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    settings: Settings, postgres_database: str
) -> None:
    settings = settings.with_overrides(
        database_url="postgresql+asyncpg://" + postgres_database.split("://", 1)[1]
    )
    await migrate_async(settings)
    engine = make_engine(settings)
    try:
        store, members = Store(sessionmaker(engine)), Members(sessionmaker(engine))
        suffix = uuid.uuid4().hex[:8]
        workspace, ada = await store.create_workspace_with_admin(
            "w", f"ada-{suffix}@x.example", "p"
        )
        bob = await store.add_member(workspace.id, f"bob-{suffix}@x.example", "p", "admin")
        for _ in range(5):
            outcomes = await asyncio.gather(
                members.change_role(workspace.id, Actor(ada.id, None), bob.id, "agent"),
                members.change_role(workspace.id, Actor(bob.id, None), ada.id, "agent"),
                return_exceptions=True,
            )
            assert sum(isinstance(o, LastAdmin) for o in outcomes) == 1, outcomes
            roster = await members.roster(workspace.id)
            assert [m.membership.role for m in roster].count("admin") == 1
            for member in roster:  # both admins again for the next round
                if member.membership.role == "agent":
                    await members.change_role(
                        workspace.id, Actor(member.user.id, None), member.user.id, "admin"
                    )
    finally:
        await engine.dispose()
