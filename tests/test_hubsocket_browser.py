"""hub/static/hubsocket.js, the one realtime client the inbox and the widget share, in a real
Chromium against a scripted websocket server on loopback: the test plays the hub, frame by
frame, and reads what the client sent and which callbacks it called."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.server import Server, ServerConnection, serve

from tests.browserkit import wait_until
from tests.servers import HubProcess
from tests.thirdparty import third_party

pytestmark = pytest.mark.browser
MODULE = Path(__file__).resolve().parent.parent / "hub" / "static" / "hubsocket.js"
# The module as it is, then a harness; served from loopback, as the socket is (Chromium
# refuses a public page's socket to a loopback address).
HARNESS = """
window.calls = [];
window.make = (url, extra) => { // a client whose every callback is written down
  let n = 0;
  const note = (name) => (...args) => { window.calls.push([name, ...args]); };
  window.socket = hubSocket(Object.assign({
    url, ping: 0,
    token: async () => { n += 1; window.calls.push(['token', n]); return `tok-${n}`; },
    onConnecting: note('connecting'), onRetry: note('retry'), onWelcome: note('welcome'),
    onEvent: note('event'), onFrame: note('frame'), onClose: note('close'),
    onCursorTooOld: note('cursor-too-old'), onDenied: note('denied'),
  }, extra ? (0, eval)(`(${extra})`) : {}));
};
window.ready = true;
"""


class Peer:
    """One connection as the hub sees it: the frames the client sent, and the hub's hand."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.frames: list[dict[str, Any]] = []
        self.gone = threading.Event()

    def hello(self) -> dict[str, Any]:
        wait_until(lambda: self.frames, 5, "hello")
        return self.frames[0]

    def send(self, frame: dict[str, Any]) -> None:
        self.conn.send(json.dumps(frame))

    def close(self, code: int, reason: str = "") -> None:
        self.conn.close(code, reason)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == kind]


class ScriptedHub:
    def __init__(self) -> None:
        self.peers: queue.Queue[Peer] = queue.Queue()
        self.server: Server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ws/agent"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, conn: ServerConnection) -> None:
        peer = Peer(conn)
        self.peers.put(peer)
        try:
            for message in conn:
                peer.frames.append(json.loads(message))
        except Exception:
            pass
        peer.gone.set()

    def next(self, timeout: float = 5) -> Peer:
        return self.peers.get(timeout=timeout)

    def none_within(self, seconds: float) -> bool:
        try:
            self.peers.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def scripted() -> Iterator[ScriptedHub]:
    server = ScriptedHub()
    yield server
    server.server.shutdown()


@pytest.fixture
def page(contexts: Any) -> Iterator[Any]:
    source = MODULE.read_text()
    assert "</script" not in source
    with third_party() as site:
        page = contexts().new_page()
        page.goto(site.page("/", f'<script type="module">{source}{HARNESS}</script>'))
        page.wait_for_function("window.ready === true")
        yield page


def calls(page: Any, name: str) -> list[list[Any]]:
    return [c for c in page.evaluate("window.calls") if c[0] == name]


def test_hello_resumes_from_the_last_event_and_4409_starts_over(
    scripted: ScriptedHub, page: Any
) -> None:
    page.evaluate("url => { window.make(url); window.socket.connect(); }", scripted.url)
    first = scripted.next()
    assert first.hello() == {"type": "hello", "token": "tok-1", "v": 2}  # no cursor yet
    first.send({"type": "welcome", "cursor": "5-0", "resumed": False})
    page.wait_for_function("window.socket.live === true")
    assert page.evaluate("window.socket.cursor") == "5-0"
    first.send({"type": "event", "id": "6-0", "name": "typing", "data": {}})
    first.send({"type": "event", "id": "7-1", "name": "typing", "data": {}})
    page.wait_for_function("window.socket.cursor === '7-1'")
    assert [c[1]["id"] for c in calls(page, "event")] == ["6-0", "7-1"]

    # Too slow: the hub closes with 1013; the client comes back with a fresh token and resumes.
    first.close(1013, "too_slow")
    second = scripted.next()
    assert second.hello() == {"type": "hello", "token": "tok-2", "v": 2, "resume_from": "7-1"}
    assert page.evaluate("window.socket.live") is False
    assert [c[1] for c in calls(page, "close")] == [1013]
    (retry,) = calls(page, "retry")
    assert 250 <= retry[1] <= 500  # the first step of the backoff
    second.send({"type": "welcome", "cursor": "7-1", "resumed": True})
    second.send({"type": "event", "id": "8-0", "name": "typing", "data": {}})
    page.wait_for_function("window.socket.cursor === '8-0'")
    assert not calls(page, "cursor-too-old")

    # Cursor too old: the caller is told (it reloads over REST) and the next hello starts over.
    second.close(4409, "cursor_too_old")
    third = scripted.next()
    assert third.hello() == {"type": "hello", "token": "tok-3", "v": 2}
    assert len(calls(page, "cursor-too-old")) == 1
    assert page.evaluate("window.socket.cursor") is None
    third.send({"type": "welcome", "cursor": "9-0", "resumed": False})
    page.wait_for_function("window.socket.cursor === '9-0'")
    welcomes = [c[1]["resumed"] for c in calls(page, "welcome")]
    assert welcomes == [False, True, False]

    # Closed by the page: no reconnect.
    page.evaluate("window.socket.close()")
    third.gone.wait(5)
    assert scripted.none_within(1.5)
    assert page.evaluate("window.socket.connected") is False


