"""Routing's REST API: teams (admins change them) and the queue of conversations nobody
has taken."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.routing.teams import TeamBody, TeamPatch
from hub.web.http import admin_actor, authenticate, parse_uuid, read_body, services


async def list_teams(request: Request) -> Response:
    principal = await authenticate(request)
    return JSONResponse({"items": await services(request).teams.all(principal.workspace_id)})


async def create_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, TeamBody)
    team = await services(request).teams.create(principal.workspace_id, actor, body)
    return JSONResponse(team, status_code=201)


async def change_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, TeamPatch)
    team_id = parse_uuid(request.path_params["team_id"], "team")
    team = await services(request).teams.change(principal.workspace_id, actor, team_id, body)
    return JSONResponse(team)


async def delete_team(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    team_id = parse_uuid(request.path_params["team_id"], "team")
    await services(request).teams.delete(principal.workspace_id, actor, team_id)
    return Response(status_code=204)


async def queue(request: Request) -> Response:
    """The open conversations nobody has been assigned, in all and by team."""
    principal = await authenticate(request)
    waiting = await services(request).store.queue(principal.workspace_id)
    return JSONResponse(
        {
            "unassigned": sum(waiting.values()),
            "teams": [
                {"team_id": str(team) if team else None, "unassigned": count}
                for team, count in waiting.items()
            ],
        }
    )


routes = [
    Route("/api/teams", list_teams, methods=["GET"]),
    Route("/api/teams", create_team, methods=["POST"]),
    Route("/api/teams/{team_id}", change_team, methods=["PATCH"]),
    Route("/api/teams/{team_id}", delete_team, methods=["DELETE"]),
    Route("/api/conversations/queue", queue, methods=["GET"]),
]
