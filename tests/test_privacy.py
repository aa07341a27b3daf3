"""Erasure: Meta's data-deletion and deauthorize callbacks, the admins' deletion requests,
and the engine behind them (hub/privacy/), through the app on
SQLite with the in-process bus and on the real Postgres with the real Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from adapters.meta.instagram_login import Account as IgAccount
from hub.bus import Event
from hub.bus.memory import MemoryBus
from hub.hooks.service import EVENTS
from hub.privacy.erasure import COUNTS, Target
from hub.services import Services
from hub.settings import Settings
from hub.web.app import create_app
from hub.workers.runner import Persister
from schemas.message import utc_now
from tests.conftest import REDIS_URL
from tests.fakeonboarding import FakeOnboarding, FakePage
from tests.fakeplatform import FB, Account, FakePlatform, running_fake
from tests.helpers import ORIGIN, Tenant, prepare
from tests.mailbox import join
from tests.payloads import load
from tests.receiver import free_port, running_receiver

BASE = "https://hub.example"
HOSTED = "hosted-secret-for-privacy-tests"
IG_APP = "ig-app-secret-for-privacy-tests"
PASSWORD = "correct-horse-battery"
VECTORS = load("meta/signature_test_vectors.json")["signed_request"]
EVERYWHERE = ("deletion_requests", "audit_events")  # Meta's requests may belong to none
PERSON_TABLES = (
    "contacts",
    "contact_identities",
    "conversations",
    "messages",
    "conversation_reads",
    "conversation_labels",
)


@dataclass
class Env:
    client: TestClient
    tenant: Tenant
    settings: Settings
    page: Account  # a Messenger Page of the hosted app, of this test's own
    channel_id: str
    redis_prefix: str | None
    fake: FakePlatform | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.api_token}"}

    @property
    def services(self) -> Services:
        value: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return value

    def call(self, fn: Any, *args: Any) -> Any:
        return self.client.portal.call(fn, *args)  # type: ignore[union-attr]

    @property
    def workspace(self) -> str:
        return str(self.tenant.workspace_id)


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Env]:
    prefix = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        prefix = request.getfixturevalue("redis_prefix")
        settings = settings.with_overrides(
            database_url="postgresql+asyncpg://" + url.split("://", 1)[1],
            redis_url=REDIS_URL,
            redis_prefix=prefix,
        )
    # Postgres is shared by the tests of a run: a Page and people of this test's own.
    page = Account(FB, str(10**14 + uuid.uuid4().int % 10**14), "EAAfake-" + uuid.uuid4().hex)
    with running_fake((page,)) as fake:
        urls = fake.base_urls()
        settings = settings.with_overrides(
            meta_app_secret=HOSTED,
            instagram_app_id="990000000000001",
            instagram_app_secret=IG_APP,
            public_url=BASE,
            graph_url=urls.graph,
            instagram_graph_url=urls.instagram,
            deletion_lease_s=2.0,  # short, for the take-over test; long enough under load
            # Outbound webhooks to a receiver on loopback, retried at once, dead soon.
            hooks_allow_private=True,
            hooks_retry_s=0.1,
            hooks_backoff=(0.05,) * 5,
        )
        [tenant] = prepare(settings, "acme")
        with TestClient(create_app(settings, run_worker=True), base_url=BASE) as client:
            auth = {"authorization": f"Bearer {tenant.api_token}"}
            body = {
                "kind": "messenger",
                "name": "Page",
                "account_id": page.account_id,
                "access_token": page.token,
            }
            answer = client.post("/api/channels", json=body, headers=auth)
            assert answer.status_code == 201, answer.text
            yield Env(client, tenant, settings, page, answer.json()["id"], prefix, fake)


# Helpers


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def sign(payload: dict[str, Any], secret: str) -> str:
    segment = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    signature = hmac.new(secret.encode(), segment.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature).decode().rstrip("=") + "." + segment


def signed_segment(raw: bytes, secret: str) -> str:
    segment = base64.urlsafe_b64encode(raw).decode()
    signature = hmac.new(secret.encode(), segment.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature).decode() + "." + segment


def callback(env: Env, what: str, signed_request: str | None) -> httpx.Response:
    form = {} if signed_request is None else {"signed_request": signed_request}
    return env.client.post(f"/privacy/meta/{what}", data=form)


def about(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"algorithm": "HMAC-SHA256", "issued_at": int(time.time()), "user_id": user_id} | extra


def psid() -> str:
    return str(2 * 10**15 + uuid.uuid4().int % 10**15)


def writes(env: Env, sender: str, text: str) -> dict[str, Any]:
    """The person sends the Page a message; answers their conversation once it is stored
    with the name the profile fetch found."""
    body = load("messenger/webhook_text_full.json")
    entry = body["entry"][0]
    message = entry["messaging"][0]
    entry["id"] = message["recipient"]["id"] = env.page.account_id
    message["sender"]["id"] = sender
    message["message"] |= {"text": text, "mid": "mid." + uuid.uuid4().hex}
    entry["time"] = message["timestamp"] = int(time.time() * 1000)
    data = json.dumps(body).encode()
    digest = hmac.new(HOSTED.encode(), data, hashlib.sha256).hexdigest()
    answer = env.client.post(
        "/webhooks/meta", content=data, headers={"x-hub-signature-256": f"sha256={digest}"}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text

    def named() -> Any:
        items = env.client.get("/api/conversations", headers=env.auth).json()["items"]
        mine = [c for c in items if c["channel_id"] == env.channel_id and c["contact"]["name"]]
        return mine[0] if mine else None

    return dict(wait(named))


def stream(env: Env) -> list[Event]:
    """Every entry the workspace stream still holds, read straight from the bus's storage."""
    bus = env.services.bus
    if isinstance(bus, MemoryBus):
        found = bus._streams.get(env.workspace)
        return list(found.entries) if found else []
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        entries: Any = client.xrange(f"{env.redis_prefix}:{{w:{env.workspace}}}:events")
    finally:
        client.close()
    return [Event(i, f.get("n", ""), f.get("d", "{}"), f.get("c", "")) for i, f in entries]


