"""One error hierarchy. Each class carries its HTTP status, websocket close code and
machine-readable code; `hub.web.app` and `hub.realtime.sockets` map them to responses in one
place each."""

from __future__ import annotations

from typing import Any

import redis.exceptions
import sqlalchemy.exc

from schemas.codes import CloseCode


class HubError(Exception):
    status = 500
    close_code = CloseCode.INTERNAL
    code = "internal_error"
    default_message = "Internal error."
    extra: dict[str, Any] = {}  # more machine-readable detail (a platform's reason)
    retry_after_s: int | None = None  # REST: sent as `Retry-After` (every 503 has one)

    def __init__(self, message: str | None = None, *, retry_after_s: int | None = None) -> None:
        self.message = message or self.default_message
        if retry_after_s is not None:
            self.retry_after_s = max(1, retry_after_s)
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class BadRequest(HubError):
    status = 400
    close_code = CloseCode.BAD_FRAME
    code = "bad_request"
    default_message = "The request is malformed."


class BadFrame(BadRequest):
    code = "bad_frame"
    default_message = "The frame is malformed."


class UnsupportedVersion(BadFrame):
    code = "unsupported_version"
    default_message = "This hub speaks protocol versions 1 and 2."


class Unauthenticated(HubError):
    status = 401
    close_code = CloseCode.UNAUTHENTICATED
    code = "unauthenticated"
    default_message = "Authentication is required."


class SessionEnded(Unauthenticated):
    """On a live agent socket: its sign-in session ended (signed out, ended from another
    session or by an admin, a password change, a removal). Sign in again."""

    close_code = CloseCode.SESSION_ENDED
    code = "session_ended"
    default_message = "The session has ended; sign in again."


class Forbidden(HubError):
    status = 403
    close_code = CloseCode.FORBIDDEN
    code = "forbidden"
    default_message = "Not allowed."


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"
    default_message = "This page's origin is not allowed for the channel."


class IdentityInvalid(Forbidden):
    """A web-chat visitor claimed a user id without the channel's valid HMAC of it."""

    code = "identity_invalid"
    default_message = "The user_id and user_hash do not verify for this channel."


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    default_message = "Missing or wrong X-CSRF-Token header."


class NotFound(HubError):
    status = 404
    close_code = CloseCode.BAD_FRAME
    code = "not_found"
    default_message = "Not found."


class NoSuchChannel(NotFound):
    default_message = "No such channel."


class HelloTimeout(HubError):
    status = 408
    close_code = CloseCode.HELLO_TIMEOUT
    code = "hello_timeout"
    default_message = "No hello frame in time."


class CursorTooOld(HubError):
    """The resume cursor points before the oldest event still kept: reload over REST."""

    status = 410
    close_code = CloseCode.CURSOR_TOO_OLD
    code = "cursor_too_old"
    default_message = "The resume cursor is not among the kept events; reload over REST."


class TooBig(HubError):
    status = 413
    close_code = CloseCode.TOO_BIG
    code = "too_big"
    default_message = "The frame or body is over the size limit."


class RateLimited(HubError):
    """Too many requests in the window. On a socket it answers one send (never fatal); the
    close code is only what a fatal use would mean: try again later."""

    status = 429
    close_code = CloseCode.TOO_SLOW
    code = "rate_limited"
    default_message = "Too many messages; wait a moment and send again."


class TooManyConnections(HubError):
    """One client address holds as many sockets, or connections still sending their headers, as
    a node takes from one address (`hub.realtime.admission`, `hub.web.guard`): refused before
    the websocket handshake or the request, with Retry-After."""

    status = 429
    close_code = CloseCode.TOO_SLOW
    code = "too_many_connections"
    default_message = "Too many connections from this address; try again later."


class TooSlow(HubError):
    status = 503
    close_code = CloseCode.TOO_SLOW
    code = "too_slow"
    default_message = "The client did not keep up; reconnect and resume."


class Unavailable(HubError):
    status = 503
    close_code = CloseCode.RESTART
    code = "unavailable"
    default_message = "A backing service is unavailable; retry shortly."


# What says a backing service (Redis, the database) could not be reached or did not answer:
# the request may succeed once it is back, so it is answered `unavailable` (503, close 1012),
# not `internal_error`.
OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # refused, reset, still loading its data
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,  # the database away, or locked for too long
    sqlalchemy.exc.InterfaceError,
    ConnectionError,  # refused or reset before a client library wrapped it
)


def outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGES) or _connection_state_lost(exc)


# A database connection lost or refused, which SQLAlchemy wraps as a DBAPIError (or
# InternalError) rather than as a disconnect, though it means the same: this try failed for
# want of a connection, and a retry, once the server is back, takes another one. asyncpg says
# so by SQLSTATE: the connection exceptions of class 08 (a connection the server dropped
# mid-query, "terminating connection due to administrator command", is 08003) and the
# server's refusals while it shuts down, crashes or starts up or recovers (57P01 to 57P03,
# "the database system is starting up"); and, without one, by its InternalClientError for a
# connection left mid-operation ("cannot switch to state ...; another operation is in
# progress").
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _connection_state_lost(exc: BaseException) -> bool:
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None)
    for cause in (orig, getattr(orig, "__cause__", None)):
        if type(cause).__name__ == "InternalClientError":
            return True
        if str(getattr(cause, "sqlstate", None) or "").startswith(_UNREACHABLE_SQLSTATES):
            return True
    return False


class NotReady(Unavailable):
    """/readyz: a backing service (the bus, the database) did not answer in time."""

    code = "not_ready"
    default_message = "Not ready: a backing service did not answer."


class NotDurable(Unavailable):
    """A strict durable ack (HUB_BUS_DURABLE_ACK) could not confirm in time that the entry is
    durable: no ack, the documented retryable `unavailable`; a retry with the same client_id
    (or the platform's redelivery) cannot make a second message."""

    default_message = "The message is not yet durable; retry shortly with the same client_id."


class Conflict(HubError):
    status = 409
    close_code = CloseCode.BAD_FRAME
    code = "conflict"
    default_message = "That conflicts with what exists."
