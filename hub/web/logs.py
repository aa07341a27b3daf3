"""Logs: one JSON object per line, or plain text, each with the id of the request or socket
it came from.

`HUB_LOG_FORMAT=json` (the default for `hub serve` and `hub worker`) writes lines such as

    {"ts": "2026-11-29T12:00:00.123+00:00", "level": "info", "logger": "hub.access",
     "msg": "POST /webhooks/meta 200", "request_id": "5f0c...",
     "http": {"method": "POST", "path": "/webhooks/meta", "status": 200, "ms": 3.1}}

and `text` (the default for `hub demo` and the one-shot commands) the same as plain lines.

Request ids: `RequestIds` takes a caller's `X-Request-Id` when it is a plain token (1 to 64 of
letters, digits, `.`, `_`, `-`), else makes one, answers it in `X-Request-Id`, and keeps it
for everything logged while the request or the socket lasts. One access line per HTTP
request gives the method, the path without its query (OAuth codes travel in queries), the
status and the time taken.

What is logged never holds a secret or a message's text: log calls name ids, counts and
error codes; URLs of platform calls are redacted (`adapters.outbound`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORMATS = ("json", "text")
request_id: ContextVar[str | None] = ContextVar("hub_request_id", default=None)
access = logging.getLogger("hub.access")

_GIVEN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


# One encoder for every line: `json.dumps` with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            line["request_id"] = record.request_id  # type: ignore[attr-defined]
        if hasattr(record, "http"):
            line["http"] = record.http
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


class _TextWithRequestId(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{text} [{rid}]" if rid else text


def configure(fmt: str, level: int = logging.INFO) -> None:
    """Send every logger's records (uvicorn's included) to stderr in this format."""
    if fmt not in FORMATS:
        raise ValueError(f"HUB_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    # Fields no line of ours writes are not gathered for every record (the logging HOWTO's
    # "Optimization"): 2 of the 15 µs of each request's access line; no format here names the
    # caller's file, line or function either, whose frame walk cost 1% of a webhook's CPU.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else _TextWithRequestId(_TEXT))
    handler.addFilter(_WithRequestId())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uvicorn = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NoSocketAccessLines) for f in uvicorn.filters):
        uvicorn.addFilter(_NoSocketAccessLines())


class _NoSocketAccessLines(logging.Filter):
    """uvicorn's line per accepted socket ('"WebSocket /ws/agent" [accepted]') and the
    websockets library's ("connection open", "connection closed", logged through uvicorn's
    error logger) are access lines, which uvicorn's access_log setting does not turn off; like
    its HTTP access log, they are left out (a reconnect storm wrote two per socket)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        msg = str(record.msg)
        return not (msg in _SOCKET_LINES or '"WebSocket %s"' in msg)


_SOCKET_LINES = frozenset({"connection open", "connection closed"})


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-Id if it looks like one, else a new id."""
    given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    return given if _GIVEN.fullmatch(given) else uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: the request id of every HTTP request and socket, and the access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        token = request_id.set(rid)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id.reset(token)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = logged_path(scope["path"])
            took = {"method": scope["method"], "path": path, "status": status}
            took["ms"] = round((time.perf_counter() - started) * 1000, 1)
            access.info("%s %s %s", scope["method"], path, status, extra={"http": took})
            request_id.reset(token)


SIGNED_LINKS = "/media/s/"


def logged_path(path: str) -> str:
    """A request's path as the access log keeps it: a signed media link's token is a
    credential for its ten minutes, so only its prefix is kept."""
    if path.startswith(SIGNED_LINKS):
        return SIGNED_LINKS + "…"
    return path
