"""Deletion requests: one person's erasure, filed by Meta's data-deletion callback or by an
admin, carried out by `hub.privacy.erasure` and resumable after a crash.

A request goes received -> in_progress -> done (something was erased) or no_data (the hub
held nothing). Whoever runs it first claims a lease on it (`updated_at`, renewed after every
step); the worker's `Sweeper` picks up requests nobody runs: new ones, and those whose lease
ran out because their runner died. Every save is fenced on the runner's own lease, so two
runners never both write.

The row keeps no personal data: the subject is a keyed hash (HMAC-SHA256 under
HUB_SECRET_KEY of "<source>:<key>", so it cannot be reversed by trying ids), and `progress`
holds counts. While it runs, `progress.pending` also lists what is left: workspace and
contact ids of our own rows and stream ids, dropped when the request ends.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from hub.contacts.merge import one_person
from hub.privacy.erasure import COUNTS, Counts, Erasure, Target
from hub.storage.models import DeletionRequest
from hub.storage.store import Store, decode_cursor, encode_cursor
from hub.workers.periodic import Periodic
from schemas.message import utc_now

log = logging.getLogger("hub.deletions")

_TABLE: sa.Table = DeletionRequest.__table__  # type: ignore[attr-defined]
OPEN = ("received", "in_progress")


def subject_hash(secret_key: str, source: str, key: str) -> str:
    message = f"{source}:{key}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def counts_of(row: DeletionRequest) -> Counts:
    return {name: int(row.progress.get(name, 0)) for name in COUNTS}


class Deletions:
    def __init__(self, store: Store, erasure: Erasure, *, secret_key: str, lease_s: float) -> None:
        self.store = store
        self.erasure = erasure
        self.secret_key = secret_key
        self.lease_s = lease_s

    # Filing and reading

    async def file(
        self,
        source: str,
        subject: str,
        targets: list[Target],
        *,
        workspace_id: uuid.UUID | None,
        actor: tuple[str, str | None],
        ip: str | None = None,
    ) -> DeletionRequest:
        """Record a request (received) for `subject`, a key of the source ("meta:<app-scoped
        id>", a contact id...) that is only ever kept hashed."""
        targets = await self._whole_people(targets)
        progress: dict[str, Any] = dict.fromkeys(COUNTS, 0)
        progress["pending"] = [t.as_json() for t in targets]
        row = DeletionRequest(
            confirmation_code=secrets.token_hex(16),
            workspace_id=workspace_id,
            source=source,
            status="received",
            subject_hash=subject_hash(self.secret_key, source, subject),
            progress=progress,
        )
        async with self.store.sessions() as s, s.begin():
            s.add(row)
        actor_type, actor_id = actor
        await self.store.audit(
            workspace_id,
            actor_type,
            actor_id,
            "deletion.requested",
            "deletion",
            str(row.id),
            ip=ip,
            detail={"source": source},
        )
        return row

    async def _whole_people(self, targets: list[Target]) -> list[Target]:
        """Each contact with those merged with it (`hub.contacts.merge.one_person`): one
        person, erased whole."""
        whole = list(targets)
        for target in targets:
            if target.channel_id is not None:
                continue
            workspace_id = uuid.UUID(target.workspace_id)
            others = await one_person(
                self.store.sessions, workspace_id, uuid.UUID(target.contact_id)
            )
            for other in others:
                extra = Target(target.workspace_id, str(other))
                if extra not in whole:
                    whole.append(extra)
        return whole

    async def by_code(self, code: str) -> DeletionRequest | None:
        async with self.store.sessions() as s:
            query = select(DeletionRequest).where(DeletionRequest.confirmation_code == code)
            return (await s.exec(query)).first()

    async def get(self, workspace_id: uuid.UUID, request_id: uuid.UUID) -> DeletionRequest | None:
        async with self.store.sessions() as s:
            row = await s.get(DeletionRequest, request_id)
        return row if row is not None and row.workspace_id == workspace_id else None

    async def page(
        self, workspace_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[DeletionRequest], str | None]:
        """The workspace's requests, newest first."""
        query = select(DeletionRequest).where(DeletionRequest.workspace_id == workspace_id)
        if cursor is not None:
            at, row_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    col(DeletionRequest.created_at) < at,
                    sa.and_(
                        col(DeletionRequest.created_at) == at, col(DeletionRequest.id) < row_id
                    ),
                )
            )
        query = query.order_by(
            col(DeletionRequest.created_at).desc(), col(DeletionRequest.id).desc()
        ).limit(limit + 1)
        async with self.store.sessions() as s:
            rows = list((await s.exec(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None

    async def due(self, now: datetime) -> list[uuid.UUID]:
        """Requests nobody runs: received, or in progress with a lapsed lease."""
        lapsed = now - timedelta(seconds=self.lease_s)
        query = select(DeletionRequest.id).where(
            sa.or_(
                col(DeletionRequest.status) == "received",
                sa.and_(
                    col(DeletionRequest.status) == "in_progress",
                    col(DeletionRequest.updated_at) < lapsed,
                ),
            )
        )
        async with self.store.sessions() as s:
            return list((await s.exec(query.order_by(col(DeletionRequest.created_at)))).all())

    # Running

    async def run(self, request_id: uuid.UUID, *, limit: int | None = None) -> str | None:
        """Claim the request and carry out its steps (at most `limit` of them: what a crash
        midway leaves behind); answers its status then, or None when another runner holds
        it or took it over."""
        claimed = await self._claim(request_id)
        if claimed is None:
            return None
        row, lease = claimed
        pending = [Target.from_json(t) for t in row.progress.get("pending", [])]
        counts = counts_of(row)
        steps = 0
        while pending:
            if limit is not None and steps >= limit:
                return "in_progress"
            target = pending[0]
            await self.erasure.step(target, counts)
            steps += 1
            if target.done:
                pending.pop(0)
            progress: dict[str, Any] = {**counts, "pending": [t.as_json() for t in pending]}
            renewed = await self._save(request_id, lease, progress=progress)
            if renewed is None:
                return None
            lease = renewed
        status = "done" if any(counts.values()) else "no_data"
        now = utc_now()
        if await self._save(request_id, lease, progress=dict(counts), status=status, at=now):
            await self.store.audit(
                row.workspace_id,
                "system",
                None,
                "deletion.completed",
                "deletion",
                str(request_id),
                detail={"status": status},
            )
            return status
        return None

    async def _claim(self, request_id: uuid.UUID) -> tuple[DeletionRequest, datetime] | None:
        now = utc_now()
        lapsed = now - timedelta(seconds=self.lease_s)
        statement = (
            sa.update(_TABLE)
            .where(
                _TABLE.c.id == request_id,
                sa.or_(
                    _TABLE.c.status == "received",
                    sa.and_(_TABLE.c.status == "in_progress", _TABLE.c.updated_at < lapsed),
                ),
            )
            .values(status="in_progress", updated_at=now)
        )
        async with self.store.sessions() as s, s.begin():
            conn = await s.connection()
            if (await conn.execute(statement)).rowcount != 1:
                return None
        async with self.store.sessions() as s:
            row = await s.get(DeletionRequest, request_id)
        return (row, now) if row is not None else None

    async def _save(
        self,
        request_id: uuid.UUID,
        lease: datetime,
        *,
        progress: dict[str, Any],
        status: str | None = None,
        at: datetime | None = None,
    ) -> datetime | None:
        """Write progress under our lease; answers the renewed lease, or None if it was lost."""
        now = at or utc_now()
        values: dict[str, Any] = {"progress": progress, "updated_at": now}
        if status is not None:
            values.update(status=status, completed_at=now)
        statement = (
            sa.update(_TABLE)
            .where(
                _TABLE.c.id == request_id,
                _TABLE.c.status == "in_progress",
                _TABLE.c.updated_at == lease,
            )
            .values(**values)
        )
        async with self.store.sessions() as s, s.begin():
            conn = await s.connection()
            if (await conn.execute(statement)).rowcount != 1:
                log.warning("deletion request %s was taken over; stopping here", request_id)
                return None
        return now


class Sweeper(Periodic):
    """The worker task that runs the requests nobody runs (`Deletions.due`)."""

    name = "deletion-sweep"

    def __init__(self, deletions: Deletions, *, every_s: float) -> None:
        super().__init__(every_s=every_s)
        self.deletions = deletions

    async def round(self) -> None:
        await self.sweep()

    async def sweep(self) -> int:
        """Run every due request; answers how many this sweep finished."""
        finished = 0
        for request_id in await self.deletions.due(utc_now()):
            if await self.deletions.run(request_id) in ("done", "no_data"):
                finished += 1
        return finished
