"""Files the hub sends, at the adapters: each platform's types and limits (`refuse_media`),
captions, the requests built for one file, WhatsApp's upload step read back, and the pump
performing both calls of a WhatsApp send against the strict fake platform."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters import registry
from adapters.media import MB
from adapters.outbound import Outcome, Outgoing, OutgoingFile, base_urls
from adapters.sending import send
from schemas.message import ChannelKind
from tests.fakeplatform import TELEGRAM, WHATSAPP, FakePlatform, running_fake

IG, FB, WA, TG = (
    ChannelKind.INSTAGRAM,
    ChannelKind.MESSENGER,
    ChannelKind.WHATSAPP,
    ChannelKind.TELEGRAM,
)
PLATFORMS = base_urls("https://fake.example")
PDF = b"%PDF-1.4\n%%EOF\n"


def out(kind: ChannelKind, file: OutgoingFile, text: str = "", **kw: Any) -> Outgoing:
    name = "bot_token" if kind == TG else "access_token"
    return Outgoing(kind, "1001", "5551234", text, secrets={name: "tok-123"}, file=file, **kw)


def refused(kind: ChannelKind, content_type: str, size: int) -> str | None:
    refusal = registry.adapter_for(kind).refuse_media(content_type, size)
    return refusal.code if refusal else None


@pytest.mark.parametrize(
    ("kind", "content_type", "size", "code"),
    [
        (WA, "image/jpeg", 5 * MB, None),
        (WA, "image/jpeg", 5 * MB + 1, "media_too_large"),
        (WA, "image/webp", 100_001, "media_too_large"),  # a sticker
        (WA, "image/gif", 10, "media_refused_by_channel"),
        (WA, "audio/ogg", 16 * MB, None),
        (WA, "video/quicktime", 10, "media_refused_by_channel"),
        (WA, "application/pdf", 25 * MB, None),
        (FB, "video/webm", 25 * MB, None),
        (FB, "application/pdf", 25 * MB + 1, "media_too_large"),
        (IG, "image/gif", 8 * MB, None),
        (IG, "image/png", 8 * MB + 1, "media_too_large"),
        (IG, "image/webp", 10, "media_refused_by_channel"),
        (IG, "audio/mpeg", 10, "media_refused_by_channel"),
        (IG, "application/pdf", 10, None),
        (IG, "text/plain", 10, "media_refused_by_channel"),
        (TG, "image/jpeg", 20 * MB, None),  # over a photo's 10 MB: sent as a document
        (TG, "video/mp4", 50 * MB + 1, "media_too_large"),
    ],
)
def test_each_platform_takes_its_types_and_sizes(
    kind: ChannelKind, content_type: str, size: int, code: str | None
) -> None:
    assert refused(kind, content_type, size) == code


def test_a_refusal_says_the_limit() -> None:
    refusal = registry.adapter_for(WA).refuse_media("image/png", 6 * MB)
    assert (
        refusal is not None and refusal.message == "WhatsApp takes image/png files of up to 5 MB."
    )


def test_captions_where_the_platform_shows_them() -> None:
    limits = {k: registry.adapter_for(k).caption_limit for k in (WA, FB, IG, TG)}
    assert limits[WA]("image/jpeg") == limits[WA]("application/pdf") == 1024
    assert limits[WA]("audio/ogg") == limits[WA]("image/webp") == 0
    assert limits[FB]("image/jpeg") == limits[IG]("image/jpeg") == 0
    assert limits[TG]("audio/ogg") == 1024


def test_telegram_picks_the_method_that_shows_the_file() -> None:
    adapter = registry.adapter_for(TG)

    def method(content_type: str, size: int = 100) -> str:
        file = OutgoingFile(content_type, "f", b"x" * size)
        return adapter.build_send(out(TG, file), PLATFORMS).url.rsplit("/", 1)[1]

    assert method("image/png") == "sendPhoto"
    assert method("image/png", 10 * MB + 1) == "sendDocument"
    assert method("audio/ogg") == "sendVoice"
    assert method("audio/mpeg") == "sendAudio"
    assert method("video/mp4") == "sendVideo"
    assert method("video/webm") == "sendDocument"
    request = adapter.build_send(
        out(TG, OutgoingFile("application/pdf", "a.pdf", PDF), "cap", reply_to="5551234:77"),
        PLATFORMS,
    )
    assert request.form == {
        "chat_id": "5551234",
        "caption": "cap",
        "reply_parameters": '{"message_id": 77, "allow_sending_without_reply": true}',
    }
    assert request.files == {"document": ("a.pdf", PDF, "application/pdf")}


def test_a_request_with_a_file_shows_neither_its_bytes_nor_a_link() -> None:
    adapter = registry.adapter_for(FB)
    request = adapter.build_send(out(FB, OutgoingFile("application/pdf", "a.pdf", PDF)), PLATFORMS)
    assert "PDF" not in repr(request) and "files=['filedata']" in repr(request)
    file = OutgoingFile("image/png", "p.png", url="https://hub.example/media/s/signed")
    assert "signed" not in repr(out(IG, file))
    instagram = registry.adapter_for(IG).build_send(out(IG, file), PLATFORMS)
    assert instagram.json is not None and "signed" not in repr(instagram)


def test_files_are_not_sent_in_answer_to_a_comment() -> None:
    file = OutgoingFile("image/jpeg", "p.jpg", b"x", url="https://hub.example/x")
    for kind in (IG, FB):
        with pytest.raises(ValueError, match="comment"):
            registry.adapter_for(kind).build_send(out(kind, file, comment_id="c1"), PLATFORMS)


def test_whatsapp_reads_the_media_id_or_the_error_of_an_upload() -> None:
    adapter = registry.adapter_for(WA)
    assert adapter.interpret_upload(200, {"id": "4490709327384033"}, {}) == "4490709327384033"
    missing = adapter.interpret_upload(200, {}, {})
    assert isinstance(missing, Outcome) and missing.code == "bad_response"
    throttled = adapter.interpret_upload(400, {"error": {"message": "slow", "code": 130429}}, {})
    assert isinstance(throttled, Outcome) and throttled.kind == "retry"
    assert (
        registry.adapter_for(FB).build_upload(out(FB, OutgoingFile("a/b", "f")), PLATFORMS) is None
    )


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    with running_fake() as running:
        yield running


async def test_the_pump_uploads_then_sends_on_whatsapp(fake: FakePlatform) -> None:
    file = OutgoingFile("application/pdf", "invoice.pdf", PDF)
    outgoing = Outgoing(
        WA,
        WHATSAPP.account_id,
        "16505076520",
        "Your invoice",
        secrets={"access_token": WHATSAPP.token},
        file=file,
        reply_to="wamid.abc",
    )
    async with httpx.AsyncClient() as client:
        outcome = await send(client, outgoing, fake.base_urls())
    assert outcome.kind == "sent", fake.rejected
    upload, message = fake.requests
    assert upload.body.files["file"].data == PDF
    assert message.body["document"] == {
        "id": upload.answer["id"],
        "caption": "Your invoice",
        "filename": "invoice.pdf",
    }
    assert message.body["context"] == {"message_id": "wamid.abc"}
    assert outcome.platform_message_id == message.answer["messages"][0]["id"]


async def test_an_upload_without_an_answer_is_retried_a_send_is_not(fake: FakePlatform) -> None:
    pdf = OutgoingFile("application/pdf", "a.pdf", PDF)
    whatsapp = Outgoing(
        WA, WHATSAPP.account_id, "1650", "", secrets={"access_token": WHATSAPP.token}, file=pdf
    )
    telegram = Outgoing(
        TG, TELEGRAM.account_id, "42", "", secrets={"bot_token": TELEGRAM.token}, file=pdf
    )
    async with httpx.AsyncClient() as client:
        fake.slow_next(1.0)
        uploaded = await send(client, whatsapp, fake.base_urls(), upload_timeout_s=0.2)
        fake.slow_next(1.0)
        sent = await send(client, telegram, fake.base_urls(), upload_timeout_s=0.2)
    # An upload reaches no one: tried again. Telegram's file goes with its message, so no
    # answer may mean the person has it: not sent again.
    assert (uploaded.kind, uploaded.code) == ("retry", "network")
    assert (sent.kind, sent.code) == ("failed", "unknown_outcome")
