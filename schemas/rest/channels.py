"""Answers about channels: the list, connecting, disconnecting, settings and health."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from schemas.message import ChannelKind
from schemas.rest.base import Out, Timestamp


class ChannelOut(Out):
    id: uuid.UUID
    kind: ChannelKind
    name: str
    public_key: str | None = Field(description="The web-chat widget's key; none for other kinds")
    allowed_origins: list[str]
    status: str
    has_secrets: bool = Field(description="Secrets themselves are never returned")
    last_event_at: Timestamp | None


class ChannelPage(Out):
    items: list[ChannelOut]


class WebhookInfo(Out):
    url: str = Field(description="Paste it as the callback URL in the platform's dashboard")
    verify_token: str | None = Field(default=None, description="Own-app Meta channels; shown once")
    secret_token: str | None = Field(
        default=None, description="Telegram's secret_token; shown once"
    )
    hosted_app: bool | None = Field(
        default=None, description="Delivered through the hub's Meta app"
    )


class ConnectedChannel(ChannelOut):
    webhook: WebhookInfo
    subscribed: bool | None = Field(
        default=None,
        description="Meta channels: whether the Page, Instagram account or WABA is now "
        "subscribed to the app's webhooks; false says why in subscribe_note",
    )
    subscribe_note: str | None = Field(default=None, description="Why it is not subscribed")


class DataDeletion(Out):
    id: uuid.UUID = Field(description="The deletion request: GET /api/deletions/{deletion_id}")
    status: str
    counts: dict[str, int] = Field(
        description="What it will erase: contacts (whole), contacts_kept (known on another "
        "channel too: only this channel's identity, conversations and messages go), "
        "conversations, messages"
    )


class DisconnectedChannel(ChannelOut):
    unsubscribed: bool | None = Field(
        description="Whether the platform confirmed it stops delivering (Graph subscribed_apps "
        "DELETE, Telegram deleteWebhook); false when it failed or could not be asked; none for "
        "a web chat"
    )
    unsubscribe_note: str | None = Field(description="Why not, when unsubscribed is false")
    data_deletion: DataDeletion | None = Field(
        default=None, description="With delete_data=true: the erasure started"
    )


class AuthorizeUrl(Out):
    url: str = Field(description="Send the admin's browser here")
    scopes: list[str]


class ChannelDetail(ChannelOut):
    settings: dict[str, Any] = Field(
        description="Web chat: the widget settings of PATCH (title, greeting, colour, locale, "
        "position, prechat, consent_required, hours); Instagram: the account's username and "
        "picture. Never secrets"
    )


class ChannelHealthPage(Out):
    items: list[ChannelDetail]


class IdentitySecret(Out):
    identity_secret: str = Field(description="Shown this once; stored encrypted")


class FacebookPage(Out):
    """A Page the person who signed in with Facebook Login for Business can connect."""

    page_id: str
    name: str | None
    instagram_account_id: str | None = Field(
        description="The Instagram professional account linked to the Page, if any"
    )
    instagram_username: str | None
    connected: list[ChannelKind] = Field(
        description="Kinds already connected from this Page in this workspace"
    )


class FacebookPages(Out):
    items: list[FacebookPage]


class ConnectedChannels(Out):
    items: list[ChannelOut]


class SignupConfig(Out):
    app_id: str = Field(description="The hosted Meta app, for the JavaScript SDK's FB.init")
    config_id: str = Field(description="The Embedded Signup Login configuration, for FB.login")
    sdk_version: str = Field(description="The Graph API version for FB.init, such as v23.0")
