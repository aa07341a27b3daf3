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

import asyncio
import json
import logging
import math
import random
import re
import sys
import time
from contextvars import ContextVar
from typing import TextIO

import pydantic_core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.web.headers import SecurityHeaders

FORMATS = ("json", "text")
request_id: ContextVar[str | None] = ContextVar("hub_request_id", default=None)
access = logging.getLogger("hub.access")
root = logging.getLogger()

_GIVEN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


# A line is written by pydantic's serializer, a fifth of the cost of `json`'s (6 µs of each
# request's access line); `json` writes what that one refuses, such as a lone surrogate.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _json_line(line: dict[str, object]) -> str:
    try:
        return pydantic_core.to_json(line, fallback=str).decode()
    except pydantic_core.PydanticSerializationError:
        return _ENCODER.encode(line)


class JsonLines(logging.Formatter):
    _second: tuple[int, str] = (-1, "")  # the last second a line was written in, as text

    def format(self, record: logging.LogRecord) -> str:
        line = self._line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            getattr(record, "request_id", None),
        )
        if hasattr(record, "http"):
            line["http"] = record.http
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _json_line(line)

    def timestamp(self, created: float) -> str:
        """ISO 8601 in UTC, to the millisecond. The date and time to the second are made once
        a second: `datetime`'s were a sixth of an access line's CPU."""
        fraction, whole = math.modf(created)
        micros = round(fraction * 1e6)  # as `datetime` rounds a timestamp, carry and all
        second = int(whole) + micros // 1_000_000
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._second[1]}.{micros % 1_000_000 // 1000:03d}+00:00"

    def access_line(self, created: float, rid: str, http: dict[str, object]) -> str:
        """The line `format` writes for the access record `log_access` would log."""
        msg = f"{http['method']} {http['path']} {http['status']}"
        line = self._line(created, "info", access.name, msg, rid)
        line["http"] = http
        return _json_line(line)

    def _line(
        self, created: float, level: str, logger: str, msg: str, rid: str | None
    ) -> dict[str, object]:
        """A line's keys that every line has, and its request id when it has one."""
        line: dict[str, object] = {
            "ts": self.timestamp(created),
            "level": level,
            "logger": logger,
            "msg": msg,
        }
        if rid:
            line["request_id"] = rid
        return line


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
    handler = Lines(sys.stderr)
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


ACCESS_HELD_S = 0.1
_JSON_LINES = JsonLines()
AccessFields = tuple[float, str, dict[str, object]]  # when, the request id, the request's facts


class Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, where access lines go out in batches, as nginx buffers its access log: an access
    line logged on a running event loop waits up to ACCESS_HELD_S for the next ones, and they
    are written together. A write is a system call, and one per request was 4% of a webhook's
    CPU. Every other line is written at once, after the access lines held before it, so the
    order stays as logged; the lines still held at exit are written by `logging.shutdown`."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        # Lines as written, and the access lines `log_access` hands over as their fields
        self.held: list[str | AccessFields] = []
        self.due_on: asyncio.AbstractEventLoop | None = None  # a flush of what is held is due

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if record.name == access.name:
            self._hold(line)
        else:
            self.held.append(line)
            self.flush()

    def hold_access(self, fields: AccessFields) -> None:
        """An access line's fields (`log_access`), held as `emit` holds a line, and formatted
        by `JsonLines.access_line` with the rest of its batch when the batch is written: one
        after another, the formatting's code and data stay in the processor's caches, where a
        line formatted in its own request found them cold (8 µs a webhook at 1,000/s,
        measured against formatting each line in its request)."""
        with self.lock:  # type: ignore[union-attr]
            self._hold(fields)

    def _hold(self, line: str | AccessFields) -> None:
        """An access line held until its batch is due (at once where no loop runs)."""
        self.held.append(line)
        if not self._later():
            self.flush()

    def takes_access_lines(self) -> bool:
        """Whether an access line logged now would reach this handler alone, and be written
        by `JsonLines`: the access logger and those above it have no handler or filter of
        their own, and the root's one handler is this one (as `configure` leaves them)."""
        logger: logging.Logger | None = access
        if access.filters or not access.isEnabledFor(logging.INFO):
            return False
        while logger is not None and logger is not root:
            if logger.handlers or not logger.propagate:
                return False
            logger = logger.parent
        return root.handlers == [self] and isinstance(self.formatter, JsonLines)

    def _access_line(self, created: float, rid: str, http: dict[str, object]) -> str:
        formatter = self.formatter  # JsonLines when held (`takes_access_lines`), unless changed
        writer = formatter if isinstance(formatter, JsonLines) else _JSON_LINES
        return writer.access_line(created, rid, http)

    def _later(self) -> bool:
        """Whether a flush is due on this thread's running loop (made due now if none is)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # no loop on this thread: at once
        if self.due_on is None:
            loop.call_later(ACCESS_HELD_S, self.flush)
            self.due_on = loop
        return self.due_on is loop  # else written now, with what another loop held

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self.due_on = None  # a flush still due is harmless: it finds nothing held
            held, self.held = self.held, []
            try:
                if held:
                    lines = [x if isinstance(x, str) else self._access_line(*x) for x in held]
                    self.stream.write(self.terminator.join(lines) + self.terminator)
                super().flush()
            except (OSError, ValueError):  # stderr closed or gone: nowhere to write
                return


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
    """The caller's X-Request-Id if it looks like one, else a new id: 128 random bits in hex.
    An id only tells requests apart, so it comes from `random` (reseeded in a forked child)
    rather than the system's entropy, a system call per request."""
    name: bytes
    value: bytes
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _GIVEN.fullmatch(given):
                return given
            break
    return random.randbytes(16).hex()


class RequestIds:
    """ASGI middleware: the request id of every HTTP request and socket, the access log, and
    (given `security`) the security headers of every HTTP answer (`hub.web.headers`): one
    wrapper of `send` for both."""

    def __init__(self, app: ASGIApp, *, security: SecurityHeaders | None = None) -> None:
        self.app = app
        self.security = security

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
        path: str = scope["path"]

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if self.security is not None:
                    self.security.add(path, headers)
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = {"method": scope["method"], "path": logged_path(path), "status": status}
            took["ms"] = round((time.perf_counter() - started) * 1000, 1)
            log_access(took, rid)
            request_id.reset(token)


def log_access(http: dict[str, object], rid: str) -> None:
    """A request's access line, logged while its request id is the current one (`rid`).
    Through `logging` as any other line, except where `configure` set the handler up: there
    its fields are handed to it, which formats the same line with its batch, without a
    `LogRecord` or the logger's walk to its handler (6.2 µs down to 3.0, measured alone: the
    one line every request writes). `http` is not changed after."""
    handler = root.handlers[0] if root.handlers else None
    if isinstance(handler, Lines) and handler.takes_access_lines():  # the root's only one
        handler.hold_access((time.time(), rid, http))
        return
    access.info("%s %s %s", http["method"], http["path"], http["status"], extra={"http": http})


SIGNED_LINKS = "/media/s/"


def logged_path(path: str) -> str:
    """A request's path as the access log keeps it: a signed media link's token is a
    credential for its ten minutes, so only its prefix is kept."""
    if path.startswith(SIGNED_LINKS):
        return SIGNED_LINKS + "…"
    return path
