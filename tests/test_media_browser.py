"""Media both ways in a real Chromium: an agent's files from the inbox's composer (button, paste,
drop) reach the visitor's widget, a visitor's upload (with its progress) reaches the inbox as a
thumbnail, a full-size picture and a playable voice note, and the states of a file the hub
does not keep (pending, link, unavailable) show as words and links that are never loaded.

The hub runs in this process under a real uvicorn (SQLite, the in-process bus and the embedded
worker), so a test can publish what the platforms' media fetching produces (a link-only file,
an unavailable one, a pending one then fetched) through the hub's own ingress."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from PIL import Image
from websockets.sync.client import connect as ws_connect

from hub.services import Services
from hub.storage.engine import migrate
from hub.web.app import create_app
from schemas.events import MessageChanges, MessageUpdated
from schemas.message import (
    Attachment,
    AttachmentType,
    DeliveryStatus,
    Direction,
    MediaState,
    Sender,
    SenderType,
)
from tests.browserkit import api_client, log_in, screenshot, wait_until
from tests.conftest import free_port, make_settings
from tests.helpers import Tenant, make_tenant
from tests.thirdparty import Site, third_party

pytestmark = pytest.mark.browser
T = TypeVar("T")


# Small real media, made here.


def png(width: int, height: int, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    for x in range(0, width, 16):  # some detail, so it is a picture and not one colour
        for y in range(0, height, 16):
            image.putpixel((x, y), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packets: list[bytes], *, flags: int, granule: int, serial: int, seq: int) -> bytes:
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = (
        b"OggS\x00"
        + bytes([flags])
        + struct.pack("<qII", granule, serial, seq)
        + b"\x00\x00\x00\x00"
        + bytes([len(lacing)])
        + lacing
    )
    page = header + b"".join(packets)
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def ogg_opus(seconds: int = 1) -> bytes:
    """A valid Ogg/Opus voice note of `seconds` of silence: the Opus head and tags, then 20 ms
    CELT silence frames (TOC 0xF8, as WebRTC sends for silence), with the granule positions a
    player reads the duration from."""
    pre_skip, serial = 312, 0x5EED
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    vendor = b"hub-tests"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    frames = [b"\xf8\xff\xfe"] * (50 * seconds)
    pages = [
        _ogg_page([head], flags=0x02, granule=0, serial=serial, seq=0),
        _ogg_page([tags], flags=0x00, granule=0, serial=serial, seq=1),
    ]
    for i in range(0, len(frames), 50):
        chunk = frames[i : i + 50]
        last = i + 50 >= len(frames)
        granule = pre_skip + (i + len(chunk)) * 960
        pages.append(
            _ogg_page(
                chunk, flags=0x04 if last else 0x00, granule=granule, serial=serial, seq=2 + i // 50
            )
        )
    return b"".join(pages)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# The hub in this process, and a loopback server that must never be asked for anything.


@dataclass
class InProcessHub:
    services: Services
    loop: asyncio.AbstractEventLoop
    base: str
    tenant: Tenant
    shop: Site
    admin: httpx.Client

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def page_url(self) -> str:
        src, key = f"{self.base}/widget.js", self.tenant.public_key
        tag = f'<script src="{src}" data-channel="{key}" async></script>'
        return self.shop.page(f"/p-{uuid.uuid4().hex[:8]}", tag)

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        page = self.admin.get(f"/api/conversations/{conversation_id}/messages?limit=200")
        return list(page.json()["items"]) if page.status_code == 200 else []


@dataclass
class Trap:
    """A loopback web server standing for a platform's CDN or a link a visitor gave."""

    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.requests.append(self.path)
                body = png(8, 8)
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[InProcessHub]:
    tmp: Path = tmp_path_factory.mktemp("media-hub")
    settings = make_settings(tmp, visitor_messages_per_minute=1000)
    with third_party() as shop, ThreadPoolExecutor(1) as aside:
        # Off this thread, whose event loop is Playwright's.
        aside.submit(migrate, settings).result()
        made = aside.submit(asyncio.run, make_tenant(settings, "acme", origins=[shop.origin]))
        tenant = made.result()
        app = create_app(settings, run_worker=True)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                ws="websockets-sansio",
                log_config=None,
                access_log=False,
            )
        )
        loops: list[asyncio.AbstractEventLoop] = []

        async def serve() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve()

        thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        thread.start()
        wait_until(lambda: server.started, 30, "the hub to start")
        base = f"http://127.0.0.1:{port}"
        try:
            with closing(api_client(base, tenant.email, tenant.password)) as admin:
                yield InProcessHub(app.state.services, loops[0], base, tenant, shop, admin)
        finally:
            server.should_exit = True
            thread.join(20)


