"""The production shape on loopback: two `hub serve` processes and one `hub worker`, sharing the
real Postgres and either the real Redis or a private three-shard Redis Cluster
(`HUB_REDIS_CLUSTER=true`). A visitor on one node and an agent on the other talk live."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography.fernet import Fernet

from hub.settings import Settings
from tests.conftest import REDIS_URL, admin_sql
from tests.helpers import ORIGIN, Tenant, make_tenant
from tests.rediscluster import redis_cluster_fixture  # noqa: F401
from tests.servers import HubProcess, base_env, free_port


@pytest.fixture(params=["redis", "redis-cluster"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str, redis_prefix: str
) -> Iterator[tuple[list[HubProcess], Tenant, dict[str, str]]]:
    redis = {"REDIS_URL": REDIS_URL}
    if request.param == "redis-cluster":
        redis = {
            "REDIS_URL": request.getfixturevalue("redis_cluster").url,
            "HUB_REDIS_CLUSTER": "1",
        }
    env = base_env(
        DATABASE_URL=postgres_database + "_mn",
        **redis,
        HUB_REDIS_PREFIX=redis_prefix,
        HUB_SECRET_KEY="multinode-" + "k" * 40,
        HUB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUB_CLAIM_IDLE_MS="2000",
    )
    admin_sql(f'CREATE DATABASE "{env["DATABASE_URL"].rsplit("/", 1)[1]}"')
    processes: list[HubProcess] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "hub.cli", "migrate"], env=env, check=True, capture_output=True
        )
        tenant = asyncio.run(make_tenant(Settings.from_env(env)))
        for name in ("a", "b"):
            port = free_port()
            processes.append(
                HubProcess(
                    ["serve", "--port", str(port)],
                    env,
                    port=port,
                    log_path=tmp_path / f"web-{name}.log",
                ).start()
            )
        processes.append(HubProcess(["worker"], env, log_path=tmp_path / "worker.log").start())
        yield processes, tenant, env
    finally:
        for process in processes:
            process.stop()
        admin_sql(f'DROP DATABASE IF EXISTS "{env["DATABASE_URL"].rsplit("/", 1)[1]}" WITH (FORCE)')


async def frame_of(
    ws: Any, kind: str, name: str | None = None, direction: str | None = None, timeout_s: float = 10
) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] != kind or (name is not None and frame.get("name") != name):
                continue
            if direction is None or frame["data"]["message"]["direction"] == direction:
                return dict(frame)


async def test_visitor_and_agent_on_different_nodes(
    cluster: tuple[list[HubProcess], Tenant, dict[str, str]],
) -> None:
    (node_a, node_b, worker), tenant, _ = cluster
    async with httpx.AsyncClient() as http:
        issued = (
            await http.post(
                node_a.base_url + "/api/widget/token",
                json={"channel": tenant.public_key},
                headers={"origin": ORIGIN},
            )
        ).json()
        async with (
            websockets.connect(node_b.ws_url + "/ws/agent") as agent,
            websockets.connect(
                node_a.ws_url + "/ws/visitor",
                origin=ORIGIN,  # type: ignore[arg-type]
            ) as visitor,
        ):
            await agent.send(json.dumps({"type": "hello", "token": tenant.api_token}))
            await frame_of(agent, "welcome")
            await visitor.send(json.dumps({"type": "hello", "token": issued["token"]}))
            await frame_of(visitor, "welcome")

            await visitor.send(
                json.dumps({"type": "message.send", "client_id": "m1", "text": "from node a"})
            )
            seen = await frame_of(agent, "event", "message.created")
            assert seen["data"]["message"]["text"] == "from node a"
            await visitor.send(json.dumps({"type": "typing", "on": True}))
            typing = await frame_of(agent, "event", "typing")
            assert typing["data"]["on"] is True and typing["data"]["by"]["type"] == "contact"

            conversation_id = seen["data"]["message"]["conversation_id"]
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            for _ in range(
                100
            ):  # the worker persists; the agent's node then finds the conversation
                if (
                    await http.get(
                        f"{node_b.base_url}/api/conversations/{conversation_id}", headers=auth
                    )
                ).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            await agent.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "client_id": "r1",
                        "conversation_id": conversation_id,
                        "text": "from node b",
                    }
                )
            )
            reply = await frame_of(visitor, "event", "message.created", "out")
            assert reply["data"]["message"]["text"] == "from node b"
            cursor = reply["id"]

        # The agent keeps talking while the visitor is away; the visitor comes back on the other
        # node and resumes from its cursor: exactly the missed messages.
        async with websockets.connect(node_b.ws_url + "/ws/agent") as agent:
            await agent.send(json.dumps({"type": "hello", "token": tenant.api_token}))
            await frame_of(agent, "welcome")
            for i in range(3):
                await agent.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "client_id": f"away{i}",
                            "conversation_id": conversation_id,
                            "text": f"away {i}",
                        }
                    )
                )
                await frame_of(agent, "ack")
        async with websockets.connect(node_b.ws_url + "/ws/visitor", origin=ORIGIN) as visitor:  # type: ignore[arg-type]
            await visitor.send(
                json.dumps({"type": "hello", "token": issued["token"], "resume_from": cursor})
            )
            assert (await frame_of(visitor, "welcome"))["resumed"] is True
            missed = [await frame_of(visitor, "event", "message.created") for _ in range(3)]
            assert [m["data"]["message"]["text"] for m in missed] == ["away 0", "away 1", "away 2"]
            await visitor.send('{"type":"ping"}')
            assert (await frame_of(visitor, "pong")) == {"type": "pong"}

        url = f"{node_a.base_url}/api/conversations/{conversation_id}/messages"
        for _ in range(100):
            texts = [m["text"] for m in (await http.get(url, headers=auth)).json()["items"]]
            if len(texts) == 5:
                break
            await asyncio.sleep(0.1)
        assert texts == ["from node a", "from node b", "away 0", "away 1", "away 2"]
    assert "Traceback" not in node_a.output() + node_b.output() + worker.output()
