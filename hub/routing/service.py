"""Routing: which agent gets a conversation nobody has taken yet.

A channel's `settings.routing` says where its new conversations go: to a team (they join the
team's queue, `team_id`) or to the whole workspace, and, without a team, how they are
assigned. A team's own `assignment` says how its queue is assigned. The modes:

- `manual`: nobody is picked; the conversation waits in the queue until someone takes it.
- `round_robin`: the eligible agent who was given one longest ago.
- `least_busy`: the eligible agent with the fewest open conversations (then as round robin).

Eligible: a member (of the team, or of the workspace) whose presence is `online` (away and
offline agents get nothing new) and who holds fewer open conversations than their
`capacity` (none: no limit). Only `open` conversations count towards it; pending, snoozed and
resolved ones do not.

The queue drains oldest first, at the end of every persist batch that may have changed who
can take what: a new message, an agent's change to a conversation, an agent coming online,
a change of teams, capacities or channel routing (`routing.updated`). It runs in the batch's
transaction, after the batch's events: an assignment a person made in the batch has been
applied by then, and routing only ever fills an empty `assignee_id` (the UPDATE says so), so
a person's choice always wins. On Postgres a transaction-scoped advisory lock serializes the
workspace's routing across workers, so two of them never count the same free seat twice.

What routing did is announced afterwards as `conversation.updated` with `"routed": true`
and `"as_of"`: the id of the batch's last event. An inbox that has seen a person's assignment
of that conversation in a later event keeps that one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import hub.storage.models  # noqa: F401  (registers the tables)
from hub.bus import Event
from schemas.events import ConversationChanges, ConversationUpdated
from schemas.message import utc_now

Assignment = Literal["manual", "round_robin", "least_busy"]
ASSIGNMENTS: tuple[Assignment, ...] = ("manual", "round_robin", "least_busy")
QUEUE_ROUND = 100  # conversations considered per drain, oldest first
_TABLES = SQLModel.metadata.tables
CHANNELS = _TABLES["channels"]
CONVERSATIONS = _TABLES["conversations"]
MEMBERSHIPS = _TABLES["memberships"]
TEAMS = _TABLES["teams"]
TEAM_MEMBERS = _TABLES["team_members"]
_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)

# (workspace, user ids) -> presence by user id ("online", "away" or "offline")
Presences = Callable[[uuid.UUID, list[uuid.UUID]], Awaitable[dict[str, str]]]


class ChannelRouting(BaseModel):
    """A channel's routing (`Channel.settings["routing"]`)."""

    model_config = ConfigDict(extra="forbid")
    team_id: uuid.UUID | None = Field(
        default=None, description="New conversations join this team's queue; null: the workspace's"
    )
    assignment: Assignment = Field(
        default="manual",
        description="Without a team: how they are assigned (a team's own setting rules its queue)",
    )


@dataclass(slots=True)
class Agent:
    user_id: uuid.UUID
    capacity: int | None
    last_assigned_at: datetime
    load: int = 0

    def has_room(self) -> bool:
        return self.capacity is None or self.load < self.capacity


@dataclass(slots=True)
class Plan:
    """The workspace's routing configuration, as one drain reads it."""

    channels: dict[uuid.UUID, ChannelRouting] = field(default_factory=dict)
    teams: dict[uuid.UUID, Assignment] = field(default_factory=dict)
    team_members: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    declined: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # see `declined`

    def routed(self) -> bool:
        return any(r.team_id or r.assignment != "manual" for r in self.channels.values()) or any(
            mode != "manual" for mode in self.teams.values()
        )

    def mode_and_pool(
        self, channel_id: uuid.UUID, team_id: uuid.UUID | None
    ) -> tuple[Assignment, set[uuid.UUID] | None]:
        """How a conversation is assigned and among whom (None: every member)."""
        if team_id is not None:
            return self.teams.get(team_id, "manual"), self.team_members.get(team_id, set())
        channel = self.channels.get(channel_id)
        return (channel.assignment if channel else "manual"), None


