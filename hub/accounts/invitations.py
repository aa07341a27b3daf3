"""Invitations: how a person becomes a member. An admin invites an e-mail; the person follows
the e-mailed link (`{public_url}/invite#<token>`) and accepts, choosing a name and password if
the e-mail has no account yet, or proving that it is theirs with its password if it has. Nobody
is made a member without accepting, and the admin's answer is the same whether or not the
e-mail has an account.

A link's token is 32 random bytes; only its SHA-256 is stored. It works once, until
`expires_at`, and not after a revocation or a newer invitation of the same e-mail. Accepting
marks the row with a conditional UPDATE in the same transaction that adds the membership, so
two acceptances at once cannot both succeed. Every answer about a link that does not work is
the same `invitation_invalid`, whatever the reason.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.auth import hash_password
from hub.accounts.members import Actor, by_member
from hub.errors import Conflict, HubError, NotFound
from hub.storage import audit, tenancy
from hub.storage.models import Invitation, Membership, User, Workspace
from hub.storage.store import Sessions, normalize_email
from schemas.codes import CloseCode
from schemas.message import utc_now


class InvitationInvalid(HubError):
    status = 410
    close_code = CloseCode.BAD_FRAME
    code = "invitation_invalid"
    default_message = (
        "This invitation link does not work: it was used, revoked or replaced, or it expired. "
        "Ask an admin of the workspace for a new one."
    )


def new_token() -> tuple[str, str]:
    """A link's token and the hash stored for it."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Sent:
    """An invitation just made or renewed, with what its letter needs."""

    invitation: Invitation
    token: str
    workspace_name: str
    inviter_name: str


@dataclass(frozen=True, slots=True)
class Opened:
    """What the invite page shows: whose invitation, to where, and which form to offer."""

    invitation: Invitation
    workspace_name: str
    has_account: bool


