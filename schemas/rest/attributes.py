"""Answers about custom attributes: their definitions, and the values a contact or a
conversation has."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from schemas.rest.base import Out, Timestamp

AttributeType = Literal["text", "number", "date", "list", "link"]
AppliesTo = Literal["contact", "conversation"]
AttributeValue = str | int | float


class DefinitionOut(Out):
    id: uuid.UUID
    key: str = Field(description="Unique in the workspace; filters and rules name it")
    label: str
    type: AttributeType
    applies_to: AppliesTo
    options: list[str] = Field(description="A list's choices; empty for the other types")
    updated_at: Timestamp


class DefinitionPage(Out):
    items: list[DefinitionOut] = Field(description="By label")


class AttributeValues(Out):
    values: dict[str, AttributeValue] = Field(
        description="By key: a number for a number attribute, text for the others (a date as "
        "YYYY-MM-DD); an attribute without a value is left out"
    )
