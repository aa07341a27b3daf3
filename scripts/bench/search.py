#!/usr/bin/env python3
# ruff: noqa: RUF001, RUF002 (Turkish text, its dotless i included, is the point)
"""Search on a million messages: how long `hub.search.query.search` takes, on Postgres (its
trigram index) and on the embedded SQLite.

    .venv/bin/python scripts/bench/search.py                       # 1,000,000 messages, both
    .venv/bin/python scripts/bench/search.py --messages 100000 --runs 5 --db postgres

One workspace is seeded (not what is measured): 4 channels (one of public comments),
--messages messages in conversations of 10 over the last 90 days, a contact per
conversation with a Turkish or English name, a label on one conversation in ten, and a mix of
statuses. The texts are drawn from a vocabulary of Turkish and English words with a few words
of known frequency: "merhaba" in about one message in five (common), "ışık" in about one in a
hundred (searched as "ISIK": the Turkish fold), and "zümrüt" in twenty messages (rare). Each
row's folded `search` column is made by `hub.search.folding.folded`, as the persist worker
makes it. Postgres is loaded with COPY (the trigram index built after the load, as
`CREATE INDEX` on a restored database would), SQLite with executemany; then ANALYZE.

Each query runs --runs times through `hub.search.query.search` as the API runs it (the
workspace's row-level-security role on Postgres, 20 results a page); the table gives the
median and the 95th percentile in milliseconds. The databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchkit import pct, table  # noqa: E402

from hub.search.folding import fold, folded  # noqa: E402
from hub.search.query import Filters, search  # noqa: E402
from hub.settings import Settings  # noqa: E402
from hub.storage import tenancy  # noqa: E402
from hub.storage.engine import make_engine, migrate, sessionmaker  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PER_CONVERSATION = 10
DAYS = 90
WORDS = (
    "sipariş kargo ne zaman gelir teşekkürler fiyat bilgi alabilir miyim ürün iade değişim "
    "beden renk stok indirim kampanya ödeme kapıda kredi kartı taksit fatura adres telefon "
    "hello order shipping when price thanks please size colour refund exchange delivery "
    "tomorrow today week günaydın iyi akşamlar lütfen evet hayır tamam çok güzel harika "
    "müşteri hizmetleri şikayet öneri mağaza şube istanbul ankara izmir bursa antalya saat "
    "açık kapalı hafta sonu pazartesi salı çarşamba perşembe cuma cumartesi pazar"
).split()
NAMES = "Ayşe Fatma Emine Hatice Zeynep Elif Özlem Gül Şule Çağla Mehmet Mustafa Ahmet Ali Hüseyin Hasan İbrahim İsmail Ömer Ümit Oğuz Işıl John Mary Anna Peter".split()  # noqa: E501
SURNAMES = "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç Aslan Çetin Kara Koç Kurt Özkan Şimşek Smith Jones Brown".split()  # noqa: E501
LABELS = ("vip", "iade", "kargo", "şikayet")
STATUSES = ("open", "open", "pending", "resolved", "resolved", "snoozed")


def settings_for(url: str) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": url,
            "HUB_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
            "HUB_ENCRYPTION_KEYS": "QmVuY2hLZXlCZW5jaEtleUJlbmNoS2V5QmVuY2hLZXk=",
        }
    )


class World:
    """The seeded rows, made once and loaded into each database."""

    def __init__(self, messages: int) -> None:
        rng = random.Random(24)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.workspace = uuid.uuid4()
        self.channels = [uuid.uuid4() for _ in range(4)]
        self.contacts: list[dict[str, Any]] = []
        self.conversations: list[dict[str, Any]] = []
        self.labels: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        conversations = max(1, messages // PER_CONVERSATION)
        rare = set(rng.sample(range(messages), min(20, messages)))
        n = 0
        for c in range(conversations):
            contact, conversation = uuid.uuid4(), uuid.uuid4()
            channel = self.channels[c % 4]
            kind = "comment" if channel == self.channels[3] else "dm"
            name = f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}"
            opened = self.now - timedelta(seconds=DAYS * 86400 * (1 - c / conversations))
            self.contacts.append(
                dict(id=contact, workspace_id=self.workspace, name=name, search=folded(name))
            )
            self.conversations.append(
                dict(
                    id=conversation,
                    workspace_id=self.workspace,
                    channel_id=channel,
                    contact_id=contact,
                    kind=kind,
                    status=rng.choice(STATUSES),
                    last_activity_at=opened,
                    created_at=opened,
                )
            )
            if c % 10 == 0:
                self.labels.append(
                    dict(
                        workspace_id=self.workspace,
                        conversation_id=conversation,
                        label=rng.choice(LABELS),
                    )
                )
            at = opened
            for k in range(PER_CONVERSATION):
                words = rng.choices(WORDS, k=rng.randint(4, 14))
                if rng.random() < 0.2:
                    words.insert(rng.randrange(len(words) + 1), "merhaba")
                if rng.random() < 0.01:
                    words.insert(rng.randrange(len(words) + 1), rng.choice(("ışık", "IŞIK")))
                if n in rare:
                    words.append("zümrüt")
                text = " ".join(words).capitalize()
                inbound = k % 2 == 0
                self.messages.append(
                    dict(
                        id=uuid.uuid4(),
                        workspace_id=self.workspace,
                        conversation_id=conversation,
                        contact_id=contact,
                        channel_id=channel,
                        channel_kind="instagram" if kind == "comment" else "webchat",
                        kind=kind,
                        direction="in" if inbound else "out",
                        sender_type="contact" if inbound else "agent",
                        text=text,
                        platform_message_id=f"p{n}",
                        sent_at=at,
                        status="received" if inbound else "sent",
                        created_at=at,
                        search=fold(text),
                    )
                )
                at += timedelta(seconds=rng.randint(20, 900))
                n += 1
                if n >= messages:
                    break
            if n >= messages:
                break
        self.channel_rows = [
            dict(
                id=c,
                workspace_id=self.workspace,
                kind="instagram" if i == 3 else "webchat",
                name=f"Channel {i}",
            )
            for i, c in enumerate(self.channels)
        ]


PG_MESSAGE = dict(  # what COPY must give that has no server default
    attachments="[]",
    reactions="[]",
    edited=False,
    deleted=False,
    private_reply=False,
    note=False,
)
MESSAGE_DEFAULTS = dict(
    sender_id=None,
    sender_name=None,
    attachments=[],
    reply_to=None,
    reactions=[],
    edited=False,
    deleted=False,
    client_id=None,
    private_reply=False,
    note=False,
    hidden=False,
    error=None,
    raw=None,
    event_id=None,
    group_chat=None,
    standby=False,
    story=None,
    referral=None,
    captions=None,
)


async def load_postgres(url: str, world: World) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'bench', $2)",
            world.workspace,
            world.now,
        )
        for row in world.channel_rows:
            await conn.execute(
                "INSERT INTO channels (id, workspace_id, kind, name, account_ids, allowed_origins,"
                " settings, status, created_at) VALUES ($1, $2, $3, $4, '{}', '[]', '{}',"
                " 'connected', $5)",
                row["id"],
                row["workspace_id"],
                row["kind"],
                row["name"],
                world.now,
            )
        await _copy(conn, "contacts", world.contacts, created_at=world.now, updated_at=world.now)
        await _copy(conn, "conversations", world.conversations)
        await _copy(conn, "conversation_labels", world.labels)
        await conn.execute("DROP INDEX IF EXISTS ix_messages_search")
        for start in range(0, len(world.messages), 100_000):
            await _copy(conn, "messages", world.messages[start : start + 100_000], **PG_MESSAGE)
        await conn.execute(
            "CREATE INDEX ix_messages_search ON messages USING gin (search gin_trgm_ops)"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _copy(
    conn: asyncpg.Connection, table_name: str, rows: list[dict[str, Any]], **extra: Any
) -> None:
    if not rows:
        return
    columns = [*rows[0], *extra]
    records = [(*r.values(), *extra.values()) for r in rows]
    await conn.copy_records_to_table(table_name, records=records, columns=columns)


def load_sqlite(url: str, world: World) -> float:
    """executemany through SQLAlchemy Core, so every value is stored as the hub stores it."""
    from hub.storage.models import Channel, Contact, Conversation, ConversationLabel, MessageRow

    started = time.perf_counter()
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    now = dict(created_at=world.now, updated_at=world.now)
    channel_extra = dict(account_ids={}, allowed_origins=[], settings={}, status="connected")
    with engine.begin() as conn:
        conn.execute(sa.text("PRAGMA synchronous = OFF"))
        conn.execute(
            sa.insert(
                sa.table("workspaces", sa.column("id"), sa.column("name"), sa.column("created_at"))
            ),
            [dict(id=world.workspace.hex, name="bench", created_at=world.now.isoformat())],
        )
        conn.execute(
            Channel.__table__.insert(),  # type: ignore[attr-defined]
            [r | channel_extra | {"created_at": world.now} for r in world.channel_rows],
        )
        conn.execute(Contact.__table__.insert(), [r | now for r in world.contacts])  # type: ignore[attr-defined]
        conn.execute(Conversation.__table__.insert(), world.conversations)  # type: ignore[attr-defined]
        if world.labels:
            conn.execute(ConversationLabel.__table__.insert(), world.labels)  # type: ignore[attr-defined]
        insert = MessageRow.__table__.insert()  # type: ignore[attr-defined]
        for start in range(0, len(world.messages), 50_000):
            conn.execute(
                insert, [MESSAGE_DEFAULTS | r for r in world.messages[start : start + 50_000]]
            )
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def cases(world: World) -> Iterator[tuple[str, str, Filters, int]]:
    """(name, query, filters, page): the queries an inbox makes."""
    week = world.now - timedelta(days=7)
    yield "common word (merhaba, ~20%)", "merhaba", Filters(), 1
    yield "rare word (zümrüt, 20 rows)", "zümrüt", Filters(), 1
    yield "Turkish fold (ISIK finds ışık, ~1%)", "ISIK", Filters(), 1
    yield "miss (no row has it)", "qqxzv", Filters(), 1
    yield "two letters (ka)", "ka", Filters(), 1
    yield "phrase (kargo ne zaman)", "kargo ne zaman", Filters(), 1
    yield "contact name (şahin, first page)", "ŞAHİN", Filters(), 1
    yield (
        "common + channel + status",
        "merhaba",
        Filters(channel_id=world.channels[0], status="resolved"),
        1,
    )
    yield "common + label (vip)", "merhaba", Filters(label="vip"), 1
    yield "Turkish fold + last 7 days", "isik", Filters(since=week), 1
    yield "rare + comments only", "zümrüt", Filters(kind="comment"), 1
    yield "common, page 5", "merhaba", Filters(), 5


async def measure(url: str, world: World, runs: int, rls: bool) -> list[dict[str, Any]]:
    engine = make_engine(settings_for(url))
    sessions = sessionmaker(engine)
    results = []
    try:
        for name, query, filters, page in cases(world):
            times: list[float] = []
            found = 0
            for _ in range(runs):
                cursor = None
                started = time.perf_counter()
                with tenancy.acting_for(world.workspace if rls else None):
                    for _ in range(page):
                        answer = await search(
                            sessions, world.workspace, query, filters, limit=20, cursor=cursor
                        )
                        cursor = answer.next_cursor
                times.append((time.perf_counter() - started) * 1000 / page)
                found = len(answer.messages) + len(answer.contacts)
            results.append(
                {
                    "query": name,
                    "found": found,
                    "median_ms": round(statistics.median(times), 1),
                    "p95_ms": pct(times, 0.95),
                }
            )
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    finally:
        await engine.dispose()
    return results


async def admin_sizes(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    """On-disk size of each table with its indexes and TOAST (what storage per message costs)."""
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval("SELECT pg_total_relation_size($1)", t) for t in tables}
    finally:
        await conn.close()


async def run_postgres(world: World, runs: int) -> list[dict[str, Any]]:
    name = "bench_search_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrate, settings_for(url))
        seconds = await load_postgres(url, world)
        print(f"postgres: loaded {len(world.messages):,} messages in {seconds:.1f} s", flush=True)
        sizes = await admin_sizes(url, ("messages", "conversations", "contacts"))
        per = sizes["messages"] / len(world.messages)
        print(
            "postgres: "
            + ", ".join(f"{t} {b / 2**20:.0f} MiB" for t, b in sizes.items())
            + f" (tables with their indexes and TOAST); {per:.0f} bytes per message",
            flush=True,
        )
        return await measure(
            "postgresql+asyncpg://" + url.split("://", 1)[1], world, runs, rls=True
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run_sqlite(world: World, runs: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-search-") as folder:
        url = f"sqlite+aiosqlite:///{folder}/hub.db"
        await asyncio.to_thread(migrate, settings_for(url))
        seconds = await asyncio.to_thread(load_sqlite, url, world)
        size = await asyncio.to_thread(lambda: Path(folder, "hub.db").stat().st_size / 2**20)
        print(
            f"sqlite: loaded {len(world.messages):,} messages in {seconds:.1f} s ({size:.0f} MiB)",
            flush=True,
        )
        return await measure(url, world, runs, rls=False)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", choices=("both", "postgres", "sqlite"), default="both")
    args = parser.parse_args()
    started = time.perf_counter()
    world = World(args.messages)
    print(f"made {len(world.messages):,} messages in {time.perf_counter() - started:.1f} s")
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}: {os.cpu_count()} CPUs "
        f"({platform.machine()}), Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}",
        flush=True,
    )
    tables = []
    if args.db in ("both", "postgres"):
        tables.append(("Postgres", await run_postgres(world, args.runs)))
    if args.db in ("both", "sqlite"):
        tables.append(("SQLite", await run_sqlite(world, args.runs)))
    columns = {"query": "query", "found": "found", "median_ms": "median ms", "p95_ms": "p95 ms"}
    for title, rows in tables:
        print(f"\n{title}, {len(world.messages):,} messages, {args.runs} runs each")
        print(table(rows, columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