def test_a_given_cursor_is_resumed_and_queued_frames_are_resent_until_acked(
    scripted: ScriptedHub, page: Any
) -> None:
    page.evaluate(
        """url => {
            window.make(url, "{ cursor: '41-2' }");
            window.socket.queue('c1', { type: 'message.send', client_id: 'c1', text: 'one' });
            window.socket.connect();
        }""",
        scripted.url,
    )
    first = scripted.next()
    assert first.hello() == {"type": "hello", "token": "tok-1", "v": 2, "resume_from": "41-2"}
    page.wait_for_timeout(200)
    assert first.frames == [first.hello()]  # nothing but hello before welcome
    assert page.evaluate("window.socket.send({ type: 'ping' })") is False  # not live yet
    first.send({"type": "welcome", "cursor": "41-2", "resumed": True})
    wait_until(lambda: first.of_type("message.send"), 5, "the queued send")
    assert first.of_type("message.send") == [
        {"type": "message.send", "client_id": "c1", "text": "one"}
    ]

    # No ack before the socket drops: sent again after the next welcome, same client_id.
    first.close(1012, "unavailable")
    second = scripted.next()
    assert second.hello()["resume_from"] == "41-2"
    second.send({"type": "welcome", "cursor": "41-2", "resumed": True})
    wait_until(lambda: second.of_type("message.send"), 5, "the resend")
    assert [f["client_id"] for f in second.of_type("message.send")] == ["c1"]
    second.send({"type": "ack", "client_id": "c1", "message_id": "m1", "duplicate": True})
    page.wait_for_function("window.calls.some(c => c[0] === 'frame' && c[1].type === 'ack')")
    page.evaluate(
        "window.socket.queue('c2', { type: 'message.send', client_id: 'c2', text: 'two' })"
    )
    wait_until(lambda: len(second.of_type("message.send")) == 2, 5, "a live send")
    page.evaluate("window.socket.queue('c3', { type: 'message.send', client_id: 'c3', text: 'x' })")
    page.evaluate("window.socket.settle('c3')")  # the caller gave up on it

    # After the next drop only what is neither acked nor settled goes again.
    second.close(1011, "internal_error")
    third = scripted.next()
    third.send({"type": "welcome", "cursor": "41-2", "resumed": True})
    wait_until(lambda: third.of_type("message.send"), 5, "the second resend")
    page.wait_for_timeout(300)
    assert [f["client_id"] for f in third.of_type("message.send")] == ["c2"]