def rows(env: Env, *tables: str) -> dict[str, list[dict[str, Any]]]:
    """The workspace's rows of these tables (all rows of EVERYWHERE's), from the database."""

    async def read() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        async with env.services.store.sessions() as orm:
            conn = await orm.connection()
            for name in tables:
                table = SQLModel.metadata.tables[name]
                query = sa.select(table)
                if name not in EVERYWHERE:
                    query = query.where(table.c.workspace_id == env.tenant.workspace_id)
                found[name] = [dict(r._mapping) for r in (await conn.execute(query)).all()]
        return found

    result: dict[str, list[dict[str, Any]]] = env.call(read)
    return result


def deletion_row(env: Env, code: str) -> dict[str, Any]:
    [row] = [
        r
        for r in rows(env, "deletion_requests")["deletion_requests"]
        if r["confirmation_code"] == code
    ]
    return row


def state(env: Env, code: str) -> str:
    answer = env.client.get(f"/privacy/deletion/{code}", headers={"accept": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"confirmation_code": code, "status": answer.json()["status"]}
    return str(answer.json()["status"])


def audited(env: Env, target_id: str) -> list[dict[str, Any]]:
    return [r for r in rows(env, "audit_events")["audit_events"] if r["target_id"] == target_id]


def connect(env: Env, **body: Any) -> dict[str, Any]:
    """A Page of its own app, pasted by an admin: the fake knows its token."""
    assert env.fake is not None
    page = FakePage(body["account_id"], body["name"], body["access_token"])
    FakeOnboarding.of(env.fake).pages.append(page)
    answer = env.client.post("/api/channels", json={"kind": "messenger", **body}, headers=env.auth)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def hello(ws: Any, token: str) -> None:
    ws.send_text(json.dumps({"type": "hello", "token": token}))
    assert ws.receive_json()["type"] == "welcome"


def next_event(ws: Any, name: str) -> dict[str, Any]:
    while True:
        frame = ws.receive_json()
        if frame["type"] == "event" and frame["name"] == name:
            return dict(frame)


# Meta's signed requests


def test_signed_requests_that_do_not_verify_are_refused_and_change_nothing(env: Env) -> None:
    for vector in VECTORS:  # a channel with its own app for each recorded vector's secret
        connect(
            env,
            name="Own app",
            account_id=str(uuid.uuid4().int % 10**15),
            access_token="t",
            app_secret=vector["app_secret"],
        )
    php = next(v for v in VECTORS if v["signed_request"].endswith("=="))
    signature, payload = php["signed_request"].split(".", 1)
    tampered = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    refused = {
        "bad_signature": [
            signature + "." + tampered,
            php["signed_request"].rstrip("="),  # the padding is part of what is signed
            sign(about("123"), "a-secret-this-hub-does-not-hold"),
            sign(about("123"), ""),
            signature + ".bm90IGpzb24",  # a signature of another payload
        ],
        "bad_algorithm": [
            sign(about("123", algorithm="HMAC-SHA1"), HOSTED),
            sign({"user_id": "123"}, php["app_secret"]),
        ],
        "malformed_signed_request": [
            None,
            "",
            "no-dot",
            "!!!.???",
            sign({"algorithm": "HMAC-SHA256"}, HOSTED),  # no user_id
            sign(about(""), HOSTED),
            signed_segment(b"not json", HOSTED),
            signed_segment(b"[1, 2]", HOSTED),
        ],
    }
    before = rows(env, "deletion_requests", "audit_events", "channels")
    for code, values in refused.items():
        for value in values:
            for what in ("data-deletion", "deauthorize"):
                answer = callback(env, what, value)
                assert answer.status_code == 400, (what, value, answer.text)
                assert answer.json()["error"]["code"] == code, (what, value)
    assert rows(env, "deletion_requests", "audit_events", "channels") == before

    for vector in VECTORS:  # the recorded vectors verify (their users are unknown here)
        answer = callback(env, "data-deletion", vector["signed_request"])
        assert answer.status_code == 200, answer.text
        code = answer.json()["confirmation_code"]
        assert answer.json() == {
            "url": f"{BASE}/privacy/deletion/{code}",
            "confirmation_code": code,
        }
        assert wait(lambda code=code: state(env, code) == "no_data")
        assert callback(env, "deauthorize", vector["signed_request"]).json() == {}
    # Meta's docs compare the algorithm without regard to case.
    assert (
        callback(
            env, "data-deletion", sign(about("9", algorithm="hmac-sha256"), HOSTED)
        ).status_code
        == 200
    )


# The data-deletion callback


def test_a_data_deletion_callback_erases_the_person_everywhere(env: Env) -> None:
    person, text = psid(), "My order 47110815 never arrived, " + uuid.uuid4().hex
    conversation = writes(env, person, text)
    conversation_id, contact_id = conversation["id"], conversation["contact_id"]
    url = f"/api/conversations/{conversation_id}"
    answer = env.client.post(
        url + "/messages", json={"client_id": "r1", "text": "Sorry to hear!"}, headers=env.auth
    )
    assert answer.status_code == 202
    reply_id = answer.json()["message_id"]
    assert env.client.patch(url, json={"labels": ["refund"]}, headers=env.auth).status_code == 202
    with env.client.websocket_connect("/ws/agent") as agent:
        hello(agent, env.tenant.api_token)
        read = {
            "type": "read",
            "conversation_id": conversation_id,
            "up_to": conversation["last_event_id"],
        }
        agent.send_text(json.dumps(read))

        def stored() -> bool:
            found = rows(env, *PERSON_TABLES)
            sent = [
                m for m in found["messages"] if str(m["id"]) == reply_id and m["status"] == "sent"
            ]
            return bool(sent and found["conversation_labels"] and found["conversation_reads"])

        wait(stored)
    mentions = {person, text, contact_id, conversation_id, "Ada Lovelace"}
    held = [e for e in stream(env) if any(m in e.data or m == e.conversation_id for m in mentions)]
    assert {e.name for e in held} >= {"message.created", "contact.updated", "conversation.updated"}
    services, workspace = env.services, env.workspace
    assert env.call(services.bus.recall, workspace, f"conv:{conversation_id}") is not None
    assert env.call(services.bus.recall, workspace, f"profile:{contact_id}") is not None

    answer = callback(env, "data-deletion", sign(about(person), HOSTED))
    assert answer.status_code == 200, answer.text
    code = answer.json()["confirmation_code"]
    assert answer.json()["url"] == f"{BASE}/privacy/deletion/{code}"
    assert wait(lambda: state(env, code) == "done")

    # The database, the stream and the bus's directory hold nothing of the person.
    assert all(not found for found in rows(env, *PERSON_TABLES).values())
    for event in stream(env):
        assert person not in event.data and text not in event.data and "Ada" not in event.data
        if event.name != "contact.deleted":
            assert contact_id not in event.data and conversation_id not in event.data
            assert event.conversation_id != conversation_id and reply_id not in event.data
    assert env.call(services.bus.recall, workspace, f"conv:{conversation_id}") is None
    assert env.call(services.bus.recall, workspace, f"profile:{contact_id}") is None
    assert env.client.get(url, headers=env.auth).status_code == 404
    assert (
        env.client.get("/api/search", params={"q": "47110815"}, headers=env.auth).json()["messages"]
        == []
    )

    # The status page tells the state and nothing else.
    page = env.client.get(answer.json()["url"].removeprefix(BASE))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-status="done"' in page.text
    for secret in (*mentions, reply_id, env.page.account_id, env.workspace, "47110815"):
        assert secret not in page.text
    assert env.client.get("/privacy/deletion/" + "0" * 32).status_code == 404
    assert env.client.get("/privacy/deletion/not-a-code").status_code == 404

    # The request's record keeps no personal data: a keyed hash and counts.
    row = deletion_row(env, code)
    assert row["status"] == "done" and row["source"] == "meta" and row["completed_at"]
    assert row["workspace_id"] == env.tenant.workspace_id
    assert set(row["progress"]) == set(COUNTS) and row["progress"]["contacts"] == 1
    assert row["progress"]["messages"] == 2 and row["progress"]["stream_entries"] >= 4
    assert row["subject_hash"] not in (
        hashlib.sha256(person.encode()).hexdigest(),
        hashlib.sha256(f"meta:{person}".encode()).hexdigest(),
    )
    record = json.dumps(row, default=str)
    for secret in (*mentions, reply_id):
        assert secret not in record
    actions = {(r["action"], r["actor_type"]) for r in audited(env, str(row["id"]))}
    assert actions == {("deletion.requested", "platform"), ("deletion.completed", "system")}
    assert person not in json.dumps(rows(env, "audit_events"), default=str)

    # An event a persist worker had read before the erasure is not written back.
    async def persist_again() -> None:
        await Persister(services.store.sessions, services.bus).handle(workspace, held, True)

    # Nor is a profile a worker was fetching for one of them when the person was erased.
    async def profile_again() -> None:
        async with httpx.AsyncClient() as http:
            await services.profiler(http).handle(workspace, held, True)

    env.call(persist_again)
    env.call(profile_again)
    assert not [e for e in stream(env) if e.name == "contact.updated" and contact_id in e.data]
    assert all(not found for found in rows(env, *PERSON_TABLES).values())

    # Idempotent: a second callback files a request that finds nothing.
    again = callback(env, "data-deletion", sign(about(person), HOSTED)).json()["confirmation_code"]
    assert again != code and wait(lambda: state(env, again) == "no_data")
    # The person writing again is new data: stored as usual.
    assert writes(env, person, "Hello again")["contact_id"] == contact_id


def test_a_callback_for_someone_the_hub_does_not_know_ends_no_data(env: Env) -> None:
    writes(env, psid(), "Someone else")
    answer = callback(env, "data-deletion", sign(about(psid()), HOSTED))
    code = answer.json()["confirmation_code"]
    assert wait(lambda: state(env, code) == "no_data")
    page = env.client.get(f"/privacy/deletion/{code}")
    assert 'data-status="no_data"' in page.text and "held no data" in page.text
    assert len(rows(env, "contacts")["contacts"]) == 1


# The deauthorize callback


def test_deauthorize_disconnects_the_users_channels_and_destroys_their_secrets(env: Env) -> None:
    page_id, secret = str(uuid.uuid4().int % 10**15), "own-app-secret-" + uuid.uuid4().hex
    own = connect(env, name="Own", account_id=page_id, access_token="t", app_secret=secret)
    instagram_id = str(17841400000000000 + uuid.uuid4().int % 10**9)
    expires = utc_now() + timedelta(days=60)
    account = IgAccount(instagram_id, "shop", None, app_user_id="55501")
    services = env.services
    instagram = env.call(
        services.channels.connect_instagram,
        env.tenant.workspace_id,
        env.tenant.admin_id,
        "Shop IG",
        account,
        "IGAAfake-token",
        expires,
    )

    def statuses() -> dict[str, tuple[str, bool]]:
        found = [c for c in rows(env, "channels")["channels"] if c["kind"] != "webchat"]
        return {str(c["id"]): (c["status"], c["secrets"] is not None) for c in found}

    assert callback(env, "deauthorize", sign(about("someone-else"), secret)).json() == {}
    assert callback(env, "deauthorize", sign(about(page_id), HOSTED)).json() == {}  # not its app
    assert set(statuses().values()) == {("connected", True)}

    with env.client.websocket_connect("/ws/agent") as agent:
        hello(agent, env.tenant.api_token)
        assert callback(env, "deauthorize", sign(about(page_id), secret)).json() == {}
        event = next_event(agent, "channel.updated")
        assert event["data"] == {"channel_id": own["id"], "status": "disconnected"}
    # Business Login for Instagram: the user who authorized it, by its app-scoped id.
    assert callback(env, "deauthorize", sign(about("55501"), IG_APP)).json() == {}
    after = statuses()
    assert after[own["id"]] == after[str(instagram.id)] == ("disconnected", False)
    assert after[env.channel_id] == ("connected", True)
    routed = rows(env, "channel_accounts")["channel_accounts"]
    assert {str(r["channel_id"]) for r in routed} == {env.channel_id}
    assert env.client.post(f"/webhooks/meta/{own['id']}", content=b"{}").status_code == 404
    for channel_id in (own["id"], str(instagram.id)):
        [row] = [r for r in audited(env, channel_id) if r["action"] == "channel.deauthorized"]
        assert row["actor_type"] == "platform" and row["actor_id"] is None
    # Its secret is destroyed: a repeat no longer verifies, and changes nothing.
    again = callback(env, "deauthorize", sign(about(page_id), secret))
    assert again.status_code == 400 and again.json()["error"]["code"] == "bad_signature"


# The admins' deletion requests


def visitor_writes(env: Env, text: str) -> dict[str, Any]:
    token = env.client.post(
        "/api/widget/token", json={"channel": env.tenant.public_key}, headers={"origin": ORIGIN}
    ).json()
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, token["token"])
        ws.send_text(json.dumps({"type": "message.send", "client_id": "v1", "text": text}))
        while ws.receive_json()["type"] != "ack":
            pass
    url = f"/api/conversations/{token['conversation_id']}"
    return dict(
        wait(lambda: (r := env.client.get(url, headers=env.auth)).status_code == 200 and r.json())
    )


