"""The ASGI app: REST, websockets, the widget and the agent page. Errors become responses
here, in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import sqlalchemy.exc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from hub.channels import facebook, oauth
from hub.errors import OUTAGES, HubError, Unavailable, outage
from hub.realtime import admission
from hub.realtime import sockets as ws
from hub.services import Services
from hub.settings import Settings
from hub.web import api, openapi, status, webhooks
from hub.web.headers import PAGE_CSP, SecurityHeaders
from hub.web.logs import RequestIds, request_id, request_id_of
from hub.webchat import routes as webchat

log = logging.getLogger("hub.app")

STATIC = Path(__file__).parent.parent / "static"
WIDGET = Path(__file__).parent.parent.parent / "widget"


RETRY_AFTER_S = 5  # what a 503 tells a client to wait before trying again


async def hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    response = JSONResponse({"error": exc.as_dict()}, status_code=exc.status)
    retry_after_s = exc.retry_after_s
    if retry_after_s is None and exc.status == 503:  # a backing service is away: soon, then
        retry_after_s = RETRY_AFTER_S
    if retry_after_s is not None:
        response.headers["retry-after"] = str(retry_after_s)
    if request.url.path.startswith("/api/widget/"):  # the widget reads its error codes
        webchat.cors(response, request.headers.get("origin"))
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": {"code": code, "message": exc.detail}}, status_code=exc.status_code
    )


async def outage_error(request: Request, exc: Exception) -> Response:
    """A backing service is away (`hub.errors.OUTAGES`): retry later; no traceback each."""
    log.warning("%s %s: %s", request.method, request.url.path, type(exc).__name__)
    return await hub_error(request, Unavailable())


async def database_error(request: Request, exc: Exception) -> Response:
    """SQLAlchemy wraps a connection the server dropped or refused (while it starts, stops or
    recovers) as a plain DBAPIError: an outage too (`hub.errors.outage`). Anything else is
    unexpected, and goes on to `unexpected_error`."""
    if outage(exc):
        return await outage_error(request, exc)
    raise exc


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": HubError().as_dict()}, status_code=500)


def widget_script() -> bytes:
    """What /widget.js serves: the shared socket client (static/hubsocket.js, an ES module for
    the inbox) without its export line, then widget/widget.js, inside one closure, so the host
    page gets no global but `SosyoChat` (docs/widget.md)."""
    shared = (STATIC / "hubsocket.js").read_text()
    export = "export { hubSocket };\n"
    if not shared.endswith(export):
        raise RuntimeError(f"hub/static/hubsocket.js must end with {export!r}")
    widget = (WIDGET / "widget.js").read_text()
    script = f"(() => {{\n'use strict';\n{shared.removesuffix(export)}\n{widget}}})();\n"
    return script.encode()


WIDGET_JS = widget_script()  # read once, at start-up


async def widget_js(request: Request) -> Response:
    return Response(
        WIDGET_JS,
        media_type="application/javascript",
        headers={"cache-control": "public, max-age=300"},
    )


async def service_worker(request: Request) -> Response:
    """The inbox's service worker (static/sw.js) at the root, so its scope is the whole hub;
    a worker's policy comes with its script, so it gets the pages' own."""
    return FileResponse(
        STATIC / "sw.js",
        media_type="application/javascript",
        headers={"cache-control": "no-cache", "content-security-policy": PAGE_CSP},
    )


async def inbox_page(request: Request) -> Response:
    return FileResponse(STATIC / "inbox.html", media_type="text/html")


async def admin_page(request: Request) -> Response:
    return FileResponse(STATIC / "admin.html", media_type="text/html")


async def invite_page(request: Request) -> Response:
    """Where an invitation's link lands; its token stays in the fragment (invite.js)."""
    return FileResponse(STATIC / "invite.html", media_type="text/html")


async def reset_page(request: Request) -> Response:
    """Where a password-reset link lands; its token stays in the fragment (reset.js)."""
    return FileResponse(STATIC / "reset.html", media_type="text/html")


async def demo_page(request: Request) -> Response:
    key = request.query_params.get("channel", "")
    html = (WIDGET / "demo.html").read_text().replace("{{CHANNEL}}", _attr(key))
    return HTMLResponse(html)


def _attr(value: str) -> str:
    return "".join(c for c in value if c.isalnum() or c in "-_")


class HubApp(Starlette):
    """The hub's ASGI app. The two socket endpoints are called directly, not through the
    middleware stack and router: those do nothing for a socket but would each hold a coroutine
    frame for its whole life (about 4 KiB per socket) and wrap every frame it is sent. Each
    socket counts against its client address's share first (`hub.realtime.admission`)."""

    sockets: admission.SocketQuota  # set by create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = ws.ENDPOINTS.get(scope["path"]) if scope["type"] == "websocket" else None
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        client = scope.get("client")
        address = client[0] if client else ""
        if not self.sockets.take(address):
            await admission.refuse(WebSocket(scope, receive, send))
            return
        token = request_id.set(request_id_of(scope))
        try:
            await endpoint(WebSocket(scope, receive, send))
        finally:
            request_id.reset(token)
            self.sockets.give_back(address)


async def _check_persistence(services: Services) -> None:
    """One warning line at start when the bus's Redis keeps its data only in memory: an ack
    then promises less than docs/protocol.md says (docs/operations.md, Durability of an ack)."""
    from redis.exceptions import RedisError

    from hub.bus.redis import RedisBus  # only with REDIS_URL; the demo's bus keeps nothing

    if not isinstance(services.bus, RedisBus):
        return
    try:
        async with asyncio.timeout(3):
            warning = await services.bus.persistence_warning()
    except (RedisError, TimeoutError, OSError):
        warning = "could not tell at start whether Redis persists its data: it did not answer"
    if warning is not None:
        log.warning(warning)


def create_app(settings: Settings, *, run_worker: bool = False) -> Starlette:
    """A web process; with `run_worker` (the embedded default) it also runs the worker role."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = Services.build(settings)
        app.state.services = services
        await services.bus.start()
        if not settings.demo:
            await _check_persistence(services)
        await services.fanout.start()
        await services.epoch.start()
        client = httpx.AsyncClient(timeout=10)
        worker = services.worker(client) if run_worker else None
        if worker is not None:
            await worker.start()
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await client.aclose()
            await services.close()

    # The router tries routes in order: the platforms' webhooks, the busiest HTTP path,
    # come first rather than after the hundreds of API routes (14% of a webhook's CPU went
    # to matching those). No other route starts with /webhooks/.
    routes: list[BaseRoute] = [
        *webhooks.routes,
        Route("/metrics", status.metrics),
        Route("/api/openapi.json", openapi.endpoint),
        *api.routes,
        *oauth.routes,
        *facebook.routes,
        Route("/widget.js", widget_js),
        Route("/sw.js", service_worker),
        Route("/", inbox_page),
        Route("/admin", admin_page),
        Route("/invite", invite_page),
        Route("/reset", reset_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if settings.demo:
        routes.append(Route("/demo", demo_page))
    app = HubApp(
        routes=routes,
        middleware=[
            Middleware(
                RequestIds,
                security=SecurityHeaders(https=(settings.public_url or "").startswith("https:")),
            ),
        ],
        lifespan=lifespan,
        exception_handlers={
            HubError: hub_error,
            HTTPException: http_error,
            **dict.fromkeys(OUTAGES, outage_error),
            sqlalchemy.exc.DBAPIError: database_error,
            Exception: unexpected_error,
        },
    )
    app.sockets = admission.SocketQuota(settings.max_sockets_per_address)
    return app
