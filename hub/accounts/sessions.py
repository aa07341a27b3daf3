"""Sign-in sessions kept on the server, so that one can be ended everywhere it is used.

A session is a row of `user_sessions` in the database: who, in which workspace, since when,
last seen when and from where (address, a shortened user agent), and the SHA-256 of a random
secret. The cookie (`hub.accounts.auth.Signer.session_cookie`, still signed) carries the
row's id and the secret itself; every request with the cookie needs the row, with that
secret's hash, and socket tokens name the session they were minted from.

Why the database and not the bus: a session must outlive a Redis that comes back empty (the
bus is a log with TTLs, not a store of record), the embedded default has a database but no
Redis, and listing a user's sessions is a query. One primary-key read per request is the cost;
`last_seen_at` is written at most every `touch_every_s`. It is a workspace table under
row-level security: a session signs in to one workspace, and is only ever read and ended for
it (a password change ends a user's sessions in each of their workspaces).

Ending a session deletes its row (nothing is kept of an ended session but its audit row),
marks its last known copy revoked (`hub.storage.lastknown`, for reconnects during a database
outage) and publishes `session.ended` on the workspace's stream: every web node's fan-out
closes that session's open agent sockets with 4410 (`hub.realtime.fanout`). A member's
removal publishes `member.removed` instead, which closes all their agent sockets in the
workspace, those opened with an API token too. If the bus is away at that moment, the REST
refusal still holds (the row is gone) and one warning is logged; sockets already open then
stay open until they next reconnect.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from hub.accounts.auth import token_hash
from hub.bus import Bus
from hub.errors import outage
from hub.storage import tenancy
from hub.storage.inbox import Sessions
from hub.storage.lastknown import LastKnown
from hub.storage.models import UserSession
from hub.workers.periodic import Periodic
from schemas.events import MemberRemoved, SessionEnded
from schemas.message import utc_now

log = logging.getLogger("hub.sessions")

TOUCH_EVERY_S = 300  # last_seen_at is written at most this often per session
USER_AGENT_CHARS = 200


def shorten(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    text = "".join(c for c in user_agent if c.isprintable())
    return text[: USER_AGENT_CHARS - 1] + "…" if len(text) > USER_AGENT_CHARS else text


class UserSessions:
    def __init__(
        self,
        sessions: Sessions,
        bus: Bus,
        *,
        max_age_s: int,
        last_known: LastKnown | None = None,
        touch_every_s: int = TOUCH_EVERY_S,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.max_age_s = max_age_s
        self.last_known = last_known
        self.touch_every_s = touch_every_s

    async def open(
        self,
        user_id: uuid.UUID,
        workspace_id: uuid.UUID,
        *,
        ip: str | None,
        user_agent: str | None,
    ) -> tuple[UserSession, str]:
        """A new session and its secret (for the cookie; the row keeps only its hash)."""
        secret = secrets.token_urlsafe(32)
        row = UserSession(
            workspace_id=workspace_id,
            user_id=user_id,
            secret_hash=token_hash(secret),
            ip=ip[:64] if ip else None,
            user_agent=shorten(user_agent),
        )
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s, s.begin():
                s.add(row)
        return row, secret

    async def alive(
        self,
        workspace_id: uuid.UUID,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        secret: str | None = None,
    ) -> bool:
        """Whether the session still lives (with this secret, when given: the cookie's; a
        socket token is signed and names the session without it). During a database outage,
        as last read (on any node)."""
        digest = token_hash(secret) if secret is not None else None
        key = f"session:{session_id}"
        try:
            row = await self._row(workspace_id, session_id)
        except Exception as exc:
            if self.last_known is None or not outage(exc):
                raise
            kept = await self.last_known.recall(str(workspace_id), key, "a session")
            if kept is None:
                raise
            kept_user, kept_digest = kept.split("|", 1)
            return kept_user == str(user_id) and (
                digest is None or hmac.compare_digest(kept_digest, digest)
            )
        now = utc_now()
        if row is None or row.created_at < now - timedelta(seconds=self.max_age_s):
            if self.last_known is not None:
                self.last_known.drop(str(workspace_id), key)
            return False
        if row.user_id != user_id or (
            digest is not None and not hmac.compare_digest(row.secret_hash, digest)
        ):
            return False
        if self.last_known is not None:
            await self.last_known.keep(str(workspace_id), key, f"{user_id}|{row.secret_hash}")
        if row.last_seen_at < now - timedelta(seconds=self.touch_every_s):
            await self._touch(workspace_id, session_id)
        return True

    async def listing(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> list[UserSession]:
        """The user's live sessions in the workspace, the most recently seen first."""
        cutoff = utc_now() - timedelta(seconds=self.max_age_s)
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s:
                rows = await s.exec(
                    select(UserSession)
                    .where(
                        UserSession.workspace_id == workspace_id,
                        UserSession.user_id == user_id,
                        col(UserSession.created_at) >= cutoff,
                    )
                    .order_by(col(UserSession.last_seen_at).desc())
                )
                return list(rows.all())

    async def end(self, workspace_id: uuid.UUID, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """End one session of the user in the workspace; False when there is none."""
        ended = await self._delete(
            workspace_id,
            (col(UserSession.user_id) == user_id, col(UserSession.id) == session_id),
        )
        await self._announce(ended)
        return bool(ended)

    async def end_all(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
    ) -> int:
        """End every session of the user in the workspace (but `keep`); how many ended."""
        where = [col(UserSession.user_id) == user_id]
        if keep is not None:
            where.append(col(UserSession.id) != keep)
        ended = await self._delete(workspace_id, where)
        await self._announce(ended)
        return len(ended)

    async def end_everywhere(self, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
        """End every session of the user in every workspace (but `keep`): a new password."""
        where = [col(UserSession.user_id) == user_id]
        if keep is not None:
            where.append(col(UserSession.id) != keep)
        ended = await self._delete(None, where)
        await self._announce(ended)
        return len(ended)

    async def sweep(self) -> int:
        """Delete the sessions older than the cookie's life, in every workspace."""
        cutoff = utc_now() - timedelta(seconds=self.max_age_s)
        ended = await self._delete(None, [col(UserSession.created_at) < cutoff])
        await self._announce(ended)
        return len(ended)

    async def _row(self, workspace_id: uuid.UUID, session_id: uuid.UUID) -> UserSession | None:
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s:
                found = await s.exec(
                    select(UserSession).where(
                        UserSession.id == session_id, UserSession.workspace_id == workspace_id
                    )
                )
                return found.first()

    async def _touch(self, workspace_id: uuid.UUID, session_id: uuid.UUID) -> None:
        try:
            with tenancy.acting_for(workspace_id):
                async with self.sessions() as s, s.begin():
                    await s.exec(
                        sa.update(UserSession)
                        .where(
                            col(UserSession.id) == session_id,
                            col(UserSession.workspace_id) == workspace_id,
                        )
                        .values(last_seen_at=utc_now())
                    )
        except Exception as exc:
            if not outage(exc):
                raise
            log.warning("could not note a session as seen: %s", type(exc).__name__)

    async def _delete(
        self, workspace_id: uuid.UUID | None, where: Iterable[sa.ColumnElement[bool]]
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        """Delete the matching rows (of one workspace, or of any when None: run without a
        workspace, past row-level security); (workspace, user, session) of each."""
        conditions = list(where)
        if workspace_id is not None:
            conditions.append(col(UserSession.workspace_id) == workspace_id)
        statement = (
            sa.delete(UserSession)
            .where(*conditions)
            .returning(col(UserSession.workspace_id), col(UserSession.user_id), col(UserSession.id))
        )
        with tenancy.acting_for(workspace_id):
            async with self.sessions() as s, s.begin():
                result = await s.exec(statement)
                return [(w, u, i) for w, u, i in result.all()]

    async def member_removed(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, session_ids: list[uuid.UUID]
    ) -> None:
        """After a member's removal committed (`hub.accounts.members.Members.remove`, which
        deleted their sessions here): their sessions' last known copies are revoked, and
        `member.removed` closes every agent socket of theirs in the workspace on every node,
        those opened with an API token (which have no session) too."""
        for session_id in session_ids:
            await self._revoke(workspace_id, session_id)
        await self._publish(workspace_id, MemberRemoved(user_id=user_id))

    async def _announce(self, ended: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]) -> None:
        grouped: dict[tuple[uuid.UUID, uuid.UUID], list[uuid.UUID]] = defaultdict(list)
        for workspace_id, user_id, session_id in ended:
            grouped[(workspace_id, user_id)].append(session_id)
            await self._revoke(workspace_id, session_id)
        for (workspace_id, user_id), ids in grouped.items():
            await self._publish(workspace_id, SessionEnded(user_id=user_id, session_ids=ids))

    async def _revoke(self, workspace_id: uuid.UUID, session_id: uuid.UUID) -> None:
        if self.last_known is not None:
            await self.last_known.revoke(str(workspace_id), f"session:{session_id}")

    async def _publish(self, workspace_id: uuid.UUID, data: SessionEnded | MemberRemoved) -> None:
        try:
            await self.bus.publish(str(workspace_id), data.NAME, data.dump())
        except Exception as exc:
            log.warning(
                "could not announce ended sessions (their open sockets stay until they "
                "reconnect): %s",
                type(exc).__name__,
                exc_info=not outage(exc),
            )


class SessionSweep(Periodic):
    """Deletes expired sessions, so that a browser never used again leaves nothing behind."""

    name = "session-sweep"

    def __init__(self, user_sessions: UserSessions, *, every_s: float) -> None:
        super().__init__(every_s=every_s)
        self.user_sessions = user_sessions

    async def round(self) -> None:
        swept = await self.user_sessions.sweep()
        if swept:
            log.info("deleted %d expired sessions", swept)