def agent_token(env: Env) -> str:
    email = f"agent-{uuid.uuid4().hex[:8]}@acme.example"
    join(env.client, env.auth, email, "Agent", PASSWORD)
    login = env.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    token = env.client.post("/api/tokens", json={"name": "t"}, headers=csrf).json()["token"]
    env.client.cookies.clear()
    return str(token)


def test_admins_file_deletion_requests_and_follow_them(env: Env) -> None:
    conversation = visitor_writes(env, "Please forget me")
    contact_id = conversation["contact_id"]
    agent = {"authorization": f"Bearer {agent_token(env)}"}

    with env.client.websocket_connect("/ws/agent") as socket:
        hello(socket, agent["authorization"].removeprefix("Bearer "))
        answer = env.client.post(
            "/api/deletions", json={"contact_id": contact_id}, headers=env.auth
        )
        assert answer.status_code == 202, answer.text
        filed = answer.json()
        assert set(filed) == {"id", "confirmation_code", "status"} and filed["status"] == "received"
        # Open inboxes drop the person live.
        event = next_event(socket, "contact.deleted")
        assert event["data"] == {"contact_id": contact_id, "conversation_ids": [conversation["id"]]}

    one = f"/api/deletions/{filed['id']}"
    done = wait(
        lambda: (d := env.client.get(one, headers=env.auth).json())["status"] == "done" and d
    )
    assert done["counts"] == done["counts"] | {"contacts": 1, "conversations": 1, "messages": 1}
    assert done["counts"]["stream_entries"] >= 1 and done["source"] == "admin"
    assert env.client.get(f"/api/contacts/{contact_id}", headers=env.auth).status_code == 404
    assert env.client.get("/api/conversations", headers=env.auth).json()["items"] == []
    assert state(env, filed["confirmation_code"]) == "done"

    by_identity = {"channel_id": str(env.tenant.channel_id), "platform_user_id": "nobody"}
    other = env.client.post("/api/deletions", json=by_identity, headers=env.auth).json()
    assert wait(
        lambda: (
            env.client.get(f"/api/deletions/{other['id']}", headers=env.auth).json()["status"]
            == "no_data"
        )
    )
    listed = env.client.get("/api/deletions", params={"limit": 1}, headers=env.auth).json()
    assert [d["id"] for d in listed["items"]] == [other["id"]] and listed["next_cursor"]
    rest = env.client.get(
        "/api/deletions", params={"cursor": listed["next_cursor"]}, headers=env.auth
    )
    assert [d["id"] for d in rest.json()["items"]] == [filed["id"]]

    for body in (
        {},
        {"contact_id": contact_id, "channel_id": str(env.tenant.channel_id)},
        {"channel_id": str(env.tenant.channel_id)},
        {"contact_id": "not-a-uuid"},
    ):
        answer = env.client.post("/api/deletions", json=body, headers=env.auth)
        assert answer.status_code == 400, body
    unknown = {"channel_id": str(uuid.uuid4()), "platform_user_id": "x"}
    assert env.client.post("/api/deletions", json=unknown, headers=env.auth).status_code == 404
    assert env.client.get(f"/api/deletions/{uuid.uuid4()}", headers=env.auth).status_code == 404
    # Agents may do none of it.
    assert (
        env.client.post(
            "/api/deletions", json={"contact_id": contact_id}, headers=agent
        ).status_code
        == 403
    )
    assert env.client.get("/api/deletions", headers=agent).status_code == 403
    assert env.client.get(one, headers=agent).status_code == 403
    filed_here = rows(env, "deletion_requests")["deletion_requests"]
    assert [r["workspace_id"] for r in filed_here].count(env.tenant.workspace_id) == 2


