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


class PlatformReason(Out):
    status: int = Field(description="The platform's HTTP status")
    code: str = Field(description="The platform's error code, such as 190 or 100/33")
    message: str = Field(description="The platform's own words")


class ErrorDetail(Out):
    code: str = Field(description="Machine-readable: bad_request, unauthenticated, csrf_failed...")
    message: str
    platform: PlatformReason | None = Field(
        default=None, description="With platform_refused: why Meta refused"
    )


class ErrorBody(Out):
    error: ErrorDetail