def test_denied_dead_and_unreachable_sockets(scripted: ScriptedHub, page: Any) -> None:
    # 4401: the caller hears it and the client reconnects with a new token.
    page.evaluate(
        """url => {
            window.make(url, "{ onDenied: (code) => { window.calls.push(['denied', code]);"
                + " return code !== 4403; } }");
            window.socket.connect();
        }""",
        scripted.url,
    )
    first = scripted.next()
    assert first.hello()["token"] == "tok-1"
    first.close(4401, "unauthenticated")
    second = scripted.next()
    assert second.hello()["token"] == "tok-2"
    assert [c[1] for c in calls(page, "denied")] == [4401]

    # 4403 refused by the caller: the client stays down.
    second.close(4403, "forbidden")
    assert scripted.none_within(1.5)
    assert [c[1] for c in calls(page, "denied")] == [4401, 4403]
    assert page.evaluate("window.socket.connected") is False

    # A socket that stops answering pings is dropped and replaced.
    page.evaluate(
        "url => { window.make(url, '{ ping: 300 }'); window.socket.connect(); }", scripted.url
    )
    quiet = scripted.next()
    quiet.hello()
    quiet.send({"type": "welcome", "cursor": "1-0", "resumed": False})
    wait_until(lambda: quiet.of_type("ping"), 5, "a ping")
    again = scripted.next()  # no pong came: a new connection, resuming
    assert again.hello()["resume_from"] == "1-0"
    assert quiet.gone.wait(5)
    page.evaluate("window.socket.close()")

    # The token cannot be had: retried with growing, jittered delays.
    page.evaluate(
        """url => {
            window.calls = [];
            window.make(url, "{ token: async () => { throw new Error('offline'); } }");
            window.socket.connect();
        }""",
        scripted.url,
    )
    wait_until(lambda: len(calls(page, "retry")) >= 3, 5, "three retries")
    page.evaluate("window.socket.close()")
    delays = [c[1] for c in calls(page, "retry")][:3]
    assert 250 <= delays[0] <= 500 and 500 <= delays[1] <= 1000 and 1000 <= delays[2] <= 2000
    assert scripted.none_within(0.5)  # never opened a socket without a token


def test_the_widget_carries_the_module_without_a_global(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    """/widget.js serves this module inside the widget's closure: the page gets SosyoChat only."""
    proc, seed = hub
    script = httpx.get(proc.base_url + "/widget.js")
    assert script.status_code == 200
    assert "function hubSocket(" in script.text and "export {" not in script.text
    page = contexts().new_page()
    page.add_init_script("window.before = Object.keys(window);")
    with third_party() as site:
        tag = (
            f'<script src="{proc.base_url}/widget.js" data-channel="{seed["public_key"]}"></script>'
        )
        page.goto(site.page("/", tag))
        page.wait_for_function("window.SosyoChat !== undefined")
        added = page.evaluate("Object.keys(window).filter(k => !window.before.includes(k))")
    assert sorted(added) == ["SosyoChat", "before"]
    assert page.evaluate("typeof hubSocket") == "undefined"


def test_a_v2_welcome_has_lean_messages_rebuilt_and_a_v1_welcome_leaves_them(
    scripted: ScriptedHub, page: Any
) -> None:
    """Callers (the inbox, the widget) read v1's whole message whichever version the hub
    speaks: after a v2 welcome the lean data is rebuilt; a hub that answers v1 is read as is."""
    workspace, contact = (
        "0b6f4b1e-8a53-4c5e-9a4e-1f2d3c4b5a69",
        "5f1c9d2e-7b3a-5c4d-8e9f-0a1b2c3d4e5f",
    )
    message = {"id": "m1", "contact_id": contact, "channel_kind": "webchat", "client_id": "c1"}
    lean = {"message": message | {"text": "hi"}, "contact": {"platform_user_id": "visitor-1"}}
    page.evaluate("url => { window.make(url); window.socket.connect(); }", scripted.url)
    first = scripted.next()
    first.hello()
    welcome = {"type": "welcome", "cursor": "5-0", "resumed": False, "v": 2}
    first.send(welcome | {"workspace_id": workspace})
    first.send({"type": "event", "id": "6-0", "name": "message.created", "data": lean})
    page.wait_for_function("window.socket.cursor === '6-0'")
    [(_, rebuilt)] = calls(page, "event")
    assert rebuilt["data"]["message"] == {
        "id": "m1",
        "workspace_id": workspace,
        "contact_id": contact,
        "channel_kind": "webchat",
        "kind": "dm",
        "direction": "in",
        "status": "received",
        "sender": {"type": "contact", "id": contact},
        "text": "hi",
        "client_id": "c1",
        "platform_message_id": "v:visitor-1:c1",
        "attachments": [],
        "reactions": [],
        "edited": False,
        "deleted": False,
        "private_reply": False,
        "note": False,
        "standby": False,
        "hidden": False,
    }
    assert rebuilt["data"]["contact"] == {
        "id": contact,
        "name": None,
        "platform_user_id": "visitor-1",
    }

    first.close(1012)
    second = scripted.next()
    second.hello()
    second.send({"type": "welcome", "cursor": "6-0", "resumed": True})  # an older hub: v1
    second.send({"type": "event", "id": "7-0", "name": "message.created", "data": lean})
    page.wait_for_function("window.socket.cursor === '7-0'")
    assert calls(page, "event")[-1][1]["data"] == lean