# Crashes


def test_an_erasure_interrupted_midway_is_finished_by_the_restarted_worker(env: Env) -> None:
    conversation = visitor_writes(env, "Half erased, then wholly")
    services, app = env.services, env.client.app
    env.call(app.state.worker.stop)  # type: ignore[attr-defined]  # the worker "crashes"
    target = Target(env.workspace, conversation["contact_id"])
    row = env.call(
        lambda: services.deletions.file(
            "admin",
            "contact:x",
            [target],
            workspace_id=env.tenant.workspace_id,
            actor=("system", None),
        )
    )
    # Marked and purged from the stream, then the process died before the database step.
    assert env.call(lambda: services.deletions.run(row.id, limit=2)) == "in_progress"
    midway = deletion_row(env, row.confirmation_code)
    assert midway["status"] == "in_progress" and midway["progress"]["pending"][0]["step"] == 2
    assert len(rows(env, "contacts")["contacts"]) == 1
    assert not [e for e in stream(env) if conversation["contact_id"] in e.data]

    client = httpx.AsyncClient()
    worker = services.worker(client)
    env.call(worker.start)  # a new worker process: its sweep takes the lapsed request over
    try:
        assert wait(lambda: deletion_row(env, row.confirmation_code)["status"] == "done")
    finally:
        env.call(worker.stop)
        env.call(client.aclose)
    assert all(not found for found in rows(env, *PERSON_TABLES).values())
    final = deletion_row(env, row.confirmation_code)
    assert set(final["progress"]) == set(COUNTS) and final["progress"]["contacts"] == 1


