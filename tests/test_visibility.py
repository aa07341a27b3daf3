"""Operational visibility: /readyz, /metrics (Prometheus text) and the admins' /api/status,
against real parts: a real `hub serve` (uvicorn) on Postgres with a real agent socket and
the fake platform on loopback, the real Redis, and a Redis URL nobody answers on."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import create_app
from hub.web.metrics import MAX_CODES, Latency, Metrics
from hub.web.openapi import document
from tests.conftest import REDIS_URL, free_port
from tests.databases import own_database
from tests.fakeplatform import MESSENGER, FakePlatform, running_fake
from tests.helpers import STRONG_PASSWORD, Tenant, prepare
from tests.mailbox import join
from tests.payloads import load
from tests.servers import HubProcess, base_env
from tests.test_openapi import Checked

APP_SECRET = "hosted-secret-for-tests"
METRICS_TOKEN = "metrics-token-" + "x" * 20
PSID = "1412611362105802"  # the sender in messenger/webhook_text_full.json

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def messenger_webhook(age_s: float = 60) -> tuple[bytes, dict[str, str]]:
    body = load("messenger/webhook_text_full.json")
    entry = body["entry"][0]
    entry["id"] = entry["messaging"][0]["recipient"]["id"] = MESSENGER.account_id
    entry["time"] = entry["messaging"][0]["timestamp"] = int((time.time() - age_s) * 1000)
    data = json.dumps(body).encode()
    digest = hmac.new(APP_SECRET.encode(), data, hashlib.sha256).hexdigest()
    return data, {"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"}


MESSENGER_CHANNEL = {
    "kind": "messenger",
    "name": "Page",
    "account_id": MESSENGER.account_id,
    "access_token": MESSENGER.token,
}


# Pure parts: the histogram's percentiles and the bounded label values


def test_latency_quantiles_follow_the_buckets() -> None:
    latency = Latency((0.01, 0.1, 1.0))
    assert latency.quantile(0.5) is None
    for seconds in (0.005, 0.005, 0.05, 0.5, 30.0):
        latency.observe(seconds)
    assert latency.cumulative() == [("0.01", 2), ("0.1", 3), ("1.0", 4), ("+Inf", 5)]
    assert latency.quantile(0.4) == pytest.approx(0.01)  # rank 2: the top of the first bucket
    assert latency.quantile(0.5) == pytest.approx(0.01 + 0.09 * 0.5)
    assert latency.quantile(0.99) == 1.0  # in +Inf: the highest finite bound
    assert latency.count == 5 and latency.sum == pytest.approx(30.56)


def test_send_outcomes_keep_a_bounded_set_of_label_values() -> None:
    metrics = Metrics()
    metrics.sent("messenger", "sent", "")
    metrics.sent("messenger", "failed", "131047")
    metrics.sent("a-workspace's own kind", "failed", "has spaces and 'quotes'")
    for n in range(MAX_CODES + 10):
        metrics.sent("telegram", "failed", f"code_{n}")
    assert metrics.sends[("messenger", "sent", "none")] == 1
    assert metrics.sends[("messenger", "failed", "131047")] == 1
    assert metrics.sends[("other", "failed", "other")] == 1
    codes = {code for kind, _, code in metrics.sends if kind == "telegram"}
    assert len(codes) == MAX_CODES and "other" in codes  # 131047 took one of the places
    assert metrics.sends[("telegram", "failed", "other")] == 11


# A real `hub serve` on Postgres: a webhook reaches an agent's socket, a reply goes out


@dataclass
class Served:
    proc: HubProcess
    tenant: Tenant
    fake: FakePlatform

    @property
    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with own_database(request, tmp_path, "postgres") as settings, running_fake() as fake:
        [tenant] = prepare(settings, "acme")  # migrates first
        urls = fake.base_urls()
        port = free_port()
        env = base_env(
            HUB_SECRET_KEY=settings.secret_key,
            HUB_ENCRYPTION_KEYS=",".join(settings.encryption_keys),
            HUB_DATA_DIR=str(tmp_path),
            DATABASE_URL=settings.database_url,
            HUB_META_APP_SECRET=APP_SECRET,
            HUB_GRAPH_URL=urls.graph,
            HUB_INSTAGRAM_GRAPH_URL=urls.instagram,
            HUB_TELEGRAM_API_URL=urls.telegram,
        )
        # No REDIS_URL: one process with the in-process bus and the worker role, so the
        # sends it makes are counted where /metrics is served.
        proc = HubProcess(["serve", "--port", str(port)], env, port, tmp_path / "serve.log")
        proc.start()
        try:
            yield Served(proc, tenant, fake)
        finally:
            output = proc.stop()
            assert "Traceback" not in output, output


async def next_event(
    socket: Any, name: str, message_id: str | None = None, timeout_s: float = 10
) -> dict[str, Any]:
    """The next event of that name (about that message, when given) the socket receives."""
    async with asyncio.timeout(timeout_s):
        while True:
            frame = json.loads(await socket.recv())
            if frame["type"] != "event" or frame["name"] != name:
                continue
            if message_id is None or frame["data"].get("message_id") == message_id:
                return dict(frame)


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    answer = await http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(answer.text)


async def eventually(probe: Any, timeout_s: float = 10) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await probe()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


@pytest.mark.postgres  # `served` asks for its database at run time
async def test_metrics_follow_a_webhook_to_an_agent_socket_and_a_reply_out(
    served: Served,
) -> None:
    base = served.proc.base_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        connected = await http.post("/api/channels", json=MESSENGER_CHANNEL, headers=served.bearer)
        assert connected.status_code == 201, connected.text
        before = await scrape(http)
        assert value(before, "hub_sockets", kind="agent") == 0
        assert value(before, "hub_delivery_latency_seconds_count") == 0

        socket = await websockets.connect(served.proc.ws_url + "/ws/agent", origin=base)
        try:
            await socket.send(json.dumps({"type": "hello", "token": served.tenant.api_token}))
            assert json.loads(await socket.recv())["type"] == "welcome"
            body, headers = messenger_webhook()
            answer = await http.post("/webhooks/meta", content=body, headers=headers)
            assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
            created = await next_event(socket, "message.created")
            conversation_id = created["data"]["message"]["conversation_id"]

            live = await scrape(http)
            assert value(live, "hub_sockets", kind="agent") == 1
            assert value(live, "hub_sockets", kind="visitor") == 0
            assert (value(live, "hub_socket_frames_total") or 0) >= 1
            rounds = value(live, "hub_fanout_rounds_total") or 0
            assert 1 <= rounds <= (value(live, "hub_fanout_events_total") or 0)
            count = value(live, "hub_delivery_latency_seconds_count") or 0
            assert count >= 1
            assert value(live, "hub_delivery_latency_seconds_bucket", le="+Inf") == count
            assert value(live, "hub_delivery_latency_seconds_bucket", le="10.0") == count
            assert value(live, "hub_channels", status="connected") == 2  # web chat + Page
            assert (value(live, "hub_stream_entries") or 0) >= 1
            assert value(live, "hub_bus_up") == 1 and value(live, "hub_database_up") == 1

            # A reply goes out through the fake platform; then one whose token has expired.
            reply = {"client_id": "r1", "text": "Thanks, on its way!"}
            path = f"/api/conversations/{conversation_id}/messages"
            answer = await http.post(path, json=reply, headers=served.bearer)
            assert answer.status_code == 202, answer.text
            sent = await next_event(socket, "message.updated", answer.json()["message_id"])
            assert sent["data"]["changes"]["status"] == "sent"
            served.fake.fail_next(
                "/messages",
                400,
                {
                    "error": {
                        "message": "Session has expired",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
            )
            expired = {"client_id": "r2", "text": "Hello?"}
            answer = await http.post(path, json=expired, headers=served.bearer)
            assert answer.status_code == 202, answer.text
            failed = await next_event(socket, "message.updated", answer.json()["message_id"])
            assert failed["data"]["changes"]["status"] == "failed"

            async def sends() -> Samples | None:
                found = await scrape(http)
                return found if value(found, "hub_channels", status="needs_reconnect") else None

            after = await eventually(sends)
            assert after, "the channel never showed as needs_reconnect"
            sent_ok = {"channel": "messenger", "result": "sent", "code": "none"}
            assert value(after, "hub_outbound_sends_total", **sent_ok) == 1
            reconnect = [
                v
                for (name, labels), v in after.items()
                if name == "hub_outbound_sends_total"
                and dict(labels)["result"] == "needs_reconnect"
                and dict(labels)["channel"] == "messenger"
            ]
            assert reconnect == [1]
            assert value(after, "hub_channels", status="connected") == 1
            groups = {dict(labels)["group"] for (name, labels) in after if name == "hub_group_lag"}
            assert {"persist", "send"} <= groups
            text = (await http.get("/metrics")).text
            for private in (
                str(served.tenant.workspace_id),
                conversation_id,
                PSID,
                "on its way",
                MESSENGER.token,
                served.tenant.api_token,
            ):
                assert private not in text

            # The admin's status page: the same figures, as JSON.
            status = (await http.get("/api/status", headers=served.bearer)).json()
            assert status["sockets"] == {"agent": 1, "visitor": 0}
            assert status["events"]["delivered"] >= 3 and status["events"]["per_s"] > 0
            assert status["latency_s"]["count"] >= 3
            assert 0 <= status["latency_s"]["p50"] <= status["latency_s"]["p99"] <= 10
            assert {"channel": "messenger", "result": "sent", "code": "none", "count": 1} in (
                status["outbound"]
            )
            assert status["channels"] == {"connected": 1, "needs_reconnect": 1}
            assert status["stream"]["entries"] >= 5
            assert set(status["stream"]["groups"]) >= {"persist", "send"}
        finally:
            await socket.close()

        async def closed() -> bool:
            return value(await scrape(http), "hub_sockets", kind="agent") == 0

        assert await eventually(closed), "the closed socket is still counted"


@pytest.mark.postgres
async def test_metrics_answer_loopback_only_without_a_token(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.proc.base_url, timeout=10) as http:
        assert (await http.get("/metrics")).status_code == 200  # we are on 127.0.0.1
        for forwarded in (
            {"x-forwarded-for": "127.0.0.1"},  # a proxy on this machine, passing a request on
            {"x-forwarded-for": "203.0.113.9"},
            {"forwarded": "for=127.0.0.1"},
            {"x-real-ip": "127.0.0.1"},
        ):
            refused = await http.get("/metrics", headers=forwarded)
            assert refused.status_code == 403, forwarded
            assert refused.json()["error"]["code"] == "forbidden"
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        every = {"redis": "ok", "database": "ok", "media": "ok"}
        assert ready.json() == {"ready": True, "checks": every}
        assert (await http.get("/healthz")).status_code == 200  # still there


# In-process apps (Starlette's TestClient): the token rule, Redis, and outages


@pytest.fixture
def tenant_app(settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = settings.with_overrides(metrics_token=METRICS_TOKEN)
    [tenant] = prepare(settings, "acme")
    with TestClient(create_app(settings), base_url="https://hub.example") as client:
        yield client, tenant


def test_with_a_token_metrics_need_exactly_that_bearer(
    tenant_app: tuple[TestClient, Tenant],
) -> None:
    client, tenant = tenant_app
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": "Bearer " + METRICS_TOKEN[:-1]},
        {"authorization": METRICS_TOKEN},
        {"authorization": "Basic " + METRICS_TOKEN},
        {"authorization": f"Bearer {tenant.api_token}"},  # an API token is not the metrics one
    ):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["error"]["code"] == "forbidden"
        assert "hub_sockets" not in refused.text
    for scheme in ("Bearer", "bearer"):
        answer = client.get("/metrics", headers={"authorization": f"{scheme} {METRICS_TOKEN}"})
        assert answer.status_code == 200
        assert value(samples(answer.text), "hub_channels", status="connected") == 1


def test_without_a_token_a_remote_client_is_refused(settings: Settings) -> None:
    prepare(settings, "acme")
    with TestClient(create_app(settings)) as client:  # its peer is "testclient", not loopback
        refused = client.get("/metrics")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_status_is_for_admins_and_matches_the_document(
    tenant_app: tuple[TestClient, Tenant],
) -> None:
    client, tenant = tenant_app
    checked = Checked(client, client.get("/api/openapi.json").json())
    bearer = {"authorization": f"Bearer {tenant.api_token}"}
    assert checked.call("GET", "/api/status").status_code == 401
    figures = checked.call("GET", "/api/status", headers=bearer).json()
    assert figures["channels"] == {"connected": 1}
    assert figures["stream"] == {"entries": 0, "groups": {}}
    assert figures["sockets"] == {"agent": 0, "visitor": 0}
    agent = {"email": "agent@acme.example", "password": STRONG_PASSWORD}
    join(client, bearer, agent["email"], "Ayla", agent["password"])
    login = client.post("/api/auth/login", json=agent)
    assert login.status_code == 200
    refused = checked.call("GET", "/api/status")  # the agent's session cookie
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert checked.call("GET", "/readyz").status_code == 200
    assert {(s[0], s[2]) for s in checked.seen} == {
        ("/api/status", 401),
        ("/api/status", 200),
        ("/api/status", 403),
        ("/readyz", 200),
    }


@pytest.fixture
def redis_app(settings: Settings, redis_prefix: str) -> Iterator[tuple[TestClient, Tenant]]:
    settings = settings.with_overrides(
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        metrics_token=METRICS_TOKEN,
        meta_app_secret=APP_SECRET,
    )
    [tenant] = prepare(settings, "acme")
    with TestClient(create_app(settings, run_worker=True)) as client:
        yield client, tenant


def test_on_redis_ready_and_the_stream_figures_come_from_the_groups(
    redis_app: tuple[TestClient, Tenant],
) -> None:
    client, tenant = redis_app
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "database": "ok", "media": "ok"}
    bearer = {"authorization": f"Bearer {tenant.api_token}"}
    assert client.post("/api/channels", json=MESSENGER_CHANNEL, headers=bearer).status_code == 201
    body, headers = messenger_webhook()
    assert client.post("/webhooks/meta", content=body, headers=headers).json()["accepted"] == 1
    token = {"authorization": f"Bearer {METRICS_TOKEN}"}
    deadline = time.monotonic() + 15
    while True:  # the worker makes its groups on the new stream, then reads and acks it
        found = samples(client.get("/metrics", headers=token).text)
        done = value(found, "hub_group_lag", group="persist") == 0
        if done and value(found, "hub_group_pending", group="persist") == 0:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert value(found, "hub_group_lag", group="persist") == 0
    assert value(found, "hub_group_pending", group="persist") == 0
    assert value(found, "hub_streams") == 1 and value(found, "hub_streams_capped") == 0
    assert (value(found, "hub_stream_entries") or 0) >= 1
    status = client.get("/api/status", headers=bearer).json()
    assert status["stream"]["entries"] == value(found, "hub_stream_entries")
    assert status["stream"]["groups"]["persist"] == {"lag": 0, "pending": 0}


def test_unreachable_redis_is_not_ready_but_the_app_serves(settings: Settings) -> None:
    settings = settings.with_overrides(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", metrics_token=METRICS_TOKEN
    )
    [tenant] = prepare(settings, "acme")
    with TestClient(create_app(settings)) as client:
        checked = Checked(client, document())  # every answer as the OpenAPI document says
        answer = checked.call("GET", "/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["ready"] is False
        assert body["checks"] == {"redis": "error", "database": "ok", "media": "ok"}
        assert body["error"]["code"] == "not_ready" and "redis" in body["error"]["message"]
        scraped = client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200  # what could be read, with the bus marked down
        found = samples(scraped.text)
        assert value(found, "hub_bus_up") == 0 and value(found, "hub_database_up") == 1
        assert value(found, "hub_stream_entries") is None
        bearer = {"authorization": f"Bearer {tenant.api_token}"}
        status = checked.call("GET", "/api/status", headers=bearer)
        assert status.status_code == 200 and status.json()["stream"] is None


def test_unreachable_database_is_not_ready(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    closed = f"postgresql+asyncpg://hub@127.0.0.1:{free_port()}/hub"
    settings = make_settings(tmp_path, database_url=closed, metrics_token=METRICS_TOKEN)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"] == {"redis": "ok", "database": "error", "media": "ok"}
        assert answer.json()["error"]["code"] == "not_ready"
        scraped = client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        found = samples(scraped.text)
        assert value(found, "hub_database_up") == 0 and value(found, "hub_bus_up") == 1
        assert value(found, "hub_channels", status="connected") is None


async def test_each_app_counts_in_a_registry_of_its_own(tmp_path: Path) -> None:
    from hub.services import Services
    from tests.conftest import make_settings

    one, two = (Services.build(make_settings(tmp_path / n)) for n in ("a", "b"))
    try:
        one.metrics.sockets["agent"] += 3
        assert one.metrics.registry is not two.metrics.registry
        for services, agents in ((one, 3), (two, 0)):
            text = services.metrics.exposition(services.metrics.snapshot).decode()
            assert value(samples(text), "hub_sockets", kind="agent") == agents
    finally:
        await one.close()
        await two.close()


def test_a_media_store_that_cannot_be_written_makes_the_node_unready(settings: Settings) -> None:
    blocker = settings.data_dir / "not-a-directory"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"a file where the media directory should be")
    settings = settings.with_overrides(media_root=blocker / "media")
    prepare(settings, "acme")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"redis": "ok", "database": "ok", "media": "error"}
