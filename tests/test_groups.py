"""Telegram groups and topics, and what Meta says around a message (issue 21, items 3 and
8), end to end: webhooks in, the REST API and the fake platform out, on the embedded default
and on Postgres with Redis."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.fakeplatform import MESSENGER, TG, WHATSAPP, Account, FakePlatform, running_fake
from tests.helpers import Tenant, backends, prepare
from tests.payloads import load
from tests.test_away import closed_now, set_hours
from tests.test_sending import deliver_meta, wait


@dataclass
class Env:
    client: TestClient
    tenant: Tenant
    fake: FakePlatform
    bot: Account
    page: Account
    number: Account
    channels: dict[str, dict[str, Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    settings = backends(request, settings)
    bot_id = str(7_300_000_000 + uuid.uuid4().int % 100_000_000)  # Postgres is shared
    bot = Account(TG, bot_id, f"{bot_id}:AAHfake-groups-test-token")
    unique = str(uuid.uuid4().int % 10**12)  # Postgres is shared: accounts of this test only
    page = Account(MESSENGER.kind, "61" + unique, MESSENGER.token)
    number = Account(WHATSAPP.kind, "62" + unique, WHATSAPP.token)
    with running_fake((bot, page, number)) as fake:
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret="hosted-secret-for-tests",
            public_url="https://hub.example",
            graph_url=urls.graph,
            telegram_api_url=urls.telegram,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(create_app(settings, run_worker=True), base_url="https://hub.example") as c:
            c.headers["authorization"] = f"Bearer {tenant.api_token}"
            channels = {}
            for name, body in {
                "telegram": {"kind": "telegram", "name": "Bot", "bot_token": bot.token},
                "messenger": {
                    "kind": "messenger",
                    "name": "Page",
                    "account_id": page.account_id,
                    "access_token": page.token,
                },
                "whatsapp": {
                    "kind": "whatsapp",
                    "name": "WA",
                    "account_id": number.account_id,
                    "access_token": number.token,
                },
            }.items():
                answer = c.post("/api/channels", json=body)
                assert answer.status_code == 201, answer.text
                channels[name] = answer.json()
            yield Env(c, tenant, fake, bot, page, number, channels)


def telegram(env: Env, update: dict[str, Any]) -> httpx.Response:
    channel = env.channels["telegram"]
    answer = env.client.post(
        f"/webhooks/telegram/{channel['id']}",
        content=json.dumps(update),
        headers={"x-telegram-bot-api-secret-token": channel["webhook"]["secret_token"]},
    )
    assert answer.status_code == 200, answer.text
    return answer


def conversations(env: Env) -> list[dict[str, Any]]:
    return list(env.client.get("/api/conversations").json()["items"])


def history(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    return list(env.client.get(f"/api/conversations/{conversation_id}/messages").json()["items"])


def one_conversation(env: Env, **wanted: Any) -> dict[str, Any]:
    def probe() -> Any:
        found = [c for c in conversations(env) if wanted.items() <= c.items()]
        return found[0] if found else None

    return dict(wait(probe))


def reply(env: Env, conversation_id: str, text: str) -> None:
    answer = env.client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"client_id": str(uuid.uuid4()), "text": text},
    )
    assert answer.status_code == 202, answer.text


def sent(env: Env, text: str) -> dict[str, Any]:
    def probe() -> Any:
        found = [r for r in env.fake.requests if r.path.endswith("/sendMessage")]
        return next((r.body for r in found if r.body["text"] == text), None)

    return dict(wait(probe))


def test_a_group_is_a_titled_conversation_that_names_its_participants(env: Env) -> None:
    first = load("telegram/update_group_text_message.json")
    second = copy.deepcopy(first)
    second["update_id"] += 10
    second["message"].update(message_id=240, date=first["message"]["date"] + 5, text="me too")
    second["message"]["from"] = {"id": 5550001, "is_bot": False, "first_name": "Ayşe"}
    telegram(env, first)
    telegram(env, second)
    group = one_conversation(env, kind="group")
    assert group["title"] == "Bottender"
    messages = wait(lambda: (h := history(env, group["id"])) and len(h) == 2 and h)
    assert [(m["kind"], m["sender"]["name"], m["text"]) for m in messages] == [
        ("group", "user_first user_last", "hi"),
        ("group", "Ayşe", "me too"),
    ]
    assert messages[0]["group"] | {"topic_id": None} == {
        "title": "Bottender",
        "topic_id": None,
        "renamed": False,
    }
    # Renamed: the service message is in the thread and the title follows it.
    telegram(env, load("telegram/update_group_new_chat_title.json"))
    one_conversation(env, id=group["id"], title="Bottender Support")
    renamed = wait(lambda: (h := history(env, group["id"])) and len(h) == 3 and h[-1])
    assert (renamed["group"]["title"], renamed["group"]["renamed"]) == ("Bottender Support", True)
    # An older message that still carries the old title does not take the new one back.
    late = copy.deepcopy(first)
    late["message"].update(message_id=237, date=first["message"]["date"] - 60, text="earlier")
    telegram(env, late)
    wait(lambda: len(history(env, group["id"])) == 4)
    assert one_conversation(env, id=group["id"])["title"] == "Bottender Support"
    # The agent's reply goes to the group's chat.
    reply(env, group["id"], "Hello, group!")
    body = sent(env, "Hello, group!")
    assert body["chat_id"] == -225456171 and "message_thread_id" not in body


def test_erasing_a_group_member_keeps_the_group_and_the_business_replies(env: Env) -> None:
    first = load("telegram/update_group_text_message.json")
    second = copy.deepcopy(first)
    second["update_id"] += 10
    second["message"].update(message_id=240, date=first["message"]["date"] + 5, text="me too")
    second["message"]["from"] = {"id": 5550001, "is_bot": False, "first_name": "Ayşe"}
    telegram(env, first)
    telegram(env, second)
    group = one_conversation(env, kind="group")
    wait(lambda: len(history(env, group["id"])) == 2)
    reply(env, group["id"], "Hello, group!")
    messages = wait(lambda: (h := history(env, group["id"])) and len(h) == 3 and h)
    by_text = {m["text"]: m for m in messages}
    # A reply is filed under whoever the conversation's record named: erase that person.
    erased = by_text["Hello, group!"]["contact_id"]
    assert erased in (by_text["hi"]["contact_id"], by_text["me too"]["contact_id"])
    other = next(m for m in messages if m["direction"] == "in" and m["contact_id"] != erased)

    def erase(contact_id: str) -> dict[str, Any]:
        filed = env.client.post("/api/deletions", json={"contact_id": contact_id})
        assert filed.status_code == 202, filed.text
        one = f"/api/deletions/{filed.json()['id']}"
        return dict(wait(lambda: (d := env.client.get(one).json())["status"] == "done" and d))

    done = erase(erased)
    assert done["counts"] | {"conversations": 0, "messages": 1} == done["counts"]
    # The group stays, led by the member who is left, with her message and the reply.
    assert one_conversation(env, id=group["id"])["contact_id"] == other["contact_id"]
    assert [m["text"] for m in history(env, group["id"])] == [other["text"], "Hello, group!"]
    assert env.client.get(f"/api/contacts/{erased}").status_code == 404
    # A reply after it is filed under the member who is left: the erased one does not return.
    reply(env, group["id"], "Still here.")
    wait(lambda: len(history(env, group["id"])) == 3)
    assert env.client.get(f"/api/contacts/{erased}").status_code == 404
    # With the last member erased, no one is left: the group goes whole.
    erase(other["contact_id"])
    assert all(c["id"] != group["id"] for c in conversations(env))


def test_a_forum_topic_is_its_own_conversation_and_replies_go_to_it(env: Env) -> None:
    telegram(env, load("telegram/update_group_text_message.json"))
    telegram(env, load("telegram/update_forum_topic_text_message.json"))
    topic = one_conversation(env, kind="group", title="CryptoInside Chat")
    assert one_conversation(env, title="Bottender")["id"] != topic["id"]
    reply(env, topic["id"], "Shipped today.")
    body = sent(env, "Shipped today.")
    assert (body["chat_id"], body["message_thread_id"]) == (-1001293752024, 134500)


def test_a_private_chat_stays_one_to_one(env: Env) -> None:
    telegram(env, load("telegram/update_private_text_message.json"))
    private = one_conversation(env, kind="dm")
    assert private["title"] is None


def test_a_pressed_button_is_answered_so_it_stops_spinning(env: Env) -> None:
    answer = telegram(env, load("telegram/update_callback_query_group.json")).json()
    assert answer == {"method": "answerCallbackQuery", "callback_query_id": "124"}
    # Telegram calls the method the answer names, with its parameters: the fake checks them.
    url = f"{env.fake.base_urls().telegram}/bot{env.bot.token}/{answer['method']}"
    assert httpx.post(url, json=answer).json() == {"ok": True, "result": True}
    assert [r.body for r in env.fake.requests if r.path.endswith("/answerCallbackQuery")] == [
        answer
    ]
    assert env.fake.rejected == []
    group = one_conversation(env, kind="group", title="Bottender")
    [pressed] = wait(lambda: history(env, group["id"]))
    assert (pressed["text"], pressed["sender"]["name"]) == ("data", "user_first user_last")


def messenger_body(
    env: Env, psid: str, mid: str, text: str, key: str = "messaging"
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    element = {
        "sender": {"id": psid},
        "recipient": {"id": env.page.account_id},
        "timestamp": now,
        "message": {"mid": mid, "text": text},
    }
    entry = {"id": env.page.account_id, "time": now, key: [element]}
    return {"object": "page", "entry": [entry]}


def test_a_standby_message_is_shown_but_not_answered(env: Env) -> None:
    set_hours(env, env.channels["messenger"]["id"], closed_now("We are closed."))
    deliver_meta(env, messenger_body(env, "1000000001", "m_owned", "Anyone there?"))
    owned = one_conversation(env, last_message_preview="We are closed.")
    deliver_meta(env, messenger_body(env, "1000000002", "m_standby", "Hello?", key="standby"))
    standby = one_conversation(env, last_message_preview="Hello?")
    [message] = history(env, standby["id"])
    assert message["standby"] is True
    # The owned thread was answered (the worker got that far); give the other the same time.
    time.sleep(1.0)
    assert [m["text"] for m in history(env, standby["id"])] == ["Hello?"]
    assert owned["id"] != standby["id"]


def whatsapp_referral(env: Env) -> dict[str, Any]:
    body = load("whatsapp/message_text_ctwa_referral.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = env.number.account_id
    value["messages"][0]["timestamp"] = str(int(time.time()))
    return dict(body)


def test_an_ad_referral_is_shown_and_a_caption_is_found(env: Env) -> None:
    deliver_meta(env, whatsapp_referral(env))
    conversation = one_conversation(env, channel_kind="whatsapp")
    [message] = wait(lambda: history(env, conversation["id"]))
    assert message["referral"]["headline"] == "Chat with us"
    assert message["referral"]["ad_id"] == "120226305854810726"
    photo = load("whatsapp/message_image.json")
    value = photo["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = env.number.account_id
    value["messages"][0]["timestamp"] = str(int(time.time()))
    value["messages"][0]["image"]["caption"] = "Kırmızı elbise bedeni"
    deliver_meta(env, photo)

    def search(q: str) -> list[dict[str, Any]]:
        return list(env.client.get("/api/search", params={"q": q}).json()["messages"])

    [found] = wait(lambda: search("ELBISE") or search("elbise"))
    assert found["attachments"][0]["caption"] == "Kırmızı elbise bedeni"
    assert found["text"] is None
    assert [m["text"] for m in search("more info")] == ["Can I get more info about this?"]
