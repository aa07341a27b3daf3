"""Answers about members and their credentials: sessions, tokens, members, the audit log and
the workspace's own settings."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from schemas.rest.base import Out, Timestamp


class User(Out):
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: Literal["admin", "agent"]
    name: str


class LoginResult(Out):
    user: User
    csrf_token: str = Field(description="Send it as X-CSRF-Token on unsafe requests")


class MyWorkspace(Out):
    id: uuid.UUID
    name: str
    role: Literal["admin", "agent"] = Field(description="The caller's role there")


class Me(Out):
    user: User
    csrf_token: str | None = Field(default=None, description="Only for a cookie session")
    workspaces: list[MyWorkspace] = Field(
        default_factory=list,
        description="Every workspace the caller is a member of, the oldest membership first "
        "(only their own memberships); sign in to another with POST /api/auth/switch. Empty "
        "while the database is away",
    )


class SocketToken(Out):
    token: str = Field(description="The token of the websocket `hello` frame")
    expires_in_s: int


class CreatedToken(Out):
    id: uuid.UUID
    name: str
    token: str = Field(pattern="^hubt_", description="Shown this once; only its hash is kept")


class SessionUser(Out):
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    role: str
    name: str


class NewSession(Out):
    user: SessionUser
    csrf_token: str = Field(description="For the X-CSRF-Token header of this new session")


class SessionInfo(Out):
    id: uuid.UUID
    created_at: Timestamp = Field(description="When it signed in")
    last_seen_at: Timestamp = Field(description="Its last request, within a few minutes")
    ip: str | None = Field(description="The address it signed in from")
    user_agent: str | None = Field(description="Its browser, as it said (shortened)")
    current: bool = Field(description="The session making this request")


class SessionList(Out):
    items: list[SessionInfo]


class SessionsEnded(Out):
    ended: int = Field(description="How many sessions ended")


class TokenInfo(Out):
    id: uuid.UUID
    name: str
    user_id: uuid.UUID
    created_at: Timestamp
    revoked_at: Timestamp | None = Field(description="Set once revoked; the token stops at once")


class TokenList(Out):
    items: list[TokenInfo] = Field(description="Never the tokens themselves (stored hashed)")


class MemberOut(Out):
    id: uuid.UUID = Field(description="The user's id")
    name: str
    email: str
    role: Literal["admin", "agent"]
    capacity: int | None = Field(
        description="At most this many open conversations from routing; none: no limit"
    )
    created_at: Timestamp = Field(description="When they joined this workspace")
    two_factor: bool = Field(default=False, description="They sign in with a second factor")


class MemberPage(Out):
    items: list[MemberOut] = Field(description="Oldest membership first")


class InvitationOut(Out):
    id: uuid.UUID
    email: str = Field(description="As given, trimmed and in lowercase")
    role: Literal["admin", "agent"]
    invited_by: uuid.UUID | None = Field(description="The admin who sent it (none once erased)")
    created_at: Timestamp
    expires_at: Timestamp = Field(description="The link stops working then; resend renews it")


class InvitationPage(Out):
    items: list[InvitationOut] = Field(
        description="Pending invitations (neither accepted nor revoked), newest first; an "
        "expired one stays listed until it is renewed or revoked"
    )


class InvitationView(Out):
    workspace_name: str
    email: str
    role: Literal["admin", "agent"]
    has_account: bool = Field(
        description="The e-mail has an account: accept with its password; else choose a "
        "name and a password"
    )
    expires_at: Timestamp


class Accepted(Out):
    status: Literal["accepted"] = "accepted"
    message: str


class AuditEntry(Out):
    id: int
    at: Timestamp
    actor_type: Literal["user", "system", "platform", "anonymous"]
    actor_id: str | None
    actor_name: str | None = Field(description="The user's name, when the actor is a user")
    action: str = Field(description="login.succeeded, member.added, channel.updated...")
    target_type: str | None
    target_id: str | None
    ip: str | None = Field(description="The client's address as the hub saw it")
    detail: dict[str, Any] = Field(description="Ids, roles, field names; no personal data")


class AuditPage(Out):
    items: list[AuditEntry] = Field(description="Newest first")
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")


class WorkspaceOut(Out):
    id: uuid.UUID
    name: str
    retention_days: int | None = Field(description="null: messages are kept forever")
    platform_deletion_erases: bool = Field(
        default=False,
        description="Whether Meta's data-deletion callback for the person who connected a "
        "channel also erases the channel's conversations (else it disconnects it only)",
    )
    require_two_factor_for_admins: bool = Field(
        default=False, description="Admins must sign in with a second factor"
    )
