"""Fault tests on real processes: `hub serve` and `hub worker` on loopback, killed, starved and
cut off from their backing services, with the promises of docs/protocol.md checked from the outside:
nothing a client was told was accepted is lost, nothing is delivered or sent twice, a resumed
socket sees no gap and no duplicate.

Postgres and Redis outages use private servers (`tests.privateservices`), never the shared
ones on 5432 and 6379. Only the platforms are faked (`tests.fakeplatform`).

Documented behaviour these tests hold the hub to: a send whose platform call was in flight
when its worker was killed is marked failed ("interrupted") by the worker that claims it, never
sent again; a call the platform did not answer in time is failed ("unknown_outcome"), never
retried (`hub/workers/sender.py`): the platform may have either, and "never twice" wins.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from tests import privateservices
from tests.browserkit import wait_until
from tests.conftest import IN_CI, admin_sql
from tests.fakeplatform import FakePlatform
from tests.helpers import ORIGIN
from tests.servers import HubProcess
from tests.stacks import CLAIM_IDLE_MS, Stack, make_stack

# The production shape: Postgres and Redis (private servers for the faults).
pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# The stack: processes against a database and a Redis prefix of the test's own


def _need_private() -> None:
    problem = privateservices.available()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(problem + " (CI=true: fault tests fail instead of skipping)")
    pytest.skip(problem)


@pytest.fixture
def shared_stack(tmp_path: Path, postgres_database: str) -> Iterator[Stack]:
    """On the shared Postgres (a database of its own) and Redis (a prefix of its own)."""
    with make_stack(tmp_path, database_url=postgres_database, create=admin_sql) as stack:
        yield stack


# Clients


def messages(api: httpx.Client, conversation_id: str) -> list[dict[str, Any]]:
    """Every stored message of a conversation, oldest first (all pages)."""
    items: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        params = {"limit": "200"} | ({"before": before} if before else {})
        page = api.get(f"/api/conversations/{conversation_id}/messages", params=params)
        assert page.status_code == 200, page.text
        items = page.json()["items"] + items
        before = page.json()["next_before"]
        if not before:
            return items


def stored_texts(
    api: httpx.Client, conversation_id: str, wanted: Iterable[str], *, timeout_s: float, what: str
) -> list[str]:
    """The conversation's stored texts, once they hold every one of `wanted`."""
    want = set(wanted)

    def texts() -> list[str] | None:
        found = [m["text"] for m in messages(api, conversation_id)]
        return found if set(found) >= want else None

    return list(wait_until(texts, timeout_s=timeout_s, what=what))


def conversation_ids(api: httpx.Client) -> list[str]:
    page = api.get("/api/conversations", params={"limit": "200"})
    assert page.status_code == 200, page.text
    return [c["id"] for c in page.json()["items"]]


class Follower(threading.Thread):
    """A websocket client that keeps every event it gets and, when its socket goes away,
    reconnects (to the next url, if any) and resumes from the last event it saw."""

    def __init__(self, urls: list[str], token: str, *, visitor: bool = False) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.token = token
        self.visitor = visitor
        self.events: list[dict[str, Any]] = []
        self.cursor: str | None = None
        self.welcomes: list[dict[str, Any]] = []
        self.drops: list[str] = []
        self.acks: list[str] = []
        self.ws: Any = None
        self.live = threading.Event()
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        index = 0
        path = "/ws/visitor" if self.visitor else "/ws/agent"
        while not self.halt.is_set():
            try:
                with connect(
                    self.urls[index] + path,
                    origin=ORIGIN if self.visitor else None,  # type: ignore[arg-type]
                    open_timeout=5,
                    close_timeout=2,
                ) as ws:
                    hello: dict[str, Any] = {"type": "hello", "token": self.token}
                    if self.cursor:
                        hello["resume_from"] = self.cursor
                    ws.send(json.dumps(hello))
                    welcome = json.loads(ws.recv(timeout=10))
                    assert welcome["type"] == "welcome", welcome
                    self.ws = ws
                    with self.lock:
                        self.welcomes.append(welcome)
                        self.cursor = self.cursor or welcome["cursor"]
                    self.live.set()
                    while not self.halt.is_set():
                        try:
                            frame = json.loads(ws.recv(timeout=0.3))
                        except TimeoutError:
                            continue
                        if frame["type"] == "ack":
                            with self.lock:
                                self.acks.append(frame["client_id"])
                        if frame["type"] == "event":
                            frame["arrived"] = time.monotonic()
                            with self.lock:
                                self.events.append(frame)
                                self.cursor = frame["id"]
            except (ConnectionClosed, OSError, TimeoutError, InvalidHandshake, AssertionError) as e:
                self.live.clear()
                self.drops.append(repr(e))
                index = min(index + 1, len(self.urls) - 1)
                time.sleep(0.2)

    def created(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["name"] == "message.created"]

    def send(self, frame: dict[str, Any]) -> None:
        """On the current socket (websockets' sync client sends and receives from two threads)."""
        self.ws.send(json.dumps(frame))

    def arrivals(self) -> list[float]:
        return [e["arrived"] for e in self.created()]

    def texts(self) -> list[str]:
        return [e["data"]["message"]["text"] for e in self.created()]

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


