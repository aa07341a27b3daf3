"""Migrations and the persist group's writes, on SQLite and on the real Postgres."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from hub.bus import Event, make_bus
from hub.realtime.ingress import message_event
from hub.settings import Settings
from hub.storage.engine import alembic_config, make_engine, migrate, sessionmaker
from hub.storage.models import MessageRow
from hub.storage.store import Store
from hub.workers import persist
from hub.workers.runner import Persister
from schemas.message import (
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    contact_id_for,
    conversation_id_for,
    message_id_for,
    utc_now,
)
from tests.conftest import make_settings
from tests.databases import own_database


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return make_settings(tmp_path)
    base = request.getfixturevalue("postgres_database")
    # One schema of its own per test inside the run's database keeps tests independent.
    return make_settings(tmp_path, database_url=_fresh_pg_database(base))


def _fresh_pg_database(base_url: str) -> str:
    import asyncpg

    name = "hub_t_" + uuid.uuid4().hex[:10]
    admin_url = base_url.rsplit("/", 1)[0] + "/postgres"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    _created.append((admin_url, name))
    return "postgresql+asyncpg:" + base_url.rsplit("/", 1)[0].split(":", 1)[1] + "/" + name


_created: list[tuple[str, str]] = []


@pytest.fixture(autouse=True, scope="module")
def _drop_created() -> object:
    yield
    import asyncpg

    async def drop() -> None:
        for admin_url, name in _created:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
        _created.clear()

    if _created:
        asyncio.run(drop())


@pytest.fixture
async def engine(db_settings: Settings) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(migrate, db_settings)
    engine = make_engine(db_settings)
    yield engine
    await engine.dispose()


def test_migrations_match_the_models_and_downgrade(db_settings: Settings) -> None:
    migrate(db_settings)
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    async def diff() -> list[object]:
        engine = make_engine(db_settings)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync), SQLModel.metadata
                    )
                )
        finally:
            await engine.dispose()

    dialect = "sqlite" if db_settings.is_sqlite else "postgresql"
    differences = [
        d for d in asyncio.run(diff()) if not _is_type_only(d) and not _elsewhere(d, dialect)
    ]
    assert differences == []
    command.downgrade(alembic_config(db_settings), "base")
    migrate(db_settings)  # and up again


def _elsewhere(diff: object, dialect: str) -> bool:
    """An index the model keeps to another database (`Index.ddl_if`), absent here."""
    if not (isinstance(diff, tuple) and diff[0] == "add_index"):
        return False
    index = diff[1]  # alembic's copy, without ddl_if: the model's is found by name
    [model] = [
        i for i in SQLModel.metadata.tables[index.table.name].indexes if i.name == index.name
    ]
    only = model._ddl_if
    return only is not None and only.dialect not in (None, dialect)


def _is_type_only(diff: object) -> bool:
    # UTCDateTime is a TypeDecorator over DateTime(timezone=True): the same column type.
    return isinstance(diff, list) and all(d[0] == "modify_type" for d in diff)


def _message(
    workspace_id: uuid.UUID, channel_id: uuid.UUID, visitor: str, n: int, sent_at: object
) -> Message:
    pmid = f"v:{visitor}:{n}"
    return Message(
        id=message_id_for(channel_id, pmid),
        workspace_id=workspace_id,
        channel_id=channel_id,
        conversation_id=conversation_id_for(workspace_id, channel_id, visitor),
        contact_id=contact_id_for(workspace_id, channel_id, visitor),
        channel_kind=ChannelKind.WEBCHAT,
        direction=Direction.IN,
        sender=Sender(type=SenderType.CONTACT),
        text=f"text {n}",
        platform_message_id=pmid,
        sent_at=sent_at,
        status=DeliveryStatus.RECEIVED,  # type: ignore[arg-type]
    )


async def test_persist_is_idempotent_and_keeps_the_newest_preview(engine: AsyncEngine) -> None:
    store = Store(sessionmaker(engine))
    workspace, _ = await store.create_workspace_with_admin(
        "w", f"a{uuid.uuid4().hex[:6]}@x.example", "pw"
    )
    channel = await store.create_channel(workspace.id, "webchat", "site", allowed_origins=["*"])
    base = utc_now()
    from datetime import timedelta

    events = [
        Event(
            f"{1000 + i}-0",
            "message.created",
            message_event(
                _message(workspace.id, channel.id, "vis", i, base + timedelta(seconds=i)),
                {"id": None, "name": "Ada", "platform_user_id": "vis"},
            ),
            "c",
        )
        for i in range(5)
    ]
    await persist.apply(store.sessions, str(workspace.id), events)
    # Redelivered, reordered, partially: nothing doubles and the newest stays newest.
    await persist.apply(store.sessions, str(workspace.id), [events[4], events[1], events[0]])
    async with engine.connect() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(MessageRow.__table__))
        ).scalar()
        identities = (
            await conn.execute(sa.text("SELECT count(*) FROM contact_identities"))
        ).scalar()
    assert count == 5 and identities == 1
    [conversation], _ = await store.conversations(workspace.id, status=None, limit=10, cursor=None)
    assert conversation.last_message_preview == "text 4"
    assert conversation.last_event_id == "1004-0"
    rows, more = await store.messages(workspace.id, conversation.id, limit=10, before=None)
    assert [r.text for r in rows] == [f"text {i}" for i in range(5)] and more is None


async def test_read_positions_are_stored(engine: AsyncEngine) -> None:
    store = Store(sessionmaker(engine))
    workspace, user = await store.create_workspace_with_admin(
        "w", f"a{uuid.uuid4().hex[:6]}@x.example", "pw"
    )
    channel = await store.create_channel(workspace.id, "webchat", "site")
    message = _message(workspace.id, channel.id, "v", 1, utc_now())
    read = {
        "conversation_id": str(message.conversation_id),
        "read": {"user_id": str(user.id), "up_to": "5-0"},
    }
    await persist.apply(
        store.sessions,
        str(workspace.id),
        [
            Event("1-0", "message.created", message_event(message), ""),
            Event("2-0", "conversation.updated", json.dumps(read), ""),
            Event("3-0", "typing", "{}", ""),
        ],
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT up_to FROM conversation_reads"))).all()
    assert [r[0] for r in rows] == ["5-0"]


def test_an_unstorable_event_is_skipped_and_the_batch_stored(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Data Postgres refuses (a NUL, a name over its column, a row of another workspace refused
    by row-level security) cannot be fixed by retrying: the persist worker applies the batch
    one by one and skips only those, instead of retrying the batch forever."""
    with own_database(request, tmp_path, "postgres") as settings:
        migrate(settings)
        asyncio.run(_skip_unstorable(settings))


