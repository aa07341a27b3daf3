"""Workspace members (change role, remove, erase their account) and the audit log as admins
read it; `hub.accounts.invitations` adds members.

Every change writes its audit row in the same transaction as the change. A workspace always
keeps at least one admin: demoting or removing the last one is a conflict. On Postgres the
admin rows are locked (`FOR UPDATE`) while that is checked, so two admins demoting each other
at once cannot both succeed; SQLite runs one write transaction at a time anyway.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.errors import BadRequest, Conflict, NotFound
from hub.storage import audit, tenancy
from hub.storage.models import (
    ApiToken,
    AuditEvent,
    CannedResponse,
    ConversationRead,
    Invitation,
    Membership,
    Mention,
    NotificationPrefs,
    PushSubscription,
    TeamMember,
    User,
    UserSession,
)
from hub.storage.store import Sessions


class LastAdmin(Conflict):
    code = "last_admin"
    default_message = "A workspace needs at least one admin; make someone else admin first."


@dataclass(frozen=True, slots=True)
class Member:
    user: User
    membership: Membership


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, and from where (for the audit row)."""

    user_id: uuid.UUID
    ip: str | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None  # a prefix: "member." or "login"
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class Members:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def roster(self, workspace_id: uuid.UUID) -> list[Member]:
        async with self.sessions() as s:
            rows = await s.exec(
                select(User, Membership)
                .join(Membership, col(Membership.user_id) == User.id)
                .where(Membership.workspace_id == workspace_id)
                .order_by(col(Membership.created_at), col(User.email))
            )
            return [Member(user, membership) for user, membership in rows.all()]

    async def change_role(
        self, workspace_id: uuid.UUID, actor: Actor, user_id: uuid.UUID, role: str
    ) -> Member:
        async with self.sessions() as s, s.begin():
            user, membership = await _member(s, workspace_id, user_id)
            if membership.role != role:
                if membership.role == "admin":
                    await _keep_an_admin(s, workspace_id)
                detail = {"from": membership.role, "to": role}
                membership.role = role
                s.add(membership)
                await audit.append(
                    s, by_member(workspace_id, actor, "member.role_changed", user_id, detail)
                )
        return Member(user, membership)

    async def set_capacity(
        self, workspace_id: uuid.UUID, actor: Actor, user_id: uuid.UUID, capacity: int | None
    ) -> Member:
        """How many open conversations routing gives the member at most (None: no limit)."""
        async with self.sessions() as s, s.begin():
            user, membership = await _member(s, workspace_id, user_id)
            if membership.capacity != capacity:
                detail = {"from": membership.capacity, "to": capacity}
                membership.capacity = capacity
                s.add(membership)
                await audit.append(
                    s, by_member(workspace_id, actor, "member.capacity_changed", user_id, detail)
                )
        return Member(user, membership)

    async def remove(
        self, workspace_id: uuid.UUID, actor: Actor, user_id: uuid.UUID, *, erase: bool = False
    ) -> list[uuid.UUID]:
        """End the membership and the member's sessions here, in one transaction; the ids of
        the sessions that ended, for the caller to announce once it has committed
        (`UserSessions.member_removed`: their open sockets close, those opened with an API
        token too). Their API tokens stop working here at once (each request looks the
        membership up). Without `erase` the user row stays, so the audit log keeps their name
        and a user of other workspaces keeps those.

        The sessions are deleted here, not after: with `erase` the account's row may go, and
        its sessions with it (ON DELETE CASCADE), and nothing would be left to announce; a
        refusal (409 `last_admin`) rolls their deletion back with the rest.

        With `erase`, their traces in this workspace go too (API tokens, personal saved
        replies, read marks), and an account that belongs to no other workspace is deleted:
        name, e-mail, password hash, every token and reset link. Messages keep the user's id
        as their sender, which no longer names anyone: the screens show "a former member".
        Whether the account went is not said (the answer, the audit row) since that would
        tell this workspace about the person's others. Run in the connecting role: only
        there can the other workspaces' memberships be counted."""
        with tenancy.acting_for(None):
            async with self.sessions() as s, s.begin():
                user, membership = await _member(s, workspace_id, user_id)
                if membership.role == "admin":
                    await _keep_an_admin(s, workspace_id)
                await s.delete(membership)
                ended = await s.exec(
                    sa.delete(UserSession)
                    .where(
                        col(UserSession.workspace_id) == workspace_id,
                        col(UserSession.user_id) == user_id,
                    )
                    .returning(col(UserSession.id))
                )
                session_ids = list(ended.scalars().all())
                # Push subscriptions and notification preferences go in any case: a former
                # member is told of nothing here any more.
                always = (TeamMember, PushSubscription, NotificationPrefs)
                here = (*always, ApiToken, CannedResponse, ConversationRead, Mention)
                for table in here if erase else always:
                    await s.exec(
                        sa.delete(table).where(
                            col(table.workspace_id) == workspace_id,
                            col(table.user_id) == user_id,
                        )
                    )
                if erase:
                    await _forget_invitations(s, workspace_id, user.email)
                    await s.flush()
                    if await _membership_anywhere(s, user_id) is None:
                        await s.exec(sa.delete(User).where(col(User.id) == user_id))
                detail = {"erase_account": True} if erase else {}
                await audit.append(
                    s, by_member(workspace_id, actor, "member.removed", user_id, detail)
                )
        return session_ids

    async def audit_page(
        self, workspace_id: uuid.UUID, where: AuditFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[tuple[AuditEvent, str | None]], str | None]:
        """Newest first, each row with its actor's name (when the actor is a user). The
        cursor is the id of the last row of the previous page: ids grow with every append."""
        query = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
        if where.action:
            pattern = where.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(col(AuditEvent.action).like(pattern + "%", escape="\\"))
        if where.actor_id:
            query = query.where(AuditEvent.actor_id == where.actor_id)
        if where.since:
            query = query.where(col(AuditEvent.at) >= where.since)
        if where.until:
            query = query.where(col(AuditEvent.at) < where.until)
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 18:
                raise BadRequest("The cursor is not valid.")
            query = query.where(col(AuditEvent.id) < int(cursor))
        query = query.order_by(col(AuditEvent.id).desc()).limit(limit + 1)
        async with self.sessions() as s:
            rows = list((await s.exec(query)).all())
            more = len(rows) > limit
            rows = rows[:limit]
            names = await _names(s, rows)
        next_cursor = str(rows[-1].id) if more and rows[-1].id is not None else None
        return [(row, names.get(row.actor_id or "")) for row in rows], next_cursor


