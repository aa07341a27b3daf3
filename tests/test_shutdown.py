"""Real `hub serve` and `hub worker` processes: graceful shutdown on SIGTERM (`hub/web/serving.py`,
`hub.workers.runner.Consumer.stop`), and the worker's own health, readiness and metrics endpoints.

A web node stops accepting, tells its sockets to reconnect elsewhere (`error unavailable`,
close 1012) and exits in bounded time; the clients resume on another node with no gap and
no duplicate. A worker stopped in the middle of a platform call finishes it and acks it, so
the reply is sent once and marked sent, not left for another worker to find half done.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from hub.web.serving import GC_THRESHOLDS
from tests.browserkit import wait_until
from tests.conftest import admin_sql
from tests.helpers import ORIGIN
from tests.servers import HubProcess, free_port
from tests.stacks import Stack, make_stack

# The production shape: Postgres and Redis.
pytestmark = [pytest.mark.postgres, pytest.mark.redis]

GRACE_S = 6


@pytest.fixture
def stack(tmp_path: Path, postgres_database: str) -> Iterator[Stack]:
    with make_stack(
        tmp_path,
        database_url=postgres_database,
        create=admin_sql,
        HUB_SHUTDOWN_GRACE_S=str(GRACE_S),
    ) as stack:
        yield stack


def _hello(socket: ClientConnection, token: str, resume_from: str | None = None) -> None:
    hello: dict[str, Any] = {"type": "hello", "token": token}
    if resume_from:
        hello["resume_from"] = resume_from
    socket.send(json.dumps(hello))
    welcome = json.loads(socket.recv(timeout=10))
    assert welcome["type"] == "welcome", welcome


def _until_message(socket: ClientConnection, text: str) -> str:
    """Read until the message with this text arrives; its event id."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = json.loads(socket.recv(timeout=10))
        if frame.get("name") == "message.created" and frame["data"]["message"]["text"] == text:
            return str(frame["id"])
    raise AssertionError(f"{text!r} never arrived")


def _goodbye(socket: ClientConnection) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """Every frame up to the close, and the close's code and reason."""
    frames = []
    try:
        while True:
            frames.append(json.loads(socket.recv(timeout=15)))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return frames, closed.rcvd.code, closed.rcvd.reason


def _texts_after_resume(socket: ClientConnection, quiet_s: float = 1.5) -> list[str]:
    texts = []
    while True:
        try:
            frame = json.loads(socket.recv(timeout=quiet_s))
        except TimeoutError:
            return texts
        if frame.get("name") == "message.created":
            texts.append(frame["data"]["message"]["text"])


def test_sigterm_sends_sockets_elsewhere_and_they_resume_without_gap_or_duplicate(
    stack: Stack,
) -> None:
    with ExitStack() as processes:
        a, b = stack.web("a"), stack.web("b")
        processes.callback(a.stop)
        processes.callback(b.stop)
        processes.callback(stack.worker("w").stop)
        bearer = {"authorization": f"Bearer {stack.tenant.api_token}"}
        visitor = httpx.post(
            a.base_url + "/api/widget/token",
            json={"channel": stack.tenant.public_key},
            headers={"origin": ORIGIN},
        ).json()
        with (
            connect(a.ws_url + "/ws/agent", open_timeout=10) as agent,
            connect(a.ws_url + "/ws/visitor", origin=ORIGIN, open_timeout=10) as guest,  # type: ignore[arg-type]
        ):
            _hello(agent, stack.tenant.api_token)
            _hello(guest, visitor["token"])
            guest.send(json.dumps({"type": "message.send", "client_id": "c1", "text": "before"}))
            cursors = {
                "agent": _until_message(agent, "before"),
                "guest": _until_message(guest, "before"),
            }

            started = time.monotonic()
            assert a.proc is not None
            a.proc.send_signal(signal.SIGTERM)
            for socket in (agent, guest):
                frames, code, reason = _goodbye(socket)
                assert frames and frames[-1]["type"] == "error", frames
                assert frames[-1]["code"] == "unavailable"
                assert (code, reason) == (1012, "unavailable")
            told_s = time.monotonic() - started
            with pytest.raises(httpx.ConnectError):  # accepts nothing more
                httpx.get(a.base_url + "/healthz", timeout=2)
            # uvicorn re-raises the signal once it has shut down, so the exit says SIGTERM.
            assert a.proc.wait(timeout=3 * GRACE_S) in (0, -signal.SIGTERM)
            exited_s = time.monotonic() - started
        assert told_s < 3 and exited_s < 2 * GRACE_S + 3, (told_s, exited_s)
        assert "asked 2 sockets to reconnect elsewhere" in a.output()
        assert "Application shutdown complete" in a.output()

        # While they were away an agent answered through the other node.
        conversation = visitor["conversation_id"]
        sent = httpx.post(
            f"{b.base_url}/api/conversations/{conversation}/messages",
            json={"client_id": "r1", "text": "while away"},
            headers=bearer,
        )
        assert sent.status_code == 202, sent.text
        with (
            connect(b.ws_url + "/ws/agent", open_timeout=10) as agent,
            connect(b.ws_url + "/ws/visitor", origin=ORIGIN, open_timeout=10) as guest,  # type: ignore[arg-type]
        ):
            _hello(agent, stack.tenant.api_token, cursors["agent"])
            _hello(guest, visitor["token"], cursors["guest"])
            assert _texts_after_resume(agent) == ["while away"]
            assert _texts_after_resume(guest) == ["while away"]


