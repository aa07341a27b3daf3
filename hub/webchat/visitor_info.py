"""What the web-chat widget tells agents of its visitor: the page they are on and the page
they came from, their browser, language and time zone (docs/privacy.md lists them).

A channel collects it unless its widget settings say `visitor_info: false`; then the widget
sends nothing, and a request that comes anyway is refused (403 `visitor_info_off`) and
nothing is kept. The browser is summarized here from the request's User-Agent ("Firefox 133
on Linux"); the raw string is never kept. It travels as a `contact.updated` with `visitor`:
the agents' panels follow live, and the persist worker stores it on the contact (creating
the contact if the visitor has not written yet).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import VisitorClaims
from hub.bus.base import Bus
from hub.channels.options import widget_settings
from hub.errors import Forbidden, RateLimited
from hub.web.http import Body, read_body, services
from hub.web.operation import Operation, route
from hub.webchat.routes import _visitor, cors, preflight
from schemas.events import ContactUpdated, VisitorInfo

LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
# Checked in this order: Edge and Opera say Chrome too, Chrome says Safari too.
BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[.\d]* .*Safari/")),
)
SYSTEMS = (
    ("Android", "Android"),
    ("iOS", "iPhone"),
    ("iPadOS", "iPad"),
    ("Windows", "Windows"),
    ("macOS", "Mac OS X"),
    ("ChromeOS", "CrOS"),
    ("Linux", "Linux"),
)


class VisitorInfoOff(Forbidden):
    code = "visitor_info_off"
    default_message = "This channel does not collect visitor information."


class VisitorInfoBody(Body):
    token: str = Field(min_length=1, max_length=4096, description="The visitor token")
    page_url: str | None = Field(default=None, max_length=2000, description="location.href")
    page_title: str | None = Field(default=None, max_length=300, description="document.title")
    referrer: str | None = Field(default=None, max_length=2000, description="document.referrer")
    language: str | None = Field(default=None, max_length=35, description="navigator.language")
    time_zone: str | None = Field(
        default=None, max_length=64, description="The browser's IANA time zone"
    )


PER_MINUTE = 6  # reports a minute: a visitor clicking through pages quickly stays within it


def browser_of(user_agent: str) -> str | None:
    """A short name of the browser and system ("Chrome 131 on Windows"), or None."""
    name = next(
        (f"{label} {m.group(1)}" for label, rx in BROWSERS if (m := rx.search(user_agent))),
        None,
    )
    system = next((label for label, token in SYSTEMS if token in user_agent), None)
    if name and system:
        return f"{name} on {system}"
    return name or system


def _web_address(value: str | None) -> str | None:
    """An http(s) address's scheme, host and path, or None for anything else (javascript:,
    data:, ...). The query and fragment are dropped: they carry reset tokens, access tokens
    and e-mail addresses that must not end up on the contact, in exports or in webhooks."""
    if not value:
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.rpartition("@")[2]  # never a user:password@ either
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def info_of(body: VisitorInfoBody, user_agent: str) -> VisitorInfo:
    language = (body.language or "").strip()
    zone = (body.time_zone or "").strip()
    title = (body.page_title or "").replace("\x00", "").strip()
    return VisitorInfo(
        page_url=_web_address(body.page_url),
        page_title=title or None,
        referrer=_web_address(body.referrer),
        browser=browser_of(user_agent[:1000]),
        language=language if LANGUAGE.match(language) else None,
        time_zone=zone if TIME_ZONE.match(zone) else None,
    )


async def visitor_info(request: Request) -> Response:
    """Public: the page the visitor is on, from the widget, for the agents' contact panel."""
    if (early := preflight(request)) is not None:
        return early
    svc = services(request)
    body = await read_body(request, VisitorInfoBody)
    claims = await _visitor(request, body.token)
    channel = await svc.webchat.by_id(claims.workspace_id, claims.channel_id)
    if widget_settings(channel.settings).visitor_info is False:
        raise VisitorInfoOff()
    await _limit(svc.bus, claims)
    ref = svc.ingress.visitor_conversation(claims)
    info = info_of(body, request.headers.get("user-agent", ""))
    data = ContactUpdated(contact_id=ref.contact_id, visitor=info)
    await svc.bus.publish(str(claims.workspace_id), data.NAME, data.dump())
    return cors(Response(status_code=204), request.headers.get("origin"))


async def _limit(bus: Bus, claims: VisitorClaims) -> None:
    """At most PER_MINUTE reports a visitor a minute, counted on the bus across nodes: each
    one is an event on the workspace's stream. The widget sends one per page it is on."""
    told = await bus.count(
        str(claims.workspace_id),
        f"visitor-info:{claims.channel_id}:{claims.visitor_id}",
        window_s=60,
    )
    if told > PER_MINUTE:
        raise RateLimited("Too many visitor reports; wait a minute.", retry_after_s=60)


routes = [
    route(
        "/api/widget/visitor",
        visitor_info,
        "POST",
        "OPTIONS",
        op=Operation(
            "The page a visitor is on, their language and time zone",
            {204: ("Published to the agents as `contact.updated`; stored by the worker", None)},
            (400, 401, 403, 413, 429),
            body=VisitorInfoBody,
            auth=False,
            description="Public, with the visitor token in the body. The browser is "
            "summarized from the request's User-Agent; only http(s) addresses are kept, "
            "without their query or fragment. At most 6 a minute per visitor (429 "
            "`rate_limited`, with Retry-After). "
            "403 `visitor_info_off` when the channel's widget settings turn collection off "
            "(nothing is kept). The request's Origin must be one of the channel's allowed "
            "origins (403 `origin_not_allowed`).",
        ),
    ),
]
