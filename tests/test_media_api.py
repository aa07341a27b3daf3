"""Files through the REST API (hub.media.routes, hub.media.uploads, hub.media.library): an
agent's and a visitor's uploads, kept without metadata and served only to their own
workspace and conversation, with the headers and ranges players need."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from hub.media.store import CHUNK_BYTES
from hub.settings import Settings
from hub.web.app import create_app
from tests.helpers import ORIGIN, Tenant, prepare
from tests.test_widget_api import hello, next_event, send, session, wait_for

UNSUPPORTED = "unsupported_media_type"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def jpeg_with_location(size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (41.0, 2.0, 0.0), 3: "E", 4: (28.0, 58.0, 0.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def ogg_voice() -> bytes:
    # An Ogg page whose first packet is an Opus head: what a voice note starts with.
    head = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    page = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8 + b"\x01"
    return page + bytes([len(head)]) + head + b"\x00" * 4000


class Env:
    def __init__(self, client: TestClient, acme: Tenant, globex: Tenant) -> None:
        self.client, self.acme, self.globex = client, acme, globex

    def agent(self, tenant: Tenant) -> dict[str, str]:
        return {"authorization": f"Bearer {tenant.api_token}"}

    def visitor(self, tenant: Tenant) -> tuple[str, str]:
        self.client.cookies.clear()
        answer = self.client.post(
            "/api/widget/token", json={"channel": tenant.public_key}, headers={"origin": ORIGIN}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["token"], answer.json()["conversation_id"]

    def visitor_upload(
        self, token: str, files: list[tuple[str, bytes]], client_id: str = "v1", **fields: str
    ) -> httpx.Response:
        self.client.cookies.clear()
        return self.client.post(
            "/api/widget/messages",
            data={"client_id": client_id, **fields},
            files=[("attachments", (name, data)) for name, data in files],
            headers={"origin": ORIGIN, "authorization": f"Bearer {token}"},
        )

    def stored(self, tenant: Tenant, conversation_id: str) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]] | None:
            answer = self.client.get(
                f"/api/conversations/{conversation_id}/messages", headers=self.agent(tenant)
            )
            items = answer.json()["items"] if answer.status_code == 200 else []
            return items or None

        return list(wait_for(found))


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    acme, globex = prepare(settings, "acme", "globex")
    app = create_app(settings, run_worker=True)
    with TestClient(app, base_url="https://hub.example") as client:
        yield Env(client, acme, globex)


def test_a_visitors_photo_is_kept_without_its_location_and_served_to_agents(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    answer = env.visitor_upload(token, [("../../parcel.jpg", jpeg_with_location())], text="hi")
    assert answer.status_code == 202, answer.text
    [message] = env.stored(env.acme, conversation_id)
    assert message["text"] == "hi"
    [attachment] = message["attachments"]
    assert attachment["type"] == "image" and attachment["state"] == "ready"
    assert attachment["mime_type"] == "image/jpeg"
    assert (attachment["width"], attachment["height"]) == (640, 480)
    assert attachment["name"] == "parcel.jpg"  # the path the client claimed is dropped
    url = attachment["url"]
    assert url == f"/api/conversations/{conversation_id}/media/{attachment['file']}"

    served = env.client.get(url, headers=env.agent(env.acme))
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"].startswith("inline")
    kept = Image.open(io.BytesIO(served.content))
    assert kept.size == (640, 480)
    assert not kept.getexif(), "the location and camera must be stripped"
    assert len(served.content) == attachment["size"]

    thumb = env.client.get(url + "?size=thumb", headers=env.agent(env.acme))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320


def test_another_workspace_gets_404_exactly_like_a_random_name(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    assert env.visitor_upload(token, [("r.pdf", PDF)]).status_code == 202
    [message] = env.stored(env.acme, conversation_id)
    url = message["attachments"][0]["url"]
    theirs = env.client.get(url, headers=env.agent(env.globex))
    random = env.client.get(
        f"/api/conversations/{conversation_id}/media/{uuid.uuid4().hex}.pdf",
        headers=env.agent(env.acme),
    )
    assert theirs.status_code == random.status_code == 404
    assert theirs.json() == random.json()
    assert env.client.get(url).status_code == 401  # no credentials at all


def test_documents_are_downloads_and_voice_notes_answer_ranges(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    voice = ogg_voice()
    answer = env.visitor_upload(token, [("receipt.pdf", PDF), ("voice.ogg", voice)])
    assert answer.status_code == 202, answer.text
    [message] = env.stored(env.acme, conversation_id)
    pdf, ogg = message["attachments"]
    assert (pdf["type"], ogg["type"]) == ("file", "audio")

    served = env.client.get(pdf["url"], headers=env.agent(env.acme))
    assert served.headers["content-type"] == "application/pdf"
    assert served.headers["content-disposition"].startswith("attachment")

    part = env.client.get(ogg["url"], headers=env.agent(env.acme) | {"range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == voice[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(voice)}"
    tail = env.client.get(ogg["url"], headers=env.agent(env.acme) | {"range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == voice[-5:]
    past = env.client.get(ogg["url"], headers=env.agent(env.acme) | {"range": "bytes=99999-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(voice)}"


def test_a_players_open_ended_range_streams_the_whole_file(env: Env) -> None:
    # Chromium asks `bytes=0-` for every <audio> and <video>: a file of several store chunks
    # comes back whole as one 206, with the length and range it says.
    voice = ogg_voice() + os.urandom(3 * CHUNK_BYTES + 123)
    token, conversation_id = env.visitor(env.acme)
    assert env.visitor_upload(token, [("voice.ogg", voice)]).status_code == 202
    [message] = env.stored(env.acme, conversation_id)
    url = message["attachments"][0]["url"]

    whole = env.client.get(url, headers=env.agent(env.acme) | {"range": "bytes=0-"})
    assert whole.status_code == 206
    assert whole.content == voice
    assert whole.headers["content-length"] == str(len(voice))
    assert whole.headers["content-range"] == f"bytes 0-{len(voice) - 1}/{len(voice)}"
    assert whole.headers["content-type"] == "audio/ogg"
    assert whole.headers["etag"] and whole.headers["accept-ranges"] == "bytes"

    edge = CHUNK_BYTES
    headers = env.agent(env.acme) | {"range": f"bytes={edge - 5}-{2 * edge + 5}"}
    across = env.client.get(url, headers=headers)
    assert across.status_code == 206 and across.content == voice[edge - 5 : 2 * edge + 6]
    assert across.headers["content-length"] == str(edge + 11)
    tail = env.client.get(url, headers=env.agent(env.acme) | {"range": f"bytes={len(voice) - 1}-"})
    assert tail.status_code == 206 and tail.content == voice[-1:]
    cached = env.client.get(
        url,
        headers=env.agent(env.acme) | {"if-none-match": whole.headers["etag"], "range": "bytes=0-"},
    )
    assert cached.status_code == 304 and cached.content == b""


def test_a_visitor_reads_only_its_own_conversations_files(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    assert env.visitor_upload(token, [("r.pdf", PDF)]).status_code == 202
    [message] = env.stored(env.acme, conversation_id)
    file = message["attachments"][0]["file"]
    own = env.client.get(
        f"/api/widget/media/{file}",
        headers={"origin": ORIGIN, "authorization": f"Bearer {token}"},
    )
    assert own.status_code == 200 and own.content == PDF
    assert own.headers["access-control-allow-origin"] == ORIGIN
    other, _ = env.visitor(env.acme)
    theirs = env.client.get(
        f"/api/widget/media/{file}",
        headers={"origin": ORIGIN, "authorization": f"Bearer {other}"},
    )
    assert theirs.status_code == 404
    anonymous = env.client.get(f"/api/widget/media/{file}", headers={"origin": ORIGIN})
    assert anonymous.status_code == 401


def test_an_agent_sends_files_as_multipart_and_a_retry_keeps_one_copy(env: Env) -> None:
    token, conversation_id = env.visitor(env.acme)
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, token)
        send(ws, "v1", "where is my invoice?")
        env.stored(env.acme, conversation_id)
        body = {"client_id": "a1", "text": "your invoice"}
        files = [("attachments", ("invoice.pdf", PDF))]
        url = f"/api/conversations/{conversation_id}/messages"
        first = env.client.post(url, data=body, files=files, headers=env.agent(env.acme))
        assert first.status_code == 202, first.text
        again = env.client.post(url, data=body, files=files, headers=env.agent(env.acme))
        assert again.status_code == 200 and again.json()["duplicate"] is True
        event = next_event(ws, "message.created")
        while event["data"]["message"]["client_id"] != "a1":
            event = next_event(ws, "message.created")
        [attachment] = event["data"]["message"]["attachments"]
        assert attachment["name"] == "invoice.pdf" and attachment["state"] == "ready"
    served = env.client.get(
        f"/api/widget/media/{attachment['file']}",
        headers={"origin": ORIGIN, "authorization": f"Bearer {token}"},
    )
    assert served.content == PDF


@pytest.mark.parametrize(
    ("files", "status", "error"),
    [
        ([("page.html", b"<!doctype html><script>alert(1)</script>")], 415, UNSUPPORTED),
        ([("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')], 415, UNSUPPORTED),
        ([("empty.pdf", b"")], 400, "bad_upload"),
    ],
)
def test_bad_files_are_refused_with_a_code_and_nothing_is_sent(
    env: Env, files: list[tuple[str, bytes]], status: int, error: str
) -> None:
    token, conversation_id = env.visitor(env.acme)
    answer = env.visitor_upload(token, files)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == error
    ok = env.visitor_upload(token, [("r.pdf", PDF)], client_id="after")
    assert ok.status_code == 202
    [message] = env.stored(env.acme, conversation_id)
    assert message["client_id"] == "after"


def test_a_file_over_the_limit_and_a_cut_upload_are_refused(env: Env) -> None:
    token, _ = env.visitor(env.acme)
    too_big = PDF + b"0" * (26 * 1024 * 1024)
    answer = env.visitor_upload(token, [("big.pdf", too_big)])
    assert answer.status_code == 413
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\nc\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="a.pdf"'
        "\r\n\r\n"
    ).encode() + PDF[:20]
    cut = env.client.post(
        "/api/widget/messages",
        content=body,
        headers={
            "origin": ORIGIN,
            "authorization": f"Bearer {token}",
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert cut.status_code == 400
    assert cut.json()["error"]["code"] == "upload_incomplete"


def test_a_frame_cannot_name_a_stored_file(env: Env) -> None:
    token, _ = env.visitor(env.acme)
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, token)
        forged = {"type": "image", "file": f"{uuid.uuid4().hex}.jpg", "state": "ready"}
        ws.send_text(
            json.dumps({"type": "message.send", "client_id": "f", "attachments": [forged]})
        )
        frame = ws.receive_json()
        while frame["type"] != "error":
            frame = ws.receive_json()
        assert frame["client_id"] == "f"


def test_agents_session_cookie_serves_files(env: Env, settings: Settings) -> None:
    token, conversation_id = env.visitor(env.acme)
    assert env.visitor_upload(token, [("r.pdf", PDF)]).status_code == 202
    [message] = env.stored(env.acme, conversation_id)
    headers = session(env.client, env.acme.email, env.acme.password)
    served = env.client.get(message["attachments"][0]["url"], headers=headers)
    assert served.status_code == 200 and served.content == PDF


def test_more_files_than_a_message_takes_is_a_bad_upload(env: Env) -> None:
    token, _ = env.visitor(env.acme)
    answer = env.visitor_upload(token, [(f"r{i}.pdf", PDF) for i in range(11)])
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_upload"
    assert answer.headers["access-control-allow-origin"] == ORIGIN  # the widget can read it


def test_a_visitor_is_checked_before_its_body_is_read(env: Env) -> None:
    env.client.cookies.clear()
    answer = env.client.post(
        "/api/widget/messages",
        data={"client_id": "x"},
        files=[("attachments", ("r.pdf", PDF))],
        headers={"origin": ORIGIN, "authorization": "Bearer forged"},
    )
    assert answer.status_code == 401


def stored_files(settings: Settings) -> list[str]:
    root = settings.data_dir / "media"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_refused_upload_keeps_nothing_and_a_retry_never_replaces_a_sent_file(
    env: Env, settings: Settings
) -> None:
    token, conversation_id = env.visitor(env.acme)
    before = stored_files(settings)
    refused = env.visitor_upload(token, [("r.pdf", PDF), ("x.html", b"<html><script>")])
    assert refused.status_code == 415
    assert stored_files(settings) == before  # the PDF was not kept either

    assert env.visitor_upload(token, [("r.pdf", PDF)], client_id="same").status_code == 202
    [message] = env.stored(env.acme, conversation_id)
    url = message["attachments"][0]["url"]
    kept = stored_files(settings)
    other = PDF.replace(b"1 0 obj", b"2 0 obj")
    again = env.visitor_upload(token, [("r.pdf", other)], client_id="same")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert env.client.get(url, headers=env.agent(env.acme)).content == PDF
    assert stored_files(settings) == kept  # the retry's own file is not left behind