@contextmanager
def following(*followers: Follower) -> Iterator[None]:
    for follower in followers:
        follower.start()
    try:
        for follower in followers:
            assert follower.live.wait(15), follower.drops
        yield
    finally:
        for follower in followers:
            follower.stop()


def assert_exactly_once_in_order(seen: list[dict[str, Any]], expected: list[str]) -> None:
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    keys = [tuple(int(p) for p in i.split("-")) for i in ids]
    assert keys == sorted(keys), "events out of order"
    texts = [e["data"]["message"]["text"] for e in seen]
    assert texts == expected, (
        f"missing {sorted(set(expected) - set(texts))}, "
        f"duplicated {[t for t, n in Counter(texts).items() if n > 1]}"
    )


def sends_of(fake: FakePlatform) -> list[str]:
    return [p for p in list(fake.started) if p.endswith("/sendMessage")]


def sent_texts(fake: FakePlatform) -> Counter[str]:
    """How many times each text was accepted by the platform (answered ok)."""
    return Counter(
        r.body["text"]
        for r in list(fake.requests)
        if r.path.endswith("/sendMessage")
        and isinstance(r.body, dict)
        and isinstance(r.answer, dict)
        and r.answer.get("ok") is True
    )


def first_conversation(stack: Stack, web: HubProcess, chat: int) -> str:
    """Open a Telegram conversation (one inbound message, stored) and return its id."""
    assert stack.webhook(web, chat, 1, "hello there").status_code == 200
    with stack.api(web) as api:
        found = wait_until(
            lambda: conversation_ids(api), timeout_s=30, what="the first conversation stored"
        )
    return str(found[0])


# 1. A web node dies under its sockets