def _telegram_conversation(stack: Stack, web: HubProcess, api: httpx.Client) -> str:
    """A connected bot and one inbound message stored: the conversation's id."""
    stack.connect_bot(web)
    arrived = stack.webhook(web, 4242, 7, "Is my order on its way?")
    assert arrived.status_code == 200, arrived.text
    found = wait_until(
        lambda: api.get("/api/search", params={"q": "order on its way"}).json()["messages"],
        timeout_s=30,
        what="the inbound message stored",
    )
    return str(found[0]["conversation_id"])


def _status(api: httpx.Client, conversation: str, client_id: str) -> str | None:
    items = api.get(f"/api/conversations/{conversation}/messages").json()["items"]
    mine = [m for m in items if m["client_id"] == client_id]
    return mine[0]["status"] if mine and mine[0]["status"] != "pending" else None


def _api(web: HubProcess, stack: Stack, processes: ExitStack) -> httpx.Client:
    api = stack.api(web)
    processes.callback(api.close)
    return api


def test_a_worker_stopped_mid_send_finishes_the_send_and_acks_it(stack: Stack) -> None:
    with ExitStack() as processes:
        web = stack.web("a")
        processes.callback(web.stop)
        first = stack.worker("first")
        processes.callback(first.stop)
        api = _api(web, stack, processes)
        conversation = _telegram_conversation(stack, web, api)

        stack.fake.slow_next(4.0)  # the platform holds the reply's call
        reply = api.post(
            f"/api/conversations/{conversation}/messages",
            json={"client_id": "r1", "text": "Yes, it left today."},
        )
        assert reply.status_code == 202, reply.text
        sends = lambda: [p for p in stack.fake.started if p.endswith("/sendMessage")]  # noqa: E731
        wait_until(sends, timeout_s=30, what="the send under way")
        started = time.monotonic()
        assert first.proc is not None
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=2 * GRACE_S) == 0
        waited_s = time.monotonic() - started
        assert waited_s < GRACE_S + 3, waited_s  # bounded

        second = stack.worker("second")  # would claim anything left pending
        processes.callback(second.stop)
        outcome = wait_until(
            lambda: _status(api, conversation, "r1"), timeout_s=30, what="the reply's outcome"
        )
        assert outcome in ("sent", "delivered"), outcome
        time.sleep(2 * 1.5)  # past the claim idle time: nothing pending is claimed and redone
        assert _status(api, conversation, "r1") in ("sent", "delivered")
        assert len(sends()) == 1
        assert len([r for r in stack.fake.requests if r.path.endswith("/sendMessage")]) == 1


def _gc_figures(scraped: str) -> dict[str, float]:
    return {
        "/".join([s.name, *s.labels.values()]): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name.startswith("hub_gc_")
    }


def test_a_worker_serves_its_health_readiness_and_send_metrics(stack: Stack) -> None:
    """`hub worker --port`: the send outcomes are counted in the worker, so it exports them."""
    port = free_port()
    with ExitStack() as processes:
        web = stack.web("a")
        processes.callback(web.stop)
        worker = HubProcess(
            ["worker", "--port", str(port)], stack.env, port, stack.tmp / "worker.log"
        )
        stack.processes.append(worker)
        worker.start()
        processes.callback(worker.stop)
        api = _api(web, stack, processes)
        conversation = _telegram_conversation(stack, web, api)
        sent = api.post(
            f"/api/conversations/{conversation}/messages", json={"client_id": "r", "text": "Hi"}
        )
        assert sent.status_code == 202, sent.text
        wait_until(lambda: _status(api, conversation, "r"), timeout_s=30, what="the outcome")

        assert httpx.get(f"{worker.base_url}/healthz").status_code == 200
        ready = httpx.get(f"{worker.base_url}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "redis": "ok",
            "database": "ok",
            "media": "ok",
        }
        scraped = httpx.get(f"{worker.base_url}/metrics")
        assert scraped.status_code == 200
        sends = {
            tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(scraped.text)
            for s in family.samples
            if s.name == "hub_outbound_sends_total"
        }
        telegram = {("channel", "telegram"), ("result", "sent")}
        assert [v for k, v in sends.items() if telegram <= set(k)] == [1.0], sends
        for process in (web, worker):  # each settled its collector once started
            gc_figures = _gc_figures(httpx.get(f"{process.base_url}/metrics").text)
            assert gc_figures["hub_gc_frozen_objects"] > 10_000, gc_figures
            thresholds = tuple(int(gc_figures[f"hub_gc_threshold/{g}"]) for g in range(3))
            assert thresholds == GC_THRESHOLDS
        refused = httpx.get(f"{worker.base_url}/metrics", headers={"x-forwarded-for": "1.2.3.4"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert "x-request-id" in refused.headers

        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=2 * GRACE_S) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{worker.base_url}/healthz", timeout=2)
