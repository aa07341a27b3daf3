"""What every answer model shares: no unknown keys, times as `datetime.isoformat`, and the
error body."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

# The REST API has always written times with their offset as +00:00 (pydantic would write Z).
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Out):
    code: str = Field(description="Machine-readable: bad_request, unauthenticated, csrf_failed...")
    message: str


class ErrorBody(Out):
    error: ErrorDetail
