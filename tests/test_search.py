"""Search that works in Turkish (hub/search): through the API on SQLite and on Postgres, the
rows written by the real persist path; each Turkish pair, each filter, pages, the workspace's
walls, and the folded column kept in step with edits, unsends, profile changes and the
migration's backfill."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from starlette.testclient import TestClient

from hub.bus import Event
from hub.realtime.ingress import message_event
from hub.settings import Settings
from hub.storage.engine import alembic_config, make_engine, migrate, sessionmaker
from hub.storage.store import Store
from hub.web.app import create_app
from hub.workers import persist
from schemas.message import (
    Attachment,
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    contact_id_for,
    conversation_id_for,
    message_id_for,
)
from tests.databases import own_database
from tests.helpers import Tenant, prepare


@dataclass
class Row:
    key: str
    person: str  # the visitor: one conversation each
    name: str
    text: str | None
    day: int  # of November 2026
    channel: str = "site"  # site | ig
    kind: str = "dm"
    caption: str | None = None
    file_name: str | None = None
    note: bool = False


ROWS = [
    Row("istanbul", "v-ayse", "Ayşe Yılmaz", "İSTANBUL şubesine ne zaman gelir?", 1),
    Row("sikayet", "v-isil", "Işıl Çelik", "Şikayet: ışık yanmıyor", 10),
    Row(
        "cicek",
        "v-dag",
        "Dağhan",
        "Çiçekler çok güzel, ödeme nasıl?",
        20,
        channel="ig",
        kind="comment",
        caption="Ürün fotoğrafı",
        file_name="DAĞ-evi.jpg",
    ),
    Row("merhaba", "v-ozgur", "Özgür", "Istanbul'dan selamlar", 25),
    Row("note", "v-ozgur", "Özgür", "istanbul notu: geri ara", 26, note=True),
]

# query -> the rows it finds (each Turkish pair, written either way, and captions, file names)
FINDS = {
    "istanbul": {"istanbul", "merhaba", "note"},
    "İSTANBUL": {"istanbul", "merhaba", "note"},
    "ISTANBUL": {"istanbul", "merhaba", "note"},
    "Istanbul'dan": {"merhaba"},
    "sikayet": {"sikayet"},
    "ŞİKAYET": {"sikayet"},
    "ISIK": {"sikayet"},
    "ışık": {"sikayet"},
    "cicekler": {"cicek"},
    "ÇİÇEKLER": {"cicek"},
    "COK GUZEL": {"cicek"},
    "odeme": {"cicek"},
    "ÖDEME": {"cicek"},
    "urun fotografi": {"cicek"},  # a caption
    "dag-evi": {"cicek"},  # a file name
    "yanmiyor": {"sikayet"},
    "Ğ": set(),  # too short (400), see below
}


@dataclass
class World:
    client: TestClient
    acme: Tenant
    globex: Tenant
    settings: Settings
    ig: uuid.UUID
    conversation: dict[str, uuid.UUID]

    def get(self, tenant: Tenant | None = None, **params: Any) -> Any:
        tenant = tenant or self.acme
        answer = self.client.get(
            "/api/search", params=params, headers={"authorization": f"Bearer {tenant.api_token}"}
        )
        return answer

    def keys(self, **params: Any) -> set[str]:
        answer = self.get(**params)
        assert answer.status_code == 200, answer.text
        by_text = {r.text: r.key for r in ROWS}
        return {by_text[m["text"]] for m in answer.json()["messages"]}

    def patch(self, key: str, body: dict[str, Any]) -> None:
        url = f"/api/conversations/{self.conversation[key]}"
        auth = {"authorization": f"Bearer {self.acme.api_token}"}
        answer = self.client.patch(url, json=body, headers=auth)
        assert answer.status_code == 202, answer.text
        wait(
            lambda: all(
                self.client.get(url, headers=auth).json().get(k) == v for k, v in body.items()
            )
        )


def wait(check: Callable[[], object], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def message(tenant: Tenant, channel: uuid.UUID, row: Row, n: int) -> Message:
    pmid = f"{row.person}:{n}"
    attachments = []
    if row.caption or row.file_name:
        attachments = [Attachment(type="image", caption=row.caption, name=row.file_name)]  # type: ignore[arg-type]
    return Message(
        id=message_id_for(channel, pmid),
        workspace_id=tenant.workspace_id,
        channel_id=channel,
        conversation_id=conversation_id_for(tenant.workspace_id, channel, row.person),
        contact_id=contact_id_for(tenant.workspace_id, channel, row.person),
        channel_kind=ChannelKind.INSTAGRAM if row.kind == "comment" else ChannelKind.WEBCHAT,
        kind=row.kind,  # type: ignore[arg-type]
        direction=Direction.OUT if row.note else Direction.IN,
        sender=Sender(type=SenderType.AGENT if row.note else SenderType.CONTACT),
        text=row.text,
        attachments=attachments,
        note=row.note,
        platform_message_id=pmid,
        sent_at=datetime(2026, 11, row.day, 12, tzinfo=UTC),
        status=DeliveryStatus.RECEIVED,
    )


async def apply(settings: Settings, tenant: Tenant, events: list[Event]) -> None:
    engine = make_engine(settings)
    try:
        await persist.apply(sessionmaker(engine), str(tenant.workspace_id), events)
    finally:
        await engine.dispose()


def created(tenant: Tenant, channel: uuid.UUID, row: Row, n: int) -> Event:
    contact = {"id": None, "name": row.name, "platform_user_id": row.person}
    data = message_event(message(tenant, channel, row, n), None if row.note else contact)
    return Event(f"{1000 + n}-0", "message.created", data, "")


async def seed(settings: Settings, acme: Tenant, globex: Tenant) -> uuid.UUID:
    engine = make_engine(settings)
    try:
        ig = (
            await Store(sessionmaker(engine)).create_channel(acme.workspace_id, "instagram", "IG")
        ).id
    finally:
        await engine.dispose()
    channels = {"site": acme.channel_id, "ig": ig}
    await apply(
        settings, acme, [created(acme, channels[r.channel], r, n) for n, r in enumerate(ROWS)]
    )
    theirs = Row("theirs", "v-other", "Istanbul Başka", "istanbul globex", 2)
    await apply(settings, globex, [created(globex, globex.channel_id, theirs, 99)])
    return ig


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[World]:
    with own_database(request, tmp_path, request.param) as settings:
        acme, globex = prepare(settings, "acme", "globex")
        ig = asyncio.run(seed(settings, acme, globex))
        channels = {"site": acme.channel_id, "ig": ig}
        conversations = {
            r.key: conversation_id_for(acme.workspace_id, channels[r.channel], r.person)
            for r in ROWS
        }
        with TestClient(create_app(settings, run_worker=True)) as client:
            yield World(client, acme, globex, settings, ig, conversations)


def test_each_turkish_pair_is_found_either_way(world: World) -> None:
    for query, expected in FINDS.items():
        if len(query) < 2:
            answer = world.get(q=query)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"
            continue
        assert world.keys(q=query) == expected, query
    contacts = world.get(q="AYSE YILMAZ").json()["contacts"]
    assert [c["name"] for c in contacts] == ["Ayşe Yılmaz"]
    assert [c["name"] for c in world.get(q="ışıl çelik").json()["contacts"]] == ["Işıl Çelik"]
    assert [c["name"] for c in world.get(q="ISIL").json()["contacts"]] == ["Işıl Çelik"]
    assert [c["name"] for c in world.get(q="V-DAG").json()["contacts"]] == ["Dağhan"]  # an identity
    # the other workspace's rows stay there, whichever way it is asked
    theirs = world.get(world.globex, q="İstanbul").json()
    assert [m["text"] for m in theirs["messages"]] == ["istanbul globex"]
    assert [c["name"] for c in theirs["contacts"]] == ["Istanbul Başka"]
    assert "globex" not in world.get(q="istanbul").text


def test_each_filter_narrows_the_matches(world: World) -> None:
    world.patch("sikayet", {"status": "resolved"})
    world.patch("istanbul", {"labels": ["vip"]})
    assert world.keys(q="istanbul", channel_id=str(world.acme.channel_id)) == {
        "istanbul",
        "merhaba",
        "note",
    }
    assert world.keys(q="güzel", channel_id=str(world.ig)) == {"cicek"}
    assert world.keys(q="istanbul", channel_id=str(world.ig)) == set()
    assert world.keys(q="ISIK", status="resolved") == {"sikayet"}
    assert world.keys(q="istanbul", status="resolved") == set()
    assert world.keys(q="istanbul", status="open") == {"istanbul", "merhaba", "note"}
    assert world.keys(q="istanbul", label="VIP") == {"istanbul"}
    assert world.keys(q="ISIK", label="vip") == set()
    assert world.keys(q="odeme", kind="comment") == {"cicek"}
    assert world.keys(q="odeme", kind="dm") == set()
    assert world.keys(q="istanbul", kind="dm") == {"istanbul", "merhaba", "note"}
    assert world.keys(q="istanbul", since="2026-11-25") == {"merhaba", "note"}
    assert world.keys(q="istanbul", until="2026-11-25") == {"istanbul", "merhaba"}  # the whole day
    assert world.keys(q="istanbul", since="2026-11-02", until="2026-11-25T13:00:00+00:00") == {
        "merhaba"
    }
    assert world.keys(q="istanbul", status="open", kind="dm", since="2026-11-26") == {"note"}
    # contacts follow the conversation filters
    assert world.get(q="ayse", label="vip").json()["contacts"]
    assert world.get(q="ayse", status="resolved").json()["contacts"] == []
    for bad in (
        {"status": "closed"},
        {"kind": "email"},
        {"since": "yesterday"},
        {"until": "2026-11-02T10:00:00"},  # no zone
        {"since": "2026-11-03", "until": "2026-11-02"},
        {"channel_id": "nope"},
        {"until": "9999-12-31"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"cursor": "nope"},
        {"limit": "0"},
    ):
        answer = world.get(q="istanbul", **bad)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["code"] == "bad_request", bad
    marks_only = world.get(q="\u0301\u0301")
    assert marks_only.status_code == 400 and marks_only.json()["error"]["code"] == "bad_request"


def test_pages_follow_one_another_newest_first(world: World) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"q": "İstanbul", "limit": "1"} | ({"cursor": cursor} if cursor else {})
        page = world.get(**params).json()
        if cursor is not None:  # contacts come on the first page only
            assert page["contacts"] == []
        seen += [m["text"] for m in page["messages"]]
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == [
        "istanbul notu: geri ara",
        "Istanbul'dan selamlar",
        "İSTANBUL şubesine ne zaman gelir?",
    ]
    assert pages == 3


def test_the_folded_text_follows_edits_unsends_and_profiles(world: World) -> None:
    acme, settings = world.acme, world.settings
    row = ROWS[1]
    pmid = f"{row.person}:1"

    def updated(n: int, changes: dict[str, Any]) -> Event:
        data = {
            "channel_id": str(acme.channel_id),
            "platform_message_id": pmid,
            "changes": changes,
        }
        return Event(f"{2000 + n}-0", "message.updated", json.dumps(data), "")

    asyncio.run(
        apply(settings, acme, [updated(1, {"text": "Güneş paneli ÇALIŞMIYOR", "edited": True})])
    )
    assert world.get(q="calismiyor").json()["messages"][0]["text"] == "Güneş paneli ÇALIŞMIYOR"
    assert world.get(q="sikayet").json()["messages"] == []
    asyncio.run(apply(settings, acme, [updated(2, {"deleted": True})]))
    assert world.get(q="calismiyor").json()["messages"] == []

    contact = contact_id_for(acme.workspace_id, acme.channel_id, ROWS[0].person)
    profile = {"contact_id": str(contact), "name": "Gülşen Öztürk", "email": "GULSEN@ÖRNEK.example"}
    event = Event("3000-0", "contact.updated", json.dumps(profile), "")
    asyncio.run(apply(settings, acme, [event]))
    assert [c["name"] for c in world.get(q="gulsen ozturk").json()["contacts"]] == ["Gülşen Öztürk"]
    assert [c["name"] for c in world.get(q="gulsen@ornek").json()["contacts"]] == ["Gülşen Öztürk"]
    assert world.get(q="yilmaz").json()["contacts"] == []  # the old name is gone


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migration_folds_the_rows_already_there(
    request: pytest.FixtureRequest, tmp_path: Any, kind: str
) -> None:
    with own_database(request, tmp_path, kind) as settings:
        [acme] = prepare(settings, "acme")
        rows = [Row(f"r{i}", f"v{i}", f"KİŞİ {i}", f"ŞUBE {i} IŞIK", 1 + i % 27) for i in range(30)]
        asyncio.run(
            apply(
                settings, acme, [created(acme, acme.channel_id, r, i) for i, r in enumerate(rows)]
            )
        )
        config = alembic_config(settings)
        command.downgrade(config, "0025-1")  # as before this change: no folded column
        command.upgrade(config, "head")

        async def read(settings: Settings) -> tuple[list[Any], list[Any]]:
            engine = make_engine(settings)
            try:
                async with engine.connect() as conn:
                    messages = (await conn.execute(sa.text("SELECT search FROM messages"))).all()
                    contacts = (await conn.execute(sa.text("SELECT search FROM contacts"))).all()
                    return list(messages), list(contacts)
            finally:
                await engine.dispose()

        messages, contacts = asyncio.run(read(settings))
        assert sorted(r[0] for r in messages) == sorted(f"sube {i} isik" for i in range(30))
        assert sorted(r[0] for r in contacts) == sorted(f"kisi {i}" for i in range(30))
        migrate(settings)


@pytest.mark.parametrize("world", ["postgres"], indirect=True)
def test_like_may_use_the_trigram_index_under_row_level_security(world: World) -> None:
    """Under row-level security the planner uses an index for LIKE only if LIKE is LEAKPROOF
    (migration 0025): without it, search reads every message of every workspace (the
    benchmark, scripts/bench/search.py, measures the difference)."""
    import asyncpg

    async def leakproof() -> object:
        url = world.settings.database_url.replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(url)
        try:
            query = (
                "SELECT proleakproof FROM pg_proc WHERE oid = 'textlike(text,text)'::regprocedure"
            )
            return await conn.fetchval(query)
        finally:
            await conn.close()

    assert asyncio.run(leakproof()) is True
