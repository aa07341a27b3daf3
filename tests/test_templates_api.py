"""WhatsApp templates through the app (hub/templates/): synced from the strict fake platform
on connect, on demand and by the worker, listed with their variables, sent past a closed
24-hour window (which stays closed), refused in words when they cannot be sent, and changed
by the `message_template_status_update` webhook. On SQLite, and on Postgres (row-level
security) where the workspace boundary is crossed: the status webhook and the sync."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests import faketemplates
from tests.fakeplatform import WA, WHATSAPP, Account, FakePlatform, running_fake
from tests.helpers import Tenant, backends, prepare
from tests.payloads import load
from tests.test_media_outbound import jpeg, wait

SECRET = "hosted-secret-for-templates"
ORDER_VALUES = {
    "name": "order_update",
    "language": "en_US",
    "body": ["Ada", "A-1001"],
    "buttons": {"0": "A-1001"},
    "header_link": "https://cdn.example/box.jpg",
}


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant
    channel_id: str
    number: Account
    waba_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    @property
    def templates(self) -> faketemplates.FakeTemplates:
        return faketemplates.of(self.fake)

    def listed(self) -> dict[str, dict[str, Any]]:
        answer = self.client.get(f"/api/channels/{self.channel_id}/templates", headers=self.auth)
        assert answer.status_code == 200, answer.text
        return {t["name"]: t for t in answer.json()["items"]}

    def deliver(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        digest = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
        answer = self.client.post(
            "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def customer_writes(self, age_s: float, wamid: str = "wamid.FIRST") -> str:
        body = load("whatsapp/message_text.json")
        value = body["entry"][0]["changes"][0]["value"]
        value["metadata"]["phone_number_id"] = self.number.account_id
        value["messages"][0]["timestamp"] = str(int(time.time() - age_s))
        value["messages"][0]["id"] = wamid
        assert self.deliver(body)["accepted"] == 1
        items = lambda: self.client.get("/api/conversations", headers=self.auth).json()["items"]  # noqa: E731
        return str(wait(lambda: (items() or [None])[0])["id"])

    def send(self, conversation_id: str, client_id: str, **fields: Any) -> Any:
        return self.client.post(
            f"/api/conversations/{conversation_id}/templates",
            json={"client_id": client_id} | fields,
            headers=self.auth,
        )

    def message(self, conversation_id: str, message_id: str, status: str) -> dict[str, Any]:
        def probe() -> Any:
            items = self.client.get(
                f"/api/conversations/{conversation_id}/messages", headers=self.auth
            ).json()["items"]
            found = [m for m in items if m["id"] == message_id and m["status"] == status]
            return found[0] if found else None

        return dict(wait(probe))

    def window(self, conversation_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/conversations/{conversation_id}", headers=self.auth)
        return dict(answer.json()["window"])

    def sent_templates(self) -> list[Any]:
        return [
            r.body
            for r in self.fake.requests
            if r.path.endswith("/messages") and isinstance(r.body, dict)
            if r.body.get("type") == "template"
        ]


@contextmanager
def environment(settings: Settings) -> Iterator[Env]:
    """A workspace with a WhatsApp channel whose number and WABA are its own (Postgres holds
    every test's workspaces, and an account is one channel's anywhere)."""
    unique = uuid.uuid4().int
    number = Account(WA, str(10**14 + unique % 10**14), WHATSAPP.token)
    waba_id = str(2 * 10**14 + unique % 10**14)
    other = Account(WA, str(int(number.account_id) + 1), WHATSAPP.token)  # a second number
    with running_fake((number, other)) as fake:
        faketemplates.of(fake).catalogue.clear()
        faketemplates.of(fake).put(*faketemplates.CATALOGUE, waba_id=waba_id)
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret=SECRET,
            public_url="https://hub.example",
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            telegram_api_url=urls.telegram,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(create_app(settings, run_worker=True), base_url="https://hub.example") as c:
            body = {
                "kind": "whatsapp",
                "name": "Shop WhatsApp",
                "account_id": number.account_id,
                "business_account_id": waba_id,
                "access_token": number.token,
            }
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            answer = c.post("/api/channels", json=body, headers=auth)
            assert answer.status_code == 201, answer.text
            yield Env(c, fake, tenant, answer.json()["id"], number, waba_id)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    with environment(settings) as made:
        yield made


@pytest.fixture(params=["sqlite", "postgres"])
def both(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    with environment(backends(request, settings)) as made:
        yield made


# Sync and list


def test_connecting_syncs_every_page_and_the_list_says_what_each_template_takes(
    both: Env,
) -> None:
    env = both
    listed = env.listed()
    assert sorted(listed) == sorted(t["name"] for t in faketemplates.CATALOGUE)
    assert len(env.templates.listed) == 3  # six templates, two a page: the cursor was followed
    assert "after=" in env.templates.listed[1]
    order = listed["order_update"]
    assert (order["status"], order["language"], order["category"]) == (
        "APPROVED",
        "en_US",
        "UTILITY",
    )
    assert order["sendable"] is True
    assert order["parameters"]["header_format"] == "IMAGE"
    assert order["parameters"]["body"] == ["1", "2"]
    assert [(b["type"], b["variables"]) for b in order["parameters"]["buttons"]] == [
        ("URL", 1),
        ("QUICK_REPLY", 0),
    ]
    assert listed["hello_world"]["header_text"] == "Hello World"
    assert listed["appointment"]["parameters"]["body"] == ["first_name", "time"]
    assert listed["spring_sale"]["sendable"] is False
    assert env.fake.rejected == []


def test_a_sync_on_demand_replaces_the_list_with_whatsapps(env: Env) -> None:
    env.templates.put(faketemplates.HELLO, faketemplates.PAUSED, waba_id=env.waba_id)
    env.templates.set_status("spring_sale", "APPROVED")
    synced = env.client.post(f"/api/channels/{env.channel_id}/templates/sync", headers=env.auth)
    assert synced.status_code == 200, synced.text
    assert synced.json()["count"] == 2
    listed = env.listed()
    assert sorted(listed) == ["hello_world", "spring_sale"]  # the others were deleted there
    assert listed["spring_sale"]["status"] == "APPROVED"


def test_a_failed_sync_says_why_and_keeps_the_list(env: Env) -> None:
    error = {"error": {"message": "(#190) Error validating access token", "code": 190}}
    env.fake.fail_next("/message_templates", 400, error)
    synced = env.client.post(f"/api/channels/{env.channel_id}/templates/sync", headers=env.auth)
    assert synced.status_code == 503
    assert synced.json()["error"]["code"] == "template_sync_failed"
    assert "Error validating access token" in synced.json()["error"]["message"]
    assert len(env.listed()) == len(faketemplates.CATALOGUE)


def test_a_channel_without_its_business_account_id_is_told_so_and_can_be_given_it(
    env: Env,
) -> None:
    number = str(int(env.number.account_id) + 1)
    body = {"kind": "whatsapp", "name": "Other", "account_id": number}
    other = env.client.post(
        "/api/channels", json=body | {"access_token": env.number.token}, headers=env.auth
    ).json()["id"]
    synced = env.client.post(f"/api/channels/{other}/templates/sync", headers=env.auth)
    assert synced.status_code == 400
    assert synced.json()["error"]["code"] == "no_business_account"
    assert "business_account_id" in synced.json()["error"]["message"]
    given = env.client.patch(
        f"/api/channels/{other}", json={"business_account_id": env.waba_id}, headers=env.auth
    )
    assert given.status_code == 200, given.text
    listed = env.client.get(f"/api/channels/{other}/templates", headers=env.auth).json()
    assert len(listed["items"]) == len(faketemplates.CATALOGUE)  # synced as it was given
    web = env.client.post("/api/channels", json={"kind": "webchat", "name": "W"}, headers=env.auth)
    refused = env.client.patch(
        f"/api/channels/{web.json()['id']}", json={"business_account_id": "1"}, headers=env.auth
    )
    assert refused.json()["error"]["code"] == "not_whatsapp"


def test_the_worker_syncs_every_hub_template_sync_s(settings: Settings) -> None:
    with environment(settings.with_overrides(template_sync_s=0.3)) as env:
        env.templates.set_status("spring_sale", "APPROVED")
        wait(lambda: env.listed()["spring_sale"]["status"] == "APPROVED")


# Status webhooks


def test_a_status_webhook_changes_the_stored_template(both: Env) -> None:
    env = both
    body = load("whatsapp/template_status_approved_doc_example.json")
    body["entry"][0]["id"] = env.waba_id
    value = body["entry"][0]["changes"][0]["value"]
    value |= {
        "event": "PAUSED",
        "message_template_id": int(faketemplates.ORDER_UPDATE["id"]),
        "message_template_name": "order_update",
        "other_info": {"title": "FIRST_PAUSE", "description": "Paused for low quality"},
    }
    assert env.deliver(body)["accepted"] == 1
    order = env.listed()["order_update"]
    assert order["status"] == "PAUSED" and order["sendable"] is False
    assert order["reason"] == "FIRST_PAUSE: Paused for low quality"
    other = copy.deepcopy(body)
    other["entry"][0]["id"] = "555000555"  # another WABA: nothing here changes
    other["entry"][0]["changes"][0]["value"]["event"] = "APPROVED"
    env.deliver(other)
    assert env.listed()["order_update"]["status"] == "PAUSED"


# Sending


def test_a_template_goes_out_past_the_closed_window_which_stays_closed(env: Env) -> None:
    conversation_id = env.customer_writes(age_s=25 * 3600)
    assert env.window(conversation_id)["open"] is False
    answer = env.send(conversation_id, "t1", **ORDER_VALUES)
    assert answer.status_code == 202, answer.text
    sent = env.message(conversation_id, answer.json()["message_id"], "sent")
    assert sent["text"] == "Hi Ada, your order A-1001 is on its way.\n\nReply STOP to opt out"
    assert sent["raw"]["template"]["name"] == "order_update"
    [request] = env.sent_templates()
    assert request["to"] == "972987654321"  # the wa_id of the fixture's customer
    assert request["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "header",
                "parameters": [{"type": "image", "image": {"link": ORDER_VALUES["header_link"]}}],
            },
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-1001"}],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": "A-1001"}],
            },
        ],
    }
    # The template reopened nothing: a free-form reply is still refused...
    assert env.window(conversation_id)["open"] is False
    text = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": "after", "text": "Did it arrive?"},
        headers=env.auth,
    )
    failed = env.message(conversation_id, text.json()["message_id"], "failed")
    assert failed["error"]["code"] == "window_closed"
    # ...until the customer answers.
    env.customer_writes(age_s=0, wamid="wamid.SECOND")
    wait(lambda: env.window(conversation_id)["open"])
    assert env.fake.rejected == []


def test_a_header_file_the_hub_keeps_is_uploaded_and_named_by_its_id(env: Env) -> None:
    conversation_id = env.customer_writes(age_s=60)
    fill = {k: v for k, v in ORDER_VALUES.items() if k != "header_link"}
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/templates",
        data={"client_id": "f1", "template": json.dumps(fill)},
        files=[("attachments", ("box.jpg", jpeg()))],
        headers=env.auth,
    )
    assert answer.status_code == 202, answer.text
    sent = env.message(conversation_id, answer.json()["message_id"], "sent")
    assert [a["type"] for a in sent["attachments"]] == ["image"]
    [request] = env.sent_templates()
    media_id = request["template"]["components"][0]["parameters"][0]["image"]["id"]
    assert media_id in env.fake.uploads
    assert env.fake.rejected == []


def test_values_that_do_not_fit_are_refused_before_anything_is_sent(env: Env) -> None:
    conversation_id = env.customer_writes(age_s=60)
    short = env.send(conversation_id, "s1", **(ORDER_VALUES | {"body": ["Ada"]}))
    assert short.status_code == 400
    assert short.json()["error"]["code"] == "template_parameters"
    assert "body has 2 variables; 1 value was given" in short.json()["error"]["message"]
    no_file = {k: v for k, v in ORDER_VALUES.items() if k != "header_link"}
    missing = env.send(conversation_id, "s2", **no_file)
    assert "header is an image" in missing.json()["error"]["message"]
    paused = env.send(conversation_id, "s3", name="spring_sale", language="en", body=["10%"])
    assert paused.status_code == 409
    assert paused.json()["error"]["code"] == "template_not_approved"
    assert "paused" in paused.json()["error"]["message"]
    pending = env.send(conversation_id, "s4", name="new_offer", language="en")
    assert "review" in pending.json()["error"]["message"]
    unknown = env.send(conversation_id, "s5", name="order_update", language="fr")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "template_not_found"
    assert env.sent_templates() == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (131047, "More than 24 hours"),
        (132000, "number of values does not match"),
        (132001, "no template of this name"),
        (132015, "paused"),
        (132016, "disabled"),
    ],
)
def test_whatsapps_refusal_reaches_the_agent_in_words(env: Env, code: int, words: str) -> None:
    conversation_id = env.customer_writes(age_s=60)
    error = {"error": {"message": f"(#{code}) short title", "type": "OAuthException", "code": code}}
    env.fake.fail_next("/messages", 400, error)
    answer = env.send(conversation_id, "e1", name="welcome_back", language="tr", body=["Ada"])
    assert answer.status_code == 202, answer.text
    failed = env.message(conversation_id, answer.json()["message_id"], "failed")
    assert failed["error"]["code"] == str(code)
    assert words in failed["error"]["message"]


def test_a_template_paused_at_whatsapp_since_the_last_sync_fails_in_words(env: Env) -> None:
    conversation_id = env.customer_writes(age_s=60)
    env.templates.set_status("welcome_back", "PAUSED")  # the hub's list still says APPROVED
    answer = env.send(conversation_id, "p1", name="welcome_back", language="tr", body=["Ada"])
    failed = env.message(conversation_id, answer.json()["message_id"], "failed")
    assert failed["error"]["code"] == "132015"
    assert "paused" in failed["error"]["message"]


def test_templates_belong_to_whatsapp_conversations_and_are_idempotent(env: Env) -> None:
    conversation_id = env.customer_writes(age_s=60)
    first = env.send(conversation_id, "same", name="welcome_back", language="tr", body=["Ada"])
    again = env.send(conversation_id, "same", name="welcome_back", language="tr", body=["Ada"])
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["message_id"] == again.json()["message_id"]
    offered = env.client.get(f"/api/conversations/{conversation_id}/templates", headers=env.auth)
    assert len(offered.json()["items"]) == len(faketemplates.CATALOGUE)
