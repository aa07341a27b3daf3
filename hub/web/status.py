"""Operational visibility over HTTP: `/readyz` (may this node take traffic?), `/metrics`
(Prometheus text, for loopback or a bearer token) and `/api/status` (the admin console's
Status tab). What the figures mean is in docs/operations.md.

`/api/status` shows this node's live figures (sockets, delivery rate and latency, send
outcomes: counts only, no ids) and the calling admin's own workspace's stream and channels;
`/metrics` shows the stream and channel figures summed over every workspace.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import replace
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.bus.base import BusStats
from hub.errors import Forbidden, NotReady
from hub.services import Services
from hub.storage.models import Channel
from hub.storage.store import Store
from hub.web.http import answer, authenticate, require_admin, services
from hub.web.metrics import Snapshot
from hub.web.operation import Operation, route
from schemas.rest.status import (
    BusLoss,
    EventRate,
    GroupFigures,
    Health,
    HubStatus,
    LatencyFigures,
    OutboundCount,
    Readiness,
    SocketCounts,
    StreamFigures,
)

log = logging.getLogger("hub.status")

T = TypeVar("T")

CHECK_TIMEOUT_S = 2.0  # a readiness check or a scrape-time query waits no longer
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


async def health(request: Request) -> Response:
    svc: Services = request.app.state.services
    bus_ok = await svc.bus.ping()
    try:
        async with svc.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        db_ok = True
    except Exception:
        db_ok = False
    status = 200 if bus_ok else 503  # the live path needs the bus; the database may catch up
    return JSONResponse(
        {"bus": bus_ok, "database": db_ok, "node": svc.settings.node_id}, status_code=status
    )


async def readyz(request: Request) -> Response:
    """200 when the bus, the database and the media store answer within CHECK_TIMEOUT_S,
    else 503 naming the failing checks; unlike /healthz (alive), a load balancer routes on
    this."""
    svc = services(request)
    bus, database, media = await asyncio.gather(
        _check("redis", svc.bus.ping()),
        _check("database", _select_one(svc)),
        _check("media", _media(svc)),
    )
    checks = {"redis": bus, "database": database, "media": media}
    # A past loss is reported, not failed on: the bus serves again, and failing every node's
    # probe would take the whole hub out of the load balancer for an event that is over.
    loss = {"bus_loss": svc.metrics.bus_loss} if svc.metrics.bus_loss is not None else {}
    failing = [name for name, result in checks.items() if result != "ok"]
    if not failing:
        return JSONResponse({"ready": True, "checks": checks, **loss})
    error = NotReady(f"Not ready: {', '.join(failing)} did not answer.")
    return JSONResponse(
        {"ready": False, "checks": checks, "error": error.as_dict(), **loss},
        status_code=error.status,
    )


async def _select_one(svc: Services) -> bool:
    async with svc.engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")
    return True


async def _media(svc: Services) -> bool:
    await svc.library.store.check()
    return True


async def _check(name: str, probe: Awaitable[bool]) -> str:
    """One line for a failed check (probes come every few seconds; a traceback each would
    bury the log), naming the check and the kind of failure, never its details."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            if await probe:
                return "ok"
            failure = "error"
            log.warning("readiness check %s failed: it answered no", name)
    except TimeoutError:
        failure = "timeout"
        log.warning("readiness check %s failed: no answer within %ss", name, CHECK_TIMEOUT_S)
    except Exception as exc:
        failure = "error"
        log.warning("readiness check %s failed: %s", name, type(exc).__name__)
    return failure


async def metrics(request: Request) -> Response:
    svc = services(request)
    if not may_scrape(request, svc.settings.metrics_token):
        raise Forbidden("Metrics are for loopback clients or the HUB_METRICS_TOKEN bearer.")
    figures = replace(await snapshot(svc, None), refused=refusals(request))
    body = svc.metrics.exposition(figures)
    return Response(body, media_type=PROMETHEUS_TEXT, headers={"cache-control": "no-store"})


def refusals(request: Request) -> dict[str, int]:
    """What the limits per address refused on this node: the listener's guard
    (`hub.web.guard`, set by `hub.web.serving`) and the app's socket quota, where they exist."""
    guard = getattr(request.app.state, "guard", None)
    counts: dict[str, int] = dict(guard.refused) if guard is not None else {}
    quota = getattr(request.app, "sockets", None)
    if quota is not None:
        counts["sockets_per_address"] = int(quota.refused)
    return counts