def test_web_node_sigkill_clients_resume_elsewhere_without_gap_or_duplicate(
    shared_stack: Stack,
) -> None:
    stack = shared_stack
    a, b = stack.web("a"), stack.web("b")
    stack.worker("w")
    issued = httpx.post(
        a.base_url + "/api/widget/token",
        json={"channel": stack.tenant.public_key},
        headers={"origin": ORIGIN},
        timeout=10,
    ).json()
    conversation = issued["conversation_id"]
    agent = Follower([a.ws_url, b.ws_url], stack.tenant.api_token)
    visitor = Follower([a.ws_url, b.ws_url], issued["token"], visitor=True)
    posted: list[str] = []
    with following(agent, visitor), stack.api(b) as api:
        # The visitor opens the conversation; the agents answer through node b.
        with connect(b.ws_url + "/ws/visitor", origin=ORIGIN, open_timeout=5) as opener:  # type: ignore[arg-type]
            opener.send(json.dumps({"type": "hello", "token": issued["token"]}))
            assert json.loads(opener.recv(timeout=10))["type"] == "welcome"
            opener.send(json.dumps({"type": "message.send", "client_id": "c0", "text": "first"}))
            wait_until(lambda: json.loads(opener.recv(timeout=10))["type"] == "ack", what="ack")
        wait_until(
            lambda: api.get(f"/api/conversations/{conversation}").status_code == 200,
            timeout_s=30,
            what="the conversation stored",
        )

        def post_replies() -> None:
            for i in range(80):
                text = f"reply {i:02d}"
                answer = api.post(
                    f"/api/conversations/{conversation}/messages",
                    json={"client_id": f"r{i}", "text": text},
                )
                assert answer.status_code == 202, answer.text
                posted.append(text)
                time.sleep(0.02)

        with ThreadPoolExecutor(1) as pool:
            poster = pool.submit(post_replies)
            wait_until(lambda: len(posted) > 20, timeout_s=20, what="replies flowing")
            assert a.proc is not None
            a.proc.send_signal(signal.SIGKILL)  # mid-stream: no goodbye, no drain
            a.proc.wait(5)
            assert not poster.done(), "the kill came after the traffic, not during it"
            poster.result(timeout=60)
        expected = ["first", *posted]
        for follower in (agent, visitor):
            wait_until(
                lambda f=follower: len(f.texts()) >= len(expected),  # type: ignore[misc]
                timeout_s=20,
                what="every message after the resume",
            )
        time.sleep(0.5)  # anything extra (a duplicate) would arrive now
    for follower in (agent, visitor):
        assert follower.drops, "the socket never noticed the node die"
        assert [w["resumed"] for w in follower.welcomes] == [False, True], follower.welcomes
        assert_exactly_once_in_order(follower.created(), expected)


# 2. A worker dies in the middle of a batch


def test_worker_sigkill_mid_batch_another_claims_it_nothing_lost_nothing_sent_twice(
    shared_stack: Stack,
) -> None:
    stack = shared_stack
    web = stack.web("a")
    first = stack.worker("first")
    stack.connect_bot(web)
    chat = 5100
    conversation = first_conversation(stack, web, chat)
    first.stop()  # gracefully: the groups exist and nothing is pending

    with stack.api(web) as api:
        replies = [f"answer {i}" for i in range(5)]
        for i, text in enumerate(replies):
            posted = api.post(
                f"/api/conversations/{conversation}/messages",
                json={"client_id": f"a{i}", "text": text},
            )
            assert posted.status_code == 202, posted.text
        for i in range(2, 42):
            assert stack.webhook(web, chat, i, f"inbound {i}").status_code == 200

        # One worker reads all of it in one batch; the platform holds the first send.
        stack.fake.slow_next(8.0)
        doomed = stack.worker("doomed")
        wait_until(lambda: sends_of(stack.fake), timeout_s=30, what="the first send under way")
        held_at = time.monotonic()
        assert doomed.proc is not None
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait(5)
        assert time.monotonic() - held_at < 8.0  # killed while the platform held the call
        assert len(sends_of(stack.fake)) == 1

        stack.worker("heir")  # claims what the dead worker left pending, after 1.5 s idle

        def outcomes() -> dict[str, dict[str, Any]] | None:
            mine = {m["text"]: m for m in messages(api, conversation) if m["direction"] == "out"}
            done = {t: m for t, m in mine.items() if m["status"] != "pending"}
            return done if len(done) == len(replies) else None

        final = wait_until(outcomes, timeout_s=45, what="every reply's outcome")
        time.sleep(2 * CLAIM_IDLE_MS / 1000)  # past another claim: nothing is redone
        stored = messages(api, conversation)

    # The send in flight at the kill: the platform may or may not have it, so it is marked
    # failed ("interrupted") and never tried again; the rest of the batch is sent once each.
    assert final[replies[0]]["status"] == "failed", final[replies[0]]
    assert final[replies[0]]["error"]["code"] == "interrupted", final[replies[0]]
    for text in replies[1:]:
        assert final[text]["status"] in ("sent", "delivered"), final[text]
    assert len(sends_of(stack.fake)) == len(replies), sends_of(stack.fake)
    assert all(n == 1 for n in sent_texts(stack.fake).values()), sent_texts(stack.fake)
    assert set(sent_texts(stack.fake)) >= set(replies[1:])
    # Every message in Postgres exactly once.
    texts = Counter(m["text"] for m in stored)
    wanted = ["hello there", *replies, *(f"inbound {i}" for i in range(2, 42))]
    assert {t: texts[t] for t in wanted} == dict.fromkeys(wanted, 1)
    assert sum(texts.values()) == len(wanted)


