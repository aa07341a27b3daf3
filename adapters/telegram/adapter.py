"""The Telegram Bot API as an adapter: every update of a bot's channel arrives on
`/webhooks/telegram/{channel_id}` with the secret token the hub set when connecting."""

from __future__ import annotations

import secrets as tokens
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.base import ChannelContext, ParseResult
from adapters.media import MediaRefusal, MediaSource
from adapters.outbound import Outcome, Outgoing, Platforms, Request
from adapters.protocol import Credentials, Given, Profile, Refused
from adapters.telegram import send, send_media, updates, webhook
from adapters.telegram.media import locate as locate_media
from schemas.message import Attachment, ChannelKind


@dataclass(frozen=True, slots=True)
class TelegramAdapter:
    kind: ChannelKind = ChannelKind.TELEGRAM
    family: str = "telegram"
    title: str = "Telegram"
    account_field: str = "bot_id"
    fetches_profiles: bool = False  # an update names the person already
    sends_reactions: bool = False
    sends_templates: bool = False
    media_by_url: bool = False  # files are uploaded with the message that carries them

    def handshake(self, params: Mapping[str, str], secrets: Mapping[str, str]) -> str | None:
        return None  # setWebhook needs no subscription check

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str]) -> bool:
        """The secret token is a header: the body is not needed (nor read) to check it."""
        given = headers.get(webhook.SECRET_HEADER)
        return webhook.secret_ok(given, secrets.get("webhook_secret", ""))

    def parse(self, payload: dict[str, Any], ctx: ChannelContext) -> ParseResult:
        return updates.parse(payload, ctx)

    def build_send(self, out: Outgoing, platforms: Platforms) -> Request:
        return send.build(out, platforms)

    def interpret_send(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome:
        return send.interpret(status, body, headers)

    def build_upload(self, out: Outgoing, platforms: Platforms) -> Request | None:
        return None  # a file goes up with its message

    def interpret_upload(self, status: int, body: Any, headers: Mapping[str, str]) -> str | Outcome:
        return send.interpret(status, body, headers)  # never asked: there is no upload

    def caption_limit(self, content_type: str) -> int:
        return send_media.CAPTION_LIMIT

    def credentials(self, given: Given) -> Credentials:
        """The bot token (its bot id is the account) and a generated webhook secret."""
        if not given.bot_token:
            raise Refused("A Telegram channel needs the bot_token from BotFather.")
        webhook_secret = tokens.token_urlsafe(32)  # 1-256 of A-Z a-z 0-9 _ -
        values = {"bot_token": given.bot_token, "webhook_secret": webhook_secret}
        # Shown once, for setWebhook's secret_token (until the hub calls setWebhook itself).
        return Credentials(
            values, given.bot_token.split(":", 1)[0], {"secret_token": webhook_secret}
        )

    def on_connect(
        self, secrets: Mapping[str, str], webhook_url: str, platforms: Platforms
    ) -> Request | None:
        return webhook.set_webhook(
            secrets["bot_token"], webhook_url, secrets["webhook_secret"], platforms
        )

    def on_disconnect(
        self,
        account_ids: Mapping[str, Any],
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> Request | str:
        token = secrets.get("bot_token")
        if not token:
            return "the channel has no bot token"
        return webhook.delete_webhook(token, platforms)

    def interpret_call(self, status: int, body: Any) -> tuple[bool, str]:
        return webhook.call_ok(status, body)

    def webhook_info(
        self, base_url: str, channel_id: uuid.UUID, shown: Mapping[str, str]
    ) -> dict[str, Any]:
        return {"url": f"{base_url}/webhooks/{self.family}/{channel_id}", **shown}

    async def fetch_profile(
        self,
        client: httpx.AsyncClient,
        user_id: str,
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> Profile | None:
        return None

    async def locate_media(
        self,
        client: httpx.AsyncClient,
        attachment: Attachment,
        secrets: Mapping[str, str],
        platforms: Platforms,
    ) -> MediaSource:
        return await locate_media(client, attachment, secrets, platforms)

    def refuse_media(self, content_type: str, size: int) -> MediaRefusal | None:
        return send_media.refuse(content_type, size)


TELEGRAM = TelegramAdapter()
