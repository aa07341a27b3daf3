"""The report of conversations, response and resolution times and messages."""

from __future__ import annotations

from pydantic import Field

from schemas.rest.base import Out


class ReportRow(Out):
    key: str = Field(description="The day (YYYY-MM-DD), or the channel, team or agent id; none")
    label: str = Field(description="The day, or the channel's, team's or agent's name")
    conversations_opened: int = Field(ge=0, description="Whose contact first wrote then")
    conversations_resolved: int = Field(ge=0, description="Resolutions then (each one counts)")
    first_responses: int = Field(ge=0)
    first_response_avg_s: float | None = Field(
        description="Seconds from the contact's first message to the first agent reply"
    )
    resolution_avg_s: float | None = Field(description="Seconds from opened to resolved")
    messages_in: int = Field(ge=0)
    messages_out: int = Field(ge=0, description="Replies, auto-replies included; no notes")


class Report(Out):
    by: str
    timezone: str
    since: str = Field(description="The period's first instant (UTC)")
    until: str = Field(description="The instant after its last (UTC)")
    rows: list[ReportRow]
    totals: ReportRow
