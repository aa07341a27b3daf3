"""The audit log: append-only, and each row chained to the one before it by a hash.

    hash = sha256(prev_hash || canonical JSON of the row's content)

where the content is (id, workspace_id, at, ip, actor_type, actor_id, action, target_type,
target_id, detail), `prev_hash` is the hash of the row before it by id (one chain over the
whole table) and the first row's is `GENESIS`. `verify` walks the chain and names the first
row that was altered, or that no longer follows its predecessor (a row removed, inserted or
moved). Rows written before the chain existed (migration 0006) carry no hash; they may only
precede it, and are counted apart.

`append` is the one way a row is written, inside the caller's transaction. Appends are
serialized, so the chain never forks: on Postgres by a transaction-scoped advisory lock,
on SQLite by the database's single write lock, taken before the head of the chain is read.
Either is held until the caller commits, so `append` goes last in a transaction. The ORM
refuses any other insert of an audit row, and every update or delete of one; on Postgres a
trigger (migration 0006) refuses them for every client.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.errors import HubError
from hub.storage.models import AuditEvent

GENESIS = "0" * 64
CHAIN_LOCK = 0x6875622E61756474  # pg_advisory_xact_lock key: b"hub.audt"
VERIFY_BATCH_ROWS = 1000

_table: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]
# An insert of no rows: it takes SQLite's write lock (and begins the transaction) and
# changes nothing.
_SQLITE_WRITE_LOCK = sa.insert(_table).from_select(["id"], sa.select(_table.c.id).where(sa.false()))


class AppendOnly(HubError):
    code = "audit_append_only"
    default_message = "Audit rows are only ever appended, through hub.storage.audit.append."


def record(
    workspace_id: uuid.UUID | None,
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    *,
    actor_type: str = "system",
    actor_id: object = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit row, for `append`: ids as text, and ids, roles and settings only in `detail`
    (never message text or a person's details, so the log holds no personal data of its
    own). `actor_type` is user, system or platform."""
    return AuditEvent(
        workspace_id=workspace_id,
        actor_type=actor_type,
        actor_id=None if actor_id is None else str(actor_id),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=ip,
        detail=detail or {},
    )


def content(row: AuditEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "workspace_id": str(row.workspace_id) if row.workspace_id is not None else None,
        "at": row.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "ip": row.ip,
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "detail": row.detail,
    }


def digest(prev_hash: str, row: AuditEvent) -> str:
    canonical = json.dumps(content(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


async def append(session: AsyncSession, row: AuditEvent) -> AuditEvent:
    """Chain `row` onto the log in the session's transaction (the caller commits). Call it
    last: the chain stays locked until the transaction ends."""
    await session.flush()  # the caller's own writes (and their row locks) before the chain's
    conn = await session.connection()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK)))
    else:
        await conn.execute(_SQLITE_WRITE_LOCK)
    last = await _head(conn, postgres)
    if postgres:  # the sequence stays the source of ids; taken under the lock, they grow
        row.id = int((await conn.execute(_next_id())).scalar_one())
    else:
        row.id = (last[0] if last is not None else 0) + 1
    row.at = row.at.astimezone(UTC)
    row.detail = json.loads(json.dumps(row.detail))  # hashed exactly as it is stored
    row.prev_hash = (last[1] if last is not None else None) or GENESIS
    row.hash = digest(row.prev_hash, row)
    session.add(row)
    await session.flush()
    return row


async def _head(conn: AsyncConnection, postgres: bool) -> tuple[int, str | None] | None:
    if postgres:  # past row-level security: the chain runs through every workspace's rows
        query: Any = sa.text("SELECT id, hash FROM audit_chain_head()")
    else:
        query = sa.select(_table.c.id, _table.c.hash).order_by(_table.c.id.desc()).limit(1)
    found = (await conn.execute(query)).first()
    return (int(found.id), found.hash) if found is not None else None


def _next_id() -> sa.Select[Any]:
    sequence = sa.func.pg_get_serial_sequence(_table.name, "id")
    return sa.select(sa.func.nextval(sequence))


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    unchained: int = 0  # rows from before the chain existed
    broken_at: int | None = None  # the id of the first row that fails
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def line(self) -> str:
        if not self.ok:
            return f"audit log broken at row {self.broken_at}: {self.reason}"
        before = f" ({self.unchained} from before the chain, unverified)" if self.unchained else ""
        return f"ok, {self.rows} rows{before}"


async def verify(sessions: async_sessionmaker[AsyncSession]) -> Verdict:
    """Walk the chain in id order; the first row that fails ends the walk."""
    rows = unchained = 0
    expected, previous = GENESIS, None
    async for row in _rows(sessions):
        rows += 1
        if row.hash is None and row.prev_hash is None and previous is None:
            unchained += 1
            continue
        if row.hash is None or row.prev_hash is None:
            return Verdict(rows, unchained, row.id, "its hash was removed")
        if digest(row.prev_hash, row) != row.hash:
            return Verdict(rows, unchained, row.id, "its content does not match its hash")
        if row.prev_hash != expected:
            after = f"row {previous}" if previous is not None else "the start of the chain"
            reason = (
                f"it does not follow {after}: a row between them was removed, "
                "or rows were inserted or reordered"
            )
            return Verdict(rows, unchained, row.id, reason)
        expected, previous = row.hash, row.id
    return Verdict(rows, unchained)


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        query = (
            select(AuditEvent)
            .where(col(AuditEvent.id) > after)
            .order_by(col(AuditEvent.id))
            .limit(VERIFY_BATCH_ROWS)
        )
        async with sessions() as s:
            batch = list((await s.exec(query)).all())
        for row in batch:
            yield row
        if len(batch) < VERIFY_BATCH_ROWS:
            return
        after = batch[-1].id or 0


@event.listens_for(AuditEvent, "before_insert")
def _only_chained(mapper: object, connection: object, target: AuditEvent) -> None:
    if target.hash is None:
        raise AppendOnly()


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _never_changed(mapper: object, connection: object, target: AuditEvent) -> None:
    raise AppendOnly()
