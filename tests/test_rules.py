"""Automation rules (hub/automation/): admins define them,
try them on a sample, and the automation worker runs them on real events, on SQLite with the
in-process bus and on Postgres with Redis. Every trigger, condition and action is exercised;
what a rule does never triggers a rule; every action is noted in the conversation and
audited."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import ORIGIN, Tenant, backends, prepare
from tests.test_api import error_code, hello, next_ack, visitor_token, wait_for
from tests.test_away import ALWAYS_OPEN, closed_now

RULES = "/api/automation-rules"


@dataclass
class Env:
    client: TestClient
    tenant: Tenant
    team_id: str


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(
        create_app(settings, run_worker=True), base_url="https://hub.example"
    ) as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        team = client.post("/api/teams", json={"name": "Billing"})
        assert team.status_code == 201, team.text
        yield Env(client, acme, team.json()["id"])


def add_rule(env: Env, **rule: Any) -> dict[str, Any]:
    answer = env.client.post(RULES, json={"name": "Rule", **rule})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def webchat(env: Env, name: str) -> Tenant:
    """Another web chat channel of the workspace, for a test's own conversations."""
    made = env.client.post(
        "/api/channels", json={"kind": "webchat", "name": name, "allowed_origins": [ORIGIN]}
    )
    assert made.status_code == 201, made.text
    channel = made.json()
    return dataclasses.replace(
        env.tenant, public_key=channel["public_key"], channel_id=uuid.UUID(channel["id"])
    )


def write(env: Env, site: Tenant, *texts: str, token: str | None = None) -> dict[str, str]:
    """A visitor of `site` writes `texts`; the answer is its widget token."""
    visitor = visitor_token(env.client, site, token)
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        for text in texts:
            client_id = uuid.uuid4().hex
            ws.send_text(json.dumps({"type": "message.send", "client_id": client_id, "text": text}))
            next_ack(ws)
    return visitor


def conversation(env: Env, conversation_id: str) -> dict[str, Any]:
    answer = env.client.get(f"/api/conversations/{conversation_id}")
    return dict(answer.json()) if answer.status_code == 200 else {}


