"""Subject-access export (issue 6, item 6): everything held about one contact, admins only,
audited without content."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.testclient import TestClient

from tests.helpers import ORIGIN, STRONG_PASSWORD, Tenant
from tests.mailbox import join
from tests.test_access import env  # noqa: F401  (the fixture)


def wait(probe: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_an_admin_exports_everything_about_a_contact(
    env: tuple[TestClient, Tenant, Tenant],  # noqa: F811
) -> None:
    client, acme, globex = env
    bearer = {"authorization": f"Bearer {acme.api_token}"}
    token = client.post(
        "/api/widget/token", json={"channel": acme.public_key}, headers={"origin": ORIGIN}
    ).json()
    with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        ws.send_text(json.dumps({"type": "hello", "token": token["token"]}))
        assert ws.receive_json()["type"] == "welcome"
        ws.send_text(json.dumps({"type": "message.send", "client_id": "e1", "text": "My order 42"}))
        while ws.receive_json()["type"] != "ack":
            pass
    profile = {"token": token["token"], "name": "Zeynep", "email": "zeynep@example.com"}
    assert (
        client.post("/api/widget/profile", json=profile, headers={"origin": ORIGIN}).status_code
        == 204
    )
    url = f"/api/conversations/{token['conversation_id']}"
    contact_id = wait(lambda: client.get(url, headers=bearer).json().get("contact_id"))
    note = {"client_id": "n1", "text": "VIP, handle with care", "note": True}
    assert client.post(url + "/messages", json=note, headers=bearer).status_code == 202
    assert client.patch(url, json={"labels": ["vip"]}, headers=bearer).status_code == 202
    wait(lambda: len(client.get(url + "/messages", headers=bearer).json()["items"]) == 2)
    wait(lambda: client.get(url, headers=bearer).json()["labels"] == ["vip"])
    wait(lambda: client.get(f"/api/contacts/{contact_id}", headers=bearer).json()["email"])

    answer = client.get(f"/api/contacts/{contact_id}/export", headers=bearer)
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    dump = answer.json()
    assert dump["format"] == "sosyocrm.contact-export.v1"
    assert dump["contact"]["name"] == "Zeynep" and dump["contact"]["email"] == "zeynep@example.com"
    assert [i["channel_id"] for i in dump["identities"]] == [str(acme.channel_id)]
    assert [c["id"] for c in dump["conversations"]] == [token["conversation_id"]]
    assert dump["conversations"][0]["labels"] == ["vip"]
    assert [(m["text"], m["note"]) for m in dump["messages"]] == [
        ("My order 42", False),
        ("VIP, handle with care", True),
    ]

    audit = client.get("/api/audit", params={"action": "contact.exported"}, headers=bearer).json()
    [row] = audit["items"]
    assert row["target_id"] == contact_id
    assert "Zeynep" not in json.dumps(row) and "order" not in json.dumps(row)

    foreign = client.get(
        f"/api/contacts/{contact_id}/export",
        headers={"authorization": f"Bearer {globex.api_token}"},
    )
    assert foreign.status_code == 404
    password = STRONG_PASSWORD
    email = f"agent-{uuid.uuid4().hex[:6]}@acme.example"
    join(client, bearer, email, "Agent", password)
    client.cookies.clear()
    agent = client.post("/api/auth/login", json={"email": email, "password": password})
    assert agent.status_code == 200
    assert client.get(f"/api/contacts/{contact_id}/export").status_code == 403
