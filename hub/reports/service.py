"""Reports: conversations opened and resolved, first response and resolution times, and
messages in and out, for a period, by day, channel, team or agent.

What is counted (docs/inbox.md, Reports):
- `report_events` rows, written by the persist group as it stores what happened
  (`record_*` below): `opened` when a conversation's first message arrives, `first_response`
  at its first reply by an agent (notes and auto-replies are not replies; value: seconds
  since the contact's first message), and `resolved` each time a person or a rule resolves it
  (value: seconds since it opened). Each row's id is derived from what it records, so
  applying a batch twice writes it once.
- `messages` for messages in and out (notes left out).

By team and by agent, a conversation counts under its team and assignee now; a first
response and a resolution count under the agent who gave it. Days are the caller's time
zone's: on Postgres exactly (`AT TIME ZONE`); on SQLite (the embedded demo) with the zone's
offset at the start of the period, so a period across a clock change may put an hour's
events in the day beside.

All of it is aggregated in SQL, one statement per table, on the indexes
`ix_report_events_workspace_at` and `ix_messages_workspace_time`
(scripts/bench/reports measures it on a million messages).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import hub.storage.models  # noqa: F401  (registers the tables)
from hub.channels.hours import zone_named
from hub.errors import BadRequest
from hub.storage.store import Sessions
from schemas.message import SYSTEM_SENDER_ID

Dimension = Literal["day", "channel", "team", "agent"]
DIMENSIONS: tuple[Dimension, ...] = ("day", "channel", "team", "agent")
MAX_DAYS = 366
_NAMESPACE = uuid.UUID("5b0c3f4e-2f6d-4c55-9a53-6f1d2b7a9e10")  # report event ids
_TABLES = SQLModel.metadata.tables
EVENTS = _TABLES["report_events"]
MESSAGES = _TABLES["messages"]
CONVERSATIONS = _TABLES["conversations"]
CHANNELS = _TABLES["channels"]
TEAMS = _TABLES["teams"]
USERS = _TABLES["users"]
MEMBERSHIPS = _TABLES["memberships"]
COLUMNS = (
    "key",
    "label",
    "conversations_opened",
    "conversations_resolved",
    "first_responses",
    "first_response_avg_s",
    "resolution_avg_s",
    "messages_in",
    "messages_out",
)


class InvalidPeriod(BadRequest):
    code = "invalid_period"
    default_message = (
        f"from and to are dates (YYYY-MM-DD), from not after to, at most {MAX_DAYS} days."
    )


# Recording (the persist group, inside its transaction)


def _event_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, ":".join(str(p) for p in parts))


def _insert(session: AsyncConnection) -> Any:
    insert = postgresql.insert if session.dialect.name == "postgresql" else sqlite.insert
    return insert(EVENTS).on_conflict_do_nothing()


def _user(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def record_messages(session: AsyncConnection, rows: Iterable[dict[str, Any]]) -> None:
    """After a run of messages is stored (`persist._message_row` dicts): `opened` for each
    conversation a contact wrote in, `first_response` for each an agent answered."""
    opened: dict[uuid.UUID, dict[str, Any]] = {}
    answered: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        if row["note"]:
            continue
        if row["direction"] == "in":
            opened.setdefault(row["conversation_id"], row)
        elif row["sender_type"] == "agent":
            answered.setdefault(row["conversation_id"], row)
    if opened:
        await session.execute(
            _insert(session),
            [_event(row, "opened", row["sent_at"]) for row in opened.values()],
        )
    if not answered:
        return
    first_in = dict(
        (
            await session.execute(
                sa.select(MESSAGES.c.conversation_id, sa.func.min(MESSAGES.c.sent_at))
                .where(
                    MESSAGES.c.conversation_id.in_(list(answered)),
                    MESSAGES.c.direction == "in",
                    MESSAGES.c.note == sa.false(),
                )
                .group_by(MESSAGES.c.conversation_id)
            )
        ).all()
    )
    values = []
    for conversation_id, row in answered.items():
        start = first_in.get(conversation_id)
        if start is None or row["sent_at"] < start:
            continue  # we wrote first: nothing to respond to yet
        value = (row["sent_at"] - start).total_seconds()
        values.append(_event(row, "first_response", row["sent_at"], _user(row["sender_id"]), value))
    if values:
        await session.execute(_insert(session), values)


def _event(
    row: dict[str, Any],
    name: str,
    at: datetime,
    user_id: uuid.UUID | None = None,
    value_s: float | None = None,
    *key: object,
) -> dict[str, Any]:
    """A report event's row; its id is derived from the name, the conversation and `key`."""
    return dict(
        id=_event_id(name, row["conversation_id"], *key),
        workspace_id=row["workspace_id"],
        conversation_id=row["conversation_id"],
        channel_id=row["channel_id"],
        user_id=user_id,
        name=name,
        at=at,
        value_s=value_s,
    )


