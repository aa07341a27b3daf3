"""Structured logs of real processes (`hub/web/logs.py`): JSON lines with request ids, and never
a message's text or a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import uuid
import weakref
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from hub.settings import Settings
from hub.web import logs
from tests.browserkit import wait_until
from tests.conftest import REDIS_URL, admin_sql
from tests.helpers import ORIGIN, Tenant, make_tenant
from tests.servers import HubProcess, base_env, free_port


@pytest.fixture
def env(tmp_path: Path, postgres_database: str, redis_prefix: str) -> Iterator[dict[str, str]]:
    database = postgres_database + "_lg" + uuid.uuid4().hex[:6]
    admin_sql(f'CREATE DATABASE "{database.rsplit("/", 1)[1]}"')
    try:
        yield base_env(
            DATABASE_URL=database,
            REDIS_URL=REDIS_URL,
            HUB_REDIS_PREFIX=redis_prefix,
            HUB_SECRET_KEY="logs-" + uuid.uuid4().hex + uuid.uuid4().hex,
            HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')


def _lines(process: HubProcess) -> list[dict[str, Any]]:
    parsed = []
    for line in process.output().splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert {"ts", "level", "logger", "msg"} <= set(record), record
        parsed.append(record)
    return parsed


def test_processes_log_json_lines_with_request_ids_and_no_content(
    env: dict[str, str], tmp_path: Path
) -> None:
    subprocess.run([sys.executable, "-m", "hub.cli", "migrate"], env=env, check=True, timeout=120)
    tenant: Tenant = asyncio.run(make_tenant(Settings.from_env(env)))
    said, answered = f"my card is {uuid.uuid4().hex}", f"refund {uuid.uuid4().hex}"
    with ExitStack() as stack:
        port = free_port()
        web = HubProcess(["serve", "--port", str(port)], env, port, tmp_path / "web.log").start()
        stack.callback(web.stop)
        worker = HubProcess(["worker"], env, log_path=tmp_path / "worker.log").start()
        stack.callback(worker.stop)
        api = httpx.Client(
            base_url=web.base_url, headers={"authorization": f"Bearer {tenant.api_token}"}
        )
        stack.callback(api.close)

        traced = api.get("/api/me", headers={"x-request-id": "trace-abc.1"})
        assert traced.headers["x-request-id"] == "trace-abc.1"
        made_up = api.get("/api/me", headers={"x-request-id": "has spaces; and=signs"})
        assert len(made_up.headers["x-request-id"]) == 32  # replaced by one of the hub's
        assert api.get("/api/me").headers["x-request-id"] != made_up.headers["x-request-id"]

        visitor = httpx.post(
            web.base_url + "/api/widget/token",
            json={"channel": tenant.public_key},
            headers={"origin": ORIGIN},
        ).json()
        with connect(web.ws_url + "/ws/visitor", origin=ORIGIN, open_timeout=10) as socket:  # type: ignore[arg-type]
            socket.send(json.dumps({"type": "hello", "token": visitor["token"]}))
            socket.recv(timeout=10)
            socket.send(json.dumps({"type": "message.send", "client_id": "c", "text": said}))
            socket.recv(timeout=10)
        conversation = visitor["conversation_id"]
        wait_until(
            lambda: api.get(f"/api/conversations/{conversation}").status_code == 200,
            what="the conversation stored",
        )
        reply = {"client_id": "r", "text": answered}
        assert api.post(f"/api/conversations/{conversation}/messages", json=reply).is_success
        wait_until(
            lambda: answered in api.get(f"/api/conversations/{conversation}/messages").text,
            what="the reply stored",
        )
    web_lines, worker_lines = _lines(web), _lines(worker)

    access = [r for r in web_lines if r["logger"] == "hub.access"]
    [me] = [r for r in access if r.get("request_id") == "trace-abc.1"]
    assert me["http"]["method"] == "GET" and me["http"]["path"] == "/api/me"
    assert me["http"]["status"] == 200 and me["http"]["ms"] >= 0
    assert any(r["http"]["path"] == "/api/widget/token" for r in access)
    assert any(r["logger"].startswith("uvicorn") for r in web_lines)  # uvicorn's own, as JSON
    # but not its line per accepted socket, nor the websockets library's, access lines its
    # access_log setting leaves in
    assert not [r for r in web_lines if "WebSocket" in r["msg"] or "connection" in r["msg"]]
    assert any(r["msg"].startswith("worker ") for r in worker_lines)
    printed = web.output() + worker.output()
    for never in (said, answered, tenant.api_token, tenant.password, env["HUB_SECRET_KEY"]):
        assert never not in printed


def test_an_unknown_log_format_is_refused_clearly(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "migrate"],
        env=env | {"HUB_LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "HUB_LOG_FORMAT must be one of json, text" in done.stderr


def _record(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 0, msg, None, None)


@pytest.mark.unit
async def test_access_lines_go_out_in_batches_and_every_other_line_at_once() -> None:
    """One write per batch of access lines, not per request; a line of another logger, or one
    logged outside an event loop, is written at once, after the access lines held before it."""
    stream = io.StringIO()
    handler = logs.Lines(stream)
    handler.setFormatter(logs.JsonLines())

    def written() -> list[str]:
        return [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]

    handler.handle(_record("hub.access", logging.INFO, "GET /a 200"))
    handler.handle(_record("hub.access", logging.INFO, "GET /b 200"))
    assert written() == []  # held
    handler.handle(_record("hub.webhooks", logging.INFO, "webhook ignored"))
    assert written() == ["GET /a 200", "GET /b 200", "webhook ignored"]  # in the order logged
    handler.handle(_record("hub.access", logging.INFO, "GET /c 200"))
    assert written()[-1] == "webhook ignored"
    await asyncio.sleep(logs.ACCESS_HELD_S + 0.1)
    assert written()[-1] == "GET /c 200"  # the batch's time is up

    def elsewhere() -> None:  # a thread with no event loop: written at once
        handler.handle(_record("hub.access", logging.INFO, "GET /d 200"))

    await asyncio.to_thread(elsewhere)
    assert written()[-1] == "GET /d 200"
    handler.handle(_record("hub.access", logging.INFO, "GET /e 200"))
    logging.shutdown([weakref.ref(handler)])  # as at exit: what is held is written
    assert written()[-1] == "GET /e 200"


@pytest.mark.unit
async def test_an_access_line_written_directly_is_the_one_logging_writes() -> None:
    """Where `configure` left the handler alone on the root, `log_access` formats the line
    itself; it is the line `logging` would have written. With another handler there, the line
    goes through `logging` and reaches both."""
    stream = io.StringIO()
    handler = logs.Lines(stream)
    handler.setFormatter(logs.JsonLines())
    handler.addFilter(logs._WithRequestId())
    http: dict[str, object] = {"method": "POST", "path": "/webhooks/meta", "status": 200, "ms": 1.5}
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    token = logs.request_id.set("rid-1")
    factory, records = logging.getLogRecordFactory(), []

    def counted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        records.append(args[0])
        return factory(*args, **kwargs)

    logging.setLogRecordFactory(counted)
    try:
        assert handler.takes_access_lines()
        logs.log_access(http, "rid-1")
        assert records == []  # no record made: written directly
        logs.access.info("%s %s %s", "POST", "/webhooks/meta", 200, extra={"http": http})
        assert records == ["hub.access"]
        other = io.StringIO()
        root.addHandler(logging.StreamHandler(other))
        assert not handler.takes_access_lines()
        logs.log_access(http, "rid-1")
        assert other.getvalue() == "POST /webhooks/meta 200\n"
    finally:
        logging.setLogRecordFactory(factory)
        logs.request_id.reset(token)
        root.handlers[:] = saved
        root.setLevel(level)
    handler.flush()
    direct, logged, through_logging = map(json.loads, stream.getvalue().splitlines())
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
    assert all(re.fullmatch(stamp, line.pop("ts")) for line in (direct, logged, through_logging))
    assert direct == logged == through_logging
    assert direct == {
        "level": "info",
        "logger": "hub.access",
        "msg": "POST /webhooks/meta 200",
        "request_id": "rid-1",
        "http": http,
    }


@pytest.mark.unit
async def test_a_held_access_line_keeps_the_time_and_id_of_its_request() -> None:
    """`log_access` hands the handler the line's fields, formatted when their batch is
    written: the line still says when its request ended and which it was, not when it was
    written, and sits in the order logged among lines written at once."""
    stream = io.StringIO()
    handler = logs.Lines(stream)
    handler.setFormatter(logs.JsonLines())
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    http: dict[str, object] = {"method": "GET", "path": "/healthz", "status": 200, "ms": 0.2}
    try:
        before = datetime.now(UTC)
        logs.log_access(http, "rid-early")
        await asyncio.sleep(0.03)
        handler.handle(_record("hub.webhooks", logging.INFO, "webhook ignored"))
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    early, other = map(json.loads, stream.getvalue().splitlines())
    assert (early["msg"], early["request_id"], other["msg"]) == (
        "GET /healthz 200",
        "rid-early",
        "webhook ignored",
    )
    logged_at = datetime.fromisoformat(early["ts"])
    assert before - timedelta(milliseconds=1) <= logged_at < before + timedelta(milliseconds=20)
    assert datetime.fromisoformat(other["ts"]) >= logged_at + timedelta(milliseconds=25)


@pytest.mark.unit
async def test_a_batch_due_after_its_stream_closed_is_dropped_quietly() -> None:
    """stderr can close while a batch waits (a test run's captured stream, a process whose
    terminal went away): the batch's timer then finds nowhere to write, and says nothing."""
    stream = io.TextIOWrapper(io.BytesIO())  # whose flush, once closed, raises
    handler = logs.Lines(stream)
    handler.setFormatter(logs.JsonLines())
    loop = asyncio.get_running_loop()
    raised: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: raised.append(context))
    try:
        handler.handle(_record("hub.access", logging.INFO, "GET /a 200"))  # a flush is due
        handler.handle(_record("hub.webhooks", logging.INFO, "webhook ignored"))  # written now
        handler.handle(_record("hub.access", logging.INFO, "GET /b 200"))
        stream.close()
        await asyncio.sleep(logs.ACCESS_HELD_S + 0.1)
    finally:
        loop.set_exception_handler(None)
    assert raised == [] and handler.held == []


@pytest.mark.unit
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_a_lines_time_is_the_one_datetime_writes(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert logs.JsonLines().timestamp(created) == expected
