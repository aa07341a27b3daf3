"""Answers of the privacy endpoints: a contact's export, Meta's two callbacks, the public
state of a deletion request and the admins' deletion requests."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from schemas.rest.base import Out, Timestamp

Status = Literal["received", "in_progress", "done", "no_data"]


class ExportedFile(Out):
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    file: str = Field(description="The hub's id of the stored file")
    type: str = Field(description="image, video, audio, file or sticker")
    name: str | None = Field(description="The file name it was sent with, if any")
    mime_type: str | None
    size: int | None = Field(ge=0, description="Bytes, as stored")
    url: str = Field(
        description="The file on the hub (absolute): answered to the workspace's members with "
        "their session or API token, like the inbox's own links"
    )
    thumbnail_url: str | None = Field(description="An image's small WebP copy")


class ContactExport(Out):
    format: str = Field(description="sosyocrm.contact-export.v1")
    exported_at: Timestamp
    workspace_id: uuid.UUID
    contact: dict[str, Any]
    identities: list[dict[str, Any]] = Field(description="One per channel")
    conversations: list[dict[str, Any]] = Field(description="With labels and read positions")
    messages: list[dict[str, Any]] = Field(description="Every message, notes included")
    files: list[ExportedFile] = Field(
        description="Every file the hub stores for these messages, as links (images without "
        "their metadata, as kept)"
    )
    merges: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The merges the contact is in (kept or merged away), pending or confirmed",
    )


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
    files: int = Field(
        default=0, ge=0, description="Objects deleted from the media store (files, thumbnails)"
    )


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