# The outbox


def everything(env: Env) -> dict[str, list[str]]:
    """Every row of every table of the database, and every key and value the bus keeps
    under this test's own prefix (on Redis) or in this process (in memory), as text."""

    async def tables() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        async with env.services.store.sessions() as orm:
            conn = await orm.connection()
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            for name in names:
                table = sa.Table(name, sa.MetaData())
                await conn.run_sync(lambda c, t=table: sa.inspect(c).reflect_table(t, None))
                rows = (await conn.execute(sa.select(table))).all()
                found[name] = [json.dumps(list(r), default=str) for r in rows]
        return found

    found: dict[str, list[str]] = env.call(tables)
    bus = env.services.bus
    if isinstance(bus, MemoryBus):
        found["bus:stream"] = [json.dumps(e.__repr__()) for e in stream(env)]
        found["bus:kv"] = [f"{k} {v}" for k, v in bus._kv.items()]
        found["bus:dedupe"] = [f"{k} {v}" for k, v in bus._dedupe.items()]
        found["bus:counters"] = [f"{k} {v}" for k, v in bus._counters.items()]
        return found
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        for key in client.scan_iter(match=f"{env.redis_prefix}:*", count=500):
            kind = client.type(key)
            value: Any = {
                "string": client.get,
                "hash": client.hgetall,
                "list": lambda k: client.lrange(k, 0, -1),
                "set": client.smembers,
                "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
                "stream": client.xrange,
            }[kind](key)
            found.setdefault(f"bus:{kind}", []).append(f"{key} {value!r}")
            if kind == "stream":  # the consumer groups' pending entries, by id
                for group in client.xinfo_groups(key):
                    pending = client.xpending_range(key, group["name"], "-", "+", 10_000)
                    found["bus:pending"] = [*found.get("bus:pending", []), repr(pending)]
    finally:
        client.close()
    return found


