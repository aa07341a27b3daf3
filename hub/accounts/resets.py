"""Password reset by e-mail. Anyone may ask for a reset of any e-mail and always gets the
same answer; only an e-mail with an account gets a letter, with a link
(`{public_url}/reset#<token>`) that works once, until `password_reset_ttl_s` has passed. Only
the token's SHA-256 is stored, in `password_resets`, which is global like `users`: an account
may belong to several workspaces and a reset is asked for before any is known.

Confirming sets the new password through `Store.set_password`, the path a password change
takes, and spends every other outstanding link of the account; the route then ends every
session of the account in every workspace (`UserSessions.end_everywhere`): the old hash alone
would refuse their cookies over REST, but not the socket tokens minted from them nor their
open sockets, and their rows would still be listed. Asking is rate-limited per e-mail and per
address with the sign-in lockout's counters on the bus (`hub.accounts.lockout`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.invitations import new_token, token_digest
from hub.errors import HubError
from hub.storage import audit, tenancy
from hub.storage.models import AuditEvent, Membership, PasswordReset, User
from hub.storage.store import Store, normalize_email
from schemas.codes import CloseCode
from schemas.message import utc_now


class ResetInvalid(HubError):
    status = 410
    close_code = CloseCode.BAD_FRAME
    code = "reset_invalid"
    default_message = (
        "This password-reset link does not work: it was used or it expired. Ask for a new one."
    )


class PasswordResets:
    def __init__(self, store: Store, *, ttl_s: int) -> None:
        self.store = store
        self.ttl = timedelta(seconds=ttl_s)

    async def start(self, email: str) -> tuple[User, str, datetime] | None:
        """For an e-mail with an account: the user, a new link's token and when it expires;
        None for any other e-mail."""
        try:
            email = normalize_email(email)
        except HubError:
            return None
        token, digest = new_token()
        now = utc_now()
        with tenancy.acting_for(None):
            async with self.store.sessions() as s, s.begin():
                user = (await s.exec(select(User).where(User.email == email))).first()
                if user is None:
                    return None
                s.add(
                    PasswordReset(
                        user_id=user.id,
                        token_hash=digest,
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )
        return user, token, now + self.ttl

    async def user_of(self, token: str) -> User:
        """The account a usable token resets (for the password rule's personal words)."""
        with tenancy.acting_for(None):
            async with self.store.sessions() as s:
                row = await self._usable(s, token)
                user = await s.get(User, row.user_id)
        if user is None:
            raise ResetInvalid()
        return user

    async def finish(self, token: str, new_password: str, *, ip: str | None) -> User:
        """Spend the token (and every other of the account), set the password, audit it in
        each workspace of the account. The password was checked against the rule already."""
        now = utc_now()
        with tenancy.acting_for(None):
            async with self.store.sessions() as s, s.begin():
                row = await self._usable(s, token)
                spent = await s.exec(
                    sa.update(PasswordReset)
                    .where(col(PasswordReset.id) == row.id, col(PasswordReset.used_at).is_(None))
                    .values(used_at=now)
                )
                if spent.rowcount != 1:
                    raise ResetInvalid()
                await s.exec(
                    sa.update(PasswordReset)
                    .where(
                        col(PasswordReset.user_id) == row.user_id,
                        col(PasswordReset.used_at).is_(None),
                    )
                    .values(used_at=now)
                )
                user_id = row.user_id
            await self.store.set_password(user_id, new_password)
            async with self.store.sessions() as s, s.begin():
                user = await s.get(User, user_id)
                workspaces = (
                    await s.exec(
                        select(Membership.workspace_id).where(Membership.user_id == user_id)
                    )
                ).all()
                for workspace_id in workspaces:
                    await audit.append(s, _record(workspace_id, user_id, ip))
        if user is None:
            raise ResetInvalid()
        return user

    async def _usable(self, s: AsyncSession, token: str) -> PasswordReset:
        if not token or len(token) > 200:
            raise ResetInvalid()
        row = (
            await s.exec(
                select(PasswordReset).where(PasswordReset.token_hash == token_digest(token))
            )
        ).first()
        if row is None or row.used_at is not None or row.expires_at <= utc_now():
            raise ResetInvalid()
        return row


def _record(workspace_id: uuid.UUID, user_id: uuid.UUID, ip: str | None) -> AuditEvent:
    return audit.record(
        workspace_id,
        "password.reset",
        "user",
        user_id,
        actor_type="user",
        actor_id=user_id,
        ip=ip,
    )
