"""What an admin may change on a channel once it is connected: its name and, for a web-chat
channel, where the widget may be embedded (allowed origins), how it looks and behaves (title,
greeting, colour, locale, position, pre-chat form, consent, business hours; kept in
`Channel.settings`) and its identity-verification secret (sealed in `Channel.secrets`).

An origin is what a browser sends in its Origin header: `scheme://host[:port]`, nothing else.
They are stored normalized (lower case, punycode, no default port, no trailing slash), since
`hub.webchat.service` compares them exactly; `*` allows every origin.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import col, select

from hub.canned import placeholders
from hub.channels.hours import DAYS, BusinessHours
from hub.errors import BadRequest
from hub.routing.service import ChannelRouting
from hub.storage import audit
from hub.storage.inbox import channel_of
from hub.storage.models import Channel, Conversation
from hub.storage.store import Store
from hub.storage.vault import Vault
from hub.templates.service import has_templates

log = logging.getLogger("hub.channelsettings")

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"{LABEL}(?:\.{LABEL})*")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGIN_CHARS = 300


class InvalidOrigin(BadRequest):
    code = "invalid_origin"
    default_message = "An allowed origin is scheme://host[:port], with no path."


class InvalidColour(BadRequest):
    code = "invalid_colour"
    default_message = "The colour must be #rrggbb."


class NotWhatsApp(BadRequest):
    code = "not_whatsapp"
    default_message = "Only a WhatsApp channel has a WhatsApp Business Account id."


class NotWebChat(BadRequest):
    code = "not_webchat"
    default_message = "Only a web-chat channel has allowed origins and widget settings."


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
assert get_args(Day) == DAYS


class Prechat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=False, description="Ask for a name (and e-mail) first")
    require_email: bool = False


class Hours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = Field(max_length=64, description="An IANA name, such as Europe/Istanbul")
    days: dict[Day, Annotated[list[tuple[str, str]], Field(max_length=10)]] = Field(
        description='Per day, ["HH:MM", "HH:MM"] ranges (start before end; "24:00" ends at '
        "midnight); a day left out is closed"
    )
    offline_message: str | None = Field(default=None, min_length=1, max_length=300)
    auto_reply: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Sent once per closed period to a contact who writes while closed; may "
        "hold placeholders ({{contact.first_name | there}}). Null: no auto-reply",
    )

    def business_hours(self) -> BusinessHours:
        return BusinessHours.parse(self.timezone, {str(k): v for k, v in self.days.items()})


class WidgetSettings(BaseModel):
    """The web-chat widget's look and behaviour. A field sent as null goes back to the
    widget's default (for `hours`: always open)."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=60)
    greeting: str | None = Field(default=None, min_length=1, max_length=300)
    colour: str | None = Field(default=None, description="#rrggbb")
    locale: Literal["en", "tr"] | None = None
    position: Literal["right", "left"] | None = None
    prechat: Prechat | None = None
    consent_required: bool | None = Field(
        default=None, description="Keep nothing on the visitor's device until a chat starts"
    )
    hours: Hours | None = Field(default=None, description="Business hours; null: always open")
    visitor_info: bool | None = Field(
        default=None,
        description="Tell agents the visitor's page, referrer, browser, language and time zone "
        "(docs/privacy.md); null or true: on, false: the widget sends none and none is kept",
    )


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    allowed_origins: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Web chat: the pages' origins, scheme://host[:port]; `*` allows any",
    )
    settings: WidgetSettings | None = Field(default=None, description="Web chat only")
    routing: ChannelRouting | None = Field(
        default=None, description="Where new conversations go and how they are assigned"
    )
    hours: Hours | None = Field(
        default=None,
        description="Business hours, any kind of channel (send null for always open); a web "
        "chat's widget goes offline outside them",
    )
    business_account_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[0-9]+$",
        description="WhatsApp: the WhatsApp Business Account (WABA) id its templates are "
        "read from, for a channel connected without it",
    )


def normalize_origin(raw: str) -> str:
    value = raw.strip()
    if value == "*":
        return value
    bad = InvalidOrigin(f"{raw[:80]!r} is not an origin: give scheme://host[:port], no path.")
    if len(value) > MAX_ORIGIN_CHARS or any(c in value for c in "?# \\@"):
        raise bad
    try:
        parts = urlsplit(value)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise bad from None
    if parts.scheme not in DEFAULT_PORTS or parts.path not in ("", "/"):
        raise bad
    if parts.netloc.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise bad from None
    elif not HOST.fullmatch(host):
        raise bad
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}:{port}"
    return f"{parts.scheme}://{host}"


def normalize_origins(values: list[str]) -> list[str]:
    return list(dict.fromkeys(normalize_origin(v) for v in values))


def _widget_changes(given: WidgetSettings) -> dict[str, Any]:
    changes = given.model_dump(include=given.model_fields_set)
    colour = changes.get("colour")
    if colour is not None:
        if not COLOUR.fullmatch(colour):
            raise InvalidColour(f"{colour[:20]!r} is not a colour: give #rrggbb.")
        changes["colour"] = colour.lower()
    if given.hours is not None:
        changes["hours"] = _hours(given.hours)
    return changes


