"""Serving the app with uvicorn, and leaving gracefully.

On SIGTERM (or Ctrl-C) a web node:

1. stops accepting connections;
2. tells every open socket to reconnect elsewhere: `error unavailable`, then close 1012
   (the clients resume from their cursors on another node), waiting at most a few seconds
   for them to go;
3. lets uvicorn finish the HTTP requests in hand, at most `shutdown_grace_s`;
4. stops the app (the lifespan): an embedded worker finishes and acks the batch in hand, at
   most `shutdown_grace_s` again, and nothing more is read.

So a node exits within about twice `shutdown_grace_s` plus the drain, whatever its clients do.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from hub.errors import HubError
from hub.realtime import sockets as ws
from hub.settings import Settings
from hub.web import guard, status
from hub.web.logs import RequestIds
from hub.web.websocket import WebSocketProtocol

if TYPE_CHECKING:
    from hub.services import Services

log = logging.getLogger("hub.serving")

DRAIN_MAX_S = 3.0
LISTEN_BACKLOG = 8192
# Python's collector thresholds (default 700, 10, 10). With the defaults, a node holding
# thousands of sockets runs a full collection every few seconds under load, each a pause of
# 0.1-0.75 s for every socket (docs/performance.md): young collections 10 times rarer, and a
# full one only after 100 middle ones.
GC_THRESHOLDS = (7_000, 20, 100)


def settle_gc() -> None:
    """Once a process has started: what start-up made (modules, routes, schemas) is frozen out
    of every later collection, and the thresholds above apply."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def config(app: Starlette, settings: Settings, host: str, port: int) -> uvicorn.Config:
    served = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=WebSocketProtocol,  # websockets-sansio, lighter per idle socket
        ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=settings.ping_interval_s,
        ws_ping_timeout=settings.ping_interval_s,
        ws_per_message_deflate=False,  # compression costs far more memory per socket than it saves
        log_config=None,  # hub.web.logs configures logging, uvicorn's loggers included
        log_level="info",
        access_log=False,  # hub.web.logs writes the access log, with request ids
        proxy_headers=True,
        # Room for a reconnect storm's connections to wait in (uvicorn's default is 2048; the
        # kernel caps it at net.core.somaxconn).
        backlog=LISTEN_BACKLOG,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )
    guarded(served, app, settings)
    return served


def guarded(served: uvicorn.Config, app: Starlette, settings: Settings) -> None:
    """Every HTTP listener of the hub reads headers under `hub.web.guard`'s deadline and cap;
    the proxies uvicorn trusts for X-Forwarded-For (FORWARDED_ALLOW_IPS) are not capped. The
    app keeps the guard, whose refusals /metrics counts."""
    trusted = served.forwarded_allow_ips
    pending = guard.Pending(
        header_timeout_s=settings.header_timeout_s,
        max_per_address=settings.max_pending_per_address,
        trusted=trusted.split(",") if isinstance(trusted, str) else trusted,
    )
    served.http = guard.protocol_class(pending)
    app.state.guard = pending


class Server(uvicorn.Server):
    """uvicorn's server, with the hub's own goodbye to its sockets before uvicorn's."""

    def __init__(self, app: Starlette, settings: Settings, host: str, port: int) -> None:
        super().__init__(config(app, settings, host, port))
        self.app = app
        self.drain_s = min(DRAIN_MAX_S, settings.shutdown_grace_s)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:  # no new connections while the sockets drain
            server.close()
        services: Any = getattr(self.app.state, "services", None)
        if services is not None:
            told = await ws.drain(services, self.drain_s)
            log.info("asked %d sockets to reconnect elsewhere", told)
        await super().shutdown(sockets)


def serve(app: Starlette, settings: Settings, host: str, port: int) -> None:
    server = Server(app, settings, host, port)
    settle_gc()
    server.run()


class _Embedded(uvicorn.Server):
    """A server inside a command that handles the signals itself (`hub worker`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def worker_endpoints(services: Services, host: str, port: int) -> _Embedded:
    """`hub worker --port`: /healthz, /readyz and /metrics of the worker process, whose send
    outcomes are counted here and nowhere else."""
    from hub.web.app import hub_error

    app = Starlette(
        routes=[*status.probes, Route("/metrics", status.metrics)],
        middleware=[Middleware(RequestIds)],
        exception_handlers={HubError: hub_error},
    )
    app.state.services = services
    served = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    guarded(served, app, services.settings)
    return _Embedded(served)
