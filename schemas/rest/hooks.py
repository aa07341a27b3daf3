"""Answers about outbound webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from schemas.rest.base import Out


class HookOut(Out):
    id: uuid.UUID
    url: str
    events: list[str]
    created_at: str
    secret: str | None = Field(
        default=None,
        description="Only when created: signs every request (X-Hub-Signature-256); not shown again",
    )


class HookPage(Out):
    items: list[HookOut]


class DeliveryOut(Out):
    id: uuid.UUID = Field(description="Sent as X-Hub-Delivery, the same on every retry")
    endpoint_id: uuid.UUID
    event_id: str
    event: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int = Field(ge=0)
    last_status: int | None = Field(description="The receiver's last HTTP status")
    last_error: str | None
    created_at: str
    next_attempt_at: str | None = Field(description="When pending: the next try")
    delivered_at: str | None


class DeliveryPage(Out):
    items: list[DeliveryOut] = Field(description="Newest first")
