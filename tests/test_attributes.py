"""Custom attributes (hub/attributes/): admins define them, agents set values on contacts and
conversations, checked by type; every change is published to open inboxes, filters the
conversations list, decides automation rules' conditions, and goes with the contact's export
and erasure. On SQLite with the in-process bus and on Postgres with Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import STRONG_PASSWORD, Tenant, backends, prepare
from tests.mailbox import join
from tests.test_api import error_code, hello, next_event, wait_for
from tests.test_rules import conversation, history, notes, write

ATTRIBUTES = "/api/attributes"
RULES = "/api/automation-rules"


@dataclass
class Env:
    client: TestClient
    tenant: Tenant


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(
        create_app(settings, run_worker=True), base_url="https://hub.example"
    ) as client:
        client.headers["authorization"] = f"Bearer {acme.api_token}"
        yield Env(client, acme)


def define(env: Env, **body: Any) -> dict[str, Any]:
    answer = env.client.post(ATTRIBUTES, json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def standard(env: Env) -> dict[str, dict[str, Any]]:
    """One attribute of each type, on contacts and on conversations."""
    return {
        "plan": define(
            env,
            key="plan",
            label="Plan",
            type="list",
            applies_to="contact",
            options=["free", "gold"],
        ),
        "seats": define(env, key="seats", label="Seats", type="number", applies_to="contact"),
        "renewal": define(env, key="renewal", label="Renewal", type="date", applies_to="contact"),
        "order": define(env, key="order", label="Order", type="text", applies_to="conversation"),
        "invoice": define(
            env, key="invoice", label="Invoice", type="link", applies_to="conversation"
        ),
    }


def audited(env: Env, action: str) -> list[dict[str, Any]]:
    answer = env.client.get("/api/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def started(env: Env, text: str = "hello") -> dict[str, Any]:
    """A visitor's conversation, once stored."""
    conversation_id = write(env, env.tenant, text)["conversation_id"]  # type: ignore[arg-type]
    return dict(wait_for(lambda: conversation(env, conversation_id), timeout_s=10))


def listed(env: Env, **params: str) -> list[str]:
    answer = env.client.get("/api/conversations", params=params)
    assert answer.status_code == 200, answer.text
    return [c["id"] for c in answer.json()["items"]]


