"""Agents' files go out to each platform: uploaded through the REST route, kept, sent by the
worker's send group to the strict fake platform (tests/fakeplatform.py, tests/fakesendmedia.py)
with the same bytes the hub kept, and the message becomes sent with the platform's id. Files a
platform refuses are refused by the route before anything is kept or sent; Instagram fetches
files from short-lived signed links the hub serves."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from starlette.testclient import TestClient

from hub.media.links import MediaLinks
from hub.settings import Settings
from hub.web.app import create_app
from tests.fakeplatform import INSTAGRAM, MESSENGER, TELEGRAM, WHATSAPP, FakePlatform, running_fake
from tests.helpers import Tenant, prepare
from tests.payloads import load
from tests.test_media_api import PDF, ogg_voice

IGSID = "1700000000000042"
SECRET = "hosted-secret-for-tests"


@dataclass
class Env:
    client: TestClient
    fake: FakePlatform
    tenant: Tenant
    settings: Settings
    channels: dict[str, dict[str, Any]]

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    def upload(
        self, conversation_id: str, client_id: str, files: list[tuple[str, bytes]], text: str = ""
    ) -> Any:
        data = {"client_id": client_id} | ({"text": text} if text else {})
        return self.client.post(
            f"/api/conversations/{conversation_id}/messages",
            data=data,
            files=[("attachments", (name, content)) for name, content in files],
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

    def kept(self, conversation_id: str, attachment: dict[str, Any]) -> bytes:
        """The file as the hub kept it (for an image: cleaned of its metadata)."""
        served = self.client.get(
            f"/api/conversations/{conversation_id}/media/{attachment['file']}", headers=self.auth
        )
        assert served.status_code == 200
        return served.content

    def sent(self, suffix: str) -> list[Any]:
        return [r for r in self.fake.requests if r.path.endswith(suffix)]


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@contextmanager
def environment(settings: Settings, public_url: str | None) -> Iterator[Env]:
    with running_fake() as fake:
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret=SECRET,
            public_url=public_url,
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            telegram_api_url=urls.telegram,
        )
        [tenant] = prepare(settings, "acme")
        app = create_app(settings, run_worker=True)
        with TestClient(app, base_url="https://hub.example") as client:
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            channels = {}
            for account, name in (
                (MESSENGER, "messenger"),
                (WHATSAPP, "whatsapp"),
                (INSTAGRAM, "instagram"),
            ):
                body = {
                    "kind": name,
                    "name": name,
                    "account_id": account.account_id,
                    "access_token": account.token,
                }
                answer = client.post("/api/channels", json=body, headers=auth)
                assert answer.status_code == 201, answer.text
                channels[name] = answer.json()
            if public_url is not None:  # Telegram's webhook needs the hub's https URL
                body = {"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token}
                answer = client.post("/api/channels", json=body, headers=auth)
                assert answer.status_code == 201, answer.text
                channels["telegram"] = answer.json()
            yield Env(client, fake, tenant, settings, channels)


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    with environment(settings, "https://hub.example") as made:
        yield made


def deliver_meta(env: Env, body: dict[str, Any]) -> str:
    """Deliver a signed webhook; the id of the conversation it opens."""
    data = json.dumps(body).encode()
    digest = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    return first_conversation(env)


def first_conversation(env: Env) -> str:
    items = lambda: env.client.get("/api/conversations", headers=env.auth).json()["items"]  # noqa: E731
    return str(wait(lambda: (items() or [None])[0])["id"])


def whatsapp_conversation(env: Env, age_s: float = 60) -> str:
    body = load("whatsapp/message_text.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = WHATSAPP.account_id
    value["messages"][0]["timestamp"] = str(int(time.time() - age_s))
    return deliver_meta(env, body)


def messenger_conversation(env: Env) -> str:
    body = load("messenger/webhook_text_full.json")
    entry = body["entry"][0]
    entry["id"] = entry["messaging"][0]["recipient"]["id"] = MESSENGER.account_id
    entry["time"] = entry["messaging"][0]["timestamp"] = int(time.time() * 1000)
    return deliver_meta(env, body)


def instagram_conversation(env: Env) -> str:
    body = load("instagram/dm_text.json")
    entry = body["entry"][0]
    entry["id"] = entry["messaging"][0]["recipient"]["id"] = INSTAGRAM.account_id
    entry["messaging"][0]["sender"]["id"] = IGSID
    entry["time"] = entry["messaging"][0]["timestamp"] = int(time.time() * 1000)
    entry["messaging"][0]["message"]["mid"] = "aWdfZAG1faXRlbToxOklHTWVzc2FnZA"
    return deliver_meta(env, body)


def telegram_conversation(env: Env) -> str:
    channel = env.channels["telegram"]
    answer = env.client.post(
        f"/webhooks/telegram/{channel['id']}",
        content=json.dumps(load("telegram/update_private_text_message.json")),
        headers={"x-telegram-bot-api-secret-token": channel["webhook"]["secret_token"]},
    )
    assert answer.json()["accepted"] == 1
    return first_conversation(env)


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def accepted(env: Env, answer: Any) -> str:
    assert answer.status_code == 202, answer.text
    return str(answer.json()["message_id"])


def test_whatsapp_uploads_the_kept_image_then_sends_it_with_its_caption(env: Env) -> None:
    conversation_id = whatsapp_conversation(env)
    message_id = accepted(
        env, env.upload(conversation_id, "w1", [("parcel.jpg", jpeg())], text="Your parcel")
    )
    message = env.message(conversation_id, message_id, "sent")
    [upload] = env.sent(f"/{WHATSAPP.account_id}/media")
    assert upload.headers["authorization"] == f"Bearer {WHATSAPP.token}"
    assert upload.body.fields == {"messaging_product": "whatsapp", "type": "image/jpeg"}
    assert upload.body.files["file"].data == env.kept(conversation_id, message["attachments"][0])
    [sent] = env.sent(f"/{WHATSAPP.account_id}/messages")
    assert sent.body["type"] == "image"
    assert sent.body["image"] == {"id": upload.answer["id"], "caption": "Your parcel"}
    assert message["platform_message_id"] == sent.answer["messages"][0]["id"]
    assert not env.fake.rejected


def test_a_whatsapp_document_carries_its_file_name(env: Env) -> None:
    conversation_id = whatsapp_conversation(env)
    message_id = accepted(env, env.upload(conversation_id, "w2", [("invoice.pdf", PDF)]))
    env.message(conversation_id, message_id, "sent")
    [upload] = env.sent(f"/{WHATSAPP.account_id}/media")
    assert upload.body.files["file"].data == PDF
    [sent] = env.sent(f"/{WHATSAPP.account_id}/messages")
    assert sent.body["document"] == {"id": upload.answer["id"], "filename": "invoice.pdf"}


def test_messenger_sends_the_text_then_each_file_as_multipart(env: Env) -> None:
    conversation_id = messenger_conversation(env)
    files = [("invoice.pdf", PDF), ("parcel.jpg", jpeg())]
    message_id = accepted(env, env.upload(conversation_id, "m1", files, text="Here you are"))
    message = env.message(conversation_id, message_id, "sent")
    sends = env.sent(f"/{MESSENGER.account_id}/messages")
    assert len(sends) == 3  # no caption on Messenger: the text first, then one send per file
    assert sends[0].body["message"] == {"text": "Here you are"}
    pdf, image = sends[1].body, sends[2].body
    assert pdf.files["filedata"].data == PDF and pdf.files["filedata"].filename == "invoice.pdf"
    assert json.loads(pdf.fields["message"]) == {
        "attachment": {"type": "file", "payload": {"is_reusable": False}}
    }
    assert json.loads(image.fields["message"])["attachment"]["type"] == "image"
    assert image.files["filedata"].data == env.kept(conversation_id, message["attachments"][1])
    assert json.loads(pdf.fields["recipient"]) == {"id": "1412611362105802"}
    assert pdf.fields["messaging_type"] == "RESPONSE"
    assert sends[1].headers["authorization"] == f"Bearer {MESSENGER.token}"
    assert message["platform_message_id"] == sends[0].answer["message_id"]  # the first part's
    assert not env.fake.rejected


def test_telegram_sends_a_voice_note_with_its_caption(env: Env) -> None:
    conversation_id = telegram_conversation(env)
    voice = ogg_voice()
    message_id = accepted(env, env.upload(conversation_id, "t1", [("v.ogg", voice)], text="Hi"))
    message = env.message(conversation_id, message_id, "sent")
    [sent] = env.sent("/sendVoice")
    assert sent.body.fields == {"chat_id": "218485655", "caption": "Hi"}
    assert sent.body.files["voice"].data == voice
    assert sent.body.files["voice"].content_type == "audio/ogg"
    assert message["platform_message_id"] == f"218485655:{sent.answer['result']['message_id']}"
    photo_id = accepted(env, env.upload(conversation_id, "t2", [("p.jpg", jpeg())]))
    photo = env.message(conversation_id, photo_id, "sent")
    [sent] = env.sent("/sendPhoto")
    assert sent.body.files["photo"].data == env.kept(conversation_id, photo["attachments"][0])
    assert not env.fake.rejected


def test_instagram_fetches_the_file_from_a_signed_link(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.access")
    conversation_id = instagram_conversation(env)
    message_id = accepted(env, env.upload(conversation_id, "i1", [("p.jpg", jpeg())], text="Hi"))
    message = env.message(conversation_id, message_id, "sent")
    text, image = env.sent(f"/{INSTAGRAM.account_id}/messages")
    assert text.body["message"] == {"text": "Hi"}
    attachment = image.body["message"]["attachment"]
    assert attachment["type"] == "image" and image.body["recipient"] == {"id": IGSID}
    link = urlsplit(attachment["payload"]["url"])
    assert (link.scheme, link.netloc) == ("https", "hub.example")
    assert link.path.startswith("/media/s/")
    served = env.client.get(link.path)  # what Instagram fetches: no credentials
    assert served.status_code == 200
    assert served.content == env.kept(conversation_id, message["attachments"][0])
    assert served.headers["x-content-type-options"] == "nosniff"
    assert env.client.get(link.path).status_code == 200  # again, within its ten minutes
    token = link.path.removeprefix("/media/s/")
    logged = [r for r in caplog.records if r.name == "hub.access" and "/media/s/" in r.getMessage()]
    assert logged and not [r for r in logged if token in r.getMessage() or token in str(r.http)]

    tampered = env.client.get(f"/media/s/{token[:-2]}{'AA' if token[-2:] != 'AA' else 'BB'}")
    assert tampered.status_code == 404
    assert tampered.json()["error"]["code"] == "media_link_invalid"

    workspace = env.tenant.workspace_id
    file = message["attachments"][0]["file"]
    made_earlier = MediaLinks(env.settings.secret_key, clock=lambda: time.time() - 660)
    old = made_earlier.token(workspace, conversation_id, file)  # type: ignore[arg-type]
    expired = env.client.get(f"/media/s/{old}")
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "media_link_expired"
    other_key = MediaLinks("another-secret-key-of-enough-length-0123456789")
    forged_token = other_key.token(workspace, conversation_id, file)  # type: ignore[arg-type]
    forged = env.client.get(f"/media/s/{forged_token}")
    assert forged.status_code == 404


def test_instagram_without_a_public_url_fails_with_a_clear_code(settings: Settings) -> None:
    with environment(settings, None) as env:
        conversation_id = instagram_conversation(env)
        message_id = accepted(env, env.upload(conversation_id, "i2", [("p.jpg", jpeg())]))
        failed = env.message(conversation_id, message_id, "failed")
        assert failed["error"]["code"] == "no_public_url"
        assert "HUB_PUBLIC_URL" in failed["error"]["message"]
        assert not env.sent("/messages")


@pytest.mark.parametrize(
    ("kind", "name", "content", "status", "code"),
    [
        ("whatsapp", "big.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 5_100_000, 413, "media_too_large"),
        ("whatsapp", "anim.gif", b"GIF89a" + b"\0" * 64, 415, "media_refused_by_channel"),
        ("instagram", "notes.txt", b"just some notes\n", 415, "media_refused_by_channel"),
        ("instagram", "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 8_100_000, 413, "media_too_large"),
    ],
)
def test_a_file_the_platform_refuses_is_refused_before_anything_is_kept_or_sent(
    env: Env, kind: str, name: str, content: bytes, status: int, code: str
) -> None:
    opened = {"whatsapp": whatsapp_conversation, "instagram": instagram_conversation}
    conversation_id = opened[kind](env)
    answer = env.upload(conversation_id, "r1", [("ok.pdf", PDF), (name, content)], text="x")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    time.sleep(0.3)
    items = env.client.get(
        f"/api/conversations/{conversation_id}/messages", headers=env.auth
    ).json()["items"]
    assert [m for m in items if m.get("client_id") == "r1"] == []
    assert not env.sent("/messages") and not env.sent("/media")


def test_an_upload_the_platform_refuses_fails_the_message_with_its_reason(env: Env) -> None:
    conversation_id = whatsapp_conversation(env)
    env.fake.fail_next(
        "/media",
        400,
        {
            "error": {
                "message": "(#131053) Media upload error",
                "type": "OAuthException",
                "code": 131053,
                "error_data": {"details": "Unsupported Image mime type image/jpeg"},
            }
        },
    )
    message_id = accepted(env, env.upload(conversation_id, "u1", [("p.jpg", jpeg())]))
    failed = env.message(conversation_id, message_id, "failed")
    assert failed["error"]["code"] == "131053"
    assert "Unsupported Image mime type" in failed["error"]["message"]
    assert not env.sent(f"/{WHATSAPP.account_id}/messages")


def test_a_later_part_that_fails_fails_the_message_and_says_what_went(env: Env) -> None:
    conversation_id = whatsapp_conversation(env)
    long_text = "A long explanation. " * 60  # over a caption's 1024: sent on its own, first
    env.fake.fail_next("/media", 400, {"error": {"message": "Media upload error", "code": 131053}})
    answer = env.upload(conversation_id, "p1", [("a.pdf", PDF)], text=long_text)
    failed = env.message(conversation_id, accepted(env, answer), "failed")
    assert failed["error"]["code"] == "131053"
    assert failed["error"]["message"] == "1 of 2 parts were sent, then: Media upload error"
    [text] = env.sent(f"/{WHATSAPP.account_id}/messages")
    assert text.body["text"]["body"] == long_text.strip()


def test_the_closed_window_applies_to_files(env: Env) -> None:
    conversation_id = whatsapp_conversation(env, age_s=25 * 3600)
    message_id = accepted(env, env.upload(conversation_id, "c1", [("a.pdf", PDF)]))
    failed = env.message(conversation_id, message_id, "failed")
    assert failed["error"]["code"] == "window_closed"
    assert not env.sent("/media") and not env.sent("/messages")
