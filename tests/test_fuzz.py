"""Bad input, fuzzed, against a real hub on loopback: `hub serve` and `hub worker` on the real
Postgres and Redis, with channels of every kind connected (Telegram's `setWebhook` goes to the
fake platform). Hypothesis generates webhook bodies (garbage under a valid signature, truncated
and mutated recordings from tests/fixtures, deep nesting, huge strings, invalid UTF-8, NUL and
lone-surrogate escapes, oversized bodies), websocket frames before and after `hello`, and REST
bodies for a sample of endpoints.

Every answer is a 4xx with `{"error": {"code": ...}}` (or 200 for what is still acceptable),
never a 5xx or a hang; every closed socket has a documented close code, announced by an error
frame; `/healthz` answers after each example; and valid webhooks, socket sends and REST sends
interleaved with the garbage all reach Postgres exactly once, while refused ones never do.

The size limits are checked at the edge: a huge declared Content-Length and a chunked body
that grows past the limit are answered 413 without the hub reading them, and a websocket
frame header announcing a huge frame is closed with 1009 before its payload is sent.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from hub.settings import Settings
from schemas.codes import CloseCode
from tests.conftest import REDIS_URL, admin_sql, forget_redis_prefix
from tests.fakeonboarding import FakeOnboarding, FakePage
from tests.fakeplatform import INSTAGRAM, MESSENGER, TELEGRAM, WABA_ID, WHATSAPP, running_fake
from tests.helpers import ORIGIN, Tenant, make_tenant
from tests.payloads import FIXTURES, load
from tests.servers import HubProcess, base_env, demo, free_port

META_SECRET = "fuzz-hosted-meta-app-secret"
OWN_SECRET = "fuzz-own-meta-app-secret"
OWN_PAGE = "990000000000001"  # a Page connected with its own Meta app
MAX_BODY = 256 * 1024
MAX_FRAME = 64 * 1024
TIMEOUT_S = 10.0
# Close codes of docs/protocol.md that bad input may get; 1009 and 1007 come from the
# websocket layer, before the hub sees the frame, so no error frame precedes them.
CLOSE_CODES = {
    CloseCode.INVALID_TEXT,
    CloseCode.TOO_BIG,
    CloseCode.BAD_FRAME,
    CloseCode.UNAUTHENTICATED,
    CloseCode.FORBIDDEN,
}
WITHOUT_ERROR_FRAME = {CloseCode.INVALID_TEXT, CloseCode.TOO_BIG}
# Log lines that mean a bug: a 5xx, a crashed session, an event the worker could not store.
BAD_LOG_LINES = (
    "unhandled error",
    "Exception in ASGI application",
    "websocket session failed",
    "skipping event",
)
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)


# The hub under test


@dataclass
class Hub:
    web: HubProcess
    worker: HubProcess
    tenant: Tenant
    http: httpx.Client
    telegram_id: str
    telegram_secret: str
    own_id: str
    visitor_token: str
    conversation_id: str
    expected: Counter[str] = field(default_factory=Counter)  # text -> times it must be stored
    refused: set[str] = field(default_factory=set)  # texts that must never be stored
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    def healthy(self) -> None:
        assert self.web.proc is not None and self.web.proc.poll() is None, "the web node died"
        assert self.worker.proc is not None and self.worker.proc.poll() is None, "worker died"
        assert self.http.get("/healthz").status_code == 200

    def stored(self) -> Counter[str]:
        """How many times each text is in Postgres, read through the REST API."""
        counts: Counter[str] = Counter()
        cursor: str | None = None
        while True:
            params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
            page = self.http.get("/api/conversations", params=params, headers=self.auth)
            assert page.status_code == 200, page.text
            for conversation in page.json()["items"]:
                before: str | None = None
                while True:
                    query = {"limit": "200"} | ({"before": before} if before else {})
                    messages = self.http.get(
                        f"/api/conversations/{conversation['id']}/messages",
                        params=query,
                        headers=self.auth,
                    )
                    assert messages.status_code == 200, messages.text
                    for message in messages.json()["items"]:
                        counts[message["text"]] += 1
                    before = messages.json()["next_before"]
                    if not before:
                        break
            cursor = page.json()["next_cursor"]
            if not cursor:
                return counts

    def assert_nothing_lost(self, deadline_s: float = 30.0) -> None:
        deadline = time.monotonic() + deadline_s
        while True:
            counts = self.stored()
            missing = {t for t in self.expected if counts[t] < self.expected[t]}
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert not missing, (
            f"{len(missing)} valid messages never stored, e.g. {sorted(missing)[:3]}"
        )
        extra = {t: counts[t] for t in self.expected if counts[t] != self.expected[t]}
        assert not extra, f"stored more than once: {extra}"
        leaked = {t for t in self.refused if counts[t]}
        assert not leaked, f"refused deliveries were stored: {sorted(leaked)[:3]}"

    def assert_clean_logs(self) -> None:
        for process in (self.web, self.worker):
            output = process.output()
            for line in BAD_LOG_LINES:
                assert line not in output, f"{process.args[0]} logged {line!r}:\n{output[-4000:]}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, postgres_database: str) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("fuzz")
    prefix = "test-fuzz-" + uuid.uuid4().hex[:8]
    database = postgres_database + "_fuzz"
    with running_fake() as fake:
        # The own-app Page below is pasted in: the fake knows its token.
        FakeOnboarding.of(fake).pages.append(FakePage(OWN_PAGE, "Own", "EAAown-page-token"))
        urls = fake.base_urls()
        env = base_env(
            DATABASE_URL=database,
            REDIS_URL=REDIS_URL,
            HUB_REDIS_PREFIX=prefix,
            HUB_SECRET_KEY="fuzz-" + uuid.uuid4().hex + uuid.uuid4().hex,
            HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            HUB_META_APP_SECRET=META_SECRET,
            HUB_PUBLIC_URL="https://hub.example",
            HUB_GRAPH_URL=urls.graph,
            HUB_INSTAGRAM_GRAPH_URL=urls.instagram,
            HUB_TELEGRAM_API_URL=urls.telegram,
            HUB_MAX_BODY_BYTES=str(MAX_BODY),
            HUB_MAX_FRAME_BYTES=str(MAX_FRAME),
            HUB_VISITOR_MESSAGES_PER_MINUTE="100000",
            HUB_CLAIM_IDLE_MS="2000",
        )
        admin_sql(f'CREATE DATABASE "{database.rsplit("/", 1)[1]}"')
        processes: list[HubProcess] = []
        try:
            subprocess.run(
                [sys.executable, "-m", "hub.cli", "migrate"],
                env=env,
                check=True,
                capture_output=True,
            )
            tenant = asyncio.run(make_tenant(Settings.from_env(env), "fuzz"))
            port = free_port()
            web = HubProcess(["serve", "--port", str(port)], env, port, tmp / "web.log").start()
            processes.append(web)
            worker = HubProcess(["worker"], env, log_path=tmp / "worker.log").start()
            processes.append(worker)
            with httpx.Client(base_url=web.base_url, timeout=TIMEOUT_S) as http:
                yield _connected(web, worker, tenant, http)
        finally:
            for process in processes:
                process.stop()
            admin_sql(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')
            forget_redis_prefix(prefix)


def _connected(web: HubProcess, worker: HubProcess, tenant: Tenant, http: httpx.Client) -> Hub:
    auth = {"authorization": f"Bearer {tenant.api_token}"}

    def connect(body: dict[str, Any]) -> dict[str, Any]:
        answer = http.post("/api/channels", json=body, headers=auth)
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    for account, kind in ((MESSENGER, "messenger"), (INSTAGRAM, "instagram")):
        connect(
            {
                "kind": kind,
                "name": kind,
                "account_id": account.account_id,
                "access_token": account.token,
            }
        )
    connect(
        {
            "kind": "whatsapp",
            "name": "wa",
            "account_id": WHATSAPP.account_id,
            "business_account_id": WABA_ID,
            "access_token": WHATSAPP.token,
        }
    )
    bot = connect({"kind": "telegram", "name": "bot", "bot_token": TELEGRAM.token})
    own = connect(
        {
            "kind": "messenger",
            "name": "own app",
            "account_id": OWN_PAGE,
            "access_token": "EAAown-page-token",
            "app_secret": OWN_SECRET,
        }
    )
    issued = http.post(
        "/api/widget/token", json={"channel": tenant.public_key}, headers={"origin": ORIGIN}
    )
    assert issued.status_code == 200, issued.text
    hub = Hub(
        web,
        worker,
        tenant,
        http,
        telegram_id=bot["id"],
        telegram_secret=bot["webhook"]["secret_token"],
        own_id=own["id"],
        visitor_token=issued.json()["token"],
        conversation_id=issued.json()["conversation_id"],
    )
    # The visitor's first message makes the web-chat conversation that agents write to.
    with open_socket(hub, agent=False) as ws:
        hello(hub, ws, agent=False)
        valid_socket_send(hub, ws, agent=False)
    deadline = time.monotonic() + 20
    while http.get(f"/api/conversations/{hub.conversation_id}", headers=auth).status_code != 200:
        assert time.monotonic() < deadline, "the web-chat conversation was never stored"
        time.sleep(0.1)
    return hub


# Webhooks: valid deliveries, and how to aim a recording at our channels


def sign(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"}


def route(body: Any, page: str = MESSENGER.account_id) -> Any:
    """Point a recorded Meta payload at the accounts connected here, so that it is parsed."""
    if not isinstance(body, dict):
        return body
    for entry in body.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        if body.get("object") == "instagram":
            entry["id"] = INSTAGRAM.account_id
        elif body.get("object") == "page":
            entry["id"] = page
        for change in entry.get("changes") or []:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
                value["metadata"]["phone_number_id"] = WHATSAPP.account_id
        for event in entry.get("messaging") or []:
            if isinstance(event, dict) and isinstance(event.get("recipient"), dict):
                event["recipient"]["id"] = entry["id"]
    return body


KINDS = ("messenger", "instagram", "whatsapp", "telegram", "own")


def valid_delivery(hub: Hub, kind: str, n: int, text: str) -> tuple[str, bytes, dict[str, str]]:
    """A delivery the hub must store: one text message with its own platform id."""
    if kind == "telegram":
        update = load("telegram/update_private_text_message.json")
        update["update_id"] = 10_000_000 + n
        update["message"]["message_id"] = 10_000_000 + n
        update["message"]["text"] = text
        headers = {"x-telegram-bot-api-secret-token": hub.telegram_secret}
        return f"/webhooks/telegram/{hub.telegram_id}", json.dumps(update).encode(), headers
    if kind == "whatsapp":
        body = route(load("whatsapp/message_text.json"))
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = f"wamid.fuzz{n}"
        message["text"]["body"] = text
    elif kind == "instagram":
        body = route(load("instagram/dm_text.json"))
        body["entry"][0]["messaging"][0]["sender"]["id"] = "fuzz-igsid"
        body["entry"][0]["messaging"][0]["message"] = {"mid": f"ig_fuzz_{n}", "text": text}
    else:
        page = OWN_PAGE if kind == "own" else MESSENGER.account_id
        body = route(load("messenger/webhook_text_full.json"), page)
        body["entry"][0]["messaging"][0]["message"] = {"mid": f"m_fuzz_{n}", "text": text}
    raw = json.dumps(body).encode()
    if kind == "own":
        return f"/webhooks/meta/{hub.own_id}", raw, sign(raw, OWN_SECRET)
    return "/webhooks/meta", raw, sign(raw, META_SECRET)


def deliver_valid(hub: Hub) -> None:
    n = next(hub.seq)
    text = f"fuzz valid delivery {n}"
    path, body, headers = valid_delivery(hub, KINDS[n % len(KINDS)], n, text)
    for _ in range(2 if n % 4 == 0 else 1):  # some are redelivered, as platforms do
        answer = hub.http.post(path, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    hub.expected[text] = 1


def is_error(answer: httpx.Response, *statuses: int) -> None:
    """A 4xx (one of `statuses`, if given) with the documented error body."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    if statuses:
        assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and error["code"], answer.text[:300]
    assert isinstance(error["message"], str), answer.text[:300]


