"""Sending an agent's reply to a platform: the shared types.

Sans-I/O like inbound: each adapter has a pure `build_send(Outgoing, Platforms) -> Request`
and a pure `interpret_send(status, body, headers) -> Outcome`; `adapters.sending.send` is the
thin pump between them and the only code that touches the network. It never raises for
anything the platform or the network does: every answer becomes an `Outcome`, which the
send worker turns into a retry, a "reconnect this channel" prompt or a failed message.

Tokens: Meta takes a bearer header; Telegram's documented API puts the bot token in the
path (`/bot<token>/`), and Instagram's token exchange and refresh put the token and app
secret in the query. `Request.redacted_url` and `repr(Request)` hide them, and a filter on
the `httpx` logger masks them in httpx's own "HTTP Request: POST <url>" log line.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from schemas.message import ChannelKind

TIMEOUT_S = 10.0
_BOT_TOKEN = re.compile(r"/bot[^/?#\s]+")  # Telegram's token path segment, wherever it appears
# Instagram's token exchange and refresh, and Graph's code exchanges (Facebook Login, Embedded
# Signup), are GETs with the token, the code and the app secret in the query.
_QUERY_SECRET = re.compile(
    r"([?&](?:access_token|client_secret|fb_exchange_token|code|input_token)=)[^&#\s]+"
)


def redact(text: str) -> str:
    """`text` with any Telegram `/bot<token>` path segment and any `access_token`,
    `client_secret`, `fb_exchange_token`, `code` or `input_token` query value masked."""
    return _QUERY_SECRET.sub(r"\1<redacted>", _BOT_TOKEN.sub("/bot<redacted>", text))


@dataclass(frozen=True, slots=True)
class Platforms:
    """Where each API lives; tests point these at the fake platform server."""

    graph: str = "https://graph.facebook.com/v23.0"
    instagram: str = "https://graph.instagram.com/v23.0"
    telegram: str = "https://api.telegram.org"


def base_urls(root: str | None = None) -> Platforms:
    """The real platforms, or all three under one `root` (a fake server, an egress proxy):
    `{root}/graph/v23.0`, `{root}/instagram/v23.0` and `{root}/telegram`."""
    if root is None:
        return Platforms()
    root = root.rstrip("/")
    return Platforms(f"{root}/graph/v23.0", f"{root}/instagram/v23.0", f"{root}/telegram")


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """One file of an agent's reply, as the platform takes it: its bytes (`data`), or for a
    platform that fetches files itself (`Adapter.media_by_url`) a short-lived `url` the hub
    serves (None: the hub has no public URL). `media_id` is set once an upload step
    (`Adapter.build_upload`) has given the platform's id for it."""

    content_type: str  # read from the bytes when the file was kept (hub.media.kinds)
    name: str
    data: bytes = field(default=b"", repr=False)
    url: str | None = field(default=None, repr=False)  # holds a signature: never logged
    media_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One reply to send: text, or one `file` with `text` as its caption (which may be "").
    `recipient` is the other party's platform id (IGSID, PSID, wa_id, Telegram chat id or
    "chat:thread" for a forum topic); `reply_to` a platform message id ("chat:message_id" on
    Telegram); `comment_id` set answers a comment, in public or as a private DM (`public`).
    `secrets`: `access_token` (Meta) or `bot_token`."""

    kind: ChannelKind
    account_id: str
    recipient: str
    text: str
    reply_to: str | None = None
    comment_id: str | None = None
    public: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    human_agent: bool = False  # past the 24 h window: Meta's HUMAN_AGENT tag (7 days)
    reaction: str | None = None  # an emoji on the message `reply_to` names ("" removes it)
    file: OutgoingFile | None = None
    # A WhatsApp template message: the `template` object of the send (name, language,
    # components); a header `file` is uploaded first and named in it. Sent outside the window.
    template: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP call to make. The body is `json`, or `form`: URL-encoded alone, and
    `multipart/form-data` with `files` (field -> (file name, bytes, content type))."""

    method: str
    url: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None

    @property
    def redacted_url(self) -> str:
        """The URL safe to log: Telegram's `/bot<token>/` masked."""
        return redact(self.url)

    def __repr__(self) -> str:
        # Header and form values are credentials (Authorization, client_secret, code): only
        # their names are shown.
        form = sorted(self.form) if self.form is not None else None
        files = sorted(self.files) if self.files is not None else None
        return (
            f"Request({self.method} {self.redacted_url}, json={_without_links(self.json)!r}, "
            f"form={form!r}, files={files!r}, headers={sorted(self.headers)!r})"
        )