async def record_resolved(
    session: AsyncConnection,
    workspace_id: uuid.UUID,
    conversation_id: uuid.UUID,
    event_id: str,
    by: object,
) -> None:
    """A resolution, before it is applied: counted unless the conversation is resolved
    already (a repeat changes nothing)."""
    row = (
        await session.execute(
            sa.select(
                CONVERSATIONS.c.status, CONVERSATIONS.c.created_at, CONVERSATIONS.c.channel_id
            ).where(
                CONVERSATIONS.c.workspace_id == workspace_id,
                CONVERSATIONS.c.id == conversation_id,
            )
        )
    ).first()
    if row is None or row.status == "resolved":
        return
    at = stream_time(event_id)
    where = {"workspace_id": workspace_id, "conversation_id": conversation_id}
    value = max(0.0, (at - row.created_at).total_seconds())
    # Stream ids are per workspace: two workspaces' streams can hold the same one.
    resolved = _event(
        where | {"channel_id": row.channel_id},
        "resolved",
        at,
        _user(by) if by else None,
        value,
        event_id,
    )
    await session.execute(_insert(session), [resolved])


def stream_time(event_id: str) -> datetime:
    """When a stream entry was added: its id is "<milliseconds>-<sequence>"."""
    return datetime.fromtimestamp(int(event_id.split("-", 1)[0]) / 1000, UTC)


# Reading


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime  # UTC, inclusive
    until: datetime  # UTC, exclusive
    zone: ZoneInfo
    first: date
    last: date

    @classmethod
    def parse(cls, first: str | None, last: str | None, timezone: str | None) -> Period:
        zone = zone_named(timezone or "UTC")
        try:
            start, end = date.fromisoformat(first or ""), date.fromisoformat(last or "")
        except ValueError:
            raise InvalidPeriod() from None
        if end < start or (end - start).days >= MAX_DAYS:
            raise InvalidPeriod()
        since = datetime.combine(start, time(), zone).astimezone(UTC)
        until = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
        return cls(since, until, zone, start, end)

    def days(self) -> list[str]:
        count = (self.last - self.first).days + 1
        return [(self.first + timedelta(days=n)).isoformat() for n in range(count)]


@dataclass(slots=True)
class Row:
    key: str
    label: str
    conversations_opened: int = 0
    conversations_resolved: int = 0
    first_responses: int = 0
    first_response_avg_s: float | None = None
    resolution_avg_s: float | None = None
    messages_in: int = 0
    messages_out: int = 0
    _sums: dict[str, float] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


async def report(
    sessions: Sessions, workspace_id: uuid.UUID, period: Period, by: Dimension
) -> tuple[list[Row], Row]:
    """The rows (every day of the period for `day`; otherwise each channel, team or agent
    with something to count, and "none" for what has no team or agent) and the totals."""
    async with sessions() as orm:
        session = await orm.connection()
        events = await session.execute(_events_query(session, workspace_id, period, by))
        messages: list[Any] = []
        for query in _messages_queries(session, workspace_id, period, by):
            messages.extend((await session.execute(query)).all())
        labels = await _labels(session, workspace_id, by)
    rows: dict[str, Row] = {}
    if by == "day":
        rows = {day: Row(day, day) for day in period.days()}

    def row(key: object) -> Row:
        name = _key(key)
        if name not in rows:
            rows[name] = Row(name, labels.get(name, name if by == "day" else "—"))
        return rows[name]

    for key, name, count, total in events.all():
        target = row(key)
        if name == "opened":
            target.conversations_opened += count
        elif name == "resolved":
            target.conversations_resolved += count
            target._sums["resolution"] = float(total or 0)
        elif name == "first_response":
            target.first_responses += count
            target._sums["first_response"] = float(total or 0)
    for key, direction, count in messages:
        target = row(key)
        if direction == "in":
            target.messages_in += count
        else:
            target.messages_out += count
    ordered = sorted(rows.values(), key=lambda r: (r.key == "none", r.label.lower(), r.key))
    if by == "day":
        ordered = sorted(rows.values(), key=lambda r: r.key)
    totals = Row("total", "Total")
    for one in ordered:
        for name in ("conversations_opened", "conversations_resolved", "first_responses"):
            setattr(totals, name, getattr(totals, name) + getattr(one, name))
        totals.messages_in += one.messages_in
        totals.messages_out += one.messages_out
        for name, value in one._sums.items():
            totals._sums[name] = totals._sums.get(name, 0.0) + value
    for one in [*ordered, totals]:
        if one.first_responses:
            one.first_response_avg_s = round(one._sums["first_response"] / one.first_responses, 1)
        if one.conversations_resolved:
            one.resolution_avg_s = round(one._sums["resolution"] / one.conversations_resolved, 1)
    return ordered, totals


