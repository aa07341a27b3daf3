"""Routing's REST API: teams (admins change them) and the queue of conversations nobody
has taken."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.routing.teams import TeamBody, TeamPatch
from hub.web.http import admin_actor, answer, authenticate, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, route
from schemas.rest.routing import Queue, QueueCount, TeamOut, TeamPage


async def list_teams(request: Request) -> Response:
    principal = await authenticate(request)
    return answer(TeamPage(items=await services(request).teams.all(principal.workspace_id)))


async def create_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, TeamBody)
    team = await services(request).teams.create(principal.workspace_id, actor, body)
    return answer(team, 201)


async def change_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, TeamPatch)
    team_id = parse_uuid(request.path_params["team_id"], "team")
    team = await services(request).teams.change(principal.workspace_id, actor, team_id, body)
    return answer(team)


async def delete_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    team_id = parse_uuid(request.path_params["team_id"], "team")
    await services(request).teams.delete(principal.workspace_id, actor, team_id)
    return Response(status_code=204)


async def queue(request: Request) -> Response:
    """The open conversations nobody has been assigned, in all and by team."""
    principal = await authenticate(request)
    waiting = await services(request).store.queue(principal.workspace_id)
    return answer(
        Queue(
            unassigned=sum(waiting.values()),
            teams=[QueueCount(team_id=team, unassigned=count) for team, count in waiting.items()],
        )
    )


_TEAM = id_param("team_id", "A team id")

routes = [
    route(
        "/api/teams",
        list_teams,
        "GET",
        op=Operation(
            "The workspace's teams",
            {200: ("Every team", TeamPage)},
            (401,),
            description="Any member may list them (to move conversations between queues).",
        ),
    ),
    route(
        "/api/teams",
        create_team,
        "POST",
        op=Operation(
            "Create a team (admins)",
            {201: ("Created", TeamOut)},
            (400, 401, 403, 409, 413),
            body=TeamBody,
            description="409 when the name is taken. Audited as `team.created`.",
        ),
    ),
    route(
        "/api/teams/{team_id}",
        change_team,
        "PATCH",
        op=Operation(
            "Rename a team, change its assignment or its members (admins)",
            {200: ("The team", TeamOut)},
            (400, 401, 403, 404, 409, 413),
            body=TeamPatch,
            params=(_TEAM,),
            description="Audited as `team.updated` with the changed fields.",
        ),
    ),
    route(
        "/api/teams/{team_id}",
        delete_team,
        "DELETE",
        op=Operation(
            "Delete a team (admins)",
            {204: ("Deleted; its conversations keep their assignees and leave its queue", None)},
            (401, 403, 404),
            params=(_TEAM,),
            description="Audited as `team.deleted`.",
        ),
    ),
    route(
        "/api/conversations/queue",
        queue,
        "GET",
        op=Operation(
            "How many open conversations wait for an assignee",
            {200: ("In all and by team", Queue)},
            (401,),
            description="Routing (channel and team settings) assigns them as agents come "
            "online or have room; the rest wait here for someone to take them.",
        ),
    ),
]