def _without_links(value: Any) -> Any:
    """A JSON body with every `url` value masked: a file's link is signed (Instagram's)."""
    if isinstance(value, dict):
        return {k: "<redacted>" if k == "url" else _without_links(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_links(v) for v in value]
    return value


OutcomeKind = Literal["sent", "retry", "needs_reconnect", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a send. Build with the classmethods; match on `kind`:
    - sent: `platform_message_id` is set.
    - retry: try again, after `after_s` seconds when the platform said (else back off).
    - needs_reconnect: the token is expired or revoked; retrying cannot help.
    - failed: permanent for this message; `reason` is for the agent, `code` for machines.
    `code` is the platform's (Graph "131047" or "10/2018278", Telegram "403"), or ours:
    "http_<status>", "network" (no connection could be made: nothing left, so it is retried),
    "unknown_outcome" (no answer in time, or the connection lost after the request left: the
    platform may have the message, so it is not sent again), "bad_response", "too_long",
    "missing_secret", "unsupported", "no_public_url"; and for files "media_too_large",
    "media_refused_by_channel" (the platform's limits, checked before any call).
    """

    kind: OutcomeKind
    platform_message_id: str | None = None
    after_s: float | None = None
    reason: str = ""
    code: str = ""

    @classmethod
    def sent(cls, platform_message_id: str) -> Outcome:
        return cls("sent", platform_message_id=platform_message_id)

    @classmethod
    def retry(cls, reason: str, code: str, after_s: float | None = None) -> Outcome:
        return cls("retry", after_s=after_s, reason=reason, code=code)

    @classmethod
    def needs_reconnect(cls, reason: str, code: str) -> Outcome:
        return cls("needs_reconnect", reason=reason, code=code)

    @classmethod
    def failed(cls, reason: str, code: str) -> Outcome:
        return cls("failed", reason=reason, code=code)


class Unsendable(ValueError):
    """`build_send` cannot express this Outgoing as a request; nothing was sent. `send` turns it
    into a failed Outcome (`code`), or needs_reconnect for a missing secret."""

    code = "unsupported"


class TooLong(Unsendable):
    """The text exceeds the platform's limit (characters): Telegram and WhatsApp 4096,
    Messenger 2000, Instagram 1000. Raised by `build`, so nothing is sent."""

    code = "too_long"

    def __init__(self, limit: int, length: int) -> None:
        super().__init__(f"text is {length} characters; the limit here is {limit}")
        self.limit = limit
        self.length = length


class MissingSecret(Unsendable):
    code = "missing_secret"


class NoPublicUrl(Unsendable):
    """The platform fetches files from the hub (Instagram), and the hub has no public URL
    (`HUB_PUBLIC_URL`) to give it."""

    code = "no_public_url"


def check_length(text: str, limit: int) -> None:
    if len(text) > limit:
        raise TooLong(limit, len(text))


def secret(out: Outgoing, name: str) -> str:
    value = out.secrets.get(name)
    if not value:
        raise MissingSecret(f"the channel has no {name}")
    return value


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (the delta form; an HTTP date would need a clock, so it is
    treated as absent and the worker backs off on its own)."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


class _RedactBotTokens(logging.Filter):
    """httpx logs every request's full URL at INFO; some URLs hold a token (see `redact`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if isinstance(arg, str | httpx.URL) else arg for arg in record.args
            )
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactBotTokens) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactBotTokens())