def _key(value: object) -> str:
    if value is None:
        return "none"
    return str(value)  # a day, a UUID (both dialects give uuid.UUID), or a sender id


def _day(session: AsyncConnection, column: Any, period: Period) -> Any:
    if session.dialect.name == "postgresql":  # a cast: a third of to_char's cost per row
        return sa.cast(sa.func.timezone(period.zone.key, column), sa.Date)
    offset = period.since.astimezone(period.zone).utcoffset() or timedelta()
    return sa.func.strftime("%Y-%m-%d", column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _events_query(
    session: AsyncConnection, workspace_id: uuid.UUID, period: Period, by: Dimension
) -> Any:
    joined = EVENTS.join(CONVERSATIONS, CONVERSATIONS.c.id == EVENTS.c.conversation_id)
    key = {
        "day": _day(session, EVENTS.c.at, period),
        "channel": EVENTS.c.channel_id,
        "team": CONVERSATIONS.c.team_id,
        "agent": sa.func.coalesce(EVENTS.c.user_id, CONVERSATIONS.c.assignee_id),
    }[by]
    source = joined if by in ("team", "agent") else EVENTS
    return (
        sa.select(key, EVENTS.c.name, sa.func.count(), sa.func.sum(EVENTS.c.value_s))
        .select_from(source)
        .where(
            EVENTS.c.workspace_id == workspace_id,
            EVENTS.c.at >= period.since,
            EVENTS.c.at < period.until,
        )
        .group_by(key, EVENTS.c.name)
    )


def _messages_queries(
    session: AsyncConnection, workspace_id: uuid.UUID, period: Period, by: Dimension
) -> list[Any]:
    where = [
        MESSAGES.c.workspace_id == workspace_id,
        MESSAGES.c.sent_at >= period.since,
        MESSAGES.c.sent_at < period.until,
        MESSAGES.c.note == sa.false(),
    ]
    joined = MESSAGES.join(CONVERSATIONS, CONVERSATIONS.c.id == MESSAGES.c.conversation_id)
    if by == "agent":  # ours by who sent them; the contacts' by whose conversation it is
        return [
            sa.select(MESSAGES.c.sender_id, MESSAGES.c.direction, sa.func.count())
            .where(*where, MESSAGES.c.direction == "out")
            .group_by(MESSAGES.c.sender_id, MESSAGES.c.direction),
            sa.select(CONVERSATIONS.c.assignee_id, MESSAGES.c.direction, sa.func.count())
            .select_from(joined)
            .where(*where, MESSAGES.c.direction == "in")
            .group_by(CONVERSATIONS.c.assignee_id, MESSAGES.c.direction),
        ]
    key = {
        "day": _day(session, MESSAGES.c.sent_at, period),
        "channel": MESSAGES.c.channel_id,
        "team": CONVERSATIONS.c.team_id,
    }[by]
    source = joined if by == "team" else MESSAGES
    return [
        sa.select(key, MESSAGES.c.direction, sa.func.count())
        .select_from(source)
        .where(*where)
        .group_by(key, MESSAGES.c.direction)
    ]


async def _labels(
    session: AsyncConnection, workspace_id: uuid.UUID, by: Dimension
) -> dict[str, str]:
    if by == "channel":
        query = sa.select(CHANNELS.c.id, CHANNELS.c.name).where(
            CHANNELS.c.workspace_id == workspace_id
        )
    elif by == "team":
        query = sa.select(TEAMS.c.id, TEAMS.c.name).where(TEAMS.c.workspace_id == workspace_id)
    elif by == "agent":
        query = (
            sa.select(USERS.c.id, USERS.c.name)
            .join(MEMBERSHIPS, MEMBERSHIPS.c.user_id == USERS.c.id)
            .where(MEMBERSHIPS.c.workspace_id == workspace_id)
        )
    else:
        return {}
    found = {str(key): name for key, name in (await session.execute(query)).all()}
    if by == "agent":
        found[SYSTEM_SENDER_ID] = "Automatic"  # the hub's own messages (auto-replies)
    return found