async def _skip_unstorable(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        store = Store(sessionmaker(engine))
        workspace, _ = await store.create_workspace_with_admin(
            "w", f"a{uuid.uuid4().hex[:6]}@x.example", "pw"
        )
        other, _ = await store.create_workspace_with_admin(
            "o", f"o{uuid.uuid4().hex[:6]}@x.example", "pw"
        )
        site = await store.create_channel(workspace.id, "webchat", "site", allowed_origins=["*"])
        foreign = await store.create_channel(other.id, "webchat", "site", allowed_origins=["*"])
        now = utc_now()

        def event(n: int, message: Message, name: str = "Ada") -> Event:
            contact = {"id": None, "name": name, "platform_user_id": message.contact_id.hex}
            return Event(f"{2000 + n}-0", "message.created", message_event(message, contact), "c")

        def mine(visitor: str, n: int) -> Message:
            return _message(workspace.id, site.id, visitor, n, now)

        with_nul = mine("v1", 1).model_copy(update={"text": "a\x00b"})
        batch = [
            event(0, mine("v0", 0)),
            event(1, with_nul),
            event(2, mine("v2", 2), name="x" * 300),
            event(3, _message(other.id, foreign.id, "v3", 3, now)),
            event(4, mine("v4", 4)),
        ]
        persister = Persister(store.sessions, make_bus(settings))
        await persister.handle(str(workspace.id), batch, False)
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT text FROM messages ORDER BY text"))
            assert list(rows.scalars()) == ["text 0", "text 4"]
    finally:
        await engine.dispose()


async def test_a_batch_leaves_the_rows_of_its_events_applied_one_at_a_time(
    engine: AsyncEngine,
) -> None:
    """Consecutive messages are written together: a batch with several messages of one
    conversation out of time order, and other events between them that need the messages
    before them (a resolve, a reaction, a read position, a profile), leaves the rows that
    applying its events one at a time leaves."""
    from datetime import timedelta

    store = Store(sessionmaker(engine))
    workspace, user = await store.create_workspace_with_admin(
        "w", f"a{uuid.uuid4().hex[:6]}@x.example", "pw"
    )
    channel = await store.create_channel(workspace.id, "webchat", "site", allowed_origins=["*"])
    base = utc_now()
    ids = iter(range(3000, 4000))

    def created(visitor: str, n: int, seconds: int, *, ours: bool = False) -> Event:
        message = _message(workspace.id, channel.id, visitor, n, base + timedelta(seconds=seconds))
        if ours:
            message = message.model_copy(
                update={"direction": Direction.OUT, "sender": Sender(type=SenderType.AGENT)}
            )
        contact = {"id": None, "name": f"visitor {n}", "platform_user_id": visitor}
        return Event(f"{next(ids)}-0", "message.created", message_event(message, contact), "c")

    def other(name: str, data: dict[str, object]) -> Event:
        return Event(f"{next(ids)}-0", name, json.dumps(data), "")

    a = str(conversation_id_for(workspace.id, channel.id, "a"))
    b = str(conversation_id_for(workspace.id, channel.id, "b"))
    a4 = created("a", 4, 40)
    batch = [
        created("a", 1, 10),
        created("a", 2, 30, ours=True),
        created("b", 1, 5),
        other("conversation.updated", {"conversation_id": b, "changes": {"status": "resolved"}}),
        other("conversation.updated", {"conversation_id": a, "changes": {"status": "resolved"}}),
        created("b", 2, 6, ours=True),  # ours: B stays resolved
        created("a", 3, 20),  # older than A's last activity: A stays resolved
        other(
            "contact.updated",
            {
                "contact_id": str(contact_id_for(workspace.id, channel.id, "a")),
                "name": "Ada Lovelace",
            },
        ),
        a4,  # the newest: reopens A; the contact keeps its updated name
        other(
            "message.updated",
            {
                "channel_id": str(channel.id),
                "platform_message_id": "v:a:1",
                "changes": {"reaction": {"emoji": "+1", "by": "agent"}},
            },
        ),
        other(
            "conversation.updated",
            {"conversation_id": a, "read": {"user_id": str(user.id), "up_to": a4.id}},
        ),
        # Several messages of A together, out of time order:
        created("a", 5, 35),  # older than a4: the preview stays a4's
        created("a", 6, 40),  # the same time as a4, later on the stream: the preview
        created("a", 7, 38, ours=True),  # older again: changes nothing but its own row
        other("conversation.updated", {"conversation_id": b, "changes": {"labels": ["vip"]}}),
    ]
    tables = {  # what each table holds, but the ids and times made up when it was written
        "contacts": "SELECT id, name, email FROM contacts",
        "contact_identities": "SELECT contact_id, channel_id, platform_user_id"
        " FROM contact_identities",
        "conversations": "SELECT id, contact_id, kind, channel_kind, thread, last_inbound_at,"
        " status, last_activity_at, last_message_preview, last_event_id FROM conversations",
        "messages": "SELECT id, conversation_id, direction, text, reactions, status, sent_at,"
        " event_id FROM messages",
        "conversation_reads": "SELECT conversation_id, user_id, up_to, up_to_at"
        " FROM conversation_reads",
        "conversation_labels": "SELECT conversation_id, label FROM conversation_labels",
    }

    async def rows() -> dict[str, list[str]]:
        async with engine.begin() as conn:
            found = {
                table: sorted(str(tuple(r)) for r in await conn.execute(sa.text(query)))
                for table, query in tables.items()
            }
            for table in reversed(tables):  # and forget them
                await conn.execute(sa.text(f"DELETE FROM {table}"))
        return found

    for event in batch:
        await persist.apply(store.sessions, str(workspace.id), [event])
    one_by_one = await rows()
    await persist.apply(store.sessions, str(workspace.id), batch)
    together = await rows()
    assert together == one_by_one
    await persist.apply(store.sessions, str(workspace.id), batch)
    await persist.apply(store.sessions, str(workspace.id), batch[3:])  # redelivered
    assert await rows() == one_by_one

    # And those rows are the right ones.
    await persist.apply(store.sessions, str(workspace.id), batch)
    conversations, _ = await store.conversations(workspace.id, status=None, limit=10, cursor=None)
    by_id = {str(c.id): c for c in conversations}
    assert by_id[a].status == "open" and by_id[a].last_message_preview == "text 6"
    assert by_id[b].status == "resolved"
    async with engine.connect() as conn:
        name = (
            await conn.execute(sa.text("SELECT name FROM contacts WHERE name LIKE 'Ada%'"))
        ).scalar()
        reactions = (
            await conn.execute(
                sa.text("SELECT reactions FROM messages WHERE platform_message_id = 'v:a:1'")
            )
        ).scalar()
        reads = (await conn.execute(sa.text("SELECT up_to FROM conversation_reads"))).all()
    assert name == "Ada Lovelace"
    assert "+1" in str(reactions)
    assert [r[0] for r in reads] == [a4.id]