# 3. Postgres away for 30 seconds


def test_postgres_down_30s_webhooks_accepted_and_live_then_all_persisted(tmp_path: Path) -> None:
    _need_private()
    with (
        privateservices.private_postgres() as pg,
        make_stack(tmp_path, database_url=pg.url, create=pg.sql) as stack,
    ):
        web = stack.web("a")
        stack.worker("w")
        stack.connect_bot(web)
        chat = 5300
        conversation = first_conversation(stack, web, chat)
        agent = Follower([web.ws_url], stack.tenant.api_token)
        accepted: list[str] = []
        with following(agent), restarted_on_exit(pg):
            pg.stop()
            down_at = time.monotonic()
            i = 2
            while time.monotonic() - down_at < 30:
                text = f"while down {i}"
                answer = stack.webhook(web, chat, i, text, timeout_s=5)
                assert answer.status_code == 200, (answer.status_code, answer.text)
                accepted.append(text)
                wait_until(
                    lambda t=text: t in agent.texts(),  # type: ignore[misc]
                    timeout_s=5,
                    what=f"{text!r} live on the agent's socket",
                )
                i += 1
                time.sleep(0.4)
            pg.start()
            up_at = time.monotonic()
            with stack.api(web) as api:

                def stored() -> list[str] | None:
                    try:
                        texts = [m["text"] for m in messages(api, conversation)]
                    except (AssertionError, httpx.HTTPError):
                        return None
                    return texts if len(texts) >= len(accepted) + 1 else None

                texts = wait_until(stored, timeout_s=60, what="the backlog persisted")
            caught_up_s = time.monotonic() - up_at
        assert len(accepted) > 30
        # Stored once each (the REST order is by platform time: seconds, so ties are arbitrary).
        assert Counter(texts) == Counter(["hello there", *accepted])
        assert_exactly_once_in_order(agent.created(), accepted)
        assert caught_up_s < 30, caught_up_s


@contextmanager
def restarted_on_exit(pg: privateservices.PrivatePostgres) -> Iterator[None]:
    """Postgres back up however the block ends, so the stack can drop its database."""
    try:
        yield
    finally:
        if pg.proc is None:
            pg.start()


# 4. Redis restarted


