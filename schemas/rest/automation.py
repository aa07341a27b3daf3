"""Answers about automation rules, and a rule tried on a sample message."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from schemas.rest.base import Out, Timestamp

Trigger = Literal[
    "conversation.created", "message.received", "conversation.resolved", "comment.created"
]


class RuleOut(Out):
    id: uuid.UUID
    name: str
    enabled: bool
    trigger: Trigger
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    position: int = Field(description="Rules run in this order, lowest first")
    updated_at: Timestamp


class RulePage(Out):
    items: list[RuleOut] = Field(description="In the order they run")


class ConditionOutcome(Out):
    field: str
    op: str
    key: str | None = Field(default=None, description="An attribute condition's attribute")
    values: list[str]
    holds: bool


class TryOut(Out):
    matched: bool = Field(description="Whether every condition holds")
    conditions: list[ConditionOutcome]
    changes: dict[str, Any] = Field(
        description="What the rule would change on the conversation (none when not matched)"
    )
    reply: str | None = Field(description="The auto-reply it would send, placeholders filled in")
