"""Database reads and writes. Every query on workspace-owned rows is scoped by workspace id."""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Any

from sqlmodel import col, select

from hub.accounts import auth
from hub.accounts.auth import Principal, hash_password, new_api_token, token_hash
from hub.errors import BadRequest, Conflict, NotFound, outage
from hub.storage import audit, tenancy
from hub.storage.cache import Cached
from hub.storage.inbox import InboxStore, Sessions, decode_cursor, encode_cursor
from hub.storage.lastknown import LastKnown
from hub.storage.models import ApiToken, Membership, User, Workspace
from schemas.message import utc_now

# How long a node trusts what it read of an API token. An integration calls the API many times
# a second with one token, and each lookup is a database round trip; a revoked token or a
# removed member stops working at once on the node that made the change and within this time on
# the others.
API_TOKEN_CACHE_S = 2.0
# The bus tag of the API tokens' last known members: a token names no workspace.
TOKENS = "api-tokens"


class Store(InboxStore):
    """Workspaces, users, memberships, API tokens and the audit log; with the inbox's reads
    (`InboxStore`). With `last_known`, who a member or an API token is stays answerable
    during a database outage (`hub.storage.lastknown`)."""

    def __init__(self, sessions: Sessions, *, last_known: LastKnown | None = None) -> None:
        super().__init__(sessions)
        self.last_known = last_known
        self._token_principals: Cached[str, Principal | None] = Cached(API_TOKEN_CACHE_S)

    # Workspaces, users, memberships

    async def create_workspace_with_admin(
        self, workspace_name: str, email: str, password: str, user_name: str | None = None
    ) -> tuple[Workspace, User]:
        email = normalize_email(email)
        async with self.sessions() as s, s.begin():
            existing = (await s.exec(select(User).where(User.email == email))).first()
            if existing is not None:
                raise Conflict(f"A user with the e-mail {email} already exists.")
            workspace = Workspace(name=workspace_name)
            user = User(
                email=email,
                name=user_name or email.split("@")[0],
                password_hash=hash_password(password),
            )
            s.add(workspace)
            s.add(user)
            await s.flush()
            s.add(Membership(workspace_id=workspace.id, user_id=user.id, role="admin"))
            await audit.append(
                s,
                audit.record(workspace.id, "workspace.created", "workspace", workspace.id),
            )
        return workspace, user

    async def add_member(
        self, workspace_id: uuid.UUID, email: str, password: str, role: str, name: str | None = None
    ) -> User:
        email = normalize_email(email)
        async with self.sessions() as s, s.begin():
            user = User(
                email=email, name=name or email.split("@")[0], password_hash=hash_password(password)
            )
            s.add(user)
            await s.flush()
            s.add(Membership(workspace_id=workspace_id, user_id=user.id, role=role))
        return user

    async def user_by_email(self, email: str) -> User | None:
        async with self.sessions() as s:
            return (await s.exec(select(User).where(User.email == normalize_email(email)))).first()

    async def user_by_id(self, user_id: uuid.UUID) -> User | None:
        async with self.sessions() as s:
            return await s.get(User, user_id)

    async def principal(
        self,
        user_id: uuid.UUID,
        workspace_id: uuid.UUID,
        via: str,
        *,
        password_mark: str | None = None,
    ) -> Principal | None:
        """The member, or None when the membership is gone or (for a session) the password
        has changed since the session began."""
        try:
            member = await self._member(workspace_id, user_id)
        except Exception as exc:
            member = await self._known_member(exc, workspace_id, user_id)
        if member is None:
            return None
        role, name, mark = member
        if password_mark is not None and not hmac.compare_digest(password_mark, mark):
            return None
        return Principal(user_id, workspace_id, role, via, name)

    async def _member(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[str, str, str] | None:
        """(role, name, password mark), kept as the last known for an outage."""
        async with self.sessions() as s:
            row = (
                await s.exec(
                    select(Membership.role, User.name, User.password_hash)
                    .join(User, col(User.id) == Membership.user_id)
                    .where(Membership.user_id == user_id, Membership.workspace_id == workspace_id)
                )
            ).first()
        if row is None:
            if self.last_known is not None:
                self.last_known.drop(str(workspace_id), f"member:{user_id}")
            return None
        member = (row[0], row[1], auth.password_mark(row[2]))
        if self.last_known is not None:
            await self.last_known.keep(str(workspace_id), f"member:{user_id}", json.dumps(member))
        return member

    async def _known_member(
        self, exc: Exception, workspace_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[str, str, str]:
        """During an outage, the member as last read; else `exc` goes on."""
        if self.last_known is None or not outage(exc):
            raise exc
        kept = await self.last_known.recall(str(workspace_id), f"member:{user_id}", "a member")
        if kept is None:
            raise exc
        role, name, mark = json.loads(kept)
        return str(role), str(name), str(mark)

    async def set_password(self, user_id: uuid.UUID, password: str) -> str:
        async with self.sessions() as s, s.begin():
            user = await s.get(User, user_id)
            if user is None:
                raise NotFound("No such user.")
            user.password_hash = password_hash = hash_password(password)
            s.add(user)
            workspaces = (
                await s.exec(select(Membership.workspace_id).where(Membership.user_id == user_id))
            ).all()
        if self.last_known is not None:  # the old sessions end during an outage too
            for workspace_id in workspaces:
                await self.last_known.forget(str(workspace_id), f"member:{user_id}")
        return password_hash

    async def api_tokens(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> list[ApiToken]:
        query = select(ApiToken).where(ApiToken.workspace_id == workspace_id)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        async with self.sessions() as s:
            return list((await s.exec(query.order_by(col(ApiToken.created_at)))).all())

    async def revoke_api_token(
        self, workspace_id: uuid.UUID, token_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> ApiToken:
        """Revoke one token of the workspace (of `user_id`'s own when given)."""
        async with self.sessions() as s, s.begin():
            row = await s.get(ApiToken, token_id)
            if (
                row is None
                or row.workspace_id != workspace_id
                or (user_id is not None and row.user_id != user_id)
            ):
                raise NotFound("No such API token.")
            if row.revoked_at is None:
                row.revoked_at = utc_now()
                s.add(row)
        self._token_principals.forget(row.token_hash)
        if self.last_known is not None:
            await self.last_known.revoke(TOKENS, f"token:{row.token_hash}")
        return row

    async def is_member(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        async with self.sessions() as s:
            found = await s.exec(
                select(Membership.id).where(
                    Membership.workspace_id == workspace_id, Membership.user_id == user_id
                )
            )
            return found.first() is not None

    async def first_workspace(self, user_id: uuid.UUID) -> uuid.UUID | None:
        async with self.sessions() as s:
            return (
                await s.exec(
                    select(Membership.workspace_id)
                    .where(Membership.user_id == user_id)
                    .order_by(col(Membership.created_at))
                )
            ).first()

    async def workspaces_of(self, user_id: uuid.UUID) -> list[tuple[Workspace, str]]:
        """Every workspace the user is a member of, with their role, the oldest membership
        first. Memberships in other workspaces are past the current one's row-level
        security; this reads the user's own, for them alone."""
        with tenancy.acting_for(None):
            async with self.sessions() as s:
                rows = await s.exec(
                    select(Workspace, Membership.role)
                    .join(Membership, col(Membership.workspace_id) == Workspace.id)
                    .where(Membership.user_id == user_id)
                    .order_by(col(Membership.created_at))
                )
                return [(workspace, str(role)) for workspace, role in rows.all()]

    async def workspace(self, workspace_id: uuid.UUID) -> Workspace | None:
        async with self.sessions() as s:
            return await s.get(Workspace, workspace_id)

    async def audit(
        self,
        workspace_id: uuid.UUID | None,
        actor_type: str,
        actor_id: str | None,
        action: str,
        target_type: str | None = None,
        target_id: str | None = None,
        *,
        ip: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One audit row in a transaction of its own (see `hub.storage.audit.append` for a row that
        belongs with other writes). Ids, counts and hashes only: never a message's text, a
        contact's details, an e-mail typed at login or a secret."""
        async with self.sessions() as s, s.begin():
            await audit.append(
                s,
                audit.record(
                    workspace_id,
                    action,
                    target_type,
                    target_id,
                    actor_type=actor_type,
                    actor_id=actor_id,
                    ip=ip,
                    detail=detail,
                ),
            )

    # API tokens

    async def create_api_token(self, principal: Principal, name: str) -> tuple[ApiToken, str]:
        token, digest = new_api_token()
        row = ApiToken(
            workspace_id=principal.workspace_id,
            user_id=principal.user_id,
            name=name,
            token_hash=digest,
        )
        async with self.sessions() as s, s.begin():
            s.add(row)
        return row, token

    async def principal_for_api_token(self, token: str) -> Principal | None:
        """The member the token acts for (None for a token that is not valid), as read at most
        `API_TOKEN_CACHE_S` ago; during a database outage, as last read."""
        digest = token_hash(token)
        try:
            return await self._token_principals.load(digest, lambda: self._token_principal(digest))
        except Exception as exc:
            if self.last_known is None or not outage(exc):
                raise
            kept = await self.last_known.recall(TOKENS, f"token:{digest}", "an API token")
            if kept is None:
                raise
            user_id, workspace_id = (uuid.UUID(part) for part in kept.split("|"))
            # The member's own copy too: a removed member's tokens fail with it.
            role, name, _ = await self._known_member(exc, workspace_id, user_id)
            return Principal(user_id, workspace_id, role, "token", name)

    async def forget_member(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, *, removed: bool = False
    ) -> None:
        """After a member's role changed or the member left (`removed`): their tokens are read
        again, and no node answers for them from the last known copy."""
        self._token_principals.forget_where(
            lambda p: p is not None and p.workspace_id == workspace_id and p.user_id == user_id
        )
        if self.last_known is None:
            return
        if removed:
            await self.last_known.revoke(str(workspace_id), f"member:{user_id}")
        else:
            await self.last_known.forget(str(workspace_id), f"member:{user_id}")

    async def _token_principal(self, digest: str) -> Principal | None:
        """The token's row, its membership and its user in one query."""
        async with self.sessions() as s:
            row = (
                await s.exec(
                    select(ApiToken.user_id, ApiToken.workspace_id, Membership.role, User)
                    .join(
                        Membership,
                        (col(Membership.user_id) == ApiToken.user_id)
                        & (col(Membership.workspace_id) == ApiToken.workspace_id),
                    )
                    .join(User, col(User.id) == ApiToken.user_id)
                    .where(ApiToken.token_hash == digest, col(ApiToken.revoked_at).is_(None))
                )
            ).first()
        if row is None:
            if self.last_known is not None:
                self.last_known.drop(TOKENS, f"token:{digest}")
            return None
        user_id, workspace_id, role, user = row
        if self.last_known is not None:
            await self.last_known.keep(TOKENS, f"token:{digest}", f"{user_id}|{workspace_id}")
            member = json.dumps((role, user.name, auth.password_mark(user.password_hash)))
            await self.last_known.keep(str(workspace_id), f"member:{user_id}", member)
        return Principal(user_id, workspace_id, role, "token", user.name)


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise BadRequest("That is not an e-mail address.")
    return email


__all__ = ["NotFound", "Sessions", "Store", "decode_cursor", "encode_cursor"]