@pytest.fixture
def trap() -> Iterator[Trap]:
    made = Trap()
    yield made
    made.close()


def agent_inbox(hub: InProcessHub, contexts: Any) -> Any:
    from playwright.sync_api import expect

    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    log_in(page, hub.base, hub.tenant.email, hub.tenant.password)
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    page.locator("[data-ib=filter-status]").select_option("")
    return page


def widget_page(hub: InProcessHub, contexts: Any, init: str = "") -> Any:
    from playwright.sync_api import expect

    page = contexts().new_page()
    if init:
        page.add_init_script(init)
    page.goto(hub.page_url())
    page.locator("[data-sc=launcher]").click()
    expect(page.locator("[data-sc=status]")).to_have_attribute("data-state", "online")
    return page


def say(page: Any, text: str) -> None:
    from playwright.sync_api import expect

    page.locator("[data-sc=input]").fill(text)
    page.locator("[data-sc=input]").press("Enter")
    expect(page.locator(f"[data-sc=message][data-direction=in]:has-text('{text}')")).to_have_count(
        1
    )


def conversation_of(hub: InProcessHub, page: Any) -> str:
    """The widget's conversation, from the token it keeps."""
    token = page.evaluate(f"localStorage.getItem('sosyocrm:{hub.tenant.public_key}:token')")
    answer = httpx.post(
        hub.base + "/api/widget/token",
        json={"channel": hub.tenant.public_key, "token": token},
        headers={"origin": hub.shop.origin},
    )
    return str(answer.json()["conversation_id"])


def open_conversation(agent: Any, conversation_id: str, text: str) -> None:
    from playwright.sync_api import expect

    row = agent.locator(f"[data-ib=conversation][data-id='{conversation_id}']")
    expect(row).to_have_count(1)
    row.click()
    expect(agent.locator("[data-ib=message]", has_text=text)).to_have_count(1)


def decoded(locator: Any) -> int:
    """The natural width of an <img> once it has loaded and decoded (0 until then)."""
    return int(locator.evaluate("img => (img.complete && img.naturalWidth) || 0"))


# Files given to a page's script: a DataTransfer holding one file, for paste and drop events.
DISPATCH = """([target, type, name, mime, bytes]) => {
  const file = new File([new Uint8Array(bytes)], name, { type: mime });
  const data = new DataTransfer();
  data.items.add(file);
  const event = type === 'paste'
    ? new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true })
    : new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true });
  target.dispatchEvent(event);
  return event.defaultPrevented;
}"""