def test_redis_restart_everyone_reconnects_nothing_accepted_is_lost(
    tmp_path: Path, postgres_database: str
) -> None:
    _need_private()
    with (
        privateservices.private_redis() as redis_server,
        make_stack(
            tmp_path, database_url=postgres_database, create=admin_sql, redis_url=redis_server.url
        ) as stack,
    ):
        web = stack.web("a")
        stack.worker("w")
        stack.connect_bot(web)
        chat = 5400
        conversation = first_conversation(stack, web, chat)
        issued = httpx.post(
            web.base_url + "/api/widget/token",
            json={"channel": stack.tenant.public_key},
            headers={"origin": ORIGIN},
            timeout=10,
        ).json()
        agent = Follower([web.ws_url], stack.tenant.api_token)
        visitor = Follower([web.ws_url], issued["token"], visitor=True)
        accepted: list[str] = []
        refused = 0
        with following(agent, visitor):
            stop = threading.Event()

            def traffic() -> None:
                nonlocal refused
                i, j = 2, 0
                while not stop.is_set():
                    # The visitor sends until acked, then the next; a resend after a reconnect
                    # carries the same client_id, so it can never make a second message.
                    j += f"v{j}" in visitor.acks
                    try:
                        visitor.send(
                            {"type": "message.send", "client_id": f"v{j}", "text": f"visitor {j}"}
                        )
                    except Exception:  # the socket is away; the follower reconnects
                        pass
                    text = f"inbound {i}"
                    try:
                        answer = stack.webhook(web, chat, i, text, timeout_s=5)
                    except httpx.HTTPError:
                        answer = None
                    if answer is not None and answer.status_code == 200:
                        accepted.append(text)
                        i += 1
                    else:
                        refused += 1  # the platform would redeliver: same id, retried
                        time.sleep(0.2)
                    time.sleep(0.05)

            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(traffic)
                wait_until(lambda: len(accepted) >= 10, timeout_s=20, what="traffic")
                redis_server.restart(down_s=2.0)  # SIGKILL: a crash, then the same files
                restarted = len(accepted)
                wait_until(
                    lambda: len(accepted) >= restarted + 15,
                    timeout_s=30,
                    what="webhooks accepted again after the restart",
                )
                stop.set()
                running.result(timeout=20)
            acked = [f"visitor {c[1:]}" for c in dict.fromkeys(visitor.acks)]
            wait_until(
                lambda: (
                    set(agent.texts()) >= {*accepted, *acked} and set(visitor.texts()) >= set(acked)
                ),
                timeout_s=30,
                what="the sockets catching up",
            )
            time.sleep(0.5)
            with stack.api(web) as api:
                talk = stored_texts(
                    api,
                    issued["conversation_id"],
                    acked,
                    timeout_s=30,
                    what="every acked visitor message persisted",
                )
                texts = wait_until(
                    lambda: (
                        t
                        if len(t := [m["text"] for m in messages(api, conversation)])
                        >= len(accepted) + 1
                        else None
                    ),
                    timeout_s=30,
                    what="everything accepted persisted",
                )
        assert refused > 0, "Redis never looked down"
        # Stored once each (the REST order is by platform time: seconds, so ties are arbitrary).
        assert Counter(texts) == Counter(["hello there", *accepted])
        # A webhook refused with a 5xx may still have been appended before the error: the
        # redelivery is then a duplicate, which the dedupe key absorbs. So: exactly the accepted.
        inbound = [e for e in agent.created() if e["data"]["message"]["direction"] == "in"]
        telegram = [e for e in inbound if e["data"]["message"]["channel_kind"] == "telegram"]
        assert_exactly_once_in_order(telegram, accepted)
        assert len(acked) >= 10, acked
        for seen in (visitor.texts(), [e["data"]["message"]["text"] for e in inbound], talk):
            mine = [t for t in seen if t.startswith("visitor ")]
            assert len(mine) == len(set(mine)), "a visitor message twice"
            assert [t for t in mine if t in acked] == acked, "an acked visitor message lost"
        # The sockets survived (the node reconnected to Redis by itself), or were told to
        # resume and did so.
        for follower in (agent, visitor):
            assert all(w["resumed"] for w in follower.welcomes[1:]), follower.welcomes


# 5. The platform down, slow, failing, throttling


