"""Real `hub worker` processes that run some consumer groups only (`--groups`, `--without`):
a media worker consumes the media group and no other, so persistence waits for a worker
that runs persist; the two kinds share the bus without taking each other's entries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.browserkit import wait_until
from tests.conftest import REDIS_URL, admin_sql
from tests.servers import HubProcess, free_port
from tests.stacks import Stack, make_stack

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EVERY_GROUP = {"persist", "send", "profile", "media", "automation", "hooks", "push"}


@pytest.fixture
def stack(tmp_path: Path, postgres_database: str) -> Iterator[Stack]:
    with make_stack(tmp_path, database_url=postgres_database, create=admin_sql) as stack:
        yield stack


def _worker(stack: Stack, name: str, *args: str) -> HubProcess:
    """Started with a health port, so it is up (its consumers running) when this returns."""
    port = free_port()
    process = HubProcess(
        ["worker", "--port", str(port), *args], stack.env, port, stack.tmp / f"{name}.log"
    )
    stack.processes.append(process)
    return process.start()


def _groups(client: redis.Redis, key: str) -> dict[str, dict[str, Any]]:
    if not client.exists(key):
        return {}
    return {g["name"]: g for g in client.xinfo_groups(key)}


def _consumers(client: redis.Redis, key: str, group: str) -> set[str]:
    return {c["name"] for c in client.xinfo_consumers(key, group)}


def _mine(names: set[str], process: HubProcess) -> bool:
    """Consumer names are `<host>-<pid>-<node id>`: all of them this process's."""
    assert process.proc is not None
    return bool(names) and all(f"-{process.proc.pid}-" in n for n in names)


def _found(api: httpx.Client, text: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = api.get("/api/search", params={"q": text}).json()["messages"]
    return messages


def test_a_media_worker_consumes_only_the_media_group(stack: Stack) -> None:
    client: redis.Redis = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"{stack.env['HUB_REDIS_PREFIX']}:{{w:{stack.tenant.workspace_id}}}:events"
    with ExitStack() as processes:
        processes.callback(client.close)
        web = stack.web("a")
        processes.callback(web.stop)
        api = stack.api(web)
        processes.callback(api.close)
        stack.connect_bot(web)
        assert stack.webhook(web, 4242, 7, "Where is my parcel?").status_code == 200
        assert client.xlen(key) > 0, "the message was not published where the test looks"

        media = _worker(stack, "media", "--groups", "media")
        processes.callback(media.stop)
        wait_until(
            lambda: _groups(client, key).get("media", {}).get("lag") == 0,
            timeout_s=30,
            what="the media group read to the end",
        )
        assert set(_groups(client, key)) == {"media"}
        assert _mine(_consumers(client, key, "media"), media)
        assert _found(api, "parcel") == []  # nobody persists yet

        rest = _worker(stack, "rest", "--without", "media")
        processes.callback(rest.stop)
        wait_until(lambda: _found(api, "parcel"), timeout_s=30, what="the message persisted")
        groups = _groups(client, key)
        assert set(groups) == EVERY_GROUP
        assert groups["persist"]["pending"] == 0
        for group in EVERY_GROUP - {"media"}:
            assert _mine(_consumers(client, key, group), rest), group
        assert _mine(_consumers(client, key, "media"), media)  # the other took none of them
        assert "groups: media" in media.output()
        assert "groups: persist,send,profile,automation,hooks" in rest.output()