def triggers(event: Event) -> bool:
    """Whether applying this event may let the queue move."""
    if event.name in ("message.created", "routing.updated"):
        return True
    if event.name == "presence":
        return '"online"' in event.data
    return (
        event.name == "conversation.updated"
        and '"changes"' in event.data
        and '"routed"' not in event.data  # routing's own announcement
    )


def declined(events: Iterable[Event]) -> dict[uuid.UUID, uuid.UUID]:
    """The conversations a person unassigned in these events, and who: the drain at the end
    of the batch gives each to someone else (later drains may give it to anyone)."""
    found: dict[uuid.UUID, uuid.UUID] = {}
    for event in events:
        if event.name != "conversation.updated" or '"assignee_id":null' not in event.data.replace(
            " ", ""
        ):
            continue
        data = event.typed()
        if (
            isinstance(data, ConversationUpdated)
            and data.changes is not None
            and data.changes.assignee_id is None
            and data.by is not None
        ):
            found[data.conversation_id] = data.by
    return found


def pick(agents: Iterable[Agent], mode: Assignment) -> Agent | None:
    if mode == "round_robin":
        return min(agents, key=lambda a: (a.last_assigned_at, a.user_id.hex), default=None)
    if mode == "least_busy":
        return min(agents, key=lambda a: (a.load, a.last_assigned_at, a.user_id.hex), default=None)
    return None