async def _membership(
    s: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    found = await s.exec(
        select(Membership).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user_id
        )
    )
    return found.first()


async def _membership_anywhere(s: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    found = await s.exec(select(Membership.id).where(Membership.user_id == user_id))
    return found.first()


async def _member(
    s: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[User, Membership]:
    membership = await _membership(s, workspace_id, user_id)
    user = await s.get(User, user_id) if membership is not None else None
    if membership is None or user is None:
        raise NotFound("No such member.")
    return user, membership


async def _forget_invitations(s: AsyncSession, workspace_id: uuid.UUID, email: str) -> None:
    """An erased member's invitations to this workspace, the accepted one and any other, hold
    their e-mail: they go. Found by the e-mail (a row does not record who accepted it), kept
    trimmed and lowercase; other workspaces' rows are theirs to keep."""
    await s.exec(
        sa.delete(Invitation).where(
            col(Invitation.workspace_id) == workspace_id,
            col(Invitation.email) == email.strip().lower(),
        )
    )


async def _keep_an_admin(s: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Called before an admin stops being one: refuse if they are the last."""
    admins = await s.exec(
        select(Membership.id)
        .where(Membership.workspace_id == workspace_id, Membership.role == "admin")
        .with_for_update()
    )
    if len(admins.all()) <= 1:
        raise LastAdmin()


async def _names(s: AsyncSession, rows: list[AuditEvent]) -> dict[str, str]:
    ids = set()
    for row in rows:
        if row.actor_type == "user" and row.actor_id:
            try:
                ids.add(uuid.UUID(row.actor_id))
            except ValueError:
                continue
    if not ids:
        return {}
    users = await s.exec(select(User.id, User.name).where(col(User.id).in_(ids)))
    return {str(user_id): name for user_id, name in users.all()}


def by_member(
    workspace_id: uuid.UUID,
    actor: Actor,
    action: str,
    target_id: uuid.UUID,
    detail: dict[str, Any],
    target_type: str = "user",
) -> AuditEvent:
    """An audit row of a member's change (no e-mail or name: ids, roles and settings)."""
    return audit.record(
        workspace_id,
        action,
        target_type,
        target_id,
        actor_type="user",
        actor_id=actor.user_id,
        ip=actor.ip,
        detail=detail,
    )
