"""Every websocket close code the hub sends, as one enum (docs/protocol.md)."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """Every websocket close code the hub sends (docs/protocol.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    INVALID_TEXT = 1007  # by the websocket layer: a text message that is not UTF-8
    TOO_BIG = 1009
    INTERNAL = 1011
    RESTART = 1012
    TOO_SLOW = 1013
    BAD_FRAME = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    HELLO_TIMEOUT = 4408
    CURSOR_TOO_OLD = 4409
    SESSION_ENDED = 4410  # the sign-in session this socket was opened from has ended