def may_scrape(request: Request, token: str | None) -> bool:
    """With a token: exactly `Authorization: Bearer <token>`, compared in constant time.
    Without: a loopback peer whose request did not come through a proxy (a proxy on the
    same machine would otherwise make every outside request look local)."""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    if any(name in request.headers for name in _FORWARDED):
        return False
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def snapshot(svc: Services, workspace_id: uuid.UUID | None) -> Snapshot:
    """The scrape-time figures: every workspace's (None) or one workspace's."""
    only = None if workspace_id is None else [str(workspace_id)]
    bus: BusStats | None = await _quietly("bus stats", svc.bus.stats(only))
    channels = await _quietly("channel counts", channel_counts(svc.store, workspace_id))
    return Snapshot(bus=bus, channels=channels)


async def channel_counts(store: Store, workspace_id: uuid.UUID | None) -> dict[str, int]:
    query = select(Channel.status, func.count()).group_by(Channel.status)
    if workspace_id is not None:
        query = query.where(Channel.workspace_id == workspace_id)
    async with store.sessions() as s:
        rows = (await s.exec(query)).all()
    return {str(status): int(n) for status, n in rows}


async def _quietly(what: str, work: Awaitable[T]) -> T | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await work
    except Exception as exc:  # a scrape reports what it could read
        log.warning("%s failed at scrape time: %r", what, exc)
        return None


async def status(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    svc = services(request)
    return answer(hub_status(svc, await snapshot(svc, principal.workspace_id)))


def hub_status(svc: Services, snap: Snapshot) -> HubStatus:
    m = svc.metrics
    per_s, window_s = m.events_per_s()
    latency = m.delivery.latency
    p50, p99 = latency.quantile(0.5), latency.quantile(0.99)
    bus = snap.bus
    return HubStatus(
        node=svc.settings.node_id,
        uptime_s=round(time.monotonic() - m.started_s, 1),
        sockets=SocketCounts(**m.sockets),
        events=EventRate(
            delivered=m.delivery.frames, per_s=round(per_s, 3), window_s=round(window_s, 1)
        ),
        latency_s=LatencyFigures(
            count=latency.count,
            p50=None if p50 is None else round(p50, 4),
            p99=None if p99 is None else round(p99, 4),
        ),
        outbound=[
            OutboundCount(channel=kind, result=result, code=code, count=n)
            for (kind, result, code), n in sorted(m.sends.items())
        ],
        stream=None
        if bus is None
        else StreamFigures(
            entries=bus.entries,
            groups={
                name: GroupFigures(lag=g.lag, pending=g.pending)
                for name, g in sorted(bus.groups.items())
            },
        ),
        channels=snap.channels,
        bus_loss=None
        if m.bus_loss is None
        else BusLoss(
            detected_at=m.bus_loss.get("detected_at", ""), node=m.bus_loss.get("node", "")
        ),
    )


# Any method, as ever: probes are not picky.
probes = [
    route(
        "/healthz",
        health,
        op=Operation(
            "Liveness and readiness",
            {200: ("The bus answers", Health), 503: ("The bus is down", Health)},
            auth=False,
            description="`database` may be false while the bus is up: live traffic still flows.",
        ),
    ),
    route(
        "/readyz",
        readyz,
        op=Operation(
            "Readiness: may this node take traffic",
            {
                200: ("The bus and the database answer", Readiness),
                503: ("A check failed (`not_ready`); `checks` names it", Readiness),
            },
            auth=False,
            description="For load balancers and orchestrators; /healthz only says the process "
            "is alive. Prometheus metrics are at /metrics (docs/operations.md).",
        ),
    ),
]
routes = [
    route(
        "/api/status",
        status,
        "GET",
        op=Operation(
            "The hub's status figures (admins)",
            {200: ("Figures now", HubStatus)},
            (401, 403),
            description="The admin console's Status tab. Sockets, delivery and sends are this "
            "node's, counted since it started; `stream` and `channels` are the caller's "
            "workspace's. The same figures for every workspace, in Prometheus form, are at "
            "/metrics.",
        ),
    )
]
