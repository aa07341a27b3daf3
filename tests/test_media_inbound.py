"""Inbound media: a platform's webhook names a file (a WhatsApp media id, a Telegram file_id,
an Instagram or Messenger CDN link); the message arrives at once with the file pending, the
media group fetches it from the fake platform with the channel's token, keeps it, and one
`message.updated` shows it with the hub's URL. Failures end as unavailable or as a link,
with a reason, and never hold up the text path."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from tests.fakeplatform import FB, IG, TG, WA, Account, FakePlatform, running_fake
from tests.helpers import Tenant, backends, prepare
from tests.payloads import load
from tests.receiver import running_receiver
from tests.test_media_api import PDF, jpeg_with_location, ogg_voice

LIMIT = 200 * 1024  # HUB_MAX_MEDIA_BYTES in these tests: "larger than 0.2 MB"
TIMEOUT_S = 3.0  # HUB_MEDIA_FETCH_TIMEOUT_S in these tests
SECRET = "hosted-secret-for-media-tests"
CUSTOMER = "905321234567"  # a WhatsApp customer
PERSON = "271828182845904"  # a Messenger PSID / Instagram IGSID
CHAT = 314159265  # a Telegram private chat (the user's id)


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant
    accounts: dict[str, Account]
    channels: dict[str, dict[str, Any]]
    settings: Settings

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}


def own_accounts() -> dict[str, Account]:
    """Accounts of this test's own (a Postgres database is shared by the run's tests)."""
    n = uuid.uuid4().int % 10**8
    tag = uuid.uuid4().hex[:12]
    return {
        "instagram": Account(IG, str(17841400000000000 + n), f"IGAAfake-{tag}"),
        "messenger": Account(FB, str(102030400000000 + n), f"EAAfake-page-{tag}"),
        "whatsapp": Account(WA, str(106540300000000 + n), f"EAAfake-wa-{tag}"),
        "telegram": Account(TG, str(7400000000 + n), f"{7400000000 + n}:AAHfake-{tag}"),
    }


def build(settings: Settings) -> Iterator[Env]:
    accounts = own_accounts()
    other = Account(WA, "106540399999999", "EAAfake-another-number-token")
    with running_fake((*accounts.values(), other)) as fake:
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret=SECRET,
            public_url="https://hub.example",
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            telegram_api_url=urls.telegram,
            max_media_bytes=LIMIT,
            media_fetch_timeout_s=TIMEOUT_S,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(
            create_app(settings, run_worker=True), base_url="https://hub.example"
        ) as client:
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            channels = {}
            for name, account in accounts.items():
                body: dict[str, Any] = (
                    {"bot_token": account.token}
                    if account.kind == TG
                    else {"account_id": account.account_id, "access_token": account.token}
                )
                answer = client.post(
                    "/api/channels", json={"kind": name, "name": name, **body}, headers=auth
                )
                assert answer.status_code == 201, answer.text
                channels[name] = answer.json()
            yield Env(client, fake, tenant, accounts, channels, settings)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from build(settings)


@pytest.fixture(params=["sqlite", "postgres"])
def both(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    yield from build(backends(request, settings))


# Webhooks, signed as the platforms sign them


def deliver_meta(env: Env, body: dict[str, Any]) -> float:
    """POST a signed Meta delivery; how long the webhook took to answer."""
    data = json.dumps(body).encode()
    digest = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
    started = time.monotonic()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    return time.monotonic() - started


def deliver_telegram(env: Env, message: dict[str, Any]) -> None:
    channel = env.channels["telegram"]
    answer = env.client.post(
        f"/webhooks/telegram/{channel['id']}",
        content=json.dumps({"update_id": int(time.time() * 1000) % 10**9, "message": message}),
        headers={"x-telegram-bot-api-secret-token": channel["webhook"]["secret_token"]},
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text


def whatsapp(env: Env, kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A WhatsApp message of `kind` ("image", "document", "text"...) and its wamid."""
    payload = load("whatsapp/message_image.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = env.accounts["whatsapp"].account_id
    value["contacts"][0]["wa_id"] = CUSTOMER
    wamid = f"wamid.{uuid.uuid4().hex.upper()}"
    element = {"from": CUSTOMER, "id": wamid, "timestamp": str(int(time.time())), "type": kind}
    value["messages"] = [element | {kind: body}]
    return payload, wamid


def messaging(env: Env, product: str, attachments: list[dict[str, Any]]) -> tuple[Any, str]:
    """An Instagram or Messenger DM with these attachments (the recorded shape), and its mid."""
    account = env.accounts[product].account_id
    mid = f"m_{uuid.uuid4().hex}"
    now = int(time.time() * 1000)
    element = {
        "sender": {"id": PERSON},
        "recipient": {"id": account},
        "timestamp": now,
        "message": {"mid": mid, "attachments": attachments},
    }
    if product == "instagram":
        payload = load("instagram/dm_image_attachment.json")
        payload["entry"][0] |= {"id": account, "time": now, "messaging": [element]}
    else:
        recorded = load("messenger/event_image_attachment.json")
        element["message"] |= {"seq": recorded["message"]["seq"]}
        payload = {
            "object": "page",
            "entry": [{"id": account, "time": now, "messaging": [element]}],
        }
    return payload, mid


def telegram_message(**content: Any) -> dict[str, Any]:
    message = load("telegram/message_object_private_photo.json")
    del message["photo"]
    message["message_id"] = uuid.uuid4().int % 10**6
    message["date"] = int(time.time())
    message["from"]["id"] = message["chat"]["id"] = CHAT
    return dict(message | content)


# What the agents see


class Agent:
    """An agent's socket, read without ever blocking for good: each look sends a ping and
    reads up to its pong."""

    def __init__(self, env: Env, ws: Any) -> None:
        self.env, self.ws = env, ws
        self.frames: list[dict[str, Any]] = []

    def event(self, name: str, platform_message_id: str, timeout_s: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            for frame in self.frames:
                data = frame.get("data") or {}
                ids = {
                    data.get("platform_message_id"),
                    (data.get("message") or {}).get("platform_message_id"),
                }
                if frame.get("name") == name and platform_message_id in ids:
                    return data
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name} for {platform_message_id}")
            self.ws.send_text('{"type":"ping"}')
            while (frame := self.ws.receive_json())["type"] != "pong":
                self.frames.append(frame)
            time.sleep(0.05)

    def created(self, platform_message_id: str) -> dict[str, Any]:
        return dict(self.event("message.created", platform_message_id)["message"])

    def updated(self, platform_message_id: str) -> list[dict[str, Any]]:
        data = self.event("message.updated", platform_message_id, timeout_s=TIMEOUT_S + 15)
        # As stored and as REST answers: without the fields that are null.
        return [
            {k: v for k, v in a.items() if v is not None} for a in data["changes"]["attachments"]
        ]


@pytest.fixture
def agent(env: Env) -> Iterator[Agent]:
    yield from connect(env)


def connect(env: Env) -> Iterator[Agent]:
    with env.client.websocket_connect("/ws/agent") as ws:
        ws.send_text(json.dumps({"type": "hello", "token": env.tenant.api_token}))
        assert ws.receive_json()["type"] == "welcome"
        yield Agent(env, ws)


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def fetched(env: Env, attachment: dict[str, Any]) -> Any:
    answer = env.client.get(attachment["url"], headers=env.auth)
    assert answer.status_code == 200, answer.text
    return answer


def stored(env: Env, message: dict[str, Any]) -> dict[str, Any]:
    """The message as REST answers it, once the update is persisted."""
    url = f"/api/conversations/{message['conversation_id']}/messages"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = env.client.get(url, headers=env.auth).json()["items"]
        found = [m for m in items if m["id"] == message["id"]]
        if found and all(a.get("state") != "pending" for a in found[0]["attachments"]):
            return dict(found[0])
        time.sleep(0.05)
    raise AssertionError("the update was not stored")


def no_metadata(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif() and "exif" not in image.info


# Every platform family


def test_a_whatsapp_image_is_fetched_with_the_token_and_kept_without_metadata(both: Env) -> None:
    env = both
    photo = jpeg_with_location()
    media_id = env.fake.media.whatsapp(photo, "image/jpeg", env.accounts["whatsapp"])
    body = {"mime_type": "image/jpeg", "sha256": "x", "id": media_id, "caption": "my order"}
    payload, wamid = whatsapp(env, "image", body)
    for agent in connect(env):
        deliver_meta(env, payload)
        created = agent.created(wamid)
        assert created["attachments"] == [
            {
                "type": "image",
                "media_id": media_id,
                "mime_type": "image/jpeg",
                "caption": "my order",
                "state": "pending",
            }
        ]
        [image] = agent.updated(wamid)
    file = image["file"]
    assert image == {
        "type": "image",
        "url": f"/api/conversations/{created['conversation_id']}/media/{file}",
        "mime_type": "image/jpeg",
        "size": image["size"],
        "caption": "my order",
        "file": file,
        "state": "ready",
        "width": 640,
        "height": 480,
        "thumbnail": True,
    }
    served = fetched(env, image)
    assert served.headers["content-type"] == "image/jpeg"
    assert len(served.content) == image["size"]
    no_metadata(served.content)
    with Image.open(io.BytesIO(served.content)) as kept:
        assert kept.size == (640, 480)
    assert stored(env, created)["attachments"] == [image]
    # The lookup and the download both carried the number's token (or the fake refused them).
    assert env.fake.media.lookups == [media_id] and env.fake.media.downloads == [media_id]
    assert not env.fake.rejected


def test_a_whatsapp_document_keeps_its_name_and_bytes(env: Env, agent: Agent) -> None:
    media_id = env.fake.media.whatsapp(PDF, "application/pdf", env.accounts["whatsapp"])
    body = {"mime_type": "application/pdf", "id": media_id, "filename": "invoice 42.pdf"}
    payload, wamid = whatsapp(env, "document", body)
    deliver_meta(env, payload)
    [document] = agent.updated(wamid)
    assert document["type"] == "file" and document["state"] == "ready"
    assert document["name"] == "invoice 42.pdf" and document["mime_type"] == "application/pdf"
    assert document["size"] == len(PDF) and fetched(env, document).content == PDF


@pytest.mark.parametrize("product", ["messenger", "instagram"])
def test_a_cdn_link_is_fetched_without_a_token(env: Env, agent: Agent, product: str) -> None:
    photo = jpeg_with_location((320, 200))
    url = env.fake.media.cdn(photo, "image/jpeg")
    payload, mid = messaging(env, product, [{"type": "image", "payload": {"url": url}}])
    deliver_meta(env, payload)
    assert agent.created(mid)["attachments"] == [{"type": "image", "url": url, "state": "pending"}]
    [image] = agent.updated(mid)
    assert image["state"] == "ready" and image["url"].startswith("/api/conversations/")
    assert (image["width"], image["height"]) == (320, 200)
    no_metadata(fetched(env, image).content)
    assert not env.fake.rejected  # a token sent to the CDN would have been refused


def test_telegram_files_are_fetched_with_the_bot_token_never_logged(
    env: Env, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = env.accounts["telegram"]
    voice = ogg_voice()
    photo = jpeg_with_location((200, 100))
    voice_id = env.fake.media.telegram(voice, "audio/ogg", bot, "voice/file_7.oga")
    doc_id = env.fake.media.telegram(PDF, "application/pdf", bot, "documents/file_8.pdf")
    photo_id = env.fake.media.telegram(photo, "image/jpeg", bot, "photos/file_9.jpg")
    sizes = [
        {"file_id": photo_id + "s", "file_unique_id": "s", "width": 90, "height": 45},
        {"file_id": photo_id, "file_unique_id": "m", "width": 200, "height": 100},
    ]
    messages = [
        telegram_message(voice={"file_id": voice_id, "file_unique_id": "v", "duration": 2}),
        telegram_message(
            document={"file_id": doc_id, "file_unique_id": "d", "file_name": "menu.pdf"}
        ),
        telegram_message(photo=sizes, caption="this one"),
    ]
    for message in messages:
        deliver_telegram(env, message)
    ids = [f"{CHAT}:{m['message_id']}" for m in messages]
    assert [agent.created(i)["attachments"][0]["state"] for i in ids] == ["pending"] * 3
    [audio], [document], [image] = (agent.updated(i) for i in ids)
    assert audio["type"] == "audio" and audio["mime_type"] == "audio/ogg"
    assert fetched(env, audio).content == voice
    assert document["name"] == "menu.pdf" and fetched(env, document).content == PDF
    assert (image["width"], image["height"]) == (200, 100) and image["mime_type"] == "image/jpeg"
    assert sorted(env.fake.media.downloads) == sorted([voice_id, doc_id, photo_id])
    assert not env.fake.rejected
    assert bot.token not in caplog.text and bot.token.split(":")[1] not in caplog.text


# Failures


def test_a_file_the_platform_no_longer_has_is_unavailable(env: Env, agent: Agent) -> None:
    url = env.fake.media.cdn(PDF, "application/pdf")
    env.fake.media.fail(url.split("/cdn/")[1].split("?")[0], 404)
    payload, mid = messaging(env, "messenger", [{"type": "file", "payload": {"url": url}}])
    deliver_meta(env, payload)
    [file] = agent.updated(mid)
    assert file == {
        "type": "file",
        "url": url,
        "state": "unavailable",
        "reason": "the platform no longer has the file (HTTP 404)",
    }


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_link_into_the_operators_network_is_not_fetched(
    env: Env, agent: Agent, scheme: str
) -> None:
    # A webhook signed with a workspace's own app secret could name any link: one to a
    # private address (here loopback, outside the platforms' configured APIs) is refused
    # before any request, and so is plain http anywhere.
    with running_receiver() as inside:
        url = inside.url.replace("http", scheme, 1)  # its one route, which records each call
        payload, mid = messaging(env, "messenger", [{"type": "file", "payload": {"url": url}}])
        deliver_meta(env, payload)
        [file] = agent.updated(mid)
        assert file["state"] == "unavailable"
        assert file["reason"] == "the link is not an https link to a public address"
        assert inside.requests == []


def test_a_link_that_cannot_be_read_is_unavailable_and_the_group_goes_on(
    env: Env, agent: Agent
) -> None:
    bad = [{"type": "file", "payload": {"url": "https://cdn.example:99999/x.pdf"}}]
    payload, mid = messaging(env, "messenger", bad)
    deliver_meta(env, payload)
    [file] = agent.updated(mid)
    assert file["state"] == "unavailable" and file["reason"]
    url = env.fake.media.cdn(PDF, "application/pdf")
    payload, mid = messaging(env, "messenger", [{"type": "file", "payload": {"url": url}}])
    deliver_meta(env, payload)
    assert agent.updated(mid)[0]["state"] == "ready"


def test_a_passing_500_is_tried_again(env: Env, agent: Agent) -> None:
    media_id = env.fake.media.whatsapp(PDF, "application/pdf", env.accounts["whatsapp"])
    env.fake.media.fail(media_id, 500)
    payload, wamid = whatsapp(env, "document", {"id": media_id, "filename": "a.pdf"})
    deliver_meta(env, payload)
    [document] = agent.updated(wamid)
    assert document["state"] == "ready" and fetched(env, document).content == PDF
    assert env.fake.media.lookups == [media_id, media_id]  # asked again for a fresh URL


def test_a_hanging_download_ends_unavailable_and_text_still_flows(env: Env, agent: Agent) -> None:
    media_id = env.fake.media.whatsapp(PDF, "application/pdf", env.accounts["whatsapp"])
    env.fake.media.hang(media_id, 30)
    payload, wamid = whatsapp(env, "document", {"id": media_id, "filename": "slow.pdf"})
    started = time.monotonic()
    assert deliver_meta(env, payload) < 1.0  # the webhook never waits for a download
    assert agent.created(wamid)["attachments"][0]["state"] == "pending"
    text, text_id = whatsapp(env, "text", {"body": "hello?"})
    deliver_meta(env, text)
    said = agent.created(text_id)
    assert said["text"] == "hello?"
    assert said["conversation_id"] == agent.created(wamid)["conversation_id"]
    assert time.monotonic() - started < TIMEOUT_S  # arrived while the file was still coming
    [document] = agent.updated(wamid)
    assert time.monotonic() - started >= TIMEOUT_S
    assert document["state"] == "unavailable"
    assert document["reason"] == "the platform did not send the file in time"


def test_a_file_over_the_limit_stays_a_link(env: Env, agent: Agent) -> None:
    big = PDF + b"\x00" * LIMIT  # served without a length: only counting the bytes stops it
    url = env.fake.media.cdn(big, "application/pdf")
    env.fake.media.chunked(url.split("/cdn/")[1].split("?")[0])
    payload, mid = messaging(env, "instagram", [{"type": "file", "payload": {"url": url}}])
    deliver_meta(env, payload)
    [file] = agent.updated(mid)
    assert file == {"type": "file", "url": url, "state": "link", "reason": "larger than 0.2 MB"}


def test_a_size_the_platform_states_over_the_limit_is_not_downloaded(
    env: Env, agent: Agent
) -> None:
    bot = env.accounts["telegram"]
    file_id = env.fake.media.telegram(PDF, "application/pdf", bot, "documents/big.pdf")
    stated = {"file_id": file_id, "file_unique_id": "b", "file_size": LIMIT + 1}
    message = telegram_message(document=stated)
    deliver_telegram(env, message)
    media_id = env.fake.media.whatsapp(PDF, "application/pdf", env.accounts["whatsapp"])
    env.fake.media.announce(media_id, LIMIT + 1)
    payload, wamid = whatsapp(env, "document", {"id": media_id})
    deliver_meta(env, payload)
    [telegram] = agent.updated(f"{CHAT}:{message['message_id']}")
    [wa] = agent.updated(wamid)
    for attachment in (telegram, wa):
        assert attachment["state"] == "link" and attachment["reason"] == "larger than 0.2 MB"
        assert "url" not in attachment  # neither platform has a link that opens without a token
    assert env.fake.media.lookups == [media_id]  # Telegram's getFile was not even asked
    assert env.fake.media.downloads == []


def test_a_file_telegram_will_not_hand_a_bot_is_unavailable(env: Env, agent: Agent) -> None:
    bot = env.accounts["telegram"]
    file_id = env.fake.media.telegram(PDF, "video/mp4", bot, "videos/file_1.mp4")
    env.fake.media.announce(file_id, 21 * 1024 * 1024)  # not stated in the update
    message = telegram_message(video={"file_id": file_id, "file_unique_id": "v", "duration": 9})
    deliver_telegram(env, message)
    [video] = agent.updated(f"{CHAT}:{message['message_id']}")
    assert video["state"] == "unavailable"
    assert video["reason"] == "larger than the 20 MB Telegram lets a bot download"


def test_another_numbers_media_id_is_unavailable(env: Env, agent: Agent) -> None:
    other = next(a for a in env.fake.accounts if a.account_id == "106540399999999")
    media_id = env.fake.media.whatsapp(PDF, "application/pdf", other)
    payload, wamid = whatsapp(env, "document", {"id": media_id})
    deliver_meta(env, payload)
    [document] = agent.updated(wamid)
    assert document["state"] == "unavailable"
    assert document["reason"] == "WhatsApp no longer has the file for this channel"
    assert env.fake.media.refused == [media_id] and env.fake.media.downloads == []


def test_a_type_outside_the_allowlist_is_unavailable(env: Env, agent: Agent) -> None:
    program = b"MZ\x90\x00" + b"\x00" * 200
    url = env.fake.media.cdn(program, "application/pdf")  # whatever the platform claims
    payload, mid = messaging(env, "messenger", [{"type": "file", "payload": {"url": url}}])
    deliver_meta(env, payload)
    [file] = agent.updated(mid)
    assert file["state"] == "unavailable"
    assert (
        file["reason"] == "the file is application/x-msdownload, which is not a type the hub keeps"
    )
    assert stored(env, agent.created(mid))["attachments"] == [file]


def test_the_files_of_a_person_erased_meanwhile_are_not_kept(env: Env, agent: Agent) -> None:
    media_id = env.fake.media.whatsapp(PDF, "application/pdf", env.accounts["whatsapp"])
    env.fake.media.hang(media_id, 30)
    payload, wamid = whatsapp(env, "document", {"id": media_id, "filename": "mine.pdf"})
    deliver_meta(env, payload)
    created = agent.created(wamid)
    wait(lambda: env.fake.media.asked == [media_id])  # the download is under way
    answer = env.client.post(
        "/api/deletions", json={"contact_id": created["contact_id"]}, headers=env.auth
    )
    assert answer.status_code == 202, answer.text
    one = f"/api/deletions/{answer.json()['id']}"
    wait(lambda: env.client.get(one, headers=env.auth).json()["status"] == "done")
    worker = env.client.app.state.worker  # type: ignore[attr-defined]
    [group] = [c for c in worker.consumers if c.group == "media"]
    handled = group.handled  # the batch in hand is counted once it is done
    env.fake.media.release(media_id)  # the file arrives after the person was erased
    wait(lambda: group.handled > handled)
    assert env.fake.media.downloads == [media_id]
    folder = (
        env.settings.data_dir
        / "media"
        / "w"
        / str(env.tenant.workspace_id)
        / "c"
        / created["conversation_id"]
    )
    assert not [p for p in folder.rglob("*") if p.is_file()]  # kept, then deleted at once
    with pytest.raises(AssertionError, match=r"no message\.updated"):
        agent.event("message.updated", wamid, timeout_s=0.5)