class Invitations:
    def __init__(self, sessions: Sessions, *, ttl_s: int) -> None:
        self.sessions = sessions
        self.ttl = timedelta(seconds=ttl_s)

    async def invite(self, workspace_id: uuid.UUID, actor: Actor, *, email: str, role: str) -> Sent:
        """A new invitation; an earlier pending one of the same e-mail stops working. 409 when
        the e-mail is already a member of this workspace (the admin sees the roster anyway)."""
        email = normalize_email(email)
        token, digest = new_token()
        now = utc_now()
        async with self.sessions() as s, s.begin():
            member = await s.exec(
                select(Membership.id)
                .join(User, col(User.id) == Membership.user_id)
                .where(Membership.workspace_id == workspace_id, User.email == email)
            )
            if member.first() is not None:
                raise Conflict("That e-mail is already a member of this workspace.")
            await self._replace_pending(s, workspace_id, email, now)
            row = Invitation(
                workspace_id=workspace_id,
                email=email,
                role=role,
                invited_by=actor.user_id,
                token_hash=digest,
                created_at=now,
                expires_at=now + self.ttl,
            )
            s.add(row)
            await s.flush()
            detail = {"role": role}
            await audit.append(
                s, by_member(workspace_id, actor, "invitation.sent", row.id, detail, "invitation")
            )
            names = await self._names(s, workspace_id, actor.user_id)
        return Sent(row, token, *names)

    async def pending(self, workspace_id: uuid.UUID) -> list[Invitation]:
        """Neither accepted nor revoked (an expired one too, for the admin to renew)."""
        async with self.sessions() as s:
            rows = await s.exec(
                select(Invitation)
                .where(
                    Invitation.workspace_id == workspace_id,
                    col(Invitation.accepted_at).is_(None),
                    col(Invitation.revoked_at).is_(None),
                )
                .order_by(col(Invitation.created_at).desc())
            )
            return list(rows.all())

    async def resend(self, workspace_id: uuid.UUID, actor: Actor, invitation_id: uuid.UUID) -> Sent:
        """A new link (the old one stops working) and a new expiry, in a new letter."""
        token, digest = new_token()
        now = utc_now()
        async with self.sessions() as s, s.begin():
            row = await self._pending_row(s, workspace_id, invitation_id)
            row.token_hash = digest
            row.expires_at = now + self.ttl
            s.add(row)
            await audit.append(
                s, by_member(workspace_id, actor, "invitation.resent", row.id, {}, "invitation")
            )
            names = await self._names(s, workspace_id, actor.user_id)
        return Sent(row, token, *names)

    async def revoke(
        self, workspace_id: uuid.UUID, actor: Actor, invitation_id: uuid.UUID
    ) -> Invitation:
        async with self.sessions() as s, s.begin():
            row = await self._pending_row(s, workspace_id, invitation_id)
            row.revoked_at = utc_now()
            s.add(row)
            await audit.append(
                s, by_member(workspace_id, actor, "invitation.revoked", row.id, {}, "invitation")
            )
        return row

    # The person who got the letter (no session: found by the token, in the connecting role)

    async def open(self, token: str) -> Opened:
        with tenancy.acting_for(None):
            async with self.sessions() as s:
                row = await self._usable(s, token)
                workspace = await s.get(Workspace, row.workspace_id)
                user = (await s.exec(select(User.id).where(User.email == row.email))).first()
        return Opened(row, workspace.name if workspace else "", user is not None)

    async def accept_new(
        self, token: str, *, name: str, password: str, ip: str | None
    ) -> tuple[User, Invitation]:
        """A person without an account: their user, made with the chosen name and password,
        and the membership. The password was checked against the policy by the caller."""
        try:
            with tenancy.acting_for(None):
                async with self.sessions() as s, s.begin():
                    row = await self._usable(s, token)
                    known = (await s.exec(select(User).where(User.email == row.email))).first()
                    if known is not None:  # made since the page was opened: prove it instead
                        raise Conflict("That e-mail has an account now; sign in with it.")
                    user = User(email=row.email, name=name, password_hash=hash_password(password))
                    s.add(user)
                    await s.flush()
                    await self._join(s, row, user, ip)
        except IntegrityError:  # the same e-mail signed up twice at once: one of them wins
            raise InvitationInvalid() from None
        return user, row

    async def accept_existing(self, token: str, user: User, *, ip: str | None) -> Invitation:
        """An account whose password the caller has checked: the membership."""
        with tenancy.acting_for(None):
            async with self.sessions() as s, s.begin():
                row = await self._usable(s, token)
                if row.email != user.email:
                    raise InvitationInvalid()
                await self._join(s, row, user, ip)
        return row

    async def invitee(self, token: str) -> tuple[Invitation, User | None]:
        """The usable invitation and the account of its e-mail, if any."""
        with tenancy.acting_for(None):
            async with self.sessions() as s:
                row = await self._usable(s, token)
                user = (await s.exec(select(User).where(User.email == row.email))).first()
        return row, user

    async def _join(self, s: AsyncSession, row: Invitation, user: User, ip: str | None) -> None:
        now = utc_now()
        taken = await s.exec(
            sa.update(Invitation)
            .where(
                col(Invitation.id) == row.id,
                col(Invitation.accepted_at).is_(None),
                col(Invitation.revoked_at).is_(None),
                col(Invitation.token_hash) == row.token_hash,
            )
            .values(accepted_at=now)
        )
        if taken.rowcount != 1:
            raise InvitationInvalid()
        joined = await s.exec(
            select(Membership.id).where(
                Membership.workspace_id == row.workspace_id, Membership.user_id == user.id
            )
        )
        if joined.first() is None:
            s.add(Membership(workspace_id=row.workspace_id, user_id=user.id, role=row.role))
        await audit.append(
            s,
            audit.record(
                row.workspace_id,
                "invitation.accepted",
                "invitation",
                row.id,
                actor_type="user",
                actor_id=user.id,
                ip=ip,
                detail={"role": row.role},
            ),
        )
        await audit.append(
            s,
            audit.record(
                row.workspace_id,
                "member.added",
                "user",
                user.id,
                actor_type="user",
                actor_id=user.id,
                ip=ip,
                detail={"role": row.role, "invitation": str(row.id)},
            ),
        )

    async def _usable(self, s: AsyncSession, token: str) -> Invitation:
        if not token or len(token) > 200:
            raise InvitationInvalid()
        row = (
            await s.exec(select(Invitation).where(Invitation.token_hash == token_digest(token)))
        ).first()
        if (
            row is None
            or row.accepted_at is not None
            or row.revoked_at is not None
            or row.expires_at <= utc_now()
        ):
            raise InvitationInvalid()
        return row

    async def _pending_row(
        self, s: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID
    ) -> Invitation:
        row = await s.get(Invitation, invitation_id)
        if (
            row is None
            or row.workspace_id != workspace_id
            or row.accepted_at is not None
            or row.revoked_at is not None
        ):
            raise NotFound("No such pending invitation.")
        return row

    async def _replace_pending(
        self, s: AsyncSession, workspace_id: uuid.UUID, email: str, now: datetime
    ) -> None:
        await s.exec(
            sa.update(Invitation)
            .where(
                col(Invitation.workspace_id) == workspace_id,
                col(Invitation.email) == email,
                col(Invitation.accepted_at).is_(None),
                col(Invitation.revoked_at).is_(None),
            )
            .values(revoked_at=now)
        )

    async def _names(
        self, s: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[str, str]:
        workspace = await s.get(Workspace, workspace_id)
        inviter = await s.get(User, user_id)
        return (workspace.name if workspace else "", inviter.name if inviter else "")
