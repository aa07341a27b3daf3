"""A comment moderated by an agent: hidden, shown again or deleted on the platform."""

from __future__ import annotations

import uuid

from pydantic import Field

from schemas.rest.base import Out


class ModerationOut(Out):
    message_id: uuid.UUID = Field(description="The comment, as a message of its conversation")
    hidden: bool = Field(description="Whether it is hidden on the platform now")
    deleted: bool = Field(description="Whether it is deleted on the platform now")
    event_id: str = Field(description="The `message.updated` every inbox receives")