class Router:
    def __init__(self, presences: Presences) -> None:
        self.presences = presences

    async def plan(self, session: AsyncConnection, workspace_id: uuid.UUID) -> Plan:
        plan = Plan()
        channels = await session.execute(
            sa.select(CHANNELS.c.id, CHANNELS.c.settings).where(
                CHANNELS.c.workspace_id == workspace_id, CHANNELS.c.status == "connected"
            )
        )
        for channel_id, settings in channels:
            raw = (settings or {}).get("routing")
            if isinstance(raw, dict):
                plan.channels[channel_id] = ChannelRouting.model_validate(raw)
        teams = await session.execute(
            sa.select(TEAMS.c.id, TEAMS.c.assignment).where(TEAMS.c.workspace_id == workspace_id)
        )
        plan.teams = {team_id: mode for team_id, mode in teams}
        if plan.teams:
            members = await session.execute(
                sa.select(TEAM_MEMBERS.c.team_id, TEAM_MEMBERS.c.user_id)
                .join(
                    MEMBERSHIPS,
                    sa.and_(
                        MEMBERSHIPS.c.user_id == TEAM_MEMBERS.c.user_id,
                        MEMBERSHIPS.c.workspace_id == workspace_id,
                    ),
                )
                .where(TEAM_MEMBERS.c.workspace_id == workspace_id)
            )
            for team_id, user_id in members:
                plan.team_members.setdefault(team_id, set()).add(user_id)
        return plan

    async def lock(self, session: AsyncConnection, workspace_id: uuid.UUID) -> None:
        """Serialize this workspace's routing until the transaction ends (Postgres; SQLite
        runs one write transaction at a time anyway)."""
        if session.dialect.name == "postgresql":
            key = int.from_bytes(workspace_id.bytes[:8], "big", signed=True)
            await session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    async def drain(
        self, session: AsyncConnection, workspace_id: uuid.UUID, plan: Plan, as_of: str
    ) -> list[ConversationUpdated]:
        """Queue the routed channels' new conversations into their teams and assign what the
        eligible agents have room for; answers the `conversation.updated` events to announce."""
        announced: dict[uuid.UUID, ConversationChanges] = {}
        for channel_id, routing in plan.channels.items():
            if routing.team_id is None or routing.team_id not in plan.teams:
                continue
            queued = await session.execute(
                sa.update(CONVERSATIONS)
                .where(
                    CONVERSATIONS.c.workspace_id == workspace_id,
                    CONVERSATIONS.c.channel_id == channel_id,
                    CONVERSATIONS.c.assignee_id.is_(None),
                    CONVERSATIONS.c.status == "open",
                    CONVERSATIONS.c.team_id.is_(None),
                )
                .values(team_id=routing.team_id)
                .returning(CONVERSATIONS.c.id)
            )
            for (conversation_id,) in queued:
                announced[conversation_id] = ConversationChanges(team_id=routing.team_id)
        agents = await self._eligible(session, workspace_id)
        if agents:
            await self._assign(session, workspace_id, plan, agents, announced)
        return [
            ConversationUpdated(conversation_id=c, changes=changes, routed=True, as_of=as_of)
            for c, changes in announced.items()
        ]

    async def _eligible(self, session: AsyncConnection, workspace_id: uuid.UUID) -> list[Agent]:
        """The online members with room for one more, and how many they hold."""
        rows = (
            await session.execute(
                sa.select(
                    MEMBERSHIPS.c.user_id, MEMBERSHIPS.c.capacity, MEMBERSHIPS.c.last_assigned_at
                ).where(MEMBERSHIPS.c.workspace_id == workspace_id)
            )
        ).all()
        states = await self.presences(workspace_id, [row.user_id for row in rows])
        agents = {
            row.user_id: Agent(row.user_id, row.capacity, row.last_assigned_at or _LONG_AGO)
            for row in rows
            if states.get(str(row.user_id)) == "online"
        }
        if not agents:
            return []
        loads = await session.execute(
            sa.select(CONVERSATIONS.c.assignee_id, sa.func.count())
            .where(
                CONVERSATIONS.c.workspace_id == workspace_id,
                CONVERSATIONS.c.assignee_id.in_(list(agents)),
                CONVERSATIONS.c.status == "open",
            )
            .group_by(CONVERSATIONS.c.assignee_id)
        )
        for user_id, load in loads:
            agents[user_id].load = load
        return [a for a in agents.values() if a.has_room()]

    async def _assign(
        self,
        session: AsyncConnection,
        workspace_id: uuid.UUID,
        plan: Plan,
        agents: list[Agent],
        announced: dict[uuid.UUID, ConversationChanges],
    ) -> None:
        auto_teams = [t for t, mode in plan.teams.items() if mode != "manual"]
        auto_channels = [
            c for c, r in plan.channels.items() if r.team_id is None and r.assignment != "manual"
        ]
        if not auto_teams and not auto_channels:
            return
        waiting = await session.execute(
            sa.select(CONVERSATIONS.c.id, CONVERSATIONS.c.channel_id, CONVERSATIONS.c.team_id)
            .where(
                CONVERSATIONS.c.workspace_id == workspace_id,
                CONVERSATIONS.c.assignee_id.is_(None),
                CONVERSATIONS.c.status == "open",
                sa.or_(
                    CONVERSATIONS.c.team_id.in_(auto_teams),
                    sa.and_(
                        CONVERSATIONS.c.team_id.is_(None),
                        CONVERSATIONS.c.channel_id.in_(auto_channels),
                    ),
                ),
            )
            .order_by(CONVERSATIONS.c.created_at, CONVERSATIONS.c.id)
            .limit(QUEUE_ROUND)
        )
        now = utc_now()
        for conversation_id, channel_id, team_id in waiting.all():
            mode, pool = plan.mode_and_pool(channel_id, team_id)
            not_them = plan.declined.get(conversation_id)
            chosen = pick(
                (
                    a
                    for a in agents
                    if a.has_room()
                    and (pool is None or a.user_id in pool)
                    and a.user_id != not_them
                ),
                mode,
            )
            if chosen is None:
                continue
            done = await session.execute(
                sa.update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.assignee_id.is_(None))
                .values(assignee_id=chosen.user_id)
            )
            if done.rowcount != 1:
                continue
            # Strictly increasing, so that round robin moves on within one drain too.
            now += timedelta(microseconds=1)
            chosen.load += 1
            chosen.last_assigned_at = now
            await session.execute(
                sa.update(MEMBERSHIPS)
                .where(
                    MEMBERSHIPS.c.workspace_id == workspace_id,
                    MEMBERSHIPS.c.user_id == chosen.user_id,
                )
                .values(last_assigned_at=now)
            )
            announced.setdefault(
                conversation_id, ConversationChanges()
            ).assignee_id = chosen.user_id
            if not any(a.has_room() for a in agents):
                break
