"""The inbox's first join misses nothing: a conversation already published when the page opens,
but stored only after the page read its list, appears in the list live, without a reload
(`hub serve` and a `hub worker` held (stopped) so the database cannot have it when the list is
read, on Postgres and Redis); and a replayed message the list already counted is not counted
again (`hub demo`). A real Chromium."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.browserkit import api_client, log_in, wait_until
from tests.conftest import admin_sql
from tests.helpers import ORIGIN
from tests.servers import HubProcess, free_port
from tests.stacks import Stack, make_stack

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def stack(tmp_path: Path, postgres_database: str, browser: Any) -> Iterator[Stack]:
    # Made aside: the stack runs asyncio, and sync Playwright holds this thread's event loop.
    making = make_stack(tmp_path, database_url=postgres_database, create=admin_sql)
    with ThreadPoolExecutor(1) as aside:
        stack = aside.submit(making.__enter__).result()
        try:
            yield stack
        finally:
            aside.submit(making.__exit__, None, None, None).result()


def started(stack: Stack, name: str, args: list[str], env: dict[str, str] | None = None) -> Any:
    """A process of the stack, up (healthy on its port) when this returns."""
    port = free_port()
    process = HubProcess(
        [*args, "--port", str(port)], env or stack.env, port, stack.tmp / f"{name}.log"
    )
    stack.processes.append(process)
    return process.start()


def visitor_writes(web: HubProcess, public_key: str, text: str, origin: str = ORIGIN) -> str:
    """A web-chat visitor's first message, acked (published); its conversation id."""
    answer = httpx.post(
        web.base_url + "/api/widget/token", json={"channel": public_key}, headers={"origin": origin}
    )
    answer.raise_for_status()
    with ws_connect(web.ws_url + "/ws/visitor", origin=origin) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "hello", "token": answer.json()["token"]}))
        assert json.loads(ws.recv(5))["type"] == "welcome"
        ws.send(json.dumps({"type": "message.send", "client_id": uuid.uuid4().hex, "text": text}))
        while (frame := json.loads(ws.recv(5)))["type"] not in ("ack", "error"):
            pass
        assert frame["type"] == "ack", frame
    return str(answer.json()["conversation_id"])


def test_a_conversation_stored_after_the_list_was_read_appears_live(
    stack: Stack, contexts: Any
) -> None:
    from playwright.sync_api import expect

    port = free_port()
    # The browser talks to this process itself: its own address is the public one.
    web = HubProcess(
        ["serve", "--port", str(port)],
        stack.env | {"HUB_PUBLIC_URL": f"http://127.0.0.1:{port}"},
        port,
        stack.tmp / "web.log",
    )
    stack.processes.append(web)
    web.start()
    worker = started(stack, "worker", ["worker"])
    tenant = stack.tenant
    api = stack.api(web)

    def listed() -> list[str]:
        return [c["id"] for c in api.get("/api/conversations").json()["items"]]

    stored = visitor_writes(web, tenant.public_key, "Stored before the page opened")
    wait_until(lambda: listed() == [stored], what="the first conversation stored")
    worker.stop()  # held: what comes next is published (acked) and not stored
    waiting = visitor_writes(web, tenant.public_key, "Published, stored later")

    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, web.base_url, tenant.email, tenant.password)
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    rows = page.locator("[data-ib=conversation]")
    assert listed() == [stored]  # still not stored: only the socket can have shown it
    expect(rows.filter(has_text="Published, stored later")).to_have_count(1)
    expect(rows).to_have_count(2)

    # Stored at last, and listed again: merged with the row the socket made, never twice.
    started(stack, "worker-again", ["worker"])
    wait_until(lambda: waiting in listed(), what="the second conversation stored")
    status = page.locator("[data-ib=filter-status]")
    status.select_option("pending")
    expect(rows).to_have_count(0)
    status.select_option("open")
    expect(rows).to_have_count(2)
    expect(page.locator(f"[data-ib=conversation][data-id='{waiting}']")).to_have_count(1)
    assert errors == []


def test_a_replayed_message_the_list_counted_is_not_counted_again(
    hub: tuple[HubProcess, dict[str, str]], contexts: Any
) -> None:
    """The position is read before the list: a message stored in between is listed and
    replayed both. Its row stays one and its unread count is not raised twice. The list's
    answer here names a position before a stored message, to make that overlap certain."""
    from playwright.sync_api import expect

    proc, seed = hub
    admin = api_client(proc.base_url, seed["email"], seed["password"])

    def stored(conversation: str) -> Any:
        answer = admin.get(f"/api/conversations/{conversation}")
        return answer.status_code == 200 and answer.json()

    first = visitor_writes(proc, seed["public_key"], "Before the position", proc.base_url)
    second = visitor_writes(proc, seed["public_key"], "Listed and replayed", proc.base_url)
    position = wait_until(lambda: stored(first), what="the first stored")["last_event_id"]
    assert wait_until(lambda: stored(second), what="the second stored")["unread"] == 1

    def earlier(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, json=response.json() | {"resume_from": position})

    page = contexts().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route(re.compile(r"/api/conversations\?"), earlier)
    log_in(page, proc.base_url, seed["email"], seed["password"])
    expect(page.locator("[data-ib=status]")).to_have_text("Live")
    # Events come in order: once a later one is shown, the replay has been applied.
    later = visitor_writes(proc, seed["public_key"], "After the join", proc.base_url)
    expect(page.locator(f"[data-ib=conversation][data-id='{later}']")).to_have_count(1)
    row = page.locator(f"[data-ib=conversation][data-id='{second}']")
    expect(row).to_have_count(1)
    expect(row.locator("[data-ib=unread]")).to_have_text("1")
    assert errors == []
    admin.close()
