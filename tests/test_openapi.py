"""The OpenAPI document: complete, well-formed, served by the app, and true of real answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from hub.accounts import invite_routes as invitations
from hub.accounts import profile_routes, session_routes, twofactor_routes, workspace
from hub.accounts import reset_routes as resets
from hub.accounts import routes as accounts
from hub.attributes import routes as attributes
from hub.automation import routes as automation
from hub.canned import routes as canned
from hub.channels import facebook, oauth, signup
from hub.channels import routes as channels
from hub.comments import routes as comments
from hub.contacts import routes as contacts
from hub.conversations import routes as conversations
from hub.conversations import workflow
from hub.hooks import routes as hooks
from hub.media import routes as media
from hub.media import signed as media_links
from hub.notify import routes as notify
from hub.privacy import export
from hub.privacy import routes as privacy
from hub.reports import routes as reports
from hub.routing import routes as routing
from hub.settings import Settings
from hub.templates import routes as templates
from hub.web import status as status_api
from hub.web.app import create_app
from hub.web.openapi import document
from hub.webchat import routes as webchat
from hub.webchat import visitor_info
from tests.fakeonboarding import FakeOnboarding, FakePage
from tests.fakeplatform import TELEGRAM, running_fake
from tests.helpers import ORIGIN, OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant, prepare
from tests.mailbox import join, outbox, token_in, wait_letter
from tests.test_api import visitor_token, wait_for

DOC = document()
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENTED_ELSEWHERE = {("/healthz", "get"), ("/readyz", "get")}
# The operations the inbox uses and those of the admin console, each walked by one test below.
INBOX = {"login", "logout", "me", "socket_token", "create_token", "list_channels"}
INBOX |= {"connect_channel", "disconnect_channel", "list_conversations", "queue", "presence"}
INBOX |= {"get_conversation", "change_conversation", "list_messages", "send_message", "react"}
INBOX |= {"list_contacts", "get_contact", "search", "switch_workspace"}
ADMIN = {"list_members", "add_member", "change_member", "remove_member", "audit_log"}
ADMIN |= {"list_invitations", "resend_invitation", "revoke_invitation"}
ADMIN |= {"list_teams", "create_team", "change_team", "delete_team", "channel_health"}
ADMIN |= {"get_channel", "change_channel", "new_identity_secret"}


def named(names: set[str]) -> list[BaseRoute]:
    every = [*accounts.routes, *invitations.routes, *session_routes.routes]
    every += [*channels.routes, *conversations.routes, *routing.routes]
    found = [r for r in every if isinstance(r, Route) and r.name in names]
    assert {r.name for r in found if isinstance(r, Route)} == names
    return found


def api_operations(routes: list[BaseRoute] | None = None) -> set[tuple[str, str]]:
    operations = set()
    every = [
        *accounts.routes,
        *session_routes.routes,
        *profile_routes.routes,
        *invitations.routes,
        *resets.routes,
        *channels.routes,
        *conversations.routes,
        *workflow.routes,
        *contacts.routes,
        *media.routes,
        *media_links.routes,
        *routing.routes,
        *export.routes,
        *webchat.routes,
        *visitor_info.routes,
        *oauth.api_routes,
        *facebook.api_routes,
        *signup.api_routes,
        *privacy.api_routes,
        *privacy.routes,
        *workspace.routes,
        *twofactor_routes.routes,
        *status_api.routes,
        *canned.routes,
        *reports.routes,
        *hooks.routes,
        *automation.routes,
        *attributes.routes,
        *templates.routes,
        *comments.routes,
        *notify.routes,
    ]
    for route in every if routes is None else routes:
        assert isinstance(route, Route) and route.methods is not None
        # Starlette adds HEAD to every GET route by itself; OPTIONS is CORS plumbing.
        for method in route.methods - {"HEAD", "OPTIONS"}:
            operations.add((route.path, method.lower()))
    return operations


def documented_operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            assert method in METHODS, f"{path} has a non-method key {method}"
            yield path, method, operation


def test_every_route_is_documented_and_nothing_else() -> None:
    documented = {(path, method) for path, method, _ in documented_operations()}
    assert documented == api_operations() | DOCUMENTED_ELSEWHERE


def test_document_structure() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    schemes = DOC["components"]["securitySchemes"]
    session, csrf = schemes["session"], schemes["csrf"]
    assert (session["type"], session["in"], session["name"]) == ("apiKey", "cookie", "hub_session")
    assert (csrf["type"], csrf["in"], csrf["name"]) == ("apiKey", "header", "X-CSRF-Token")
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # 3.1 schemas are JSON Schema 2020-12


def test_every_ref_resolves() -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOC)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        target: Any = DOC
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"{ref} does not resolve"
            target = target[part]


@pytest.mark.parametrize("path,method", sorted(api_operations() | DOCUMENTED_ELSEWHERE))
def test_operation_is_complete(path: str, method: str) -> None:
    operation = DOC["paths"][path][method]
    assert operation["summary"]
    assert operation["operationId"]
    declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
    assert declared == set(re.findall(r"{(\w+)}", path))
    responses = operation["responses"]
    assert any(status.startswith("2") for status in responses)
    for status, response in responses.items():
        assert response["description"]
        if status[0] == "4":
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    security = operation["security"]
    if security:
        assert {"bearer": []} in security
        session = {"session": [], "csrf": []} if method != "get" else {"session": []}
        assert session in security
        assert "401" in responses
        if method != "get":
            assert "403" in responses  # a missing CSRF token
    if "requestBody" in operation:
        assert "400" in responses and "413" in responses


def test_query_parameters() -> None:
    def names(path: str, method: str) -> set[str]:
        return {p["name"] for p in DOC["paths"][path][method]["parameters"] if p["in"] == "query"}

    assert names("/api/conversations", "get") == {
        "limit",
        "cursor",
        "status",
        "assignee",
        "mentions",
        "channel_id",
        "label",
        "team_id",
        "priority",
        "attr.{key}",
    }
    assert names("/api/conversations/{conversation_id}/messages", "get") == {"limit", "before"}
    [limit] = [
        p
        for p in document(20)["paths"]["/api/conversations"]["get"]["parameters"]
        if p["name"] == "limit"
    ]
    assert limit["schema"]["maximum"] == 20


def test_error_shape() -> None:
    check = schema_validator("ErrorBody")
    assert check.is_valid({"error": {"code": "not_found", "message": "No such conversation."}})
    assert not check.is_valid({"error": {"code": "not_found"}})
    assert not check.is_valid({"code": "not_found", "message": "x"})


def test_document_passes_the_openapi_spec_validator() -> None:
    import openapi_spec_validator

    openapi_spec_validator.validate(json.loads(json.dumps(DOC)))


# Through the app: it serves the document, and real answers match it


def schema_validator(name: str, doc: dict[str, Any] = DOC) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


class Checked:
    """A test client whose every answer must be one the document promises."""

    def __init__(self, client: TestClient, doc: dict[str, Any]) -> None:
        self.client = client
        self.doc = doc
        self.seen: set[tuple[str, str, int]] = set()

    def call(self, method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        response = self.client.request(method, path or template, **kwargs)
        operation = self.doc["paths"][template][method.lower()]
        documented = operation["responses"].get(str(response.status_code))
        assert documented, f"{method} {template} answered an undocumented {response.status_code}"
        content = documented.get("content")
        if content is None:
            assert not response.content
        elif "application/json" not in content:
            assert "*/*" in content  # a file
        else:
            name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            body = response.json()
            errors = [e.message for e in schema_validator(name, self.doc).iter_errors(body)]
            assert not errors, f"{method} {template} {response.status_code}: {body} {errors}"
        self.seen.add((template, method.lower(), response.status_code))
        return response


@pytest.fixture
def app_env(settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    with running_fake() as fake:  # connecting a Telegram bot calls setWebhook
        settings = settings.with_overrides(
            public_url="https://hub.example",
            telegram_api_url=fake.base_urls().telegram,
            graph_url=fake.base_urls().graph,  # disconnecting a Page unsubscribes it
            instagram_app_id="990000000000001",
            instagram_app_secret="ig-app-secret-for-tests",
        )
        # Pages pasted in below: a pasted token is checked against the platform.
        pages = FakeOnboarding.of(fake).pages
        pages += [FakePage(page_id, "Page", "t") for page_id in ("42", "43", "4242")]
        [tenant] = prepare(settings, "acme")  # migrates first
        app = create_app(settings, run_worker=True)
        with TestClient(app, base_url="https://hub.example") as client:
            yield client, tenant


def test_endpoint_serves_the_document(
    app_env: tuple[TestClient, Tenant], settings: Settings
) -> None:
    client, _ = app_env
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(json.dumps(document(settings.page_max_items)))


def test_real_answers_match_the_document(app_env: tuple[TestClient, Tenant]) -> None:
    client, tenant = app_env
    checked = Checked(client, client.get("/api/openapi.json").json())

    def status(method: str, template: str, path: str | None = None, **kwargs: Any) -> int:
        return int(checked.call(method, template, path, **kwargs).status_code)

    def body(method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        return checked.call(method, template, path, **kwargs).json()

    credentials = {"email": tenant.email, "password": tenant.password}
    assert status("GET", "/healthz") == 200
    assert status("GET", "/api/me") == 401
    assert status("POST", "/api/auth/login", json={**credentials, "password": "no"}) == 401
    csrf = {"x-csrf-token": body("POST", "/api/auth/login", json=credentials)["csrf_token"]}
    assert status("GET", "/api/me") == 200
    assert status("POST", "/api/agent/socket-token") == 403  # no CSRF header
    assert status("POST", "/api/agent/socket-token", headers=csrf) == 200
    assert status("POST", "/api/tokens", json={"name": ""}, headers=csrf) == 400
    made = body("POST", "/api/tokens", json={"name": "ci"}, headers=csrf)
    assert [t["id"] for t in body("GET", "/api/tokens")["items"]].count(made["id"]) == 1
    one_token = "/api/tokens/{token_id}"
    revoked = body("DELETE", one_token, one_token.format(token_id=made["id"]), headers=csrf)
    assert revoked["revoked_at"]
    assert status("DELETE", one_token, one_token.format(token_id=uuid.uuid4()), headers=csrf) == 404
    change = {"current_password": "wrong", "new_password": "n" * 12}
    assert status("POST", "/api/me/password", json=change, headers=csrf) == 401
    weak = {"current_password": tenant.password, "new_password": "n" * 12}
    assert status("POST", "/api/me/password", json=weak, headers=csrf) == 400
    assert status("GET", "/api/channels") == 200
    bearer = {"authorization": f"Bearer {tenant.api_token}"}
    assert status("GET", "/api/channels", headers=bearer) == 200
    assert status("GET", "/api/conversations", params={"limit": 0}) == 400
    assert status("GET", "/api/conversations", params={"status": "lost"}) == 400
    assert body("GET", "/api/conversations/queue") == {"unassigned": 0, "teams": []}
    assert body("GET", "/api/contacts", params={"q": "nobody"}) == {
        "items": [],
        "next_cursor": None,
    }
    assert status("GET", "/api/contacts", params={"cursor": "x"}) == 400
    canned, one_canned = "/api/canned-responses", "/api/canned-responses/{canned_id}"
    saved = body(
        "POST", canned, json={"shortcut": "hi", "text": "Hi {{contact.name}}"}, headers=csrf
    )
    assert status("POST", canned, json={"shortcut": "hi", "text": "x"}, headers=csrf) == 409
    assert status("POST", canned, json={"shortcut": "x", "text": "{{nope}}"}, headers=csrf) == 400
    assert [c["id"] for c in body("GET", canned)["items"]] == [saved["id"]]
    assert status("GET", canned, params={"conversation_id": str(uuid.uuid4())}) == 404
    saved_path = one_canned.format(canned_id=saved["id"])
    assert (
        body("PATCH", one_canned, saved_path, json={"text": "Hello"}, headers=csrf)["text"]
        == "Hello"
    )
    assert status("DELETE", one_canned, saved_path, headers=csrf) == 204
    assert status("DELETE", one_canned, saved_path, headers=csrf) == 404
    hook = body("POST", "/api/hooks", json={"url": "https://example.com/hook"}, headers=csrf)
    assert hook["secret"] and body("GET", "/api/hooks")["items"][0]["id"] == hook["id"]
    assert body("GET", "/api/hooks/deliveries", params={"status": "dead"}) == {"items": []}
    replay = "/api/hooks/deliveries/{delivery_id}/replay"
    missing = replay.format(delivery_id=uuid.uuid4())
    assert status("POST", replay, missing, headers=csrf) == 404
    one_hook = "/api/hooks/{hook_id}"
    assert status("DELETE", one_hook, one_hook.format(hook_id=hook["id"]), headers=csrf) == 204
    rules, one_rule = "/api/automation-rules", "/api/automation-rules/{rule_id}"
    rule = {
        "name": "Refunds",
        "trigger": "message.received",
        "conditions": [{"field": "text", "op": "contains", "values": ["refund"]}],
        "actions": [{"type": "add_label", "label": "refund"}, {"type": "send_reply", "text": "Hi"}],
    }
    sample = {"text": "A refund, please"}
    tried = body("POST", rules + "/try", json={"rule": rule, "sample": sample}, headers=csrf)
    assert tried["matched"] and tried["changes"] == {"labels_add": ["refund"]}
    made_rule = body("POST", rules, json=rule, headers=csrf)
    assert [r["id"] for r in body("GET", rules)["items"]] == [made_rule["id"]]
    assert status("POST", rules, json={**rule, "actions": []}, headers=csrf) == 400
    rule_path = one_rule.format(rule_id=made_rule["id"])
    patched = body("PATCH", one_rule, rule_path, json={"enabled": False}, headers=csrf)
    assert patched["enabled"] is False
    assert status("DELETE", one_rule, rule_path, headers=csrf) == 204
    assert status("DELETE", one_rule, rule_path, headers=csrf) == 404
    week = {"from": "2026-11-01", "to": "2026-11-07", "timezone": "Europe/Istanbul"}
    assert len(body("GET", "/api/reports", params=week | {"by": "day"})["rows"]) == 7
    assert status("GET", "/api/reports", params=week | {"from": "2026-12-01"}) == 400

    widget, origin = {"channel": tenant.public_key}, {"origin": ORIGIN}
    evil = {"origin": "https://evil.example"}
    assert status("POST", "/api/widget/token", json=widget, headers=evil) == 403
    assert status("POST", "/api/widget/token", json={"channel": "nope"}, headers=origin) == 404
    visitor = body("POST", "/api/widget/token", json=widget, headers=origin)
    with client.websocket_connect("/ws/visitor", headers=origin) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": visitor["token"]}))
        assert ws.receive_json()["type"] == "welcome"
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v-1", "text": "Hi"}))
        while ws.receive_json()["type"] != "ack":
            pass

    def listed() -> list[Any]:
        return list(body("GET", "/api/conversations", params={"limit": 1})["items"])

    assert [c["id"] for c in eventually(listed)] == [visitor["conversation_id"]]
    one = "/api/conversations/{conversation_id}"
    path = one.format(conversation_id=visitor["conversation_id"])
    assert status("GET", one, path) == 200
    assert status("GET", one, one.format(conversation_id=uuid.uuid4())) == 404
    messages, reply = one + "/messages", {"client_id": "a-1", "text": "Hello!"}
    assert status("POST", messages, path + "/messages", json=reply, headers=csrf) == 202
    assert status("POST", messages, path + "/messages", json=reply, headers=csrf) == 200
    resolve = {"status": "resolved"}
    assert body("PATCH", one, path, json=resolve, headers=csrf)["changes"] == resolve
    assert status("PATCH", one, path, json={}, headers=csrf) == 400
    assert status("GET", "/api/conversations", params={"assignee": "me"}) == 200
    contact = "/api/contacts/{contact_id}"
    panel = body("GET", contact, contact.format(contact_id=body("GET", one, path)["contact"]["id"]))
    assert [c["id"] for c in panel["conversations"]] == [visitor["conversation_id"]]
    assert status("GET", contact, contact.format(contact_id=uuid.uuid4())) == 404
    exported = contact + "/export"
    dump = body("GET", exported, exported.format(contact_id=panel["id"]))
    assert [m["text"] for m in dump["messages"]] == ["Hi", "Hello!"]
    assert status("GET", exported, exported.format(contact_id=uuid.uuid4())) == 404
    assert body("GET", "/api/search", params={"q": "Hi"})["messages"]
    assert status("GET", "/api/search", params={"q": "x"}) == 400
    assert body("GET", "/api/presence")["items"][0]["state"] in ("online", "away", "offline")
    reactions = one + "/reactions"
    wave = {"client_id": "re-1", "platform_message_id": "v:1", "emoji": "👍"}
    assert (
        status("POST", reactions, path + "/reactions", json=wave, headers=csrf) == 400
    )  # web chat
    empty = {"client_id": "a-2"}
    assert status("POST", messages, path + "/messages", json=empty, headers=csrf) == 400
    assert status("POST", messages, path + "/messages", json=reply) == 403
    huge = {**reply, "text": "x" * 10_000, "padding": "y" * 2_000_000}
    assert status("POST", messages, path + "/messages", json=huge, headers=csrf) == 413

    def history() -> list[Any]:
        items = list(body("GET", messages, path + "/messages")["items"])
        return items if len(items) == 2 else []

    assert [m["client_id"] for m in eventually(history)] == ["v-1", "a-1"]
    bot = {"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token}
    connected = body("POST", "/api/channels", json=bot, headers=csrf)
    assert connected["webhook"]["secret_token"] and connected["kind"] == "telegram"
    assert status("POST", "/api/channels", json=bot, headers=csrf) == 409
    assert (
        status("POST", "/api/channels", json={"kind": "whatsapp", "name": "x"}, headers=csrf) == 400
    )
    page = {"kind": "messenger", "name": "Page", "account_id": "42", "access_token": "t"}
    hosted = body("POST", "/api/channels", json=page, headers=csrf)
    assert hosted["webhook"]["hosted_app"] is True
    own = page | {"account_id": "43", "app_secret": "s" * 20}
    assert body("POST", "/api/channels", json=own, headers=csrf)["webhook"]["verify_token"]
    authorize = "/api/channels/instagram/authorize"
    assert body("POST", authorize, json={"name": "Shop IG"}, headers=csrf)["url"].startswith(
        "https://"
    )
    assert status("POST", authorize, json={"name": ""}, headers=csrf) == 400
    one_channel = "/api/channels/{channel_id}"
    gone = one_channel.format(channel_id=connected["id"])
    disconnected = body("DELETE", one_channel, gone, headers=csrf)
    assert disconnected["status"] == "disconnected" and disconnected["unsubscribed"] is True
    pasted = one_channel.format(channel_id=hosted["id"])
    wrong = {"params": {"delete_data": "maybe"}, "headers": csrf}
    assert status("DELETE", one_channel, pasted, **wrong) == 400
    erased = body("DELETE", one_channel, pasted, params={"delete_data": "true"}, headers=csrf)
    assert erased["data_deletion"]["status"] == "received"
    missing = one_channel.format(channel_id=uuid.uuid4())
    assert status("DELETE", one_channel, missing, headers=csrf) == 404
    switch = "/api/auth/switch"  # the inbox's workspace picker
    assert status("POST", switch, json={"workspace_id": str(uuid.uuid4())}, headers=csrf) == 404
    assert status("POST", switch, json={}, headers=csrf) == 400
    switched = body("POST", switch, json={"workspace_id": str(tenant.workspace_id)}, headers=csrf)
    csrf = {"x-csrf-token": switched["csrf_token"]}
    assert status("POST", "/api/auth/logout", headers=csrf) == 204
    assert status("POST", "/api/auth/logout", headers=csrf) == 401
    inbox = api_operations([*named(INBOX), *oauth.api_routes])  # the admin console's: below
    assert inbox <= {(p, m) for p, m, _ in checked.seen}


def eventually(probe: Any, timeout_s: float = 5.0) -> Any:
    """The worker persists in the background; wait for the answer to show it."""
    deadline = time.monotonic() + timeout_s
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.025)
    return value


def test_admin_answers_match_the_document(app_env: tuple[TestClient, Tenant]) -> None:
    client, tenant = app_env
    checked = Checked(client, client.get("/api/openapi.json").json())

    def status(method: str, template: str, path: str | None = None, **kwargs: Any) -> int:
        return int(checked.call(method, template, path, **kwargs).status_code)

    def body(method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        return checked.call(method, template, path, **kwargs).json()

    members, health = "/api/members", "/api/channels/health"
    assert status("GET", members) == 401
    assert status("GET", health) == 401
    login = {"email": tenant.email, "password": tenant.password}
    csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}
    assert body("GET", members)["items"][0]["role"] == "admin"
    new = {"email": "agent@acme.example", "role": "agent"}
    assert status("POST", members, json=new | {"password": "p" * 12}, headers=csrf) == 400
    assert status("POST", members, json=new) == 403  # no CSRF header
    letters = lambda: outbox(client.app.state.services.settings.data_dir)  # noqa: E731
    invited = body("POST", members, json=new, headers=csrf)
    assert status("POST", members, json={"email": tenant.email}, headers=csrf) == 409
    pending, invitation = "/api/invitations", "/api/invitations/{invitation_id}"
    resend = invitation + "/resend"
    at = invitation.format(invitation_id=invited["id"])
    assert [i["id"] for i in body("GET", pending)["items"]] == [invited["id"]]
    assert status("POST", resend, at + "/resend", json={}, headers=csrf) == 202
    nowhere = invitation.format(invitation_id=uuid.uuid4())
    assert status("POST", resend, nowhere + "/resend", json={}, headers=csrf) == 404
    assert status("POST", resend, at + "/resend", json={"language": "de"}, headers=csrf) == 400
    token = token_in(wait_letter(letters, new["email"]), "invite")
    opened = "/api/invitations/open"
    assert body("POST", opened, json={"token": token})["has_account"] is False
    assert status("POST", opened, json={}) == 400
    accept = "/api/invitations/accept"
    kept = list(client.cookies.jar)
    weak = {"token": token, "name": "Agent", "password": "p" * 12}
    assert status("POST", accept, json=weak) == 400
    agent_user = body("POST", accept, json=weak | {"password": STRONG_PASSWORD})
    agent = {"id": agent_user["user"]["user_id"]}
    assert status("POST", accept, json=weak) == 410
    assert status("POST", opened, json={"token": token}) == 410
    client.cookies.clear()
    for cookie in kept:
        client.cookies.jar.set_cookie(cookie)
    other = body("POST", members, json={"email": "other@acme.example"}, headers=csrf)
    gone = invitation.format(invitation_id=other["id"])
    assert body("DELETE", invitation, gone, headers=csrf)["id"] == other["id"]
    assert status("DELETE", invitation, gone, headers=csrf) == 404

    reset, confirm = "/api/password-reset", "/api/password-reset/confirm"
    assert status("POST", reset, json={"email": "nobody@acme.example"}) == 202
    assert status("POST", reset, json={"email": new["email"]}) == 202
    assert status("POST", reset, json={}) == 400
    reset_token = token_in(wait_letter(letters, new["email"]), "reset")
    assert status("POST", confirm, json={"token": reset_token, "new_password": "p" * 12}) == 400
    good = {"token": reset_token, "new_password": OTHER_STRONG_PASSWORD}
    assert status("POST", confirm, json=good) == 204
    assert status("POST", confirm, json=good) == 410
    flood = [status("POST", reset, json={"email": f"flood{i}@acme.example"}) for i in range(31)]
    assert set(flood) == {202, 429} and flood[-1] == 429  # 30 an hour from one address
    routes = api_operations([*invitations.routes, *resets.routes])
    assert routes <= {(p, m) for p, m, _ in checked.seen}
    one = "/api/members/{user_id}"
    path, me = one.format(user_id=agent["id"]), one.format(user_id=tenant.admin_id)
    assert body("PATCH", one, path, json={"role": "admin"}, headers=csrf)["role"] == "admin"
    assert body("PATCH", one, path, json={"role": "agent"}, headers=csrf)["role"] == "agent"
    assert status("PATCH", one, path, json={"role": "owner"}, headers=csrf) == 400
    assert status("PATCH", one, me, json={"role": "agent"}, headers=csrf) == 409  # last admin
    missing = one.format(user_id=uuid.uuid4())
    assert status("PATCH", one, missing, json={"role": "agent"}, headers=csrf) == 404
    assert status("DELETE", one, me, headers=csrf) == 409
    assert status("DELETE", one, missing, headers=csrf) == 404
    assert body("PATCH", one, path, json={"capacity": 3}, headers=csrf)["capacity"] == 3
    assert status("PATCH", one, path, json={"capacity": -1}, headers=csrf) == 400

    teams, team = "/api/teams", "/api/teams/{team_id}"
    sales = body("POST", teams, json={"name": "Sales", "member_ids": [agent["id"]]}, headers=csrf)
    assert status("POST", teams, json={"name": "Sales"}, headers=csrf) == 409
    assert (
        status("POST", teams, json={"name": "X", "member_ids": [str(uuid.uuid4())]}, headers=csrf)
        == 400
    )
    sales_path = team.format(team_id=sales["id"])
    changed = body("PATCH", team, sales_path, json={"assignment": "least_busy"}, headers=csrf)
    assert changed["assignment"] == "least_busy" and changed["member_ids"] == [agent["id"]]
    assert [t["name"] for t in body("GET", teams)["items"]] == ["Sales"]
    gone = team.format(team_id=uuid.uuid4())
    assert status("PATCH", team, gone, json={"name": "x"}, headers=csrf) == 404
    assert status("DELETE", team, sales_path, headers=csrf) == 204
    assert status("DELETE", team, sales_path, headers=csrf) == 404

    page = body("GET", "/api/audit", params={"action": "member.", "limit": 1})
    assert page["items"][0]["action"] == "member.capacity_changed" and page["next_cursor"]
    assert status("GET", "/api/audit", params={"since": "yesterday"}) == 400

    [site] = body("GET", health)["items"]
    channel = "/api/channels/{channel_id}"
    site_path = channel.format(channel_id=site["id"])
    assert body("GET", channel, site_path)["settings"] == {}
    widget = {"settings": {"title": "Hi", "colour": "#0a7f5c", "locale": "tr"}}
    assert (
        body("PATCH", channel, site_path, json=widget, headers=csrf)["settings"]["locale"] == "tr"
    )
    bad = {"allowed_origins": ["https://shop.example/path"]}
    assert status("PATCH", channel, site_path, json=bad, headers=csrf) == 400
    nowhere = channel.format(channel_id=uuid.uuid4())
    assert status("GET", channel, nowhere) == 404
    assert status("PATCH", channel, nowhere, json={"name": "x"}, headers=csrf) == 404
    identity = channel + "/identity-secret"
    made = body("POST", identity, site_path + "/identity-secret", headers=csrf)
    assert len(made["identity_secret"]) >= 40
    assert status("POST", identity, nowhere + "/identity-secret", headers=csrf) == 404
    page = {"kind": "messenger", "name": "Page", "account_id": "42", "access_token": "t"}
    messenger = client.post("/api/channels", json=page, headers=csrf).json()
    other = channel.format(channel_id=messenger["id"]) + "/identity-secret"
    assert status("POST", identity, other, headers=csrf) == 400

    # As the agent: the admin operations answer 403.
    assert status("DELETE", one, path, params={"erase_account": "true"}, headers=csrf) == 204
    login = {"email": "a2@acme.example", "password": STRONG_PASSWORD}
    join(client, csrf, login["email"], "A2", login["password"])
    csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}
    assert status("GET", "/api/audit") == 403
    assert status("GET", pending) == 403
    assert status("DELETE", invitation, at, headers=csrf) == 403
    assert status("PATCH", one, me, json={"role": "agent"}, headers=csrf) == 403
    assert status("PATCH", channel, site_path, json={"name": "x"}, headers=csrf) == 403
    assert status("GET", members) == 200 and status("GET", health) == 200
    assert status("POST", identity, site_path + "/identity-secret", headers=csrf) == 403
    assert api_operations(named(ADMIN)) <= {(p, m) for p, m, _ in checked.seen}


def test_widget_answers_match_the_document(app_env: tuple[TestClient, Tenant]) -> None:
    client, tenant = app_env
    checked = Checked(client, client.get("/api/openapi.json").json())

    def status(method: str, template: str, **kwargs: Any) -> int:
        return int(checked.call(method, template, **kwargs).status_code)

    def body(method: str, template: str, **kwargs: Any) -> Any:
        return checked.call(method, template, **kwargs).json()

    origin, evil = {"origin": ORIGIN}, {"origin": "https://evil.example"}
    config, key = "/api/widget/config", {"channel": tenant.public_key}
    assert status("GET", config, params=key, headers=evil) == 403
    assert status("GET", config, params={"channel": "nope"}, headers=origin) == 404
    assert body("GET", config, params=key, headers=origin)["hours"] is None
    login = {"email": tenant.email, "password": tenant.password}
    csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}
    site = f"/api/channels/{tenant.channel_id}"
    hours = {"timezone": "Europe/Istanbul", "days": {"mon": [["09:00", "17:00"]]}}
    widget = {"prechat": {"enabled": True}, "hours": hours | {"offline_message": "Back soon"}}
    assert client.patch(site, json={"settings": widget}, headers=csrf).status_code == 200
    secret = client.post(site + "/identity-secret", headers=csrf).json()["identity_secret"]
    shown = body("GET", config, params=key, headers=origin)
    assert shown["identity"] is True and shown["hours"]["timezone"] == "Europe/Istanbul"

    token = "/api/widget/token"
    assert status("POST", token, json=key, headers=evil) == 403
    assert status("POST", token, json={"channel": "nope"}, headers=origin) == 404
    assert status("POST", token, json=key | {"user_id": ""}, headers=origin) == 400
    assert status("POST", token, json=key | {"user_id": "u1"}, headers=origin) == 403
    signed = hmac.new(secret.encode(), b"u1", hashlib.sha256).hexdigest()
    who = key | {"user_id": "u1", "user_hash": signed}
    assert body("POST", token, json=who, headers=origin)["identified"] is True
    visitor = body("POST", token, json=key, headers=origin)
    assert visitor["identified"] is False

    profile, mine = "/api/widget/profile", {"token": visitor["token"]}
    assert status("POST", profile, json=mine | {"name": "Ayşe"}, headers=origin) == 204
    assert status("POST", profile, json=mine | {"email": "nope"}, headers=origin) == 400
    assert status("POST", profile, json={"token": "forged", "name": "x"}, headers=origin) == 401
    assert status("POST", profile, json=mine | {"name": "x"}, headers=evil) == 403

    with client.websocket_connect("/ws/visitor", headers=origin) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": visitor["token"]}))
        assert ws.receive_json()["type"] == "welcome"
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v-1", "text": "Hi"}))
        while ws.receive_json()["type"] != "ack":
            pass
    history = "/api/widget/history"

    def page() -> list[Any]:
        return list(body("POST", history, json=mine, headers=origin)["items"])

    assert [m["text"] for m in eventually(page)] == ["Hi"]
    assert status("POST", history, json=mine | {"limit": 0}, headers=origin) == 400
    assert status("POST", history, json={"token": "forged"}, headers=origin) == 401
    assert status("POST", history, json=mine, headers=evil) == 403

    sent = "/api/widget/messages"
    receipt = [("attachments", ("receipt.pdf", b"%PDF-1.4\n%%EOF\n"))]
    form, bearer = {"client_id": "v-2"}, origin | {"authorization": f"Bearer {visitor['token']}"}
    assert status("POST", sent, data=form, files=receipt, headers=bearer) == 202
    assert status("POST", sent, data=form, files=receipt, headers=bearer) == 200
    assert status("POST", sent, data=form, headers=bearer) == 400
    assert status("POST", sent, data=form, files=receipt, headers=origin) == 401
    page_with_file = eventually(lambda: [m for m in page() if m["attachments"]])
    file = page_with_file[0]["attachments"][0]["file"]
    served = "/api/widget/media/{file}"
    got = checked.call("GET", served, f"/api/widget/media/{file}", headers=bearer)
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert api_operations(list(webchat.routes)) <= {(p, m) for p, m, _ in checked.seen}


def test_privacy_answers_match_the_document(app_env: tuple[TestClient, Tenant]) -> None:
    client, tenant = app_env
    checked = Checked(client, client.get("/api/openapi.json").json())

    def status(method: str, template: str, path: str | None = None, **kwargs: Any) -> int:
        return int(checked.call(method, template, path, **kwargs).status_code)

    def body(method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        return checked.call(method, template, path, **kwargs).json()

    def signed(payload: dict[str, Any], secret: str) -> dict[str, str]:
        segment = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        digest = hmac.new(secret.encode(), segment.encode(), hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return {"signed_request": f"{signature}.{segment}"}

    bearer = {"authorization": f"Bearer {tenant.api_token}"}
    own = {"kind": "messenger", "name": "Own", "account_id": "4242", "access_token": "t"}
    secret = "own-app-secret-for-openapi"
    assert client.post(
        "/api/channels", json=own | {"app_secret": secret}, headers=bearer
    ).is_success
    user = {"algorithm": "HMAC-SHA256", "user_id": "31337"}
    deletion, deauthorize = "/privacy/meta/data-deletion", "/privacy/meta/deauthorize"
    accepted = body("POST", deletion, data=signed(user, secret))
    assert status("POST", deletion, data=signed(user, "not-ours")) == 400
    assert status("POST", deletion, data={}) == 400
    assert body("POST", deauthorize, data=signed(user, secret)) == {}
    assert status("POST", deauthorize, data=signed(user | {"algorithm": "none"}, secret)) == 400
    page, json_please = "/privacy/deletion/{code}", {"accept": "application/json"}
    code = accepted["confirmation_code"]
    mine = page.format(code=code)
    assert eventually(lambda: body("GET", page, mine, headers=json_please)["status"] == "no_data")
    assert client.get(mine).headers["content-type"].startswith("text/html")
    assert status("GET", page, page.format(code="0" * 32), headers=json_please) == 404

    filed = "/api/deletions"
    contact = {"contact_id": str(uuid.uuid4())}
    made = body("POST", filed, json=contact, headers=bearer)
    assert status("POST", filed, json={}, headers=bearer) == 400
    assert status("POST", filed, json=contact) == 401
    one = "/api/deletions/{deletion_id}"
    path = one.format(deletion_id=made["id"])
    assert eventually(lambda: body("GET", one, path, headers=bearer)["status"] == "no_data")
    assert status("GET", one, one.format(deletion_id=uuid.uuid4()), headers=bearer) == 404
    assert body("GET", filed, headers=bearer)["items"][0]["id"] == made["id"]
    assert status("GET", filed, params={"limit": 0}, headers=bearer) == 400
    agent = {"email": "privacy-agent@acme.example", "password": STRONG_PASSWORD}
    join(client, bearer, agent["email"], "A", agent["password"])
    login = client.post("/api/auth/login", json=agent)
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    assert status("GET", filed) == 403
    assert status("GET", one, path) == 403
    assert status("POST", filed, json=contact, headers=csrf) == 403
    routes = api_operations([*privacy.api_routes, *privacy.routes])
    assert routes <= {(p, m) for p, m, _ in checked.seen}


def test_workspace_answers_match_the_document(app_env: tuple[TestClient, Tenant]) -> None:
    client, tenant = app_env
    checked = Checked(client, client.get("/api/openapi.json").json())

    def status(method: str, **kwargs: Any) -> int:
        return int(checked.call(method, "/api/workspace", **kwargs).status_code)

    assert status("GET") == 401
    assert status("PATCH", json={"retention_days": 30}) == 401
    login = {"email": tenant.email, "password": tenant.password}
    csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}
    assert status("GET") == 200
    assert status("PATCH", json={"retention_days": 30}) == 403  # no CSRF header
    assert status("PATCH", json={"retention_days": 30}, headers=csrf) == 200
    assert status("PATCH", json={"retention_days": None}, headers=csrf) == 200
    assert status("PATCH", json={"retention_days": 0}, headers=csrf) == 400
    login = {"email": "agent@acme.example", "password": STRONG_PASSWORD}
    join(client, csrf, login["email"], "Agent", login["password"])
    csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}
    assert status("GET") == 200
    assert status("PATCH", json={"retention_days": 30}, headers=csrf) == 403
    assert api_operations(list(workspace.routes)) <= {(p, m) for p, m, _ in checked.seen}


def test_attribute_answers_match_the_document(app_env: tuple[TestClient, Tenant]) -> None:
    client, tenant = app_env
    checked = Checked(client, client.get("/api/openapi.json").json())

    def status(method: str, template: str, path: str | None = None, **kwargs: Any) -> int:
        return int(checked.call(method, template, path, **kwargs).status_code)

    many, one = "/api/attributes", "/api/attributes/{attribute_id}"
    on_conversation = "/api/conversations/{conversation_id}/attributes"
    on_contact = "/api/contacts/{contact_id}/attributes"
    assert status("GET", many) == 401
    visitor = visitor_token(client, tenant)
    login = {"email": tenant.email, "password": tenant.password}
    csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}
    plan = {"key": "plan", "label": "Plan", "type": "list", "applies_to": "contact"}
    assert status("POST", many, json=plan, headers=csrf) == 400  # a list needs options
    assert status("POST", many, json=plan | {"options": ["gold"]}) == 403  # no CSRF header
    made = checked.call("POST", many, json=plan | {"options": ["gold"]}, headers=csrf).json()
    assert status("POST", many, json=plan | {"options": ["gold"]}, headers=csrf) == 409
    order = {"key": "order", "label": "Order", "type": "text", "applies_to": "conversation"}
    assert status("POST", many, json=order, headers=csrf) == 201
    assert status("GET", many) == 200
    at = one.format(attribute_id=made["id"])
    assert status("PATCH", one, at, json={"options": ["gold", "free"]}, headers=csrf) == 200
    assert status("PATCH", one, at, json={"options": []}, headers=csrf) == 409
    assert status("PATCH", one, at, json={"nope": 1}, headers=csrf) == 400
    nowhere = one.format(attribute_id=uuid.uuid4())
    assert status("PATCH", one, nowhere, json={"label": "x"}, headers=csrf) == 404
    assert status("DELETE", one, nowhere, headers=csrf) == 404

    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": visitor["token"]}))
        ws.receive_json()
        ws.send_text(json.dumps({"type": "message.send", "client_id": "c1", "text": "hi"}))
        ws.receive_json()
    conversation_id = visitor["conversation_id"]
    stored = wait_for(
        lambda: (
            (r := client.get(f"/api/conversations/{conversation_id}")).status_code == 200
            and r.json()
        ),
        timeout_s=10,
    )
    mine = on_conversation.format(conversation_id=conversation_id)
    theirs = on_contact.format(contact_id=stored["contact"]["id"])
    gone = on_conversation.format(conversation_id=uuid.uuid4())
    assert status("GET", on_conversation, mine) == 200
    assert status("GET", on_conversation, gone) == 404
    values = {"values": {"order": "A-1"}}
    assert status("PATCH", on_conversation, mine, json=values, headers=csrf) == 200
    assert status("PATCH", on_conversation, mine, json=values) == 403
    assert status("PATCH", on_conversation, gone, json=values, headers=csrf) == 404
    assert status("PATCH", on_conversation, mine, json={"values": {"x": 1}}, headers=csrf) == 400
    assert status("GET", on_contact, theirs) == 200
    assert status("GET", on_contact, on_contact.format(contact_id=uuid.uuid4())) == 404
    gold = {"values": {"plan": "gold"}}
    assert status("PATCH", on_contact, theirs, json=gold, headers=csrf) == 200
    assert status("PATCH", on_contact, theirs, json={"values": {"plan": 1}}, headers=csrf) == 400
    assert status("DELETE", one, at, headers=csrf) == 204
    client.cookies.clear()
    assert status("GET", on_contact, theirs) == 401
    assert status("PATCH", on_contact, theirs, json=gold) == 401
    assert status("GET", on_conversation, mine) == 401
    assert status("PATCH", on_conversation, mine, json=values) == 401
    assert status("POST", many, json=order) == 401
    assert status("PATCH", one, at, json={"label": "x"}) == 401
    assert status("DELETE", one, at) == 401
    assert api_operations(list(attributes.routes)) <= {(p, m) for p, m, _ in checked.seen}
