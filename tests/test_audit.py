"""The audit log: one hash chain that concurrent appends never fork, `hub audit verify`
naming the first tampered row, append-only in the application and (on Postgres) in the
database, the events it must hold, and none of the personal data it must not.
On SQLite and on the real Postgres."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from starlette.testclient import TestClient

from hub import cli
from hub.accounts.members import Actor, Members
from hub.settings import Settings
from hub.storage import audit
from hub.storage.engine import make_engine, migrate_async, sessionmaker
from hub.storage.models import AuditEvent
from hub.storage.rotation import rotate_secrets
from hub.storage.store import Store
from hub.web.app import create_app
from tests.databases import own_database, superuser
from tests.fakeplatform import TELEGRAM, running_fake
from tests.helpers import ORIGIN, STRONG_PASSWORD, prepare


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with own_database(request, tmp_path, request.param) as settings:
        yield settings


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with own_database(request, tmp_path, "postgres") as settings:
        yield settings


@pytest.fixture
async def engine(db: Settings) -> AsyncIterator[AsyncEngine]:
    await migrate_async(db)
    engine = make_engine(db)
    yield engine
    await engine.dispose()


async def chain(engine: AsyncEngine) -> list[AuditEvent]:
    async with sessionmaker(engine)() as s:
        return list((await s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


async def fill(store: Store, rows: int) -> list[int]:
    for n in range(rows):
        await store.audit(None, "system", None, "test.appended", detail={"n": n})
    return [row.id for row in await chain_of(store) if row.id is not None]


async def chain_of(store: Store) -> list[AuditEvent]:
    async with store.sessions() as s:
        return list((await s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


# The chain


async def test_concurrent_appends_make_one_unbroken_chain(engine: AsyncEngine) -> None:
    store = Store(sessionmaker(engine))
    suffix = uuid.uuid4().hex[:8]
    await asyncio.gather(
        *(
            store.audit(uuid.uuid4(), "user", str(n), "test.concurrent", detail={"n": n})
            for n in range(50)
        ),
        # Appends inside transactions that wrote other rows first.
        *(
            store.create_workspace_with_admin(f"w{n}", f"a{n}-{suffix}@x.example", "password")
            for n in range(5)
        ),
    )
    rows = await chain(engine)
    assert len(rows) == 55
    assert rows[0].prev_hash == audit.GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash, f"the chain forks at row {after.id}"
    assert len({row.prev_hash for row in rows}) == 55
    assert sorted(row.detail.get("n", -1) for row in rows)[5:] == list(range(50))
    verdict = await audit.verify(sessionmaker(engine))
    assert verdict.ok and verdict.line() == "ok, 55 rows"


def _swap(a: int, b: int) -> list[str]:
    # Every column but the id trades places: the rows' contents are swapped.
    return [
        f"UPDATE audit_events SET id = -1 WHERE id = {a}",
        f"UPDATE audit_events SET id = {a} WHERE id = {b}",
        f"UPDATE audit_events SET id = {b} WHERE id = -1",
    ]


@pytest.mark.parametrize("tampering", ["altered", "removed", "swapped"])
def test_verify_names_the_first_tampered_row(
    db: Settings,
    tampering: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def build() -> list[int]:
        await migrate_async(db)
        engine = make_engine(db)
        try:
            return await fill(Store(sessionmaker(engine)), 10)
        finally:
            await engine.dispose()

    ids = asyncio.run(build())
    for name, value in {
        "HUB_SECRET_KEY": db.secret_key,
        "HUB_ENCRYPTION_KEYS": ",".join(db.encryption_keys),
        "HUB_DATA_DIR": str(db.data_dir),
        "DATABASE_URL": db.database_url,
    }.items():
        monkeypatch.setenv(name, value)
    cli.main(["audit", "verify"])  # exits 0
    assert capsys.readouterr().out == "ok, 10 rows\n"

    statements = {
        "altered": [f"""UPDATE audit_events SET detail = '{{"n": 99}}' WHERE id = {ids[4]}"""],
        "removed": [f"DELETE FROM audit_events WHERE id = {ids[4]}"],
        "swapped": _swap(ids[3], ids[6]),
    }[tampering]
    if not db.is_sqlite:  # a superuser first switches the append-only trigger off
        statements.insert(0, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    asyncio.run(superuser(db, *statements))

    with pytest.raises(SystemExit) as exited:
        cli.main(["audit", "verify"])
    assert exited.value.code == 1
    [line] = capsys.readouterr().out.splitlines()
    expected = {
        "altered": f"audit log broken at row {ids[4]}: its content does not match its hash",
        "removed": f"audit log broken at row {ids[5]}: it does not follow row {ids[3]}",
        "swapped": f"audit log broken at row {ids[3]}: its content does not match its hash",
    }[tampering]
    assert line.startswith(expected), line


async def test_rows_from_before_the_chain_are_counted_apart(db: Settings) -> None:
    await migrate_async(db)
    legacy = (
        "INSERT INTO audit_events (workspace_id, at, actor_type, action, detail) "
        "VALUES (NULL, '2026-01-01 00:00:00', 'system', 'workspace.created', '{}')"
    )
    await superuser(db, legacy)
    engine = make_engine(db)
    try:
        store = Store(sessionmaker(engine))
        await fill(store, 3)
        [old, first, *_] = await chain_of(store)
        assert old.hash is None and first.prev_hash == audit.GENESIS
        assert (await audit.verify(store.sessions)).line() == (
            "ok, 4 rows (1 from before the chain, unverified)"
        )
    finally:
        await engine.dispose()


# Append-only


async def test_the_application_only_appends(engine: AsyncEngine) -> None:
    store = Store(sessionmaker(engine))
    await fill(store, 2)
    with pytest.raises(audit.AppendOnly):  # not through hub.storage.audit.append: refused
        async with store.sessions() as s, s.begin():
            s.add(AuditEvent(actor_type="system", action="test.unchained"))
    with pytest.raises(audit.AppendOnly):
        async with store.sessions() as s, s.begin():
            row = (await s.exec(select(AuditEvent))).first()
            assert row is not None
            row.action = "test.changed"
            s.add(row)
    with pytest.raises(audit.AppendOnly):
        async with store.sessions() as s, s.begin():
            row = (await s.exec(select(AuditEvent))).first()
            await s.delete(row)
    assert (await audit.verify(store.sessions)).line() == "ok, 2 rows"


async def test_postgres_refuses_changes_to_audit_rows(pg: Settings) -> None:
    await migrate_async(pg)
    engine = make_engine(pg)
    try:
        await fill(Store(sessionmaker(engine)), 3)
        for statement in (
            "UPDATE audit_events SET action = 'test.changed'",
            "DELETE FROM audit_events WHERE id = (SELECT min(id) FROM audit_events)",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:  # the application's own connection
                    await conn.execute(sa.text(statement))
        assert (await audit.verify(sessionmaker(engine))).line() == "ok, 3 rows"
    finally:
        await engine.dispose()


# What is logged, and what is not


def test_the_log_holds_the_events_and_no_personal_data(db: Settings) -> None:
    typed_email = "someone.else@typo.example"
    said, answered = "Kargom nerede? Sipariş 44117730", "Bugün kargoda, takip no 99887766"
    name, email = "Ayşe Yılmaz", "ayse.yilmaz@example.com"
    with running_fake() as fake:
        settings = db.with_overrides(
            public_url="https://hub.example", telegram_api_url=fake.base_urls().telegram
        )
        [tenant] = prepare(settings, "acme")
        app = create_app(settings, run_worker=True)
        with TestClient(app, base_url="https://hub.example") as client:
            wrong = {"email": typed_email, "password": "wrong-password"}
            assert client.post("/api/auth/login", json=wrong).status_code == 401
            login = {"email": tenant.email, "password": tenant.password}
            csrf = {"x-csrf-token": client.post("/api/auth/login", json=login).json()["csrf_token"]}

            visitor = client.post(
                "/api/widget/token", json={"channel": tenant.public_key}, headers={"origin": ORIGIN}
            ).json()
            with client.websocket_connect("/ws/visitor", headers={"origin": ORIGIN}) as ws:
                ws.send_text(json.dumps({"type": "hello", "token": visitor["token"]}))
                assert ws.receive_json()["type"] == "welcome"
                ws.send_text(json.dumps({"type": "message.send", "client_id": "v1", "text": said}))
                while ws.receive_json()["type"] != "ack":
                    pass
            profile = {"token": visitor["token"], "name": name, "email": email}
            headers = {"origin": ORIGIN}
            assert client.post("/api/widget/profile", json=profile, headers=headers).is_success
            messages = f"/api/conversations/{visitor['conversation_id']}/messages"
            wait_for(lambda: client.get(messages).json().get("items"))
            reply = {"client_id": "a1", "text": answered}
            assert client.post(messages, json=reply, headers=csrf).status_code == 202

            bot = {"kind": "telegram", "name": "Bot", "bot_token": TELEGRAM.token}
            channel = client.post("/api/channels", json=bot, headers=csrf).json()
            services: Any = client.app.state.services  # type: ignore[attr-defined]
            portal: Any = client.portal
            portal.call(services.channels.mark, uuid.UUID(channel["id"]), "needs_reconnect")
            assert client.delete(f"/api/channels/{channel['id']}", headers=csrf).is_success
            site = f"/api/channels/{tenant.channel_id}/identity-secret"
            assert client.post(site, headers=csrf).status_code == 201
            portal.call(rotate_secrets, services.store, services.vault)

            members = Members(services.store.sessions)
            actor = Actor(tenant.admin_id, "203.0.113.9")
            invitations = services.invitations
            sent = portal.call(
                lambda: invitations.invite(
                    tenant.workspace_id, actor, email="agent@acme.example", role="agent"
                )
            )
            agent, _ = portal.call(
                lambda: invitations.accept_new(
                    sent.token, name=name, password=STRONG_PASSWORD, ip=None
                )
            )
            portal.call(members.change_role, tenant.workspace_id, actor, agent.id, "admin")
            portal.call(members.remove, tenant.workspace_id, actor, agent.id)
            assert client.post("/api/auth/logout", headers=csrf).status_code == 204
            rows = portal.call(chain_of, services.store)
            assert portal.call(audit.verify, services.store.sessions).ok
        assert not fake.rejected

    actions = {row.action for row in rows}
    assert {
        "login.failed",
        "login.succeeded",
        "logout",
        "channel.connected",
        "channel.needs-reconnect",
        "channel.disconnected",
        "channel.identity_secret_rotated",
        "secrets.rotated",
        "invitation.sent",
        "invitation.accepted",
        "member.added",
        "member.role_changed",
        "member.removed",
    } <= actions
    [failed] = [row for row in rows if row.action == "login.failed"]
    assert failed.actor_id is None and failed.detail == {}
    written = json.dumps([audit.content(row) for row in rows], ensure_ascii=False).lower()
    for personal in (typed_email, said, answered, name, email, "44117730", "99887766", "ayşe"):
        assert personal.lower() not in written, personal
    assert "agent@acme.example" not in written


def wait_for(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
