"""Canned responses (hub/canned/) and placeholders (hub/canned/placeholders.py): the
workspace's kept by admins, each agent's own private to them, rendered for a
conversation's contact and the agent. Through the app, on SQLite and on Postgres."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from hub.canned import placeholders
from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import ORIGIN, STRONG_PASSWORD, Tenant, backends, prepare
from tests.mailbox import join
from tests.test_api import error_code, hello, next_ack, visitor_token, wait_for

URL = "/api/canned-responses"


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = backends(request, settings)
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True), base_url="http://testserver") as client:
        yield client, acme


def agent_headers(client: TestClient, admin: dict[str, str], name: str) -> dict[str, str]:
    """A new agent, signed in with a bearer token of their own."""
    email, password = f"{name}-{uuid.uuid4().hex[:6]}@acme.example", STRONG_PASSWORD
    join(client, admin, email, name, password)
    login = client.post("/api/auth/login", json={"email": email, "password": password})
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    token = client.post("/api/tokens", json={"name": "t"}, headers=csrf).json()["token"]
    client.cookies.clear()
    return {"authorization": f"Bearer {token}"}


def test_workspace_and_personal_responses_and_who_may_keep_them(
    env: tuple[TestClient, Tenant],
) -> None:
    client, acme = env
    admin = {"authorization": f"Bearer {acme.api_token}"}
    ada, bo = agent_headers(client, admin, "Ada"), agent_headers(client, admin, "Bo")
    shared = {"shortcut": "hello", "text": "Hi {{contact.first_name | there}}, how can I help?"}
    made = client.post(URL, json=shared, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["personal"] is False and made.json()["text"] == shared["text"]
    # An agent may not keep the workspace's, only their own.
    refused = client.post(URL, json={"shortcut": "x", "text": "y"}, headers=ada)
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    own = client.post(URL, json=shared | {"text": "Hey!", "personal": True}, headers=ada)
    assert own.status_code == 201 and own.json()["personal"] is True
    twice = client.post(
        URL, json={"shortcut": "hello", "text": "again", "personal": True}, headers=ada
    )
    assert twice.status_code == 409 and error_code(twice) == "conflict"
    # Ada sees hers before the workspace's of the same shortcut; Bo only the workspace's.
    assert [
        (c["shortcut"], c["personal"]) for c in client.get(URL, headers=ada).json()["items"]
    ] == [
        ("hello", True),
        ("hello", False),
    ]
    assert [c["personal"] for c in client.get(URL, headers=bo).json()["items"]] == [False]
    # Bo can neither see nor touch Ada's own, nor change the workspace's.
    ada_own = f"{URL}/{own.json()['id']}"
    assert client.patch(ada_own, json={"text": "mine now"}, headers=bo).status_code == 404
    assert client.delete(ada_own, headers=bo).status_code == 404
    workspace_one = f"{URL}/{made.json()['id']}"
    assert client.patch(workspace_one, json={"text": "x"}, headers=bo).status_code == 403
    renamed = client.patch(ada_own, json={"shortcut": "hey"}, headers=ada)
    assert renamed.status_code == 200 and renamed.json()["shortcut"] == "hey"
    assert client.delete(ada_own, headers=ada).status_code == 204
    assert client.delete(ada_own, headers=ada).status_code == 404
    changed = client.patch(workspace_one, json={"text": "Hello {{contact.name}}!"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["text"] == "Hello {{contact.name}}!"


def test_bad_shortcuts_and_unknown_placeholders_are_refused(env: tuple[TestClient, Tenant]) -> None:
    client, acme = env
    admin = {"authorization": f"Bearer {acme.api_token}"}
    for shortcut in ("", "Hello", "/hello", "with space", "x" * 41, "-lead"):
        answer = client.post(URL, json={"shortcut": shortcut, "text": "t"}, headers=admin)
        assert answer.status_code == 400 and error_code(answer) == "bad_request", shortcut
    typo = client.post(URL, json={"shortcut": "hi", "text": "Hi {{contact.nmae}}"}, headers=admin)
    assert typo.status_code == 400 and error_code(typo) == "unknown_placeholder"
    assert "{{contact.nmae}}" in typo.json()["error"]["message"]
    made = client.post(URL, json={"shortcut": "hi", "text": "Hi"}, headers=admin).json()
    patched = client.patch(f"{URL}/{made['id']}", json={"text": "{{ agent.phone }}"}, headers=admin)
    assert patched.status_code == 400 and error_code(patched) == "unknown_placeholder"
    assert client.get(URL, headers=admin).json()["items"][0]["text"] == "Hi"


def test_rendered_for_a_conversation_with_the_contacts_and_the_agents_names(
    env: tuple[TestClient, Tenant],
) -> None:
    client, acme = env
    admin = {"authorization": f"Bearer {acme.api_token}"}
    texts = {
        "greet": "Hi {{contact.first_name | there}}, {{agent.first_name}} here.",
        "full": "Dear {{contact.name}}",
    }
    for shortcut, text in texts.items():
        assert client.post(URL, json={"shortcut": shortcut, "text": text}, headers=admin).is_success
    visitor = visitor_token(client, acme)
    conversation_id = visitor["conversation_id"]
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, visitor["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": "hi"}))
        next_ack(ws)

    def rendered() -> dict[str, str]:
        answer = client.get(URL, params={"conversation_id": conversation_id}, headers=admin)
        if answer.status_code != 200:
            return {}
        return {c["shortcut"]: c["rendered"] for c in answer.json()["items"]}

    # No name known yet: the fallback, or nothing.
    assert wait_for(rendered) == {"greet": "Hi there, acme here.", "full": "Dear "}
    profile = {"token": visitor["token"], "name": "Ayşe Yılmaz"}
    answer = client.post("/api/widget/profile", json=profile, headers={"origin": ORIGIN})
    assert answer.status_code == 204
    wait_for(lambda: rendered()["full"] == "Dear Ayşe Yılmaz")
    assert rendered()["greet"] == "Hi Ayşe, acme here."
    missing = client.get(URL, params={"conversation_id": str(uuid.uuid4())}, headers=admin)
    assert missing.status_code == 404


@given(st.text(max_size=60), st.text(max_size=20), st.text(max_size=20))
def test_rendering_keeps_the_rest_of_the_text_and_fills_only_known_names(
    text: str, contact: str, agent: str
) -> None:
    known = placeholders.values(contact, agent)
    assert placeholders.render(text, known) == text or "{{" in text
    filled = placeholders.render(text + "{{agent.name}}", known)
    assert filled.endswith(agent.strip()) or "{{" in text
