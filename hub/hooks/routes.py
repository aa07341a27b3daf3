"""Outbound webhooks' REST endpoints (`hub.hooks.service`), admins only: endpoints, deliveries (the
dead-letter list is `?status=dead`) and a dead delivery's replay."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.errors import BadRequest
from hub.hooks.service import EVENTS, HookBody
from hub.web.http import admin_actor, page_limit, parse_uuid, read_body, services


class HookOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID
    url: str
    events: list[str]
    created_at: str
    secret: str | None = Field(
        default=None,
        description="Only when created: signs every request (X-Hub-Signature-256); not shown again",
    )


class HookPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[HookOut]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID = Field(description="Sent as X-Hub-Delivery, the same on every retry")
    endpoint_id: uuid.UUID
    event_id: str
    event: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int = Field(ge=0)
    last_status: int | None = Field(description="The receiver's last HTTP status")
    last_error: str | None
    created_at: str
    next_attempt_at: str | None = Field(description="When pending: the next try")
    delivered_at: str | None


class DeliveryPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[DeliveryOut] = Field(description="Newest first")


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""

    def path(name: str, what: str) -> dict[str, Any]:
        schema = {"type": "string", "format": "uuid"}
        return {"name": name, "in": "path", "required": True, "description": what, "schema": schema}

    status = {
        "name": "status",
        "in": "query",
        "required": False,
        "description": "Only these (dead: the dead-letter list)",
        "schema": {"type": "string", "enum": ["pending", "delivered", "dead"]},
    }
    return {
        ("/api/hooks", "get"): dict(
            summary="Outbound webhook endpoints (admins)",
            ok={200: ("Every endpoint, without secrets", HookPage)},
            errors=(401, 403),
        ),
        ("/api/hooks", "post"): dict(
            summary="Add an outbound webhook endpoint (admins)",
            ok={201: ("Added, with its secret, shown this once", HookOut)},
            errors=(400, 401, 403, 413),
            body=HookBody,
            description="Events: " + ", ".join(EVENTS) + ". 400 `invalid_hook_url` for a URL "
            "that is not https on a public address. Each event is POSTed with "
            "X-Hub-Signature-256: sha256=hex HMAC-SHA256(secret, timestamp + '.' + body) and "
            "X-Hub-Timestamp; retried with backoff, then dead. Audited as `hook.created`.",
        ),
        ("/api/hooks/{hook_id}", "delete"): dict(
            summary="Remove an outbound webhook endpoint (admins)",
            ok={204: ("Removed, with its deliveries", None)},
            errors=(401, 403, 404),
            params=(path("hook_id", "An endpoint id"),),
        ),
        ("/api/hooks/deliveries", "get"): dict(
            summary="Outbound webhook deliveries (admins)",
            ok={200: ("Newest first", DeliveryPage)},
            errors=(400, 401, 403),
            params=(status,),
        ),
        ("/api/hooks/deliveries/{delivery_id}/replay", "post"): dict(
            summary="Send a dead delivery again (admins)",
            ok={202: ("Due again now", DeliveryOut)},
            errors=(401, 403, 404),
            params=(path("delivery_id", "A dead delivery's id"),),
            description="Audited as `hook.replayed`.",
        ),
    }


async def list_hooks(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    items = await services(request).hooks().endpoints(principal.workspace_id)
    return JSONResponse({"items": items})


async def add_hook(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, HookBody)
    made = await services(request).hooks().add(principal.workspace_id, actor, body)
    return JSONResponse(made, status_code=201)


async def remove_hook(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    hook_id = parse_uuid(request.path_params["hook_id"], "webhook endpoint")
    await services(request).hooks().remove(principal.workspace_id, actor, hook_id)
    return Response(status_code=204)


async def list_deliveries(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    status = request.query_params.get("status") or None
    if status not in (None, "pending", "delivered", "dead"):
        raise BadRequest("status must be pending, delivered or dead.")
    hooks = services(request).hooks()
    items = await hooks.deliveries(principal.workspace_id, status, page_limit(request))
    return JSONResponse({"items": items})


async def replay(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    delivery_id = parse_uuid(request.path_params["delivery_id"], "delivery")
    row = await services(request).hooks().replay(principal.workspace_id, actor, delivery_id)
    return JSONResponse(row, status_code=202)


routes = [
    Route("/api/hooks", list_hooks, methods=["GET"]),
    Route("/api/hooks", add_hook, methods=["POST"]),
    # Before the endpoint id route, which it would otherwise match.
    Route("/api/hooks/deliveries", list_deliveries, methods=["GET"]),
    Route("/api/hooks/deliveries/{delivery_id}/replay", replay, methods=["POST"]),
    Route("/api/hooks/{hook_id}", remove_hook, methods=["DELETE"]),
]