def test_admins_define_attributes_and_changes_are_audited(env: Env) -> None:
    client = env.client
    made = standard(env)
    assert made["plan"]["options"] == ["free", "gold"] and made["seats"]["options"] == []
    listing = client.get(ATTRIBUTES).json()["items"]
    assert [d["key"] for d in listing] == ["invoice", "order", "plan", "renewal", "seats"]

    def refused(body: dict[str, Any]) -> tuple[int, str]:
        answer = client.post(ATTRIBUTES, json=body)
        return answer.status_code, error_code(answer)

    base = {"key": "tier", "label": "Tier", "type": "text", "applies_to": "contact"}
    assert refused(base | {"key": "plan"}) == (409, "conflict")  # unique in the workspace
    assert refused(base | {"applies_to": "conversation", "key": "plan"}) == (409, "conflict")
    assert refused(base | {"key": "Bad Key"})[0] == 400
    assert refused(base | {"type": "list"})[0] == 400  # a list needs options
    assert refused(base | {"options": ["a"]})[0] == 400  # only a list has them
    assert refused(base | {"type": "colour"})[0] == 400
    assert refused(base | {"label": "   "})[0] == 400

    one = f"{ATTRIBUTES}/{made['plan']['id']}"
    renamed = client.patch(one, json={"label": "Subscription", "options": ["free", "gold", "vip"]})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["label"] == "Subscription"
    assert renamed.json()["options"] == ["free", "gold", "vip"]
    not_a_list = client.patch(f"{ATTRIBUTES}/{made['seats']['id']}", json={"options": ["x"]})
    assert not_a_list.status_code == 409
    assert client.patch(f"{ATTRIBUTES}/{uuid.uuid4()}", json={"label": "x"}).status_code == 404
    assert client.delete(f"{ATTRIBUTES}/{made['seats']['id']}").status_code == 204
    assert client.delete(f"{ATTRIBUTES}/{made['seats']['id']}").status_code == 404
    assert [r["detail"]["key"] for r in audited(env, "attribute.created")] == list(made)[::-1]
    [updated] = audited(env, "attribute.updated")
    assert updated["detail"]["fields"] == ["label", "options"]
    [deleted] = audited(env, "attribute.deleted")
    assert deleted["detail"] == {"key": "seats", "values_removed": 0}

    # Agents read the definitions but may not change them.
    email = f"agent-{uuid.uuid4().hex[:8]}@acme.example"
    join(client, {}, email, "Agent", STRONG_PASSWORD)
    admin = client.headers.pop("authorization")
    login = client.post("/api/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    token = client.post("/api/tokens", json={"name": "t"}, headers=csrf).json()["token"]
    client.cookies.clear()
    client.headers["authorization"] = admin
    agent = {"authorization": f"Bearer {token}"}
    assert client.get(ATTRIBUTES, headers=agent).status_code == 200
    assert client.post(ATTRIBUTES, json=base, headers=agent).status_code == 403


def test_values_are_checked_by_type_stored_and_published(env: Env) -> None:
    client = env.client
    standard(env)
    talk = started(env)
    on_conversation = f"/api/conversations/{talk['id']}/attributes"
    on_contact = f"/api/contacts/{talk['contact_id']}/attributes"
    assert client.get(on_conversation).json() == {"values": {}}

    def refused(url: str, values: dict[str, Any]) -> str:
        answer = client.patch(url, json={"values": values})
        assert answer.status_code == 400, answer.text
        return error_code(answer)

    bad = "invalid_attribute_value"
    assert refused(on_contact, {"seats": "many"}) == bad
    assert refused(on_contact, {"seats": "inf"}) == bad
    assert refused(on_contact, {"seats": 10**400}) == bad  # too large for a float
    assert refused(on_contact, {"seats": True}) == "bad_request"  # not a JSON string or number
    assert refused(on_contact, {"renewal": "2026-02-30"}) == bad
    assert refused(on_contact, {"renewal": "next week"}) == bad
    assert refused(on_contact, {"plan": "Gold"}) == bad  # exactly one of the options
    assert refused(on_conversation, {"invoice": "javascript:alert(1)"}) == bad
    assert refused(on_conversation, {"invoice": "ftp://files.example/1"}) == bad
    assert refused(on_conversation, {"order": "x" * 501}) == bad
    assert refused(on_conversation, {"plan": "gold"}) == "unknown_attribute"  # a contact's
    assert refused(on_conversation, {"nope": "1"}) == "unknown_attribute"
    # Nothing was stored by a refused change, not even its valid part.
    assert refused(on_conversation, {"order": "A-1", "invoice": "nope"}) == bad
    assert client.get(on_conversation).json() == {"values": {}}
    missing = client.patch(
        f"/api/conversations/{uuid.uuid4()}/attributes", json={"values": {"order": "1"}}
    )
    assert missing.status_code == 404

    with client.websocket_connect("/ws/agent") as agent:
        hello(agent, env.tenant.api_token)
        answer = client.patch(
            on_conversation,
            json={"values": {"order": " A-1042 ", "invoice": "https://pay.example/i/1042"}},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["values"] == {
            "order": "A-1042",
            "invoice": "https://pay.example/i/1042",
        }
        event = next_event(agent, "conversation.updated")["data"]
        assert event == {
            "conversation_id": talk["id"],
            "attributes": {"order": "A-1042", "invoice": "https://pay.example/i/1042"},
            "by": str(env.tenant.admin_id),
        }
        answer = client.patch(
            on_contact, json={"values": {"plan": "gold", "seats": "12", "renewal": "2027-01-31"}}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["values"] == {"plan": "gold", "seats": 12, "renewal": "2027-01-31"}
        event = next_event(agent, "contact.updated")["data"]
        assert event["contact_id"] == talk["contact_id"]
        assert event["attributes"] == {"plan": "gold", "seats": 12, "renewal": "2027-01-31"}
        cleared = client.patch(on_contact, json={"values": {"seats": None}})
        assert cleared.json()["values"] == {"plan": "gold", "renewal": "2027-01-31"}
        assert next_event(agent, "contact.updated")["data"]["attributes"] == {"seats": None}
    assert client.get(on_contact).json()["values"] == {"plan": "gold", "renewal": "2027-01-31"}
    # The contact's name and the like are not touched by a change of attributes.
    assert client.get(f"/api/contacts/{talk['contact_id']}").status_code == 200
    row = audited(env, "attribute.values_changed")[0]  # newest first
    assert row["target_id"] == talk["contact_id"] and "gold" not in str(row)


def test_the_same_change_at_the_same_moment_answers_409_never_500(env: Env) -> None:
    """Two admins defining one key, or agents setting one value, at once: one wins, the
    others hear `conflict` (a unique key in the database decides), none an error."""
    client = env.client
    talk = started(env)
    body = {"key": "tier", "label": "Tier", "type": "text", "applies_to": "contact"}
    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(lambda _: client.post(ATTRIBUTES, json=body), range(8))
    made = [a.status_code for a in answers]
    assert made.count(201) == 1 and set(made) == {201, 409}, made
    url = f"/api/contacts/{talk['contact_id']}/attributes"

    def put(i: int) -> int:
        return client.patch(url, json={"values": {"tier": f"t{i}"}}).status_code

    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(put, range(8)))
        assert 200 in codes and set(codes) <= {200, 409}, codes
    assert client.get(url).json()["values"]["tier"].startswith("t")


def test_the_conversations_list_filters_by_attributes(env: Env) -> None:
    client = env.client
    made = standard(env)
    first, second = started(env, "first"), started(env, "second")
    for talk, plan, seats, order in ((first, "gold", 5, "A-1"), (second, "free", 50, "B-2")):
        contact = f"/api/contacts/{talk['contact_id']}/attributes"
        assert (
            client.patch(contact, json={"values": {"plan": plan, "seats": seats}}).status_code
            == 200
        )
        mine = f"/api/conversations/{talk['id']}/attributes"
        assert client.patch(mine, json={"values": {"order": order}}).status_code == 200
    assert listed(env, **{"attr.plan": "gold"}) == [first["id"]]
    assert listed(env, **{"attr.seats": "50.0"}) == [second["id"]]  # compared as numbers
    assert listed(env, **{"attr.order": "B-2"}) == [second["id"]]
    assert listed(env, **{"attr.order": "B-2", "attr.plan": "gold"}) == []
    assert listed(env, **{"attr.plan": "gold", "status": "open"}) == [first["id"]]
    for params, code in (
        ({"attr.nope": "1"}, "unknown_attribute"),
        ({"attr.Bad-Key": "1"}, "unknown_attribute"),
        ({"attr.seats": "lots"}, "invalid_attribute_value"),
        ({"attr.plan": "platinum"}, "invalid_attribute_value"),
    ):
        answer = client.get("/api/conversations", params=params)
        assert answer.status_code == 400 and error_code(answer) == code, params
    # Deleting a definition deletes its values: a new one of the same key starts empty.
    assert client.delete(f"{ATTRIBUTES}/{made['plan']['id']}").status_code == 204
    [deleted] = audited(env, "attribute.deleted")
    assert deleted["detail"] == {"key": "plan", "values_removed": 2}
    define(env, key="plan", label="Plan", type="text", applies_to="contact")
    assert listed(env, **{"attr.plan": "gold"}) == []
    values = client.get(f"/api/contacts/{first['contact_id']}/attributes").json()["values"]
    assert values == {"seats": 5}


def test_a_rule_fires_on_attribute_conditions_and_can_be_tried(env: Env) -> None:
    client = env.client
    standard(env)
    conditions = [
        {"field": "contact_attribute", "key": "plan", "op": "equals", "values": ["gold"]},
        {"field": "contact_attribute", "key": "seats", "op": "greater", "values": ["10"]},
        {"field": "conversation_attribute", "key": "order", "op": "is_set"},
    ]
    for wrong in (
        {"field": "contact_attribute", "key": "order", "op": "is_set"},  # a conversation's
        {"field": "contact_attribute", "key": "plan", "op": "greater", "values": ["gold"]},
        {"field": "contact_attribute", "key": "seats", "op": "equals", "values": ["many"]},
        {"field": "contact_attribute", "key": "nope", "op": "is_set"},
        {"field": "contact_attribute", "op": "is_set"},
        {"field": "contact_attribute", "key": "plan", "op": "in", "values": ["gold"]},
    ):
        rule = {"name": "X", "trigger": "message.received", "conditions": [wrong]}
        answer = client.post(RULES, json=rule | {"actions": [{"type": "resolve"}]})
        assert answer.status_code == 400, wrong
    rule = {
        "name": "Gold customers",
        "trigger": "message.received",
        "conditions": conditions,
        "actions": [
            {"type": "add_label", "label": "gold"},
            {"type": "set_priority", "priority": "high"},
        ],
    }
    sample = {
        "contact_attributes": {"plan": "gold", "seats": "12"},
        "conversation_attributes": {"order": "A-1"},
    }
    tried = client.post(f"{RULES}/try", json={"rule": rule, "sample": sample}).json()
    assert tried["matched"] is True, tried
    assert [c["key"] for c in tried["conditions"]] == ["plan", "seats", "order"]
    fewer = sample | {"contact_attributes": {"plan": "gold", "seats": "9"}}
    tried = client.post(f"{RULES}/try", json={"rule": rule, "sample": fewer}).json()
    assert [c["holds"] for c in tried["conditions"]] == [True, False, True]
    made = client.post(RULES, json=rule)
    assert made.status_code == 201, made.text
    assert made.json()["conditions"][2] == {
        "field": "conversation_attribute",
        "key": "order",
        "op": "is_set",
        "values": [],
    }

    visitor = write(env, env.tenant, "hello")  # type: ignore[arg-type]
    conversation_id = visitor["conversation_id"]
    talk = wait_for(lambda: conversation(env, conversation_id), timeout_s=10)
    contact = f"/api/contacts/{talk['contact_id']}/attributes"
    client.patch(contact, json={"values": {"plan": "gold", "seats": 12}})
    # The conversation's order is not set yet: the rule does not fire.
    write(env, env.tenant, "still there?", token=visitor["token"])  # type: ignore[arg-type]
    wait_for(lambda: len(history(env, conversation_id)) == 2, timeout_s=10)
    mine = f"/api/conversations/{conversation_id}/attributes"
    assert client.patch(mine, json={"values": {"order": "A-7"}}).status_code == 200
    write(env, env.tenant, "my order?", token=visitor["token"])  # type: ignore[arg-type]
    done = wait_for(
        lambda: (c := conversation(env, conversation_id)).get("priority") == "high" and c,
        timeout_s=10,
    )
    assert done["labels"] == ["gold"]
    [note] = wait_for(lambda: notes(env, conversation_id))
    assert note.startswith("Rule “Gold customers”")


def test_attributes_go_with_the_contact_export_and_erasure(env: Env) -> None:
    client = env.client
    standard(env)
    talk = started(env)
    contact_id = talk["contact_id"]
    client.patch(f"/api/contacts/{contact_id}/attributes", json={"values": {"plan": "gold"}})
    client.patch(f"/api/conversations/{talk['id']}/attributes", json={"values": {"order": "A-9"}})
    exported = client.get(f"/api/contacts/{contact_id}/export")
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["contact"]["attributes"] == {"plan": "gold"}
    assert [c["attributes"] for c in document["conversations"]] == [{"order": "A-9"}]

    filed = client.post("/api/deletions", json={"contact_id": contact_id})
    assert filed.status_code == 202, filed.text
    one = f"/api/deletions/{filed.json()['id']}"
    wait_for(lambda: client.get(one).json()["status"] == "done", timeout_s=15)
    assert listed(env, **{"attr.plan": "gold"}) == []
    assert listed(env, **{"attr.order": "A-9"}) == []
    assert client.get(f"/api/contacts/{contact_id}/attributes").status_code == 404
    plan = next(d for d in client.get(ATTRIBUTES).json()["items"] if d["key"] == "plan")
    assert client.delete(f"{ATTRIBUTES}/{plan['id']}").status_code == 204
    assert audited(env, "attribute.deleted")[0]["detail"]["values_removed"] == 0  # erased