def _hours(hours: Hours) -> dict[str, Any]:
    """Checked (`invalid_timezone`, `invalid_hours`, `unknown_placeholder`) and as stored."""
    hours.business_hours()
    if hours.auto_reply:
        placeholders.check(hours.auto_reply)
    stored = hours.model_dump(exclude={"auto_reply"} if hours.auto_reply is None else None)
    stored["days"] = {
        day: sorted([list(pair) for pair in ranges]) for day, ranges in hours.days.items() if ranges
    }
    return stored


def widget_settings(stored: dict[str, Any]) -> WidgetSettings:
    """A channel's stored widget settings, read back (what `update_channel` wrote)."""
    known = {k: v for k, v in stored.items() if k in WidgetSettings.model_fields}
    return WidgetSettings.model_validate(known)


async def update_channel(
    store: Store,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    patch: ChannelPatch,
    *,
    actor_id: uuid.UUID,
    ip: str | None,
) -> Channel:
    """Apply the patch; one `channel.updated` audit row names the fields that changed.
    Other nodes see new origins within their web-chat cache's TTL."""
    origins = (
        normalize_origins(patch.allowed_origins) if patch.allowed_origins is not None else None
    )
    widget = _widget_changes(patch.settings) if patch.settings is not None else None
    async with store.sessions() as s, s.begin():
        channel = await channel_of(s, workspace_id, channel_id)
        if (origins is not None or widget is not None) and channel.kind != "webchat":
            raise NotWebChat()
        waba = patch.business_account_id
        if waba is not None and not has_templates(channel.kind):
            raise NotWhatsApp()
        changed: list[str] = []
        if patch.name is not None and patch.name != channel.name:
            channel.name = patch.name
            changed.append("name")
        if origins is not None and origins != channel.allowed_origins:
            channel.allowed_origins = origins
            changed.append("allowed_origins")
        if waba is not None and waba != channel.account_ids.get("business_account_id"):
            channel.account_ids = {**channel.account_ids, "business_account_id": waba}
            changed.append("business_account_id")
        if patch.routing is not None:
            widget = (widget or {}) | {"routing": patch.routing.model_dump(mode="json")}
        if "hours" in patch.model_fields_set:  # null: always open
            widget = (widget or {}) | {"hours": _hours(patch.hours) if patch.hours else None}
        if widget:
            merged = {**channel.settings, **widget}
            merged = {k: v for k, v in merged.items() if v is not None}
            changed.extend(
                f"settings.{k}" for k in sorted(widget) if merged.get(k) != channel.settings.get(k)
            )
            channel.settings = merged
        if changed:
            s.add(channel)
            await audit.append(
                s,
                audit.record(
                    workspace_id,
                    "channel.updated",
                    "channel",
                    channel_id,
                    actor_type="user",
                    actor_id=actor_id,
                    ip=ip,
                    detail={"fields": changed},
                ),
            )
    return channel


async def rotate_identity_secret(
    store: Store,
    vault: Vault,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    ip: str | None,
) -> str:
    """A new identity-verification secret for a web-chat channel, replacing the old one at
    once. Stored sealed; the caller shows it this once. The audit row holds no secret."""
    secret = secrets.token_urlsafe(32)
    async with store.sessions() as s, s.begin():
        channel = await channel_of(s, workspace_id, channel_id)
        if channel.kind != "webchat":
            raise NotWebChat("Only a web-chat channel has an identity secret.")
        channel.secrets = vault.seal({"identity_secret": secret})  # a web chat's only secret
        s.add(channel)
        await audit.append(
            s,
            audit.record(
                workspace_id,
                "channel.identity_secret_rotated",
                "channel",
                channel_id,
                actor_type="user",
                actor_id=actor_id,
                ip=ip,
            ),
        )
    return secret


async def last_events(store: Store, workspace_id: uuid.UUID) -> dict[uuid.UUID, datetime]:
    """When each channel last received a message, from its conversations (which the persist
    group keeps): `Channel.last_event_at` is not written on the live path."""
    query = (
        select(Conversation.channel_id, sa.func.max(col(Conversation.last_inbound_at)))
        .where(Conversation.workspace_id == workspace_id)
        .group_by(col(Conversation.channel_id))
    )
    async with store.sessions() as s:
        rows = (await s.exec(query)).all()
    return {channel_id: at for channel_id, at in rows if at is not None}


def open_at(hours: Hours | None, at: datetime) -> bool:
    """Whether a channel with these hours (None: always open) is open at `at`."""
    return hours is None or hours.business_hours().is_open(at)


def hours_of(settings: dict[str, Any] | None) -> Hours | None:
    """A channel's stored business hours (None: always open, or hours that no longer
    validate, which are logged)."""
    raw = (settings or {}).get("hours")
    if not isinstance(raw, dict):
        return None
    try:
        return Hours.model_validate(raw)
    except ValidationError:
        log.warning("a channel has hours that do not validate")
        return None
