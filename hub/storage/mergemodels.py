"""A merge of two contacts that are one person (`hub.contacts.merge`). Re-exported by
`hub.storage.models`, which every table is reached through."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hub.storage.columns import UTCDateTime, json_field, timestamp


class ContactMerge(SQLModel, table=True):
    """One merged-away contact and the contact it went into. While `pending` the row names
    exactly what moved (conversations, identities), so an undo puts back just that; once
    `confirmed` the merged-away contact's row is gone and this row stays as a redirect: a
    message that still carries its derived id (`schemas.message.contact_id_for`) is stored
    on the kept contact (`hub.workers.merged`; not while pending). `from_contact_id` has no
    foreign key for that reason; erasing the kept contact deletes the row (a later message
    starts afresh)."""

    __tablename__ = "contact_merges"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "from_contact_id"),)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    from_contact_id: uuid.UUID
    into_contact_id: uuid.UUID = Field(foreign_key="contacts.id", ondelete="CASCADE", index=True)
    state: str = Field(max_length=10)  # pending | confirmed
    conversation_ids: list[str] = json_field(list)
    identity_ids: list[str] = json_field(list)
    message_ids: list[str] = json_field(list)  # all its messages at the merge (undo: just these)
    by_user_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = timestamp()
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