def acceptable(answer: httpx.Response) -> None:
    """What may still be acceptable input: a success, or a 4xx with an error body."""
    if answer.status_code < 300:
        return
    is_error(answer)


# Generated bad input

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfff", "9" * 400, "ğüşıöç😀"])
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
)
META_FIXTURES = sorted(
    str(p.relative_to(FIXTURES))
    for folder in ("instagram", "messenger", "whatsapp")
    for p in (FIXTURES / folder).glob("*.json")
)
TELEGRAM_FIXTURES = sorted(
    str(p.relative_to(FIXTURES)) for p in (FIXTURES / "telegram").glob("*.json")
)


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*at, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*at, index))


def replaced(value: Any, at: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    if not at:
        return new
    value = copy.deepcopy(value)
    parent = value
    for key in at[:-1]:
        parent = parent[key]
    if delete:
        del parent[at[-1]]
    else:
        parent[at[-1]] = new
    return value


def nested(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "0" + closer * depth


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """A real payload with wrong types, deletions, deep nesting or huge strings in its fields."""
    value = copy.deepcopy(template)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(paths(value))))
        change = draw(st.sampled_from(["type", "type", "delete", "deep", "huge", "escape"]))
        if change == "delete" and where:
            value = replaced(value, where, None, delete=True)
        elif change == "deep":
            value = replaced(value, where, json.loads(nested(draw(st.integers(1, 400)), "[")))
        elif change == "huge":
            value = replaced(value, where, "x" * draw(st.integers(10_000, MAX_BODY // 2)))
        elif change == "escape":
            value = replaced(value, where, draw(st.sampled_from(["\x00", "a\x00", "\ud800b"])))
        else:
            value = replaced(value, where, draw(JSON))
    return value


@st.composite
def bad_json_bytes(draw: st.DrawFn, template: Any) -> tuple[str, bytes]:
    """(what it is, the bytes): every way a JSON body can be bad."""
    good = json.dumps(template).encode()
    kind = draw(
        st.sampled_from(
            ["garbage", "truncated", "nested", "mutated", "utf8", "oversized", "json", "empty"]
        )
    )
    if kind == "garbage":
        return kind, draw(st.binary(max_size=300))
    if kind == "truncated":
        return kind, good[: draw(st.integers(0, len(good) - 1))]
    if kind == "nested":
        depth = draw(st.sampled_from([100, 1_000, 5_000, 50_000, 200_000]))
        text = nested(depth, draw(st.sampled_from(["[", '{"a":'])))
        if draw(st.booleans()):
            text = text[: len(text) // 2]  # unbalanced
        return kind, text.encode()
    if kind == "mutated":
        return kind, json.dumps(draw(mutated(template))).encode()
    if kind == "utf8":
        at = draw(st.integers(0, len(good)))
        return kind, good[:at] + draw(INVALID_UTF8) + good[at:]
    if kind == "oversized":
        return kind, b'{"pad": "' + b"x" * (MAX_BODY + draw(st.integers(0, 4096))) + b'"}'
    if kind == "json":
        return kind, json.dumps(draw(JSON)).encode()
    return kind, b""


EXPECTED_STATUS: dict[str, tuple[int, ...]] = {
    "truncated": (400,),
    "utf8": (400,),
    "oversized": (413,),
    "empty": (400,),
}


# 1. Webhooks


@st.composite
def webhook_input(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """(route, what, body) where route is hosted, own or telegram."""
    target = draw(st.sampled_from(["hosted", "own", "telegram"]))
    if target == "telegram":
        template = load(draw(st.sampled_from(TELEGRAM_FIXTURES)))
    else:
        page = OWN_PAGE if target == "own" else MESSENGER.account_id
        template = route(load(draw(st.sampled_from(META_FIXTURES))), page)
    what, body = draw(bad_json_bytes(template))
    return target, what, body


def post_webhook(hub: Hub, target: str, body: bytes, signed: bool = True) -> httpx.Response:
    if target == "telegram":
        secret = hub.telegram_secret if signed else "wrong-" + hub.telegram_secret
        return hub.http.post(
            f"/webhooks/telegram/{hub.telegram_id}",
            content=body,
            headers={"x-telegram-bot-api-secret-token": secret, "content-type": "application/json"},
        )
    secret = OWN_SECRET if target == "own" else META_SECRET
    headers = sign(body, secret if signed else "not-the-secret")
    path = f"/webhooks/meta/{hub.own_id}" if target == "own" else "/webhooks/meta"
    return hub.http.post(path, content=body, headers=headers)


def test_fuzzed_webhooks_get_4xx_and_valid_deliveries_are_stored_once(hub: Hub) -> None:
    @settings(FUZZ, max_examples=150)
    @given(webhook_input(), st.integers(0, 3).map(lambda i: i == 0))
    def run(case: tuple[str, str, bytes], forged: bool) -> None:
        target, what, body = case
        if what == "oversized" or not forged:
            answer = post_webhook(hub, target, body)
            if what in EXPECTED_STATUS:
                is_error(answer, *EXPECTED_STATUS[what])
            else:
                acceptable(answer)
        else:  # a good delivery with a wrong signature or secret token: refused, not stored
            n = next(hub.seq)
            text = f"fuzz refused delivery {n}"
            kind = {"hosted": "messenger", "own": "own", "telegram": "telegram"}[target]
            _, good, _ = valid_delivery(hub, kind, n, text)
            is_error(post_webhook(hub, target, good, signed=False), 401)
            hub.refused.add(text)
        deliver_valid(hub)
        hub.healthy()

    run()
    hub.assert_nothing_lost()
    hub.healthy()
    hub.assert_clean_logs()


# 2. Websocket frames


def open_socket(hub: Hub, agent: bool) -> ClientConnection:
    return ws_connect(
        hub.web.ws_url + ("/ws/agent" if agent else "/ws/visitor"),
        origin=None if agent else ORIGIN,  # type: ignore[arg-type]
        proxy=None,
        compression=None,
        open_timeout=TIMEOUT_S,
        close_timeout=2,
        max_size=None,
    )


def hello(hub: Hub, ws: ClientConnection, agent: bool) -> None:
    token = hub.tenant.api_token if agent else hub.visitor_token
    ws.send(json.dumps({"type": "hello", "token": token}))
    _, code, reason = read_until(ws, lambda f: f["type"] == "welcome")
    assert code is None, f"hello refused: {code} {reason}"


def read_until(
    ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[list[dict[str, Any]], int | None, str]:
    """The frames up to the wanted one, or up to the close (then its code and reason).
    Neither within the timeout is a hang, and fails."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            raw = ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pytest.fail(f"no answer and no close within {TIMEOUT_S} s; frames: {seen}")
        except ConnectionClosed as closed:
            if closed.rcvd is None:
                return seen, 1006, ""
            return seen, closed.rcvd.code, closed.rcvd.reason
        frame = json.loads(raw)
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), raw
        seen.append(frame)
        if wanted(frame):
            return seen, None, ""


def valid_socket_send(hub: Hub, ws: ClientConnection, agent: bool) -> None:
    n = next(hub.seq)
    text = f"fuzz valid {'agent' if agent else 'visitor'} frame {n}"
    frame: dict[str, Any] = {"type": "message.send", "client_id": f"fuzz-{n}", "text": text}
    if agent:
        frame["conversation_id"] = hub.conversation_id
    ws.send(json.dumps(frame))
    seen, code, reason = read_until(
        ws, lambda f: f["type"] in ("ack", "error") and f.get("client_id") == f"fuzz-{n}"
    )
    assert code is None and seen[-1]["type"] == "ack", (code, reason, seen[-3:])
    hub.expected[text] = 1


def valid_rest_send(hub: Hub) -> None:
    n = next(hub.seq)
    text = f"fuzz valid rest send {n}"
    answer = hub.http.post(
        f"/api/conversations/{hub.conversation_id}/messages",
        json={"client_id": f"rest-{n}", "text": text},
        headers=hub.auth,
    )
    assert answer.status_code == 202, answer.text
    hub.expected[text] = 1


SOME_ID = "0b8a1c1e-5d0e-4a8b-9f51-3c1f4f3c2a10"
FRAME_TEMPLATES: list[dict[str, Any]] = [
    {"type": "hello", "token": "hubt_not-a-token", "resume_from": "1718000000000-3"},
    {"type": "message.send", "client_id": "c1", "conversation_id": SOME_ID, "text": "hi"},
    {
        "type": "message.send",
        "client_id": "c2",
        "text": "look",
        "attachments": [{"type": "image", "url": "https://cdn.example/a.png"}],
    },
    {
        "type": "message.send",
        "client_id": "c3",
        "attachments": [{"type": "location", "latitude": 41.0, "longitude": 29.0}],
    },
    {"type": "typing", "conversation_id": SOME_ID, "on": True},
    {"type": "read", "conversation_id": SOME_ID, "up_to": "1718000000000-7"},
    {"type": "presence", "state": "away"},
    {"type": "ping"},
]


@st.composite
def bad_frame(draw: st.DrawFn) -> tuple[str, str | bytes, bool]:
    """(what, data, sent as a text message)."""
    what = draw(
        st.sampled_from(["text", "json", "mutated", "mutated", "binary", "huge", "utf8", "nul"])
    )
    if what == "text":
        return what, draw(st.text(max_size=200)), True
    if what == "json":
        return what, json.dumps(draw(JSON)), True
    if what == "mutated":
        frame = draw(mutated(draw(st.sampled_from(FRAME_TEMPLATES))))
        return what, json.dumps(frame), True
    if what == "binary":
        return what, draw(st.binary(max_size=200)), False
    if what == "huge":
        pad = "x" * (MAX_FRAME + draw(st.integers(1, 4 * MAX_FRAME)))
        return what, json.dumps({"type": "ping", "pad": pad}), True
    if what == "utf8":
        good = json.dumps(draw(st.sampled_from(FRAME_TEMPLATES))).encode()
        at = draw(st.integers(0, len(good)))
        return what, good[:at] + draw(INVALID_UTF8) + good[at:], True
    text = draw(st.sampled_from(["a\x00b", "\x00", "nul \x00 in the middle"]))
    return what, json.dumps({"type": "message.send", "client_id": "nul", "text": text}), True


EXPECTED_CLOSE = {
    "binary": CloseCode.BAD_FRAME,
    "huge": CloseCode.TOO_BIG,
    "utf8": CloseCode.INVALID_TEXT,
}


def test_fuzzed_frames_close_with_documented_codes_and_valid_sends_are_stored_once(
    hub: Hub,
) -> None:
    @settings(FUZZ, max_examples=100)
    @given(st.booleans(), st.booleans(), bad_frame())
    def run(agent: bool, after_hello: bool, case: tuple[str, str | bytes, bool]) -> None:
        what, data, as_text = case
        with open_socket(hub, agent) as ws:
            if after_hello:
                hello(hub, ws, agent)
            try:
                ws.send(data, text=as_text)
                if after_hello:
                    ws.send('{"type":"ping"}')
            except ConnectionClosed:
                pass  # closed already: the close frame says why
            seen, code, reason = read_until(ws, lambda f: f["type"] in ("pong", "welcome"))
            if code is None:
                assert what not in EXPECTED_CLOSE, (what, seen[-3:])
                if after_hello:
                    valid_socket_send(hub, ws, agent)
            elif code == 1006 and len(data.encode() if isinstance(data, str) else data) > MAX_FRAME:
                # The whole oversized frame was sent ("huge", or a mutation that grew a field
                # past the limit): the hub closes 1009 once it has read the header, leaving the
                # rest unread, so the kernel resets the connection, and the reset can overtake
                # the close frame on its way to this client. The 1009 itself is proved without
                # that race below (test_a_huge_frame_is_closed_with_1009...).
                pass
            else:
                assert code in CLOSE_CODES, (what, code, reason, seen[-3:])
                if what in EXPECTED_CLOSE:
                    assert code == EXPECTED_CLOSE[what], (what, code, reason)
                if code not in WITHOUT_ERROR_FRAME:
                    errors = [f for f in seen if f["type"] == "error"]
                    assert errors and errors[-1]["code"] == reason, (code, reason, seen[-3:])
        valid_rest_send(hub)
        hub.healthy()

    run()
    hub.assert_nothing_lost()
    hub.healthy()
    hub.assert_clean_logs()


# 3. REST bodies


def test_fuzzed_rest_bodies_get_4xx_and_valid_sends_are_stored_once(hub: Hub) -> None:
    widget = {"origin": ORIGIN}
    conversation = f"/api/conversations/{hub.conversation_id}"
    endpoints: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
        ("POST", "/api/auth/login", {}, {"email": hub.tenant.email, "password": "wrong-pw"}),
        ("POST", conversation + "/messages", hub.auth, {"client_id": "x", "text": "hi"}),
        ("PATCH", conversation, hub.auth, {"status": "open", "labels": ["vip"]}),
        ("POST", "/api/widget/token", widget, {"channel": hub.tenant.public_key}),
        ("POST", "/api/widget/profile", widget, {"token": hub.visitor_token, "name": "Ada"}),
        ("POST", "/api/widget/history", widget, {"token": hub.visitor_token, "limit": 5}),
        (
            "POST",
            "/api/channels",
            hub.auth,
            {"kind": "webchat", "name": "w", "allowed_origins": []},
        ),
    ]

    @settings(FUZZ, max_examples=120)
    @given(
        st.sampled_from(endpoints).flatmap(lambda e: st.tuples(st.just(e), bad_json_bytes(e[3])))
    )
    def run(
        case: tuple[tuple[str, str, dict[str, str], dict[str, Any]], tuple[str, bytes]],
    ) -> None:
        (method, path, headers, _), (what, body) = case
        answer = hub.http.request(
            method, path, content=body, headers=headers | {"content-type": "application/json"}
        )
        if what in EXPECTED_STATUS:
            is_error(answer, *EXPECTED_STATUS[what])
        else:
            acceptable(answer)
        valid_rest_send(hub)
        hub.healthy()

    run()
    hub.assert_nothing_lost()
    hub.healthy()
    hub.assert_clean_logs()


def cursor_like() -> st.SearchStrategy[str]:
    """Page cursors: random text, and the hub's own shape (base64 of a JSON pair) with the
    wrong things inside."""
    when = st.datetimes().map(lambda d: d.isoformat())
    pair = st.tuples(when | JSON, JSON).map(lambda p: json.dumps(list(p)))
    deep = st.integers(1, 3000).map(lambda d: nested(d, "["))
    encoded = (pair | deep | JSON.map(json.dumps)).map(
        lambda t: base64.urlsafe_b64encode(t.encode("utf-8", "surrogatepass")).decode().rstrip("=")
    )
    return st.text(max_size=60) | encoded


def test_fuzzed_query_parameters_get_4xx(hub: Hub) -> None:
    conversation = f"/api/conversations/{hub.conversation_id}"
    values = cursor_like() | st.sampled_from(
        ["", "0", "-1", "201", "me", "none", "open", SOME_ID, "\x00", "vip\x00"]
    )
    params = st.dictionaries(
        st.sampled_from(["status", "assignee", "channel_id", "label", "cursor", "limit", "before"]),
        values,
        max_size=3,
    )

    @settings(FUZZ, max_examples=80)
    @given(
        st.sampled_from(["/api/conversations", conversation + "/messages", "/api/search"]),
        params,
        st.text(max_size=20) | st.just("ab\x00"),
        cursor_like(),
    )
    @example("/api/conversations", {"label": "vip\x00"}, "ab", "")
    @example(conversation + "/messages", {"before": "WyIyMDI0LTAxLTAxIiwgNV0"}, "ab", "")
    def run(path: str, query: dict[str, str], q: str, before: str) -> None:
        if path == "/api/search":
            query = {"q": q}
        answer = hub.http.get(path, params=query, headers=hub.auth)
        acceptable(answer)
        history = hub.http.post(
            "/api/widget/history",
            json={"token": hub.visitor_token, "before": before[:200]},
            headers={"origin": ORIGIN},
        )
        acceptable(history)
        hub.healthy()

    run()
    hub.assert_clean_logs()


# 4. Size limits, enforced before reading whole


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 response with a Content-Length body, from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of the answer"
        body += chunk
    return int(lines[0].split()[1]), json.loads(body)


def limited_routes(hub: Hub) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/webhooks/meta", {"x-hub-signature-256": "sha256=" + "0" * 64}),
        (f"/webhooks/meta/{hub.own_id}", {"x-hub-signature-256": "sha256=" + "0" * 64}),
        (
            f"/webhooks/telegram/{hub.telegram_id}",
            {"x-telegram-bot-api-secret-token": hub.telegram_secret},
        ),
        ("/api/auth/login", {}),
        (f"/api/conversations/{hub.conversation_id}/messages", hub.auth),
        ("/api/widget/token", {"origin": ORIGIN}),
    ]


def raw_post(port: int, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def test_a_huge_declared_body_is_refused_before_it_is_read(hub: Hub) -> None:
    assert hub.web.port is not None
    for path, headers in limited_routes(hub):
        started = time.monotonic()
        with raw_post(hub.web.port, path, headers | {"Content-Length": str(10**12)}) as sock:
            sock.sendall(b'{"text": "')  # a terabyte is announced; a few bytes come
            status, body = read_response(sock)
        assert (status, body["error"]["code"]) == (413, "too_big"), (path, status, body)
        assert time.monotonic() - started < 5, path
        hub.healthy()


def test_a_chunked_body_growing_past_the_limit_is_refused(hub: Hub) -> None:
    assert hub.web.port is not None
    chunk = b"x" * 16384
    for path, headers in limited_routes(hub):
        with raw_post(hub.web.port, path, headers | {"Transfer-Encoding": "chunked"}) as sock:
            sent = 0
            while sent <= MAX_BODY:  # never finished: the hub answers once it passes the limit
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            status, body = read_response(sock)
        assert (status, body["error"]["code"]) == (413, "too_big"), (path, status, body)
        hub.healthy()


def announce_big_frame(ws: ClientConnection, size: int) -> int | None:
    """Send only the header of a text frame of `size` bytes, and 4 bytes of it: the hub must
    close at once, not wait for (and buffer) the payload. (Sizes under uvicorn's own default
    limit of 16 MiB, so that it is the hub's limit that is enforced.)"""
    header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big") + b"mask"
    ws.socket.sendall(header + b"abcd")
    return read_until(ws, lambda f: False)[1]


def test_a_huge_frame_is_closed_with_1009_before_its_payload_arrives(hub: Hub) -> None:
    for agent, after_hello in ((True, True), (False, False), (True, False), (False, True)):
        with open_socket(hub, agent) as ws:
            if after_hello:
                hello(hub, ws, agent)
            started = time.monotonic()
            assert announce_big_frame(ws, MAX_FRAME + 1) == CloseCode.TOO_BIG
            assert time.monotonic() - started < 5
    hub.healthy()
    valid_rest_send(hub)
    hub.assert_nothing_lost()


def test_the_demo_enforces_the_same_limits(tmp_path: Path) -> None:
    process = demo(tmp_path).start()
    try:
        assert process.port is not None
        with raw_post(process.port, "/api/auth/login", {"Content-Length": str(10**12)}) as sock:
            sock.sendall(b"{")
            status, body = read_response(sock)
        assert (status, body["error"]["code"]) == (413, "too_big")
        with ws_connect(process.ws_url + "/ws/agent", proxy=None, compression=None) as ws:
            assert announce_big_frame(ws, MAX_FRAME + 1) == CloseCode.TOO_BIG
        assert httpx.get(process.base_url + "/healthz", timeout=TIMEOUT_S).status_code == 200
    finally:
        output = process.stop()
    assert "unhandled error" not in output
