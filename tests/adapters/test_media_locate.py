"""Where an inbound file is, read from the platforms' answers (`locate_media`'s pure parts):
what is the file gone for good, what is asked again, and what is never fetched. The whole
round trip against the fake platform is in tests/test_media_inbound.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from adapters.media import MediaGone, MediaSource, NoMedia, raise_if_passing
from adapters.meta import media as meta_media
from adapters.outbound import Platforms
from adapters.telegram import media as telegram_media
from schemas.message import Attachment, AttachmentType, ChannelKind

pytestmark = pytest.mark.unit

AUTH = {"Authorization": "Bearer EAAfake-token"}


def test_a_whatsapp_lookup_gives_the_url_the_size_and_the_same_bearer() -> None:
    body = {
        "messaging_product": "whatsapp",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2&hash=3",
        "mime_type": "image/jpeg",
        "sha256": "abc",
        "file_size": "303833",
        "id": "1",
    }
    source = meta_media.whatsapp_source(200, body, AUTH)
    assert source.url == body["url"] and source.headers == AUTH and source.size == 303833
    assert "EAAfake" not in repr(source)  # the token is not in a repr that might be logged


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, {"error": {"code": 100, "error_subcode": 33}}, "no longer has the file"),
        (404, None, "no longer has the file"),
        (401, {"error": {"code": 190}}, "access token was refused"),
        (200, {"id": "1"}, "gave no link"),
        (200, {"url": "file:///etc/passwd"}, "gave no link"),
    ],
)
def test_whatsapp_answers_meaning_the_file_is_gone(status: int, body: object, reason: str) -> None:
    with pytest.raises(MediaGone, match=reason):
        meta_media.whatsapp_source(status, body, AUTH)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, {"ok": False, "description": "Bad Request: file is too big"}, "20 MB"),
        (400, {"ok": False, "description": "Bad Request: wrong file_id"}, "no longer has"),
        (401, {"ok": False, "description": "Unauthorized"}, "no longer has"),
        (200, {"ok": True, "result": {"file_id": "x"}}, "no path"),
        (200, {"ok": True, "result": {"file_path": "../bot1/x"}}, "no path"),
        (200, {"ok": True, "result": {"file_path": "/etc/passwd"}}, "no path"),
    ],
)
def test_telegram_answers_meaning_the_file_is_gone(status: int, body: object, reason: str) -> None:
    with pytest.raises(MediaGone, match=reason):
        telegram_media.file_path(status, body)


def test_a_telegram_file_path_is_taken_as_given() -> None:
    body = {"ok": True, "result": {"file_id": "x", "file_path": "voice/file_7.oga"}}
    assert telegram_media.file_path(200, body) == "voice/file_7.oga"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_platform_that_cannot_answer_now_is_asked_again(status: int) -> None:
    url = "https://api.telegram.org/bot123:SECRET/getFile"
    response = httpx.Response(status, request=httpx.Request("POST", url))
    with pytest.raises(httpx.HTTPStatusError) as raised:
        raise_if_passing(response)
    assert "SECRET" not in str(raised.value)  # the message names no URL


def test_a_telegram_file_over_the_bot_limit_is_not_asked_for() -> None:
    attachment = Attachment(type=AttachmentType.VIDEO, media_id="f", size=21 * 1024 * 1024)

    async def locate() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_no_call)) as client:
            await telegram_media.locate(client, attachment, {"bot_token": "1:x"}, Platforms())

    with pytest.raises(MediaGone, match="20 MB"):
        asyncio.run(locate())


@pytest.mark.parametrize(
    "attachment",
    [
        Attachment(type=AttachmentType.IMAGE),  # no link at all
        Attachment(type=AttachmentType.IMAGE, url="javascript:alert(1)"),
        Attachment(type=AttachmentType.FILE, url="file:///etc/passwd"),
    ],
)
def test_a_cdn_attachment_without_a_web_link_has_no_file(attachment: Attachment) -> None:
    async def locate() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_no_call)) as client:
            await meta_media.locate(client, ChannelKind.MESSENGER, attachment, {}, Platforms())

    with pytest.raises(NoMedia):
        asyncio.run(locate())


def test_a_cdn_link_is_fetched_as_it_is_without_a_token() -> None:
    url = "https://scontent.xx.fbcdn.net/v/t1/123.jpg?oh=a&oe=b"
    attachment = Attachment(type=AttachmentType.IMAGE, url=url)

    async def locate() -> object:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_no_call)) as client:
            secrets = {"access_token": "EAAfake-token"}
            return await meta_media.locate(
                client, ChannelKind.INSTAGRAM, attachment, secrets, Platforms()
            )

    source = asyncio.run(locate())
    assert source == MediaSource(url)  # no headers: the CDN gets no token


def _no_call(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no call expected, got {request.method}")
