"""GET /api/search: the query and its filters read from the URL, answered by
`hub.search.query`."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response

from hub.conversations.views import contact_out, stored_message
from hub.errors import BadRequest
from hub.search import query as searching
from hub.search.folding import fold
from hub.search.query import Filters
from hub.web.http import answer, authenticate, page_limit, services
from hub.web.operation import Operation, cursor_param, limit_param, param
from schemas.rest.conversations import SearchResult

STATUSES = ("open", "pending", "resolved", "snoozed")
KINDS = ("dm", "comment", "group")


async def search(request: Request) -> Response:
    principal = await authenticate(request)
    text = request.query_params.get("q", "").strip()
    if not 2 <= len(text) <= 200 or "\x00" in text:  # Postgres text holds no NUL
        raise BadRequest("q must be 2 to 200 characters.")
    if not fold(text):
        raise BadRequest("q holds nothing to search for (only marks or spaces).")
    found = await searching.search(
        services(request).store.sessions,
        principal.workspace_id,
        text,
        filters(request),
        limit=page_limit(request, default=20),
        cursor=request.query_params.get("cursor"),
    )
    return answer(
        SearchResult(
            contacts=[contact_out(c.id, c) for c in found.contacts],
            messages=[stored_message(m) for m in found.messages],
            next_cursor=found.next_cursor,
        )
    )


def filters(request: Request) -> Filters:
    query = request.query_params
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest("status must be open, pending, resolved or snoozed.")
    kind = query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadRequest("kind must be dm, comment or group.")
    label = query.get("label", "").strip().lower() or None
    if label is not None and "\x00" in label:
        raise BadRequest("label may not contain NUL.")
    channel = query.get("channel_id") or None
    since = _moment(query.get("since"), "since", end=False)
    until = _moment(query.get("until"), "until", end=True)
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until.")
    return Filters(
        channel_id=_channel(channel) if channel else None,
        status=status,
        label=label,
        kind=kind,
        since=since,
        until=until,
    )


def _channel(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest("channel_id must be a channel id.") from None


def _moment(raw: str | None, name: str, *, end: bool) -> datetime | None:
    """A time with its zone, or a day (UTC); a day given as `until` counts in full."""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            at = datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        else:
            at = datetime.fromisoformat(raw)
    except (ValueError, OverflowError):
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or a time with its zone.") from None
    if at.tzinfo is None:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or a time with its zone.")
    if not 1900 <= at.year <= 9000:  # a time the databases hold once moved to UTC
        raise BadRequest(f"{name} must fall between the years 1900 and 9000.")
    return at


_DAY_OR_TIME = {"type": "string", "description": "YYYY-MM-DD (UTC) or an ISO 8601 time with a zone"}

OPERATION = Operation(
    "Search contacts and messages",
    {200: ("Matches, newest first", SearchResult)},
    (400, 401),
    params=(
        param(
            "q",
            "query",
            "Text to find (2 to 200 characters); case, Turkish dotted and dotless i and "
            "diacritics do not count",
            {"type": "string"},
        ),
        limit_param("At most this many of each", default=20),
        cursor_param(),
        param("channel_id", "query", "Only this channel's", {"type": "string", "format": "uuid"}),
        param("status", "query", "Only conversations in this status", {"enum": list(STATUSES)}),
        param("label", "query", "Only conversations with this label", {"type": "string"}),
        param(
            "kind", "query", "Only direct messages, comments or group chats", {"enum": list(KINDS)}
        ),
        param("since", "query", "Messages sent at or after", _DAY_OR_TIME),
        param("until", "query", "Messages sent before (a day: up to its end)", _DAY_OR_TIME),
    ),
)
