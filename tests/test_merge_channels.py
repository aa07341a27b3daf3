"""Merging one person's Instagram and WhatsApp contacts, as the platforms deliver them (signed
webhooks from the fake platform's recorded shapes): while the merge is pending a new message
lands in its conversation, which shows under the kept contact, and after the confirm on the
kept contact itself; an undo gives WhatsApp's conversation back. On the embedded default and
on Postgres with Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hub.settings import Settings
from tests.helpers import backends
from tests.test_api import items, wait_for
from tests.test_media_inbound import (
    CUSTOMER,
    PERSON,
    Env,
    build,
    deliver_meta,
    messaging,
    whatsapp,
)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    yield from build(backends(request, settings))


def instagram_says(env: Env, text: str) -> None:
    payload, mid = messaging(env, "instagram", [])
    payload["entry"][0]["messaging"][0]["message"] = {"mid": mid, "text": text}
    deliver_meta(env, payload)


def whatsapp_says(env: Env, text: str) -> None:
    payload, _ = whatsapp(env, "text", {"body": text})
    deliver_meta(env, payload)


def conversation_on(env: Env, channel: str) -> dict[str, Any]:
    """The channel's one conversation, once it is stored."""
    url = f"/api/conversations?channel_id={env.channels[channel]['id']}"
    found = wait_for(lambda: items(env.client, url, env.auth))
    return dict(found[0])


def texts(env: Env, conversation_id: str) -> list[str]:
    url = f"/api/conversations/{conversation_id}/messages"
    return [m["text"] for m in items(env.client, url, env.auth)]


def owner(env: Env, conversation_id: str) -> str:
    answer = env.client.get(f"/api/conversations/{conversation_id}", headers=env.auth)
    return str(answer.json()["contact"]["id"])


def test_instagram_and_whatsapp_contacts_merge_and_new_messages_follow(env: Env) -> None:
    instagram_says(env, "Hi, I wrote to you on Instagram")
    whatsapp_says(env, "Same person here, on WhatsApp")
    ig, wa = conversation_on(env, "instagram"), conversation_on(env, "whatsapp")
    kept, other = str(ig["contact"]["id"]), str(wa["contact"]["id"])
    assert kept != other

    merge = env.client.post(
        f"/api/contacts/{kept}/merge", json={"other_id": other}, headers=env.auth
    )
    assert merge.status_code == 200, merge.text
    panel = env.client.get(f"/api/contacts/{kept}", headers=env.auth).json()
    assert {c["id"] for c in panel["conversations"]} == {ig["id"], wa["id"]}
    assert {i["platform_user_id"] for i in panel["identities"]} == {PERSON, CUSTOMER}

    # Pending: WhatsApp's next message lands on the kept contact.
    pending = f"while pending {uuid.uuid4().hex[:6]}"
    whatsapp_says(env, pending)
    wait_for(lambda: pending in texts(env, wa["id"]))
    assert owner(env, wa["id"]) == kept

    # Undo: WhatsApp's conversation is the other contact's again, with what came meanwhile.
    undo = env.client.post(f"/api/contacts/merges/{merge.json()['id']}/undo", headers=env.auth)
    assert undo.status_code == 204, undo.text
    assert owner(env, wa["id"]) == other
    assert owner(env, ig["id"]) == kept

    # Merged again and confirmed: both channels' new messages land on the kept contact, and
    # the merged-away one does not come back.
    again = env.client.post(
        f"/api/contacts/{kept}/merge", json={"other_id": other}, headers=env.auth
    ).json()
    done = env.client.post(f"/api/contacts/merges/{again['id']}/confirm", headers=env.auth)
    assert done.status_code == 200, done.text
    after = f"after confirm {uuid.uuid4().hex[:6]}"
    whatsapp_says(env, after)
    instagram_says(env, after + " (instagram)")
    wait_for(lambda: after in texts(env, wa["id"]))
    wait_for(lambda: after + " (instagram)" in texts(env, ig["id"]))
    assert owner(env, wa["id"]) == owner(env, ig["id"]) == kept
    assert env.client.get(f"/api/contacts/{other}", headers=env.auth).status_code == 404
    panel = env.client.get(f"/api/contacts/{kept}", headers=env.auth).json()
    assert {c["id"] for c in panel["conversations"]} == {ig["id"], wa["id"]}
