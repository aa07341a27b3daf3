"""What each agent keeps for themselves (notification preferences, push subscriptions, the
mentions that name them) and the hub's VAPID key (`hub.notify`). Re-exported by
`hub.storage.models`, which every table is reached through."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.storage.columns import SEALED, json_field, timestamp


class NotificationPrefs(SQLModel, table=True):
    """What the inbox tells one agent of, and how (`hub.notify.prefs`); no row: the defaults."""

    __tablename__ = "notification_prefs"
    workspace_id: uuid.UUID = Field(
        foreign_key="workspaces.id", ondelete="CASCADE", primary_key=True
    )
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    prefs: dict[str, Any] = json_field(dict)
    updated_at: datetime = timestamp()


class PushSubscription(SQLModel, table=True):
    """A browser's Web Push subscription for one agent (`hub.notify.push`): the push
    service's endpoint and the browser's keys that encrypt what is sent to it."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "endpoint"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    endpoint: str = Field(max_length=2000)
    p256dh: str = Field(max_length=200)  # the browser's ECDH public key (base64url)
    auth: str = Field(max_length=100)  # its auth secret (base64url)
    created_at: datetime = timestamp()


class Mention(SQLModel, table=True):
    """An agent @mentioned in a private note (`hub.notify.mentions`)."""

    __tablename__ = "mentions"
    __table_args__ = (sa.Index("ix_mentions_user", "workspace_id", "user_id"),)
    workspace_id: uuid.UUID = Field(
        foreign_key="workspaces.id", ondelete="CASCADE", primary_key=True
    )
    message_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    conversation_id: uuid.UUID = Field(index=True)  # no key: the note may be stored later
    by_user_id: uuid.UUID | None = None
    created_at: datetime = timestamp()


class PushKey(SQLModel, table=True):
    """The hub's one VAPID key pair (RFC 8292), made at first use; the private key sealed."""

    __tablename__ = "push_keys"
    id: int = Field(default=1, primary_key=True)
    public_key: str = Field(max_length=200)  # uncompressed P-256 point, base64url
    private_key: str = Field(sa_type=sa.Text, sa_column_kwargs={"info": SEALED})
    created_at: datetime = timestamp()
