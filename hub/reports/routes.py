"""The reports endpoint (`hub.reports.service`): JSON for the admin console's charts, CSV to
export."""

from __future__ import annotations

import csv
import io

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.errors import BadRequest
from hub.reports.service import COLUMNS, DIMENSIONS, MAX_DAYS, Period, Row, report
from hub.web.http import authenticate, require_admin, services
from hub.web.operation import Operation, param, route
from schemas.rest.reports import Report


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


_DAY = {"type": "string", "format": "date"}

routes = [
    route(
        "/api/reports",
        reports,
        "GET",
        op=Operation(
            "Conversations, response and resolution times and messages (admins)",
            {200: ("The report; with format=csv, the same rows as text/csv", Report)},
            (400, 401, 403),
            params=(
                param(
                    "from",
                    "query",
                    "The first day (YYYY-MM-DD, in the time zone)",
                    _DAY,
                    required=True,
                ),
                param(
                    "to",
                    "query",
                    f"The last day, included; at most {MAX_DAYS} days",
                    _DAY,
                    required=True,
                ),
                param(
                    "by",
                    "query",
                    "What a row is",
                    {"type": "string", "enum": list(DIMENSIONS), "default": "day"},
                ),
                param(
                    "timezone",
                    "query",
                    "The IANA zone the days are in",
                    {"type": "string", "default": "UTC"},
                ),
                param(
                    "format",
                    "query",
                    "csv: a download",
                    {"type": "string", "enum": ["json", "csv"], "default": "json"},
                ),
            ),
            description="400 `invalid_period` or `invalid_timezone`. Averages are null where "
            "there is nothing to average. docs/inbox.md (Reports) says what is counted.",
        ),
    )
]
