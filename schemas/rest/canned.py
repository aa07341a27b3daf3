"""Answers about canned responses."""

from __future__ import annotations

import uuid

from pydantic import Field

from schemas.rest.base import Out, Timestamp


class CannedOut(Out):
    id: uuid.UUID
    shortcut: str
    text: str = Field(description="As saved, placeholders and all")
    personal: bool = Field(description="The caller's own; otherwise the workspace's")
    updated_at: Timestamp
    rendered: str | None = Field(
        default=None,
        description="With conversation_id: the text for that conversation's contact and the "
        "caller (placeholders filled in)",
    )


class CannedPage(Out):
    items: list[CannedOut] = Field(
        description="By shortcut; the caller's own before the workspace's of the same shortcut"
    )
