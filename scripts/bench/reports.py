#!/usr/bin/env python3
"""Reports on a million messages: how long `hub.reports.service.report` takes on Postgres.

    .venv/bin/python scripts/bench/reports.py                      # 1,000,000 messages, 90 days
    .venv/bin/python scripts/bench/reports.py --messages 200000 --days 30 --runs 3

Issue 9: reports "computed with SQL on Postgres fast enough for a workspace with a million
messages". A temporary Postgres database is migrated (`hub.storage.engine.migrate`), one
workspace is seeded with COPY (the seeding is not what is measured): its admin and 9 agents,
4 channels, 3 teams, --messages messages in conversations of 10 (half in, half out, the first
reply by the
conversation's agent), spread evenly over the last --days days, and the report events the
persist group would have written for them (every conversation opened, 90% answered, 70%
resolved). Then ANALYZE, and each report (by day, channel, team and agent, over the last 7
days, 30 days and the whole span) is run --runs times through `hub.reports.service.report` as
the API runs it (the workspace's row-level-security role); the table shows the median and the worst.
The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from hub.reports import service as reports  # noqa: E402
from hub.settings import Settings  # noqa: E402
from hub.storage import tenancy  # noqa: E402
from hub.storage.engine import make_engine, migrate, sessionmaker  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PER_CONVERSATION = 10


def settings_for(url: str) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": url,
            "HUB_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
            "HUB_ENCRYPTION_KEYS": "QmVuY2hLZXlCZW5jaEtleUJlbmNoS2V5QmVuY2hLZXk=",
        }
    )


async def seed(url: str, messages: int, days: int) -> tuple[uuid.UUID, float]:
    started = time.perf_counter()
    rng = random.Random(9)
    conn = await asyncpg.connect(url)
    now = datetime.now(UTC)
    workspace = uuid.uuid4()
    users = [uuid.uuid4() for _ in range(10)]
    channels = [uuid.uuid4() for _ in range(4)]
    teams = [uuid.uuid4() for _ in range(3)]
    try:
        await conn.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'bench', $2)", workspace, now
        )
        await conn.copy_records_to_table(
            "users",
            records=[
                (u, f"u{n}-{u.hex[:6]}@bench.example", f"Agent {n}", "x", now)
                for n, u in enumerate(users)
            ],
            columns=["id", "email", "name", "password_hash", "created_at"],
        )
        await conn.copy_records_to_table(
            "memberships",
            records=[
                (uuid.uuid4(), workspace, u, "admin" if n == 0 else "agent", now)
                for n, u in enumerate(users)
            ],
            columns=["id", "workspace_id", "user_id", "role", "created_at"],
        )
        await conn.copy_records_to_table(
            "channels",
            records=[
                (c, workspace, "webchat", f"Channel {n}", "{}", "[]", "{}", "connected", now)
                for n, c in enumerate(channels)
            ],
            columns=[
                "id",
                "workspace_id",
                "kind",
                "name",
                "account_ids",
                "allowed_origins",
                "settings",
                "status",
                "created_at",
            ],
        )
        await conn.copy_records_to_table(
            "teams",
            records=[(t, workspace, f"Team {n}", "round_robin", now) for n, t in enumerate(teams)],
            columns=["id", "workspace_id", "name", "assignment", "created_at"],
        )
        conversations = messages // PER_CONVERSATION
        span = days * 86400
        contacts, convs, events = [], [], []
        batch: list[tuple[object, ...]] = []
        columns = [
            "id",
            "workspace_id",
            "conversation_id",
            "contact_id",
            "channel_id",
            "channel_kind",
            "kind",
            "direction",
            "sender_type",
            "sender_id",
            "text",
            "attachments",
            "reactions",
            "edited",
            "deleted",
            "platform_message_id",
            "private_reply",
            "note",
            "sent_at",
            "status",
            "created_at",
        ]
        for n in range(conversations):
            conversation, contact = uuid.uuid4(), uuid.uuid4()
            channel, team, agent = rng.choice(channels), rng.choice(teams), rng.choice(users[1:])
            opened = now - timedelta(seconds=span * (1 - n / conversations))
            resolved = rng.random() < 0.7
            contacts.append((contact, workspace, now, now))
            convs.append(
                (
                    conversation,
                    workspace,
                    channel,
                    contact,
                    "dm",
                    "resolved" if resolved else "open",
                    agent,
                    team,
                    opened,
                    opened,
                )
            )
            at = opened
            reply_at = None
            for k in range(PER_CONVERSATION):
                inbound = k % 2 == 0
                if not inbound and reply_at is None:
                    reply_at = at
                batch.append(
                    (
                        uuid.uuid4(),
                        workspace,
                        conversation,
                        contact,
                        channel,
                        "webchat",
                        "dm",
                        "in" if inbound else "out",
                        "contact" if inbound else "agent",
                        None if inbound else str(agent),
                        "a message of some length, as they are",
                        "[]",
                        "[]",
                        False,
                        False,
                        f"p{n}-{k}",
                        False,
                        False,
                        at,
                        "received" if inbound else "sent",
                        at,
                    )
                )
                at += timedelta(seconds=rng.randint(20, 900))
            events.append(
                (uuid.uuid4(), workspace, conversation, channel, None, "opened", opened, None)
            )
            if rng.random() < 0.9 and reply_at is not None:
                events.append(
                    (
                        uuid.uuid4(),
                        workspace,
                        conversation,
                        channel,
                        agent,
                        "first_response",
                        reply_at,
                        (reply_at - opened).total_seconds(),
                    )
                )
            if resolved:
                events.append(
                    (
                        uuid.uuid4(),
                        workspace,
                        conversation,
                        channel,
                        agent,
                        "resolved",
                        at,
                        (at - opened).total_seconds(),
                    )
                )
            if len(batch) >= 100_000:
                await _flush(conn, contacts, convs, batch, columns)
                contacts, convs, batch = [], [], []
        await _flush(conn, contacts, convs, batch, columns)
        await conn.copy_records_to_table(
            "report_events",
            records=events,
            columns=[
                "id",
                "workspace_id",
                "conversation_id",
                "channel_id",
                "user_id",
                "name",
                "at",
                "value_s",
            ],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return workspace, time.perf_counter() - started


async def _flush(
    conn: asyncpg.Connection, contacts: list, convs: list, batch: list, columns: list[str]
) -> None:
    if contacts:
        await conn.copy_records_to_table(
            "contacts", records=contacts, columns=["id", "workspace_id", "created_at", "updated_at"]
        )
    if convs:
        await conn.copy_records_to_table(
            "conversations",
            records=convs,
            columns=[
                "id",
                "workspace_id",
                "channel_id",
                "contact_id",
                "kind",
                "status",
                "assignee_id",
                "team_id",
                "last_activity_at",
                "created_at",
            ],
        )
    if batch:
        await conn.copy_records_to_table("messages", records=batch, columns=columns)


async def measure(url: str, workspace: uuid.UUID, days: int, runs: int) -> list[dict[str, object]]:
    engine = make_engine(settings_for(url))
    sessions = sessionmaker(engine)
    today = datetime.now(UTC).date()
    results = []
    try:
        for span in sorted({7, 30, days}):
            period = reports.Period.parse(
                (today - timedelta(days=span - 1)).isoformat(), today.isoformat(), "Europe/Istanbul"
            )
            for by in reports.DIMENSIONS:
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    with tenancy.acting_for(workspace):
                        rows, totals = await reports.report(sessions, workspace, period, by)
                    times.append((time.perf_counter() - started) * 1000)
                results.append(
                    {
                        "days": span,
                        "by": by,
                        "rows": len(rows),
                        "messages": totals.messages_in + totals.messages_out,
                        "median_ms": round(statistics.median(times), 1),
                        "max_ms": round(max(times), 1),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    finally:
        await engine.dispose()
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = parser.parse_args()
    name = "bench_reports_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrate, settings_for(url))
        workspace: uuid.UUID | None = None
        workspace, seconds = await seed(url, args.messages, args.days)
        print(
            f"seeded {args.messages:,} messages over {args.days} days in {seconds:.1f} s",
            flush=True,
        )
        results = await measure(url, workspace, args.days, args.runs)
    finally:
        if args.keep:
            print(f"kept: {url} (workspace {workspace})", flush=True)
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print("\n| period | by | rows | messages counted | median ms | worst ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        cells = (r["days"], r["by"], r["rows"], f"{r['messages']:,}", r["median_ms"], r["max_ms"])
        print("| {} days | {} | {} | {} | {} | {} |".format(*cells))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
