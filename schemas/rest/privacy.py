"""Answers of the privacy endpoints: a contact's export, Meta's two callbacks, the public
state of a deletion request and the admins' deletion requests."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from schemas.rest.base import Out, Timestamp

Status = Literal["received", "in_progress", "done", "no_data"]


class ContactExport(Out):
    format: str = Field(description="sosyocrm.contact-export.v1")
    exported_at: Timestamp
    workspace_id: uuid.UUID
    contact: dict[str, Any]
    identities: list[dict[str, Any]] = Field(description="One per channel")
    conversations: list[dict[str, Any]] = Field(description="With labels and read positions")
    messages: list[dict[str, Any]] = Field(description="Every message, notes included")


class DeletionAccepted(Out):
    url: str = Field(description="Where the person can follow the request (a public page)")
    confirmation_code: str = Field(pattern="^[0-9a-f]{32}$")


class Deauthorized(Out):
    """An empty object."""


class DeletionState(Out):
    confirmation_code: str
    status: Status


class DeletionFiled(Out):
    id: uuid.UUID
    confirmation_code: str
    status: Status


class DeletionCounts(Out):
    contacts: int = Field(ge=0)
    conversations: int = Field(ge=0)
    messages: int = Field(ge=0)
    stream_entries: int = Field(ge=0, description="Events deleted from the workspace stream")


class Deletion(Out):
    id: uuid.UUID
    confirmation_code: str
    source: Literal["meta", "admin"]
    status: Status
    counts: DeletionCounts = Field(description="What was erased so far; never who")
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None


class DeletionPage(Out):
    items: list[Deletion] = Field(description="Newest first")
    next_cursor: str | None = Field(description="The `cursor` of the next page; none at the end")