def test_platform_failures_are_retried_with_backoff_and_never_sent_twice(
    shared_stack: Stack,
) -> None:
    stack = shared_stack
    web = stack.web("a")
    one = stack.worker("one")
    two = stack.worker("two")  # a second worker must not take over a send being retried
    stack.connect_bot(web)
    conversation = first_conversation(stack, web, 5500)
    fake = stack.fake
    agent = Follower([web.ws_url], stack.tenant.api_token)
    cases: list[tuple[str, Callable[[], None], int, float]] = [
        # (text, the platform's behaviour, calls expected, least seconds it takes)
        ("after 502s", lambda: fake.fail_next("/sendMessage", 502, None, times=2), 3, 1.4),
        (
            "after 429s",
            lambda: fake.fail_next(
                "/sendMessage",
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1},
                },
                times=2,
            ),
            3,
            1.9,
        ),
        (
            "after an outage",
            lambda: fake.fail_next(
                "/sendMessage",
                503,
                {"ok": False, "error_code": 503, "description": "Service Unavailable"},
                times=4,
            ),
            5,
            7.4,
        ),
        ("slowly", lambda: fake.slow_next(4.0), 1, 3.9),
        # Slower than the hub waits (10 s): the platform got the message and may accept it
        # after all, so a retry could deliver it twice. It must not be retried.
        ("too slowly", lambda: fake.slow_next(11.0), 1, 9.9),
    ]
    with following(agent), stack.api(web) as api:
        for n, (text, behave, calls, least_s) in enumerate(cases):
            before = len(sends_of(fake))
            behave()
            started = time.monotonic()
            posted = api.post(
                f"/api/conversations/{conversation}/messages",
                json={"client_id": f"p{n}", "text": text},
            )
            assert posted.status_code == 202, posted.text
            message_id = posted.json()["message_id"]

            def outcome(mid: str = message_id) -> dict[str, Any] | None:
                for event in list(agent.events):
                    data = event["data"]
                    if event["name"] == "message.updated" and data.get("message_id") == mid:
                        return dict(data["changes"])
                return None

            changes = wait_until(outcome, timeout_s=40, what=f"the outcome of {text!r}")
            took_s = time.monotonic() - started
            if text == "too slowly":
                assert changes.get("status") == "failed", (text, changes)
                assert changes["error"]["code"] == "unknown_outcome", changes
            else:
                assert changes.get("status") == "sent", (text, changes)
            assert took_s >= least_s, (text, took_s)  # backed off, honoured retry_after
            assert len(sends_of(fake)) - before == calls, (text, sends_of(fake)[before:])
        # Past a claim by the other worker, and past the platform's late answer.
        time.sleep(2 * CLAIM_IDLE_MS / 1000)
        updates = [e["data"] for e in agent.events if e["name"] == "message.updated"]
        stored = {m["text"]: m for m in messages(api, conversation)}
    # One outcome per send, never "failed" on the way, and each text accepted once.
    assert len(updates) == len(cases), updates
    assert all(n == 1 for n in sent_texts(fake).values()), sent_texts(fake)
    # The call that timed out may or may not have been taken (the fake drops it when the hub
    # hangs up); every other text was taken exactly once.
    assert set(sent_texts(fake)) - {"too slowly"} == {c[0] for c in cases} - {"too slowly"}
    statuses = {text: stored[text]["status"] for text, *_ in cases}
    assert statuses == {text: "failed" if text == "too slowly" else "sent" for text, *_ in cases}

    # A batch of three replies behind a send that is retried: the worker keeps the whole
    # batch claimed, so another worker does not take the later replies and send them first.
    one.stop()
    two.stop()
    batch = [f"batch {k}" for k in range(3)]
    with stack.api(web) as api:
        for k, text in enumerate(batch):
            posted = api.post(
                f"/api/conversations/{conversation}/messages",
                json={"client_id": f"b{k}", "text": text},
            )
            assert posted.status_code == 202, posted.text
        fake.fail_next(
            "/sendMessage",
            503,
            {"ok": False, "error_code": 503, "description": "Service Unavailable"},
            times=3,  # 3.5 s of backoff: past the other worker's claim of idle entries
        )
        before = len(sends_of(fake))
        stack.worker("three")  # reads all three in one batch
        wait_until(lambda: len(sends_of(fake)) > before, timeout_s=30, what="the batch under way")
        stack.worker("four")

        def done() -> list[str] | None:
            out = [m for m in messages(api, conversation) if m["text"] in batch]
            return (
                [m["status"] for m in out] if all(m["status"] != "pending" for m in out) else None
            )

        assert wait_until(done, timeout_s=40, what="the batch sent") == ["sent"] * 3
    taken = [
        r.body["text"]
        for r in list(fake.requests)
        if isinstance(r.body, dict)
        and r.body.get("text") in batch
        and isinstance(r.answer, dict)
        and r.answer.get("ok") is True
    ]
    assert taken == batch, taken  # each once, in the order the agent wrote them


# 6. A client that stops reading


