"""Notifications' REST endpoints: the caller's preferences, the hub's Web Push key, and the
caller's browsers' push subscriptions (`hub.notify.push`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.errors import NotFound
from hub.notify.push import check_endpoint, check_keys
from hub.web.http import answer, authenticate, read_body, services
from hub.web.operation import Operation, route
from schemas.rest.notify import (
    NotificationPrefs,
    PushKeyOut,
    SubscriptionBody,
    SubscriptionOut,
    UnsubscribeBody,
)


async def get_prefs(request: Request) -> Response:
    principal = await authenticate(request)
    prefs = await services(request).prefs.of(principal.workspace_id, principal.user_id)
    return answer(prefs)


async def put_prefs(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, NotificationPrefs)
    prefs = await services(request).prefs.put(principal.workspace_id, principal.user_id, body)
    return answer(prefs)


async def push_key(request: Request) -> Response:
    await authenticate(request)
    return answer(PushKeyOut(public_key=await services(request).push_keys.public_key()))


async def subscribe(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, SubscriptionBody)
    svc = services(request)
    endpoint = check_endpoint(body.endpoint, svc.settings.push_allow_loopback)
    check_keys(body.keys.p256dh, body.keys.auth)
    row = await svc.subscriptions.add(principal.workspace_id, principal.user_id, body, endpoint)
    return answer(SubscriptionOut(id=row.id, endpoint=row.endpoint), 201)


async def unsubscribe(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, UnsubscribeBody)
    gone = await services(request).subscriptions.remove(
        principal.workspace_id, principal.user_id, body.endpoint.strip()
    )
    if not gone:
        raise NotFound("No such push subscription of yours.")
    return Response(status_code=204)


_SUBS = "/api/me/push-subscriptions"

routes = [
    route(
        "/api/me/notifications",
        get_prefs,
        "GET",
        op=Operation(
            "The caller's notification preferences",
            {200: ("Each with its default when never set", NotificationPrefs)},
            (401,),
        ),
    ),
    route(
        "/api/me/notifications",
        put_prefs,
        "PUT",
        op=Operation(
            "Set the caller's notification preferences",
            {200: ("As kept", NotificationPrefs)},
            (400, 401, 403, 413),
            body=NotificationPrefs,
            description="The whole set; a field left out takes its default.",
        ),
    ),
    route(
        "/api/push/key",
        push_key,
        "GET",
        op=Operation(
            "The hub's Web Push (VAPID) public key",
            {200: ("The applicationServerKey to subscribe with", PushKeyOut)},
            (401,),
        ),
    ),
    route(
        _SUBS,
        subscribe,
        "POST",
        op=Operation(
            "Keep this browser's push subscription for the caller",
            {201: ("Kept (a subscription of the same endpoint is replaced)", SubscriptionOut)},
            (400, 401, 403, 413),
            body=SubscriptionBody,
            description="PushSubscription.toJSON(). The endpoint must be https on a public "
            "address (400 `invalid_push_endpoint`), the keys a P-256 point and a 16-byte "
            "secret (400 `invalid_push_keys`); at most 10 browsers per agent, the "
            "oldest goes.",
        ),
    ),
    route(
        _SUBS,
        unsubscribe,
        "DELETE",
        op=Operation(
            "Forget one of the caller's push subscriptions",
            {204: ("Forgotten", None)},
            (400, 401, 403, 404, 413),
            body=UnsubscribeBody,
        ),
    ),
]
