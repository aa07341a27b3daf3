"""Outbound webhooks' REST endpoints (`hub.hooks.service`), admins only: endpoints, deliveries (the
dead-letter list is `?status=dead`) and a dead delivery's replay."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.errors import BadRequest
from hub.hooks.service import EVENTS, HookBody
from hub.web.http import admin_actor, answer, page_limit, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, param, route
from schemas.rest.hooks import DeliveryOut, DeliveryPage, HookOut, HookPage


async def list_hooks(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    items = await services(request).hooks().endpoints(principal.workspace_id)
    return answer(HookPage(items=items))


async def add_hook(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, HookBody)
    made = await services(request).hooks().add(principal.workspace_id, actor, body)
    return answer(made, 201)


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
    items = (
        await services(request)
        .hooks()
        .deliveries(principal.workspace_id, status, page_limit(request))
    )
    return answer(DeliveryPage(items=items))


async def replay(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    delivery_id = parse_uuid(request.path_params["delivery_id"], "delivery")
    row = await services(request).hooks().replay(principal.workspace_id, actor, delivery_id)
    return answer(row, 202)


routes = [
    route(
        "/api/hooks",
        list_hooks,
        "GET",
        op=Operation(
            "Outbound webhook endpoints (admins)",
            {200: ("Every endpoint, without secrets", HookPage)},
            (401, 403),
        ),
    ),
    route(
        "/api/hooks",
        add_hook,
        "POST",
        op=Operation(
            "Add an outbound webhook endpoint (admins)",
            {201: ("Added, with its secret, shown this once", HookOut)},
            (400, 401, 403, 413),
            body=HookBody,
            description="Events: " + ", ".join(EVENTS) + ". 400 `invalid_hook_url` for a URL "
            "that is not https on a public address. Each event is POSTed with "
            "X-Hub-Signature-256: sha256=hex HMAC-SHA256(secret, timestamp + '.' + body) and "
            "X-Hub-Timestamp; retried with backoff, then dead. Audited as `hook.created`.",
        ),
    ),
    # Before the endpoint id route, which it would otherwise match.
    route(
        "/api/hooks/deliveries",
        list_deliveries,
        "GET",
        op=Operation(
            "Outbound webhook deliveries (admins)",
            {200: ("Newest first", DeliveryPage)},
            (400, 401, 403),
            params=(
                param(
                    "status",
                    "query",
                    "Only these (dead: the dead-letter list)",
                    {"type": "string", "enum": ["pending", "delivered", "dead"]},
                ),
            ),
        ),
    ),
    route(
        "/api/hooks/deliveries/{delivery_id}/replay",
        replay,
        "POST",
        op=Operation(
            "Send a dead delivery again (admins)",
            {202: ("Due again now", DeliveryOut)},
            (401, 403, 404),
            params=(id_param("delivery_id", "A dead delivery's id"),),
            description="Audited as `hook.replayed`.",
        ),
    ),
    route(
        "/api/hooks/{hook_id}",
        remove_hook,
        "DELETE",
        op=Operation(
            "Remove an outbound webhook endpoint (admins)",
            {204: ("Removed, with its deliveries", None)},
            (401, 403, 404),
            params=(id_param("hook_id", "An endpoint id"),),
        ),
    ),
]