class RawSocket:
    """A websocket client on a bare socket, so it can stop reading: handshake, hello, silence."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.send_text(json.dumps({"type": "hello", "token": token}))
        opcode, payload = self.frame()
        assert opcode == 1 and json.loads(payload)["type"] == "welcome", payload

    def send_text(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        header = bytes([0x81])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(data))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        return first & 0x0F, self._read(length)

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_stops_reading_is_closed_1013_and_its_room_carries_on(
    tmp_path: Path, postgres_database: str
) -> None:
    with make_stack(
        tmp_path,
        database_url=postgres_database,
        create=admin_sql,
        HUB_OUTBOX_MAX_FRAMES="16",
        HUB_VISITOR_MESSAGES_PER_MINUTE="100000",
    ) as stack:
        web = stack.web("a")
        issued = httpx.post(
            web.base_url + "/api/widget/token",
            json={"channel": stack.tenant.public_key},
            headers={"origin": ORIGIN},
            timeout=10,
        ).json()
        assert web.port is not None
        stuck = RawSocket(web.port, "/ws/agent", stack.tenant.api_token)
        agent = Follower([web.ws_url], stack.tenant.api_token)
        visitor = Follower([web.ws_url], issued["token"], visitor=True)
        readers = [agent, visitor]
        # ~10 kB a frame, 5.2 MB in all: more than the kernel buffers a stuck socket (up to
        # 4 MB of send buffer on loopback) and the server's transport buffer (64 kB) hold.
        total = 520
        padding = "x" * 9990
        sent_at: dict[str, float] = {}
        try:
            with following(*readers):
                started = time.monotonic()
                for i in range(total):
                    text = f"m{i:03d} {padding}"
                    sent_at[text] = time.monotonic()
                    visitor.send({"type": "message.send", "client_id": f"v{i}", "text": text})
                for reader in readers:
                    wait_until(
                        lambda r=reader: len(r.texts()) >= total,  # type: ignore[misc]
                        timeout_s=15,
                        what="every message at the reading clients",
                    )
                took_s = time.monotonic() - started
                time.sleep(0.3)
            expected = [f"m{i:03d} {padding}" for i in range(total)]
            for reader in readers:
                assert_exactly_once_in_order(reader.created(), expected)
                assert reader.drops == [], "a reading agent was dropped"
                # Promptly: each message within two seconds of being sent.
                lags = [at - sent_at[t] for at, t in zip(reader.arrivals(), expected, strict=True)]
                assert max(lags) < 2.0, max(lags)
            assert took_s < 20, took_s

            # The stuck client reads at last: what was in the pipes, then the goodbye.
            frames: list[dict[str, Any]] = []
            while True:
                opcode, payload = stuck.frame()
                if opcode in (9, 10):  # the server's keepalive ping
                    continue
                if opcode == 8:
                    code = struct.unpack("!H", payload[:2])[0]
                    break
                frames.append(json.loads(payload))
        finally:
            stuck.close()
        got = [f for f in frames if f["type"] == "event" and f["name"] == "message.created"]
        assert code == 1013, code
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "too_slow", frames[-1]
        assert len(got) < total  # it was cut off, not buffered without bound
        # What it got is the stream's prefix: resuming from its last id would leave no gap.
        assert [f["data"]["message"]["text"] for f in got] == expected[: len(got)]


# 7. The same webhook, redelivered concurrently


def test_one_webhook_redelivered_100_times_concurrently_makes_one_message(
    shared_stack: Stack,
) -> None:
    stack = shared_stack
    a, b = stack.web("a"), stack.web("b")
    stack.worker("w")
    stack.connect_bot(a)
    conversation = first_conversation(stack, a, 5700)
    agent = Follower([a.ws_url], stack.tenant.api_token)
    with following(agent):
        # Both nodes get the redeliveries at once, as behind a load balancer.
        with ThreadPoolExecutor(32) as pool:
            answers = list(
                pool.map(
                    lambda n: stack.webhook((a, b)[n % 2], 5700, 2, "only once").status_code,
                    range(100),
                )
            )
        assert answers == [200] * 100
        with stack.api(a) as api:
            texts = wait_until(
                lambda: (
                    t
                    if "only once" in (t := [m["text"] for m in messages(api, conversation)])
                    else None
                ),
                timeout_s=30,
                what="the message stored",
            )
            time.sleep(2 * CLAIM_IDLE_MS / 1000)
            texts = [m["text"] for m in messages(api, conversation)]
        live = [t for t in agent.texts() if t == "only once"]
    assert texts == ["hello there", "only once"]
    assert live == ["only once"]