def history(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    answer = env.client.get(f"/api/conversations/{conversation_id}/messages")
    return list(answer.json()["items"]) if answer.status_code == 200 else []


def notes(env: Env, conversation_id: str) -> list[str]:
    return [
        m["text"]
        for m in history(env, conversation_id)
        if m["note"] and m["sender"]["type"] == "system"
    ]


def replies(env: Env, conversation_id: str) -> list[str]:
    return [
        m["text"]
        for m in history(env, conversation_id)
        if m["direction"] == "out" and not m["note"]
    ]


def applied(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    answer = env.client.get("/api/audit", params={"action": "rule.applied"})
    assert answer.status_code == 200, answer.text
    return [r for r in answer.json()["items"] if r["target_id"] == conversation_id]


# Saving


def test_rules_are_checked_when_saved(env: Env) -> None:
    client = env.client
    refund = {"field": "text", "op": "contains", "values": ["refund"]}
    resolve = {"type": "resolve"}

    def refused(rule: dict[str, Any]) -> str:
        answer = client.post(RULES, json={"name": "Bad", "trigger": "message.received"} | rule)
        assert answer.status_code == 400, answer.text
        return error_code(answer)

    assert refused({"actions": []}) == "bad_request"
    assert refused({"actions": [{"type": "explode"}]}) == "bad_request"
    assert refused({"actions": [resolve, {"type": "snooze", "minutes": 5}]}) == "invalid_rule"
    assert refused({"actions": [resolve, resolve]}) == "invalid_rule"
    bad_ops = [
        {"field": "text", "op": "in", "values": ["x"]},
        {"field": "business_hours", "op": "open", "values": ["x"]},
        {"field": "label", "op": "in", "values": []},
        {"field": "channel", "op": "in", "values": ["not-an-id"]},
        {"field": "channel_kind", "op": "in", "values": ["fax"]},
    ]
    for condition in bad_ops:
        assert refused({"conditions": [condition], "actions": [resolve]}) == "bad_request"
    resolved_text = {"trigger": "conversation.resolved", "conditions": [refund]}
    assert refused(resolved_text | {"actions": [resolve]}) == "invalid_rule"
    stranger = str(uuid.uuid4())
    for action in (
        {"type": "assign_agent", "user_id": stranger},
        {"type": "assign_team", "team_id": stranger},
    ):
        assert refused({"actions": [action]}) == "invalid_rule"
    channel = {"field": "channel", "op": "in", "values": [stranger]}
    assert refused({"conditions": [channel], "actions": [resolve]}) == "invalid_rule"
    reply = {"type": "send_reply", "text": "Hi {{contact.shoe_size}}"}
    assert refused({"actions": [reply]}) == "unknown_placeholder"
    # A saved rule: normalized, last in order, and audited without its values.
    saved = add_rule(
        env,
        trigger="message.received",
        conditions=[{"field": "label", "op": "in", "values": ["VIP ", "vip"]}, refund],
        actions=[{"type": "add_label", "label": " Refund "}, resolve],
    )
    assert saved["conditions"][0] == {"field": "label", "op": "in", "values": ["vip"]}
    assert saved["actions"][0] == {"type": "add_label", "label": "refund"}
    second = add_rule(env, trigger="message.received", actions=[resolve])
    assert second["position"] > saved["position"]
    # A patch that would leave a resolved rule with a text condition is refused.
    moved = client.patch(f"{RULES}/{saved['id']}", json={"trigger": "conversation.resolved"})
    assert moved.status_code == 400 and error_code(moved) == "invalid_rule"
    twice = client.patch(f"{RULES}/{second['id']}", json={"actions": [resolve, resolve]})
    assert twice.status_code == 400 and error_code(twice) == "invalid_rule"
    first = client.patch(f"{RULES}/{second['id']}", json={"position": 0})
    assert first.status_code == 200 and first.json()["position"] == 0
    assert [r["id"] for r in client.get(RULES).json()["items"]] == [second["id"], saved["id"]]
    audit = client.get("/api/audit", params={"action": "rule.created"}).json()["items"]
    row = next(r for r in audit if r["target_id"] == saved["id"])
    assert row["detail"]["conditions"] == ["label", "text"] and "refund" not in json.dumps(row)
    assert client.delete(f"{RULES}/{saved['id']}").status_code == 204
    assert client.patch(f"{RULES}/{saved['id']}", json={"enabled": False}).status_code == 404


def test_trying_a_rule_checks_each_condition_and_shows_what_it_would_do(env: Env) -> None:
    client, site = env.client, env.tenant
    closed = webchat(env, "Closed")
    assert (
        client.patch(
            f"/api/channels/{closed.channel_id}", json={"hours": closed_now(None)}
        ).status_code
        == 200
    )
    sample = {
        "channel_id": str(site.channel_id),
        "text": "I want a REFUND now",
        "contact_name": "Ayşe Yılmaz",
        "contact_email": "ayse@bigcorp.example",
        "labels": ["vip"],
    }
    cases = [
        ({"field": "channel", "op": "in", "values": [str(site.channel_id)]}, True),
        ({"field": "channel", "op": "not_in", "values": [str(site.channel_id)]}, False),
        ({"field": "channel", "op": "in", "values": [str(closed.channel_id)]}, False),
        ({"field": "channel_kind", "op": "in", "values": ["webchat"]}, True),
        ({"field": "channel_kind", "op": "not_in", "values": ["webchat", "telegram"]}, False),
        ({"field": "contact_name", "op": "contains", "values": ["ayşe"]}, True),
        ({"field": "contact_name", "op": "not_contains", "values": ["Ayşe"]}, False),
        ({"field": "contact_email", "op": "contains", "values": ["@bigcorp.example"]}, True),
        ({"field": "contact_email", "op": "contains", "values": ["@other.example"]}, False),
        ({"field": "text", "op": "contains", "values": ["money back", "refund"]}, True),
        ({"field": "text", "op": "not_contains", "values": ["refund"]}, False),
        ({"field": "label", "op": "in", "values": ["gold", "vip"]}, True),
        ({"field": "label", "op": "not_in", "values": ["vip"]}, False),
        ({"field": "business_hours", "op": "open"}, True),  # no hours: always open
        ({"field": "business_hours", "op": "closed"}, False),
    ]
    reply = "Sorry, {{contact.first_name | there}}!"
    actions = [{"type": "set_priority", "priority": "high"}, {"type": "send_reply", "text": reply}]
    for condition, holds in cases:
        rule = {
            "name": "T",
            "trigger": "message.received",
            "conditions": [condition],
            "actions": actions,
        }
        answer = client.post(f"{RULES}/try", json={"rule": rule, "sample": sample})
        assert answer.status_code == 200, answer.text
        tried = answer.json()
        assert tried["conditions"] == [{"values": [], **condition, "holds": holds}], condition
        assert tried["matched"] is holds
        assert tried["changes"] == ({"priority": "high"} if holds else {})
        assert tried["reply"] == ("Sorry, Ayşe!" if holds else None)
    # The closed channel's real hours decide business_hours.
    on_closed = sample | {"channel_id": str(closed.channel_id)}
    rule = {
        "name": "T",
        "trigger": "message.received",
        "conditions": [{"field": "business_hours", "op": "closed"}],
        "actions": [{"type": "snooze", "minutes": 90}],
    }
    tried = client.post(f"{RULES}/try", json={"rule": rule, "sample": on_closed}).json()
    assert tried["matched"] and tried["changes"]["status"] == "snoozed"
    # Nothing was stored by trying.
    assert client.get(RULES).json()["items"] == []
    unknown = client.post(
        f"{RULES}/try", json={"rule": rule, "sample": {"channel_id": str(uuid.uuid4())}}
    )
    assert unknown.status_code == 400 and error_code(unknown) == "invalid_rule"


# Running


def test_a_matching_message_gets_every_action_a_note_and_an_audit_row(env: Env) -> None:
    client, site = env.client, webchat(env, "Support")
    admin = str(env.tenant.admin_id)
    add_rule(
        env,
        name="Refunds",
        trigger="message.received",
        conditions=[
            {"field": "text", "op": "contains", "values": ["refund"]},
            {"field": "channel", "op": "in", "values": [str(site.channel_id)]},
            {"field": "contact_email", "op": "contains", "values": ["@bigcorp.example"]},
        ],
        actions=[
            {"type": "assign_agent", "user_id": admin},
            {"type": "assign_team", "team_id": env.team_id},
            {"type": "add_label", "label": "refund"},
            {"type": "set_priority", "priority": "urgent"},
            {"type": "send_reply", "text": "Sorry to hear that, {{contact.first_name | there}}."},
        ],
    )
    visitor = visitor_token(client, site)
    profile = {"token": visitor["token"], "name": "Ayşe Yılmaz", "email": "ayse@bigcorp.example"}
    assert (
        client.post("/api/widget/profile", json=profile, headers={"origin": ORIGIN}).status_code
        == 204
    )
    wait_for(lambda: client.get("/api/contacts", params={"q": "bigcorp"}).json()["items"])
    conversation_id = write(env, site, "hello", token=visitor["token"])["conversation_id"]
    wait_for(lambda: history(env, conversation_id))
    # An agent labels it; the rule's label is added to the set, not put in its place.
    assert (
        client.patch(f"/api/conversations/{conversation_id}", json={"labels": ["vip"]}).status_code
        == 202
    )
    wait_for(lambda: conversation(env, conversation_id).get("labels") == ["vip"])
    assert notes(env, conversation_id) == [] and replies(env, conversation_id) == []
    write(env, site, "I need a Refund", token=visitor["token"])
    done = wait_for(
        lambda: (c := conversation(env, conversation_id)).get("priority") == "urgent" and c,
        timeout_s=10,
    )
    assert done["labels"] == ["refund", "vip"]

    def listed(priority: str) -> list[str]:
        answer = client.get("/api/conversations", params={"priority": priority})
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["items"]]

    assert conversation_id in listed("urgent") and conversation_id not in listed("none")
    assert conversation_id not in listed("low") and conversation_id in listed("any")
    bogus = client.get("/api/conversations", params={"priority": "meh"})
    assert bogus.status_code == 400 and error_code(bogus) == "bad_request"
    assert (done["assignee_id"], done["team_id"]) == (admin, env.team_id)
    assert wait_for(lambda: replies(env, conversation_id)) == ["Sorry to hear that, Ayşe."]
    [note] = wait_for(lambda: notes(env, conversation_id))
    assert note.startswith("Rule “Refunds”: assigned to ") and note.endswith(
        "moved to team Billing, labelled refund, priority urgent, sent an auto-reply."
    )
    # The note is a line of activity, not the conversation's preview.
    assert conversation(env, conversation_id)["last_message_preview"] == (
        "Sorry to hear that, Ayşe."
    )
    [row] = wait_for(lambda: applied(env, conversation_id))
    assert row["actor_type"] == "system" and row["actor_id"].startswith("rule:")
    assert row["detail"]["actions"] == [
        "assign_agent",
        "assign_team",
        "add_label",
        "set_priority",
        "send_reply",
    ]
    assert "Ayşe" not in json.dumps(row) and "Sorry" not in json.dumps(row)
    # The same text from a contact of another channel, or another domain, is left alone.
    other = write(env, webchat(env, "Other"), "refund please")["conversation_id"]
    control = add_rule(
        env,
        trigger="message.received",
        conditions=[{"field": "text", "op": "contains", "values": ["control"]}],
        actions=[{"type": "add_label", "label": "seen"}],
    )
    write(env, site, "control", token=visitor["token"])
    wait_for(lambda: "seen" in conversation(env, conversation_id).get("labels", []), timeout_s=10)
    assert conversation(env, other)["labels"] == [] and conversation(env, other)["priority"] is None
    assert len(replies(env, conversation_id)) == 1  # once per matching message, not per message
    assert client.delete(f"{RULES}/{control['id']}").status_code == 204


def test_conversation_created_fires_once_and_a_disabled_rule_never(env: Env) -> None:
    site = webchat(env, "Welcome")
    welcome = add_rule(
        env,
        name="Welcome",
        trigger="conversation.created",
        actions=[{"type": "send_reply", "text": "Welcome!"}, {"type": "add_label", "label": "new"}],
    )
    add_rule(
        env,
        name="Off",
        enabled=False,
        trigger="message.received",
        actions=[{"type": "add_label", "label": "off"}],
    )
    visitor = write(env, site, "one", "two", "three")
    conversation_id = visitor["conversation_id"]
    assert wait_for(lambda: replies(env, conversation_id), timeout_s=10) == ["Welcome!"]
    wait_for(lambda: conversation(env, conversation_id).get("labels") == ["new"])
    write(env, site, "four", token=visitor["token"])
    # A later rule on the same channel proves the fourth message was handled (and that a new
    # rule applies to the next event, though the worker keeps the rules it read).
    low = add_rule(
        env, trigger="message.received", actions=[{"type": "set_priority", "priority": "low"}]
    )
    write(env, site, "five", token=visitor["token"])
    wait_for(lambda: conversation(env, conversation_id).get("priority") == "low", timeout_s=10)
    # Switched off, it acts no more; a rule added after it proves the message was read.
    assert env.client.patch(f"{RULES}/{low['id']}", json={"enabled": False}).status_code == 200
    cleared = env.client.patch(f"/api/conversations/{conversation_id}", json={"priority": None})
    assert cleared.status_code == 202
    wait_for(lambda: conversation(env, conversation_id).get("priority") is None)
    add_rule(env, trigger="message.received", actions=[{"type": "add_label", "label": "later"}])
    write(env, site, "six", token=visitor["token"])
    wait_for(lambda: "later" in conversation(env, conversation_id).get("labels", []), timeout_s=10)
    assert conversation(env, conversation_id)["priority"] is None
    assert replies(env, conversation_id) == ["Welcome!"]
    assert conversation(env, conversation_id)["labels"] == ["later", "new"]
    assert [r["detail"]["trigger"] for r in applied(env, conversation_id)].count(
        "conversation.created"
    ) == 1
    assert welcome["enabled"] is True


def test_resolve_and_snooze_and_rules_never_trigger_rules(env: Env) -> None:
    """ "Bye" resolves; a resolution thanks the contact. The rule's own resolution thanks
    nobody, and the thanks (our message) resolves nothing: no loop."""
    client, site = env.client, webchat(env, "Loops")
    add_rule(
        env,
        name="Bye",
        trigger="message.received",
        conditions=[{"field": "text", "op": "contains", "values": ["bye"]}],
        actions=[{"type": "resolve"}],
    )
    add_rule(
        env,
        name="Thanks",
        trigger="conversation.resolved",
        conditions=[{"field": "channel", "op": "in", "values": [str(site.channel_id)]}],
        actions=[
            {"type": "send_reply", "text": "Thanks for writing!"},
            {"type": "add_label", "label": "done"},
        ],
    )
    by_rule = write(env, site, "ok bye")["conversation_id"]
    wait_for(lambda: conversation(env, by_rule).get("status") == "resolved", timeout_s=10)
    by_person = write(env, site, "hello")["conversation_id"]
    wait_for(lambda: history(env, by_person))
    resolved = client.patch(f"/api/conversations/{by_person}", json={"status": "resolved"})
    assert resolved.status_code == 202
    assert wait_for(lambda: replies(env, by_person), timeout_s=10) == ["Thanks for writing!"]
    wait_for(lambda: conversation(env, by_person).get("labels") == ["done"])
    # The stream is read in order: the rule-resolved conversation's turn came first.
    assert replies(env, by_rule) == [] and conversation(env, by_rule)["labels"] == []
    assert conversation(env, by_person)["status"] == "resolved"  # the thanks did not reopen
    [note] = notes(env, by_rule)
    assert note == "Rule “Bye”: resolved."
    # Snooze: for the rule's minutes, outside business hours only.
    closed = webchat(env, "After hours")
    client.patch(f"/api/channels/{closed.channel_id}", json={"hours": closed_now(None)})
    open_site = webchat(env, "Always open")
    client.patch(f"/api/channels/{open_site.channel_id}", json={"hours": ALWAYS_OPEN})
    add_rule(
        env,
        name="Night",
        trigger="message.received",
        conditions=[
            {"field": "business_hours", "op": "closed"},
            {"field": "channel_kind", "op": "in", "values": ["webchat"]},
        ],
        actions=[{"type": "snooze", "minutes": 120}],
    )
    by_day = write(env, open_site, "anyone?")["conversation_id"]  # read first: see below
    at_night = write(env, closed, "anyone?")["conversation_id"]
    snoozed = wait_for(
        lambda: (c := conversation(env, at_night)).get("status") == "snoozed" and c, timeout_s=10
    )
    until = datetime.fromisoformat(snoozed["snoozed_until"])
    expected = datetime.now(UTC) + timedelta(minutes=120)
    assert abs((until - expected).total_seconds()) < 60
    wait_for(lambda: history(env, by_day))
    assert conversation(env, by_day)["status"] == "open"
