"""Answers of the inbox's workflow routes: the filters' counts and a bulk action's results."""

from __future__ import annotations

import uuid

from pydantic import Field

from schemas.rest.base import Out


class StatusCounts(Out):
    open: int
    pending: int
    snoozed: int
    resolved: int


class AssigneeCounts(Out):
    me: int = Field(description="Assigned to the caller")
    none: int = Field(description="Assigned to no one")
    any: int = Field(description="Everyone's")


class FilterCounts(Out):
    status: StatusCounts = Field(description="Per status, under the `assignee` filter given")
    assignee: AssigneeCounts = Field(description="Per assignee filter, under the `status` given")


class BulkItem(Out):
    id: uuid.UUID
    ok: bool
    event_id: str | None = Field(default=None, description="The change's event, when applied")
    code: str | None = Field(
        default=None, description="Why not, when refused: `not_found`, `bad_request`..."
    )


class BulkResult(Out):
    results: list[BulkItem] = Field(description="One per id, in the order given")
    applied: int = Field(description="How many were changed")
