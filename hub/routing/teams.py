"""Teams and the other routing settings an admin changes: a team's name, members and how its
queue is assigned (`hub.routing.service`), an agent's capacity, and a channel's routing.

Every change writes its audit row in the same transaction, and then `routing.updated` goes
out on the workspace's stream: inboxes reload the teams, and the persist worker drains the
queue, since a new member or a larger capacity may let waiting conversations through.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.accounts.members import Actor, by_member
from hub.bus import Bus
from hub.errors import BadRequest, Conflict, NotFound
from hub.routing.service import Assignment
from hub.storage import audit
from hub.storage.models import Membership, Team, TeamMember
from hub.storage.store import Sessions
from schemas.events import RoutingUpdated
from schemas.rest.routing import TeamOut

MAX_TEAMS = 100
MAX_TEAM_MEMBERS = 500


class TeamBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    assignment: Assignment = Field(
        default="manual",
        description="manual: the queue waits for someone to take it; round_robin: the online "
        "agent given one longest ago; least_busy: the online agent with the fewest open",
    )
    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_TEAM_MEMBERS)


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    assignment: Assignment | None = None
    member_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=MAX_TEAM_MEMBERS, description="The whole set, replacing it"
    )


def team_out(team: Team, member_ids: list[uuid.UUID]) -> TeamOut:
    return TeamOut(
        id=team.id,
        name=team.name,
        assignment=team.assignment,
        member_ids=sorted(member_ids, key=str),
    )


class Teams:
    def __init__(self, sessions: Sessions, bus: Bus) -> None:
        self.sessions = sessions
        self.bus = bus

    async def all(self, workspace_id: uuid.UUID) -> list[TeamOut]:
        async with self.sessions() as s:
            teams = (
                await s.exec(
                    select(Team).where(Team.workspace_id == workspace_id).order_by(col(Team.name))
                )
            ).all()
            members = await _members(s, workspace_id)
        return [team_out(t, members.get(t.id, [])) for t in teams]

    async def create(self, workspace_id: uuid.UUID, actor: Actor, body: TeamBody) -> TeamOut:
        try:
            async with self.sessions() as s, s.begin():
                count = await s.exec(
                    select(sa.func.count())
                    .select_from(Team)
                    .where(Team.workspace_id == workspace_id)
                )
                if count.one() >= MAX_TEAMS:
                    raise Conflict(f"A workspace has at most {MAX_TEAMS} teams.")
                team = Team(workspace_id=workspace_id, name=body.name, assignment=body.assignment)
                s.add(team)
                await s.flush()
                members = await _set_members(s, workspace_id, team.id, body.member_ids)
                await audit.append(
                    s,
                    by_member(
                        workspace_id,
                        actor,
                        "team.created",
                        team.id,
                        {"assignment": team.assignment, "members": len(members)},
                        "team",
                    ),
                )
                answer = team_out(team, members)
        except IntegrityError:
            raise _taken() from None
        await self._announce(workspace_id, actor)
        return answer

    async def change(
        self, workspace_id: uuid.UUID, actor: Actor, team_id: uuid.UUID, patch: TeamPatch
    ) -> TeamOut:
        try:
            async with self.sessions() as s, s.begin():
                team = await _team(s, workspace_id, team_id)
                changed = [
                    name
                    for name in ("name", "assignment")
                    if getattr(patch, name) is not None
                    and getattr(patch, name) != getattr(team, name)
                ]
                for name in changed:
                    setattr(team, name, getattr(patch, name))
                s.add(team)
                if patch.member_ids is not None:
                    before = (await _members(s, workspace_id, team_id)).get(team_id, [])
                    members = await _set_members(s, workspace_id, team_id, patch.member_ids)
                    if set(before) != set(members):
                        changed.append("member_ids")
                else:
                    members = (await _members(s, workspace_id, team_id)).get(team_id, [])
                if changed:
                    await audit.append(
                        s,
                        by_member(
                            workspace_id,
                            actor,
                            "team.updated",
                            team_id,
                            {"fields": changed},
                            "team",
                        ),
                    )
                answer = team_out(team, members)
        except IntegrityError:
            raise _taken() from None
        await self._announce(workspace_id, actor)
        return answer

    async def delete(self, workspace_id: uuid.UUID, actor: Actor, team_id: uuid.UUID) -> None:
        """The team goes; its conversations keep their assignees and leave its queue."""
        async with self.sessions() as s, s.begin():
            team = await _team(s, workspace_id, team_id)
            await s.delete(team)
            await audit.append(
                s, by_member(workspace_id, actor, "team.deleted", team_id, {}, "team")
            )
        await self._announce(workspace_id, actor)

    async def exists(self, workspace_id: uuid.UUID, team_id: uuid.UUID) -> bool:
        async with self.sessions() as s:
            found = await s.exec(
                select(Team.id).where(Team.workspace_id == workspace_id, Team.id == team_id)
            )
            return found.first() is not None

    async def _announce(self, workspace_id: uuid.UUID, actor: Actor) -> None:
        await announce(self.bus, workspace_id, actor.user_id)


async def announce(bus: Bus, workspace_id: uuid.UUID, by: uuid.UUID) -> None:
    """Routing's settings changed: inboxes reload them, and the queue may move."""
    data = RoutingUpdated(by=by)
    await bus.publish(str(workspace_id), data.NAME, data.dump())


def _taken() -> Conflict:
    return Conflict("A team of that name exists already.")


async def _team(s: AsyncSession, workspace_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    team = (
        await s.exec(select(Team).where(Team.workspace_id == workspace_id, Team.id == team_id))
    ).first()
    if team is None:
        raise NotFound("No such team.")
    return team


async def _members(
    s: AsyncSession, workspace_id: uuid.UUID, team_id: uuid.UUID | None = None
) -> dict[uuid.UUID, list[uuid.UUID]]:
    query = select(TeamMember.team_id, TeamMember.user_id).where(
        TeamMember.workspace_id == workspace_id
    )
    if team_id is not None:
        query = query.where(TeamMember.team_id == team_id)
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for team, user in (await s.exec(query)).all():
        found.setdefault(team, []).append(user)
    return found


async def _set_members(
    s: AsyncSession, workspace_id: uuid.UUID, team_id: uuid.UUID, wanted: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The team's whole member set; each must be a member of the workspace."""
    users = set(wanted)
    if users:
        known = await s.exec(
            select(Membership.user_id).where(
                Membership.workspace_id == workspace_id, col(Membership.user_id).in_(users)
            )
        )
        missing = users - set(known.all())
        if missing:
            raise BadRequest(f"{sorted(missing)[0]} is not a member of this workspace.")
    await s.exec(sa.delete(TeamMember).where(col(TeamMember.team_id) == team_id))
    for user_id in sorted(users):
        s.add(TeamMember(workspace_id=workspace_id, team_id=team_id, user_id=user_id))
    await s.flush()
    return sorted(users)
