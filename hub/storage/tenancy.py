"""Row-level security: the second line of tenant isolation, behind the query scoping in
`hub.storage.store` and its peers.

On Postgres every workspace table has a policy (migration 0007) that shows and accepts only
the rows of the workspace named by the transaction-local setting `hub.workspace_id`, and
only to the role `hub_tenant`. Work done for a member or a visitor runs in that role: once a
request, a socket or a worker batch knows whose it is, it calls `act_for`, and every ORM
transaction that begins from then on in that task starts with

    SELECT set_config('role', 'hub_tenant', true), set_config('hub.workspace_id', ..., true)

so a query that forgot its `workspace_id` filter still sees one workspace's rows, and a write
into another workspace is refused by the database. Both settings end with the transaction,
so a pooled connection never carries them into the next one.

Work that is not done for one workspace (signing in, routing a platform webhook to its
channel, Meta's callbacks, the deletion and retention sweeps) runs in the connecting role,
which owns the tables and is not subject to the policies. The role switch guards against
the application's own mistakes, not against SQL run by an attacker, who could reset it.
SQLite has no row-level security; there the query scoping is the only line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session

ROLE = "hub_tenant"
SETTING = "hub.workspace_id"

# The tables that belong to no workspace, and so have no row-level security, each with why
# (docs/privacy.md, "Global tables"). Every other table carries `workspace_id` under a
# policy; tests/test_tenancy.py fails on a table that has neither.
GLOBAL_TABLES: dict[str, str] = {
    "users": "accounts: one person may be a member of several workspaces, so an account "
    "belongs to none of them; it holds an e-mail, a name and a password hash, no workspace "
    "data, and a workspace reaches its members only through `memberships`, which has a policy",
    "recovery_codes": "two-factor recovery codes (digests only) belong to an account, like "
    "`users`, not to a workspace; read and written only for the signed-in user's own id, or by "
    "an admin's reset of a member who belongs to that workspace alone",
    "password_resets": "password-reset links (digests only) belong to an account, like "
    "`users`; a reset is asked for by e-mail before any workspace is known",
    "push_keys": "the hub's one VAPID key pair for Web Push (its private key sealed): every "
    "workspace's subscriptions are made with its public key, so it belongs to none of them",
    "alembic_version": "the schema's revision, written by `hub migrate`",
}

_acting_for: ContextVar[uuid.UUID | None] = ContextVar("hub_acting_for", default=None)
_ENTER = sa.text(
    f"SELECT set_config('role', '{ROLE}', true), set_config('{SETTING}', :workspace, true)"
)


def act_for(workspace_id: uuid.UUID | str) -> None:
    """From now on in this task, database work is done for this workspace only."""
    _acting_for.set(uuid.UUID(str(workspace_id)))


@contextmanager
def acting_for(workspace_id: uuid.UUID | str | None) -> Iterator[None]:
    """Database work inside the block is done for this workspace (None: for none in particular)."""
    token = _acting_for.set(uuid.UUID(str(workspace_id)) if workspace_id is not None else None)
    try:
        yield
    finally:
        _acting_for.reset(token)


@event.listens_for(Session, "after_begin")
def _enter(session: Session, transaction: Any, connection: sa.Connection) -> None:
    workspace_id = _acting_for.get()
    if workspace_id is not None and connection.dialect.name == "postgresql":
        connection.execute(_ENTER, {"workspace": str(workspace_id)})
