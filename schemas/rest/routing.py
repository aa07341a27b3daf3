"""Answers about teams and the queue of conversations waiting for an assignee."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from schemas.rest.base import Out


class TeamOut(Out):
    id: uuid.UUID
    name: str
    assignment: Literal["manual", "round_robin", "least_busy"]
    member_ids: list[uuid.UUID] = Field(description="Sorted")


class TeamPage(Out):
    items: list[TeamOut] = Field(description="By name")


class QueueCount(Out):
    team_id: uuid.UUID | None = Field(description="None: in no team's queue")
    unassigned: int = Field(ge=0)


class Queue(Out):
    unassigned: int = Field(ge=0, description="Open conversations nobody is assigned, in all")
    teams: list[QueueCount] = Field(description="The same by team; a team with none is left out")
