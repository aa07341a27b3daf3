"""Retention (hub.privacy.retention, hub.accounts.workspace): the sweep deletes what is older than a
workspace's retention from the database and the stream, with time moved forward instead of
waited for; on SQLite with the in-process bus and on the real Postgres with the real Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from hub.bus import Event, parse_id
from hub.bus.memory import MemoryBus
from hub.errors import CursorTooOld
from hub.privacy.retention import Retention
from hub.services import Services
from hub.settings import Settings
from hub.web.app import create_app
from schemas.message import (
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    utc_now,
)
from tests.conftest import REDIS_URL, make_settings
from tests.helpers import STRONG_PASSWORD, Tenant, prepare
from tests.mailbox import join

DAYS = 30
TABLES = (
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
    tenant: Tenant  # keeps messages DAYS days
    other: Tenant  # keeps them forever
    redis_prefix: str | None

    @property
    def services(self) -> Services:
        value: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return value

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self.client.portal.call(run)  # type: ignore[union-attr]


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
    tenant, other = prepare(settings, "acme", "globex")
    with TestClient(create_app(settings, run_worker=True)) as client:
        yield Env(client, tenant, other, prefix)


def auth(tenant: Tenant) -> dict[str, str]:
    return {"authorization": f"Bearer {tenant.api_token}"}


def wait(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def says(env: Env, tenant: Tenant, person: str, sent_at: datetime) -> Message:
    """A web-chat visitor's message, published as the ingress does, with its own time."""
    workspace_id, channel_id = tenant.workspace_id, tenant.channel_id
    message = Message(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        channel_id=channel_id,
        conversation_id=uuid.uuid5(channel_id, person),
        contact_id=uuid.uuid5(workspace_id, person),
        channel_kind=ChannelKind.WEBCHAT,
        direction=Direction.IN,
        sender=Sender(type=SenderType.CONTACT, id=str(uuid.uuid5(workspace_id, person))),
        text=f"from {person}",
        platform_message_id=uuid.uuid4().hex,
        sent_at=sent_at,
        status=DeliveryStatus.RECEIVED,
    )
    data = {
        "message": message.model_dump(mode="json"),
        "contact": {"name": person, "platform_user_id": person},
    }
    env.call(
        env.services.bus.publish,
        str(workspace_id),
        "message.created",
        json.dumps(data),
        conversation_id=str(message.conversation_id),
    )
    return message


def rows(env: Env, tenant: Tenant, *tables: str) -> dict[str, list[dict[str, Any]]]:
    async def read() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        async with env.services.store.sessions() as orm:
            conn = await orm.connection()
            for name in tables:
                table = SQLModel.metadata.tables[name]
                query = sa.select(table).where(table.c.workspace_id == tenant.workspace_id)
                found[name] = [dict(r._mapping) for r in (await conn.execute(query)).all()]
        return found

    result: dict[str, list[dict[str, Any]]] = env.call(read)
    return result


def stored(env: Env, tenant: Tenant, messages: list[Message]) -> None:
    want = {m.id for m in messages}
    wait(lambda: want <= {r["id"] for r in rows(env, tenant, "messages")["messages"]})


def stream(env: Env, tenant: Tenant) -> list[Event]:
    """Every entry the workspace stream still holds, read straight from the bus's storage."""
    bus, workspace = env.services.bus, str(tenant.workspace_id)
    if isinstance(bus, MemoryBus):
        found = bus._streams.get(workspace)
        return list(found.entries) if found else []
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        entries: Any = client.xrange(f"{env.redis_prefix}:{{w:{workspace}}}:events")
    finally:
        client.close()
    return [Event(i, f.get("n", ""), f.get("d", "{}"), f.get("c", "")) for i, f in entries]


