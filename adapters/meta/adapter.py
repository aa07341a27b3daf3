"""The Meta family as adapters: one `MetaAdapter` per kind (Instagram, Messenger, WhatsApp),
the same class parameterised by the kind's parser and the account its channels answer for.
Webhooks of all three arrive signed with the app secret, on `/webhooks/meta` (the hosted
app, routed by `webhook.split`) or `/webhooks/meta/{channel_id}` (a channel's own app).
"""

from __future__ import annotations

import secrets as tokens
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.base import ChannelContext, ParseResult
from adapters.media import MediaRefusal, MediaSource
from adapters.meta import (
    instagram,
    messenger,
    profiles,
    send,
    send_media,
    unsubscribe,
    webhook,
    whatsapp,
)
from adapters.meta.media import locate as locate_media
from adapters.outbound import Outcome, Outgoing, Platforms, Request
from adapters.protocol import Credentials, Given, Profile, Refused
from schemas.message import Attachment, ChannelKind

FAMILY = "meta"


@dataclass(frozen=True, slots=True)
class MetaAdapter:
    kind: ChannelKind
    title: str
    account_field: str
    parser: Callable[[dict[str, Any], ChannelContext], ParseResult]
    fetches_profiles: bool = False
    sends_reactions: bool = False
    sends_templates: bool = False  # WhatsApp's message templates (adapters.meta.templates)
    media_by_url: bool = False  # Instagram fetches attachments from a URL; no uploads
    family: str = FAMILY

    def handshake(self, params: Mapping[str, str], secrets: Mapping[str, str]) -> str | None:
        return webhook.handshake(params, [secrets.get("verify_token", "")])

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str]) -> bool:
        signature = headers.get(webhook.SIGNATURE_HEADER)
        return webhook.signature_ok(body, signature, [secrets.get("app_secret", "")])

    def parse(self, payload: dict[str, Any], ctx: ChannelContext) -> ParseResult:
        """One piece of a delivery (`webhook.split`): an entry, or for WhatsApp an entry
        with one change."""
        return self.parser(payload, ctx)

    def build_send(self, out: Outgoing, platforms: Platforms) -> Request:
        return send.build(out, platforms)

    def interpret_send(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome:
        return send.interpret(status, body, headers)

    def build_upload(self, out: Outgoing, platforms: Platforms) -> Request | None:
        return send.build_upload(out, platforms)

    def interpret_upload(self, status: int, body: Any, headers: Mapping[str, str]) -> str | Outcome:
        return send.interpret_upload(status, body, headers)

    def caption_limit(self, content_type: str) -> int:
        return send_media.caption_limit(self.kind, content_type)

    def credentials(self, given: Given) -> Credentials:
        """The access token, and with a channel's own app its app secret and a verify token
        (generated unless given) for that app's Webhooks settings."""
        if not given.account_id or not given.access_token:
            raise Refused(f"A {self.kind.value} channel needs account_id and access_token.")
        values = {"access_token": given.access_token}
        if given.page_id and self.kind == ChannelKind.INSTAGRAM:  # sends go through the Page
            values["page_id"] = given.page_id
        shown: dict[str, str] = {}
        if given.app_secret:
            values["app_secret"] = given.app_secret
            values["verify_token"] = given.verify_token or tokens.token_urlsafe(24)
            shown["verify_token"] = values["verify_token"]
        return Credentials(values, given.account_id, shown)

    def on_connect(
        self, secrets: Mapping[str, str], webhook_url: str, platforms: Platforms
    ) -> Request | None:
        return None  # the admin subscribes the app in Meta's dashboard

    def on_disconnect(
        self,
        account_ids: Mapping[str, Any],
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> Request | str:
        return unsubscribe.build(self.kind, account_ids, settings, secrets, platforms)

    def interpret_call(self, status: int, body: Any) -> tuple[bool, str]:
        return unsubscribe.interpret(status, body)

    def webhook_info(
        self, base_url: str, channel_id: uuid.UUID, shown: Mapping[str, str]
    ) -> dict[str, Any]:
        if "verify_token" in shown:
            return {
                "url": f"{base_url}/webhooks/{self.family}/{channel_id}",
                "verify_token": shown["verify_token"],
            }
        return {"url": f"{base_url}/webhooks/{self.family}", "hosted_app": True}

    async def fetch_profile(
        self,
        client: httpx.AsyncClient,
        user_id: str,
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> Profile | None:
        return await profiles.fetch(client, self.kind, user_id, secrets, platforms)

    async def locate_media(
        self,
        client: httpx.AsyncClient,
        attachment: Attachment,
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> MediaSource:
        return await locate_media(client, self.kind, attachment, secrets, platforms)

    def refuse_media(self, content_type: str, size: int) -> MediaRefusal | None:
        return send_media.refuse(self.kind, content_type, size)


INSTAGRAM = MetaAdapter(
    ChannelKind.INSTAGRAM,
    "Instagram",
    "instagram_account_id",
    instagram.parse,
    fetches_profiles=True,
    media_by_url=True,
)
MESSENGER = MetaAdapter(
    ChannelKind.MESSENGER, "Messenger", "page_id", messenger.parse, fetches_profiles=True
)
WHATSAPP = MetaAdapter(
    ChannelKind.WHATSAPP,
    "WhatsApp",
    "phone_number_id",
    whatsapp.parse,
    sends_reactions=True,
    sends_templates=True,
)