def test_an_agent_attaches_by_button_paste_and_drop_and_the_visitor_sees_the_picture(
    hub: InProcessHub, contexts: Any
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    visitor = widget_page(hub, contexts)
    say(visitor, f"do you have it in blue {tag}")
    agent = agent_inbox(hub, contexts)
    open_conversation(agent, conversation_of(hub, visitor), tag)

    # The file button, a pasted picture and a dropped document: each previewed.
    agent.locator("[data-ib=file-input]").set_input_files(
        {"name": "blue.png", "mimeType": "image/png", "buffer": png(640, 480)}
    )
    uploads = agent.locator("[data-ib=upload]")
    expect(uploads).to_have_count(1)
    wait_until(lambda: decoded(uploads.first.locator("img")) == 640, what="the preview")
    reply = agent.locator("[data-ib=reply]")
    pasted = reply.evaluate_handle("r => r")
    assert agent.evaluate(DISPATCH, [pasted, "paste", "pasted.png", "image/png", list(png(64, 48))])
    expect(uploads).to_have_count(2)
    expect(uploads.nth(1)).to_contain_text("pasted.png")
    thread = agent.locator("[data-ib=messages]").evaluate_handle("m => m")
    for kind in ("dragenter", "dragover"):
        agent.evaluate(DISPATCH, [thread, kind, "x.pdf", "application/pdf", list(PDF)])
    assert agent.evaluate(DISPATCH, [thread, "drop", "catalogue.pdf", "application/pdf", list(PDF)])
    expect(uploads).to_have_count(3)
    expect(uploads.nth(2)).to_contain_text("catalogue.pdf")
    expect(uploads.nth(2)).to_contain_text(f"{len(PDF)} B")
    expect(uploads.nth(2).locator("img")).to_have_count(0)  # a document: its name and size
    uploads.nth(1).locator("[data-ib=upload-remove]").click()  # taken out again
    expect(uploads).to_have_count(2)
    screenshot(agent, "media-composer")

    reply.fill(f"here it is {tag}")
    reply.press("Enter")
    expect(agent.locator("[data-ib=uploads]")).to_be_hidden()
    sent = agent.locator("[data-ib=message][data-direction=out]", has_text=f"here it is {tag}")
    expect(sent).to_have_count(1)
    expect(sent).not_to_have_class("sending")
    picture = sent.locator("figure[data-ib=attachment][data-state=ready] img")
    expect(picture).to_have_count(1)
    assert "size=thumb" in (picture.get_attribute("src") or "")
    wait_until(lambda: decoded(picture) == 320, what="the agent's own thumbnail")
    expect(sent.locator("[data-ib=download]")).to_have_text("catalogue.pdf")

    # The visitor's widget shows the picture (fetched with its token) and the document.
    reply_in_widget = visitor.locator("[data-sc=message][data-direction=out]", has_text=tag)
    expect(reply_in_widget).to_have_count(1)
    image = reply_in_widget.locator("[data-sc=attachment][data-type=image] img")
    wait_until(lambda: decoded(image) > 0, what="the picture in the widget")
    assert (image.get_attribute("src") or "").startswith("blob:")
    document = reply_in_widget.locator("[data-sc=attachment][data-type=file] a")
    expect(document).to_have_text("catalogue.pdf")
    wait_until(lambda: (document.get_attribute("href") or "").startswith("blob:"), what="pdf")
    screenshot(visitor, "media-widget")
    assert not agent.errors, agent.errors


PROGRESS = """addEventListener('sosyochat:ready', () => {
  window.progress = [];
  const root = document.getElementById('sosyocrm-chat').shadowRoot;
  const note = (n) => {
    if (n.dataset && n.dataset.sc === 'progress') window.progress.push(Number(n.value));
    if (n.querySelectorAll) n.querySelectorAll('progress').forEach(note);
  };
  new MutationObserver((changes) => changes.forEach((c) => {
    if (c.type === 'attributes') note(c.target); else c.addedNodes.forEach(note);
  })).observe(root, { subtree: true, childList: true, attributes: true });
});"""


def test_a_visitor_uploads_with_progress_and_the_agent_sees_thumbnail_full_size_and_voice(
    hub: InProcessHub, contexts: Any
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    visitor = widget_page(hub, contexts, PROGRESS)
    say(visitor, f"photo of the parcel {tag}")
    big = png(1200, 900, (200, 60, 40))
    visitor.locator("[data-sc=file]").set_input_files(
        [
            {"name": "parcel.png", "mimeType": "image/png", "buffer": big},
            {"name": "voice.ogg", "mimeType": "audio/ogg", "buffer": ogg_opus(1)},
        ]
    )
    mine = visitor.locator("[data-sc=message][data-direction=in]")
    expect(mine).to_have_count(2)
    image = mine.last.locator("[data-sc=attachment][data-type=image] img")
    wait_until(lambda: image.count() == 1 and decoded(image) > 0, what="the upload shown back")
    expect(mine.last.locator("[data-sc=progress]")).to_have_count(0)  # done: the files instead
    expect(mine.last.locator("[data-sc=attachment][data-type=audio] audio")).to_have_count(1)
    progress = visitor.evaluate("window.progress")
    assert progress and max(progress) == 100, progress

    agent = agent_inbox(hub, contexts)
    open_conversation(agent, conversation_of(hub, visitor), tag)
    messages = agent.locator("[data-ib=message][data-direction=in]")
    expect(messages).to_have_count(2)
    thumb = messages.last.locator("figure[data-ib=attachment][data-type=image] img")
    expect(thumb).to_have_count(1)
    assert "size=thumb" in (thumb.get_attribute("src") or "")
    wait_until(lambda: decoded(thumb) == 320, what="the thumbnail, 320 pixels wide")
    messages.last.locator("[data-ib=open-image]").click()
    full = agent.locator("[data-ib=lightbox] img")
    expect(agent.locator("[data-ib=lightbox]")).to_be_visible()
    wait_until(lambda: decoded(full) == 1200, what="the full-size picture")
    screenshot(agent, "media-lightbox")
    agent.keyboard.press("Escape")
    expect(agent.locator("[data-ib=lightbox]")).to_be_hidden()

    voice = messages.last.locator("[data-ib=attachment][data-type=audio] audio")
    expect(voice).to_have_count(1)
    duration = wait_until(
        lambda: voice.evaluate(
            "a => a.readyState >= 1 && isFinite(a.duration) && a.duration > 0 ? a.duration : 0"
        ),
        what="the voice note's metadata",
    )
    assert 0.9 <= duration <= 1.1, duration
    assert not agent.errors, agent.errors


def test_files_the_hub_does_not_keep_are_words_and_links_never_loaded(
    hub: InProcessHub, contexts: Any, trap: Trap
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    # A visitor's own links, by the socket: kept as they are, never loaded by the inbox.
    token = httpx.post(
        hub.base + "/api/widget/token",
        json={"channel": hub.tenant.public_key},
        headers={"origin": hub.shop.origin},
    ).json()
    socket_url, origin = hub.base.replace("http", "ws") + "/ws/visitor", hub.shop.origin
    with ws_connect(socket_url, origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": token["token"]}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        frame = {
            "type": "message.send",
            "client_id": "links",
            "text": f"look {tag}",
            "attachments": [
                {"type": "image", "url": f"{trap.origin}/visitor.jpg", "name": "visitor.jpg"},
                {"type": "video", "url": f"{trap.origin}/visitor.mp4", "name": "visitor.mp4"},
            ],
        }
        ws.send(json.dumps(frame))
        while (answer := json.loads(ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert answer["type"] == "ack", answer
    conversation_id = uuid.UUID(token["conversation_id"])
    wait_until(lambda: hub.messages(str(conversation_id)), what="the visitor's message stored")

    # What the platforms' media fetching leaves: a link only, an unavailable file, one pending.
    ref = hub.run(hub.services.ingress.conversation(hub.tenant.workspace_id, conversation_id))
    states = [
        Attachment(
            type=AttachmentType.IMAGE,
            url=f"{trap.origin}/cdn/big.jpg",
            name="big.jpg",
            state=MediaState.LINK,
            reason="larger than the hub keeps",
        ),
        Attachment(
            type=AttachmentType.VIDEO,
            url=f"{trap.origin}/cdn/clip.mp4",
            name="clip.mp4",
            state=MediaState.UNAVAILABLE,
            reason="deleted on the platform",
        ),
        Attachment(
            type=AttachmentType.AUDIO,
            url=f"{trap.origin}/cdn/voice.ogg",
            name="voice.ogg",
            state=MediaState.PENDING,
        ),
        Attachment(
            type=AttachmentType.FILE,
            url="javascript:alert(1)",
            name="evil.pdf",
            state=MediaState.LINK,
            reason="x",
        ),
    ]
    message = ref.message(
        f"platform-{tag}",
        f"c-{tag}",
        f"media {tag}",
        [a.model_dump(exclude_none=True) for a in states],
        direction=Direction.IN,
        status=DeliveryStatus.RECEIVED,
        sender=Sender(type=SenderType.CONTACT, id=str(ref.contact_id)),
    )

    agent = agent_inbox(hub, contexts)
    dialogs: list[str] = []
    agent.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_conversation(agent, str(conversation_id), f"look {tag}")
    hub.run(hub.services.ingress.publish_message(message))
    shown = agent.locator("[data-ib=message]", has_text=f"media {tag}")
    expect(shown).to_have_count(1)
    cards = shown.locator("[data-ib=attachment]")
    expect(cards).to_have_count(4)

    link = cards.nth(0)
    expect(link).to_have_attribute("data-state", "link")
    expect(link.locator("a")).to_have_attribute("href", f"{trap.origin}/cdn/big.jpg")
    expect(link.locator("a")).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_contain_text("larger than the hub keeps")
    expect(link.locator("img")).to_have_count(0)
    expect(cards.nth(1)).to_have_attribute("data-state", "unavailable")
    expect(cards.nth(1)).to_contain_text("Not available: deleted on the platform")
    expect(cards.nth(1).locator("video, a")).to_have_count(0)
    expect(cards.nth(2)).to_have_attribute("data-state", "pending")
    expect(cards.nth(2)).to_contain_text("Downloading…")
    expect(cards.nth(3).locator("a")).to_have_count(0)  # never a javascript: link

    visitor_links = agent.locator("[data-ib=message]", has_text=f"look {tag}")
    expect(visitor_links.locator("img, video, audio")).to_have_count(0)
    expect(visitor_links.locator("a").first).to_have_attribute("href", f"{trap.origin}/visitor.jpg")
    expect(visitor_links.locator("a").first).to_have_attribute("rel", "noopener noreferrer")

    # The pending voice note is fetched: message.updated carries the whole new list.
    kept = hub.run(
        hub.services.library.keep(
            hub.tenant.workspace_id, conversation_id, ogg_opus(2), name="voice.ogg"
        )
    )
    fetched = [states[0], states[1], kept, states[3]]
    update = MessageUpdated(
        channel_id=message.channel_id,
        conversation_id=conversation_id,
        platform_message_id=message.platform_message_id,
        message_id=message.id,
        changes=MessageChanges(attachments=fetched),
    )
    hub.run(
        hub.services.bus.publish(
            str(hub.tenant.workspace_id),
            update.NAME,
            update.dump(),
            conversation_id=str(conversation_id),
        )
    )
    player = cards.nth(2).locator("audio")
    expect(cards.nth(2)).to_have_attribute("data-state", "ready")
    duration = wait_until(
        lambda: player.evaluate("a => a.readyState >= 1 && isFinite(a.duration) ? a.duration : 0"),
        what="the fetched voice note's metadata",
    )
    assert 1.9 <= duration <= 2.1, duration
    screenshot(agent, "media-states")

    time.sleep(1)  # anything the page would fetch on its own has been asked for by now
    assert trap.requests == [], trap.requests
    assert not dialogs and not agent.errors, (dialogs, agent.errors)


def test_refused_files_are_said_in_words_and_go_back_to_the_composer(
    hub: InProcessHub, contexts: Any
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    page = b"<!doctype html><script>alert(1)</script>"
    visitor = widget_page(hub, contexts)
    say(visitor, f"a page {tag}")
    visitor.locator("[data-sc=file]").set_input_files(
        {"name": "page.html", "mimeType": "text/html", "buffer": page}
    )
    refused = visitor.locator("[data-sc=message][data-direction=in]").last
    expect(refused).to_have_class("m f")
    expect(refused).to_contain_text("Not sent: That type of file cannot be sent.")

    agent = agent_inbox(hub, contexts)
    open_conversation(agent, conversation_of(hub, visitor), tag)
    agent.locator("[data-ib=file-input]").set_input_files(
        {"name": "page.html", "mimeType": "text/html", "buffer": page}
    )
    agent.locator("[data-ib=reply]").fill(f"see this {tag}")
    agent.locator("[data-ib=send]").click()
    expect(agent.locator("[data-ib=upload-error]")).to_have_text(
        "That type of file cannot be sent."
    )
    failed = agent.locator("[data-ib=message].failed", has_text=f"see this {tag}")
    expect(failed.locator("[data-ib=delivery]")).to_contain_text("Not sent")
    expect(agent.locator("[data-ib=upload]")).to_have_count(1)  # back, to take out or resend
    expect(agent.locator("[data-ib=upload]")).to_contain_text("page.html")
    assert not hub.messages(conversation_of(hub, visitor))[1:], "nothing was sent"
    assert not agent.errors, agent.errors