def audits(env: Env, tenant: Tenant, action: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        table = SQLModel.metadata.tables["audit_events"]
        query = sa.select(table).where(
            table.c.workspace_id == tenant.workspace_id, table.c.action == action
        )
        async with env.services.store.sessions() as orm:
            conn = await orm.connection()
            return [dict(r._mapping) for r in (await conn.execute(query.order_by(table.c.id)))]

    result: list[dict[str, Any]] = env.call(read)
    return result


def keep(env: Env, tenant: Tenant, days: int | None) -> None:
    answer = env.client.patch("/api/workspace", json={"retention_days": days}, headers=auth(tenant))
    assert answer.status_code == 200, answer.text
    assert answer.json()["retention_days"] == days


def test_the_sweep_deletes_what_is_older_than_the_retention_everywhere(env: Env) -> None:
    start = utc_now()
    ages = [start - timedelta(days=d) for d in (90, 45, 31)]
    # Old: a conversation all of whose messages are old, and the old part of one that goes on.
    gone = [says(env, env.tenant, "ada", at) for at in ages]
    older = says(env, env.tenant, "bob", ages[0])
    theirs = [says(env, env.other, "cem", at) for at in ages]  # the other workspace keeps all
    stored(env, env.tenant, [*gone, older])
    stored(env, env.other, theirs)
    env.call(label_and_read, env, gone[0])

    # The cut: what comes after is newer than the retention, in the stream and by time.
    cut_ms = int(time.time() * 1000) + 1
    time.sleep(0.01)
    cutoff = datetime.fromtimestamp(cut_ms / 1000, UTC)
    newer = says(env, env.tenant, "bob", utc_now())
    stored(env, env.tenant, [newer])
    before = stream(env, env.tenant)
    old_entries = [e for e in before if parse_id(e.id)[0] < cut_ms]
    assert old_entries and len(old_entries) < len(before)
    other_stream = stream(env, env.other)

    keep(env, env.tenant, DAYS)
    store, bus = env.services.store, env.services.bus
    sweep = Retention(
        store, bus, env.services.ingress, env.services.library, every_s=60, batch_rows=2, pause_s=0
    )
    now = cutoff + timedelta(days=DAYS)
    workspace = str(env.tenant.workspace_id)

    # Fifty days earlier, only the messages older than eighty days go: one of each person.
    early = env.call(sweep.sweep, now - timedelta(days=50))[workspace]
    assert early.counts == {
        "messages": 2,
        "conversations": 0,
        "contacts": 0,
        "stream_entries": 0,
        "files": 0,
    }
    assert len(rows(env, env.tenant, "conversations")["conversations"]) == 2

    swept = env.call(sweep.sweep, now)
    assert set(swept) == {workspace}  # never a workspace without retention
    done = swept[workspace]
    assert done.counts == {
        "messages": 2,
        "conversations": 1,
        "contacts": 1,
        "stream_entries": len(old_entries),
        "files": 0,
    }
    # Two rows a batch: messages 2 then none, conversations 1, contacts 1.
    assert done.batches == 4

    after = rows(env, env.tenant, *TABLES)
    assert [r["id"] for r in after["messages"]] == [newer.id]
    assert [r["id"] for r in after["conversations"]] == [newer.conversation_id]
    assert [r["id"] for r in after["contacts"]] == [newer.contact_id]
    assert [r["contact_id"] for r in after["contact_identities"]] == [newer.contact_id]
    assert after["conversation_labels"] == [] and after["conversation_reads"] == []
    assert [e.id for e in stream(env, env.tenant)] == [e.id for e in before[len(old_entries) :]]
    assert all(parse_id(e.id)[0] >= cut_ms for e in stream(env, env.tenant))
    with pytest.raises(CursorTooOld):
        env.call(bus.read, workspace, old_entries[0].id, 10)

    untouched = rows(env, env.other, "messages", "conversations", "contacts")
    assert {r["id"] for r in untouched["messages"]} == {m.id for m in theirs}
    assert len(untouched["conversations"]) == 1 and len(untouched["contacts"]) == 1
    assert stream(env, env.other) == other_stream

    # Nothing left to delete: no audit row. Those written hold counts only.
    assert env.call(sweep.sweep, now)[workspace].counts == dict.fromkeys(done.counts, 0)
    audited = audits(env, env.tenant, "retention.swept")
    assert [(a["actor_type"], a["detail"]) for a in audited] == [
        ("system", early.counts),
        ("system", done.counts),
    ]
    assert audits(env, env.other, "retention.swept") == []
    # The periodic sweep claims each workspace: a second worker within the interval skips it.
    assert set(env.call(sweep.sweep, now, claim=True)) == {workspace}
    assert env.call(sweep.sweep, now, claim=True) == {}


async def label_and_read(env: Env, message: Message) -> None:
    labels = SQLModel.metadata.tables["conversation_labels"]
    reads = SQLModel.metadata.tables["conversation_reads"]
    async with env.services.store.sessions() as orm, orm.begin():
        conn = await orm.connection()
        await conn.execute(
            sa.insert(labels).values(
                workspace_id=message.workspace_id,
                conversation_id=message.conversation_id,
                label="vip",
            )
        )
        await conn.execute(
            sa.insert(reads).values(
                workspace_id=message.workspace_id,
                conversation_id=message.conversation_id,
                user_id=env.tenant.admin_id,
                up_to="1-0",
                read_at=utc_now(),
            )
        )


def test_admins_set_the_retention_members_read_it(env: Env) -> None:
    client, tenant = env.client, env.tenant
    mine = {
        "id": str(tenant.workspace_id),
        "name": "acme",
        "retention_days": None,
        "platform_deletion_erases": False,
        "require_two_factor_for_admins": False,
    }
    assert client.get("/api/workspace", headers=auth(tenant)).json() == mine
    assert client.get("/api/workspace").status_code == 401
    keep(env, tenant, 90)
    keep(env, tenant, 90)  # unchanged: not audited again
    keep(env, tenant, None)
    for bad in (0, 3651, -1, "30", 30.5, True, {}):
        answer = client.patch("/api/workspace", json={"retention_days": bad}, headers=auth(tenant))
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["code"] == "bad_request"
    for body in ({}, {"retention_days": 5, "name": "x"}):
        assert client.patch("/api/workspace", json=body, headers=auth(tenant)).status_code == 400
    changes = audits(env, tenant, "retention.changed")
    assert [(a["actor_id"], a["target_id"]) for a in changes] == [
        (str(tenant.admin_id), str(tenant.workspace_id))
    ] * 2
    assert [a["detail"] for a in changes] == [{"from": None, "to": 90}, {"from": 90, "to": None}]
    assert audits(env, env.other, "retention.changed") == []

    agent = {"email": "agent@acme.example", "password": STRONG_PASSWORD}
    join(client, auth(tenant), agent["email"], "Agent", agent["password"])
    login = client.post("/api/auth/login", json=agent)
    csrf = {"x-csrf-token": login.json()["csrf_token"]}
    assert client.get("/api/workspace").json() == mine  # any member reads it
    answer = client.patch("/api/workspace", json={"retention_days": 7}, headers=csrf)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    assert client.get("/api/workspace").json()["retention_days"] is None
    other = client.get("/api/workspace", headers=auth(env.other)).json()
    assert other == {
        "id": str(env.other.workspace_id),
        "name": "globex",
        "retention_days": None,
        "platform_deletion_erases": False,
        "require_two_factor_for_admins": False,
    }


def test_the_worker_sweeps_every_hub_retention_sweep_s(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.retention_sweep_s == 3600
    settings = Settings.from_env(
        {**settings_env(settings), "HUB_RETENTION_SWEEP_S": "120"}, data_dir=tmp_path
    )
    prepare(settings)
    with TestClient(create_app(settings, run_worker=True)) as client:
        tasks = client.app.state.worker.tasks  # type: ignore[attr-defined]
        assert [t.every_s for t in tasks if isinstance(t, Retention)] == [120]


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        "HUB_SECRET_KEY": settings.secret_key,
        "HUB_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
    }