def deliveries(env: Env, status: str) -> list[dict[str, Any]]:
    answer = env.client.get(
        "/api/hooks/deliveries", params={"status": status, "limit": 200}, headers=env.auth
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_an_erasure_takes_the_persons_undelivered_webhooks_back(env: Env) -> None:
    """Contact events (not tied to a conversation) and conversation events, to a receiver
    that is down: dead ones and pending ones; after the erasure nothing anywhere, in the
    database or on the bus, names the person, and when the receiver is back only the other
    person's delivery is sent."""
    port = free_port()  # the receiver is down
    made = env.client.post(
        "/api/hooks",
        json={"url": f"http://127.0.0.1:{port}/hook", "events": list(EVENTS)},
        headers=env.auth,
    )
    assert made.status_code == 201, made.text
    tag = uuid.uuid4().hex[:10]
    name, email = f"Grace {tag}", f"grace-{tag}@example.org"
    phone = f"+44 20 7946 {uuid.uuid4().int % 10**4:04d}"
    texts = [f"Please call me on {phone}", f"Parcel {tag} is lost"]

    token = env.client.post(
        "/api/widget/token", json={"channel": env.tenant.public_key}, headers={"origin": ORIGIN}
    ).json()
    said = env.client.post(
        "/api/widget/profile",
        json={"token": token["token"], "name": name, "email": email},
        headers={"origin": ORIGIN},
    )
    assert said.status_code == 204, said.text
    with env.client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
        hello(ws, token["token"])
        for number, text in enumerate(texts):
            frame = {"type": "message.send", "client_id": f"g{number}", "text": text}
            ws.send_text(json.dumps(frame))
            while ws.receive_json()["type"] != "ack":
                pass
    conversation_id = token["conversation_id"]
    url = f"/api/conversations/{conversation_id}"
    conversation = wait(
        lambda: (r := env.client.get(url, headers=env.auth)).status_code == 200 and r.json()
    )
    contact_id = conversation["contact_id"]
    assert env.client.patch(url, json={"labels": ["vip"]}, headers=env.auth).status_code == 202
    reply = {"client_id": "r1", "text": f"We will ring {name} back"}
    assert env.client.post(url + "/messages", json=reply, headers=env.auth).status_code == 202
    other = visitor_writes(env, "Someone else entirely")  # stays, and is sent at the end

    # Every delivery fails for good (dead), then some are due again (pending) while no
    # worker runs to send them.
    def all_dead() -> list[dict[str, Any]]:
        dead = deliveries(env, "dead")
        names = {d["event"] for d in dead}
        settled = not deliveries(env, "pending")
        return dead if settled and {"contact.updated", "message.created"} <= names else []

    dead = wait(all_dead, timeout_s=20)
    assert all(d["last_error"] and d["attempts"] == 6 for d in dead)
    bodies = everything(env)["webhook_deliveries"]
    assert any(email in b and name in b for b in bodies)  # the contact event's body
    assert any(texts[0] in b for b in bodies) and any(phone in b for b in bodies)
    env.call(env.client.app.state.worker.stop)  # type: ignore[attr-defined]
    replayed = [d for d in dead if d["event"] in ("contact.updated", "message.created")]
    for delivery in replayed:
        again = env.client.post(f"/api/hooks/deliveries/{delivery['id']}/replay", headers=env.auth)
        assert again.status_code == 202, again.text
    pending = {d["id"] for d in deliveries(env, "pending")}
    assert len(pending) == len(replayed) >= 3 and len(deliveries(env, "dead")) > 0

    held = [e for e in stream(env) if contact_id in e.data or conversation_id in e.data]
    assert {e.name for e in held} >= {"contact.updated", "message.created", "conversation.updated"}
    filed = env.client.post("/api/deletions", json={"contact_id": contact_id}, headers=env.auth)
    assert filed.status_code == 202, filed.text
    one = f"/api/deletions/{filed.json()['id']}"
    wait(lambda: env.client.get(one, headers=env.auth).json()["status"] == "done")

    # Events the hooks group had read before the erasure make no delivery now.
    hooks = env.services.hooks()
    env.call(hooks.handle, env.workspace, held, True)
    env.call(hooks.stop)

    # Nothing, anywhere, names the person; their ids only where erasure keeps them on
    # purpose (the `contact.deleted` event for agents, the marks that hold late events back).
    person = (name, email, phone, tag, *texts)
    ids = (contact_id, conversation_id)
    marks = ("contact.deleted", f"erased:{contact_id}", f"erased-conversation:{conversation_id}")
    for where, values in everything(env).items():
        for value in values:
            assert not [p for p in person if p in value], (where, value)
            if any(mark in value for mark in marks):
                continue
            assert not [i for i in ids if i in value], (where, value)
    kept = deliveries(env, "pending") + deliveries(env, "dead")
    assert kept and all(d["event"] != "contact.updated" or d["id"] not in pending for d in kept)

    # The receiver comes back and a worker runs: only the other person's deliveries go.
    with running_receiver(port) as receiver:
        client = httpx.AsyncClient()
        worker = env.services.worker(client)
        env.call(worker.start)
        try:
            wait(lambda: any(other["id"] in r["body"] for r in receiver.requests), 20)
            wait(lambda: not deliveries(env, "pending"), 20)
        finally:
            env.call(worker.stop)
            env.call(client.aclose)
    sent = [r["body"] for r in receiver.requests]
    assert sent and all(not [p for p in (*person, *ids) if p in body] for body in sent)
