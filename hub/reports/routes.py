"""The reports endpoint (`hub.reports.service`): JSON for the admin console's charts, CSV to
export."""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.errors import BadRequest
from hub.reports.service import COLUMNS, DIMENSIONS, MAX_DAYS, Period, Row, report
from hub.web.http import authenticate, require_admin, services


class ReportRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str
    timezone: str
    since: str = Field(description="The period's first instant (UTC)")
    until: str = Field(description="The instant after its last (UTC)")
    rows: list[ReportRow]
    totals: ReportRow


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""

    def param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": name in ("from", "to"),
            "description": description,
            "schema": schema,
        }

    day = {"type": "string", "format": "date"}
    return {
        ("/api/reports", "get"): dict(
            summary="Conversations, response and resolution times and messages (admins)",
            ok={200: ("The report; with format=csv, the same rows as text/csv", Report)},
            errors=(400, 401, 403),
            params=(
                param("from", "The first day (YYYY-MM-DD, in the time zone)", day),
                param("to", f"The last day, included; at most {MAX_DAYS} days", day),
                param(
                    "by",
                    "What a row is",
                    {"type": "string", "enum": list(DIMENSIONS), "default": "day"},
                ),
                param(
                    "timezone",
                    "The IANA zone the days are in",
                    {"type": "string", "default": "UTC"},
                ),
                param(
                    "format",
                    "csv: a download",
                    {"type": "string", "enum": ["json", "csv"], "default": "json"},
                ),
            ),
            description="400 `invalid_period` or `invalid_timezone`. Averages are null where "
            "there is nothing to average. docs/inbox.md (Reports) says what is counted.",
        ),
    }


async def reports(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    query = request.query_params
    by = query.get("by", "day")
    if by not in DIMENSIONS:
        raise BadRequest("by must be day, channel, team or agent.")
    wanted = query.get("format", "json")
    if wanted not in ("json", "csv"):
        raise BadRequest("format must be json or csv.")
    period = Period.parse(query.get("from"), query.get("to"), query.get("timezone"))
    rows, totals = await report(
        services(request).store.sessions, principal.workspace_id, period, by
    )
    if wanted == "csv":
        return _csv(rows, totals, period, by)
    return JSONResponse(
        {
            "by": by,
            "timezone": period.zone.key,
            "since": period.since.isoformat(),
            "until": period.until.isoformat(),
            "rows": [r.as_json() for r in rows],
            "totals": totals.as_json(),
        }
    )


def _csv(rows: list[Row], totals: Row, period: Period, by: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in [*rows, totals]:
        values = row.as_json()
        writer.writerow(["" if values[c] is None else _cell(values[c]) for c in COLUMNS])
    name = f"report-{by}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def _cell(value: object) -> object:
    # A name that starts like a formula is kept as text by spreadsheets (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


routes = [Route("/api/reports", reports, methods=["GET"])]
