"""The OpenAPI description of the widget's endpoints (`hub.webchat.routes`): the answer models,
which mirror `config_json`, `visible_message` and the token answer (checked against real
answers in tests/test_openapi.py), and the operations, which `hub.web.openapi` assembles with
the rest."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.webchat.routes import HistoryBody, ProfileBody, VisitorTokenBody
from schemas.frames import Cursor
from schemas.message import Attachment, DeliveryStatus, Direction, SenderType


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WidgetPrechat(_Out):
    enabled: bool = Field(description="Ask for a name (and e-mail) before the chat")
    require_email: bool


class WidgetHours(_Out):
    open_now: bool
    offline_message: str | None = Field(description="What to show while closed")
    next_open_at: datetime | None = Field(description="UTC; none while open or never opening")
    timezone: str = Field(description="The IANA zone the hours are in")


class WidgetLimits(_Out):
    max_message_chars: int
    messages_per_minute: int = Field(description="Per visitor; more get `error rate_limited`")


class WidgetConfig(_Out):
    title: str
    greeting: str | None
    colour: str = Field(pattern="^#[0-9a-f]{6}$")
    position: Literal["right", "left"]
    locale: Literal["en", "tr"] | None = Field(description="None: the browser's language")
    prechat: WidgetPrechat
    consent_required: bool = Field(
        description="Keep nothing on the device until the visitor starts a chat"
    )
    identity: bool = Field(description="The channel has an identity secret")
    hours: WidgetHours | None = Field(description="None: always open")
    limits: WidgetLimits


class VisitorToken(_Out):
    token: str = Field(description="The token of the visitor websocket's `hello` frame")
    visitor_id: str
    conversation_id: uuid.UUID
    identified: bool = Field(description="user_id and user_hash were verified")


class VisibleSender(_Out):
    type: SenderType
    name: str | None


class VisibleError(_Out):
    code: str
    message: str


class VisibleMessage(_Out):
    id: uuid.UUID
    direction: Direction = Field(description="in: from the visitor")
    text: str | None
    attachments: list[Attachment]
    sender: VisibleSender
    sent_at: datetime
    status: DeliveryStatus
    error: VisibleError | None
    client_id: str | None
    event_id: Cursor | None
    edited: bool
    deleted: bool


class VisitorHistory(_Out):
    items: list[VisibleMessage] = Field(description="Oldest first; agents' notes left out")
    next_before: str | None = Field(description="The `before` of older messages; none at the start")


def operations(page_max_items: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""
    origin = (
        " The request's Origin must be one of the channel's allowed origins (403 "
        "`origin_not_allowed`)."
    )
    key = {
        "name": "channel",
        "in": "query",
        "required": True,
        "description": "The channel's public key",
        "schema": {"type": "string"},
    }
    return {
        ("/api/widget/config", "get"): dict(
            summary="The web-chat widget's settings",
            ok={200: ("How the widget looks and behaves", WidgetConfig)},
            errors=(403, 404),
            params=(key,),
            auth=False,
            description="Public; never secrets." + origin,
        ),
        ("/api/widget/token", "post"): dict(
            summary="A visitor token for the web-chat widget",
            ok={200: ("The token and the visitor's conversation", VisitorToken)},
            errors=(400, 403, 404, 413),
            body=VisitorTokenBody,
            auth=False,
            description="Public." + origin + " Pass a previous `token` to keep the visitor and "
            "conversation. With `user_id` and its `user_hash` the visitor is that user of the "
            "site, the same on every device, and the previous token is ignored; a missing or "
            "wrong hash, or a channel without an identity secret, is 403 `identity_invalid`.",
        ),
        ("/api/widget/profile", "post"): dict(
            summary="The visitor's name and e-mail",
            ok={204: ("Published to the agents as `contact.updated`; stored by the worker", None)},
            errors=(400, 401, 403, 413),
            body=ProfileBody,
            auth=False,
            description="Public, with the visitor token in the body." + origin,
        ),
        ("/api/widget/history", "post"): dict(
            summary="The visitor's own conversation history",
            ok={200: ("A page, oldest first", VisitorHistory)},
            errors=(400, 401, 403, 413),
            body=HistoryBody,
            auth=False,
            description="Public, with the visitor token in the body (never in a URL)."
            + origin
            + f" `limit` is 1 to {page_max_items} (default 50).",
        ),
    }
