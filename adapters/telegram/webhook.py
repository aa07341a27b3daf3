"""The Telegram webhook: the secret-token check on every update, and pointing the bot at the
hub on connect (`setWebhook`) and away on disconnect (`deleteWebhook`), docs/platforms.md §5a.
Pure: `hub.web.webhooks` and `hub.channels` do the I/O.
"""

from __future__ import annotations

import hmac
from typing import Any

from adapters.outbound import Platforms, Request

SECRET_HEADER = "x-telegram-bot-api-secret-token"


def secret_ok(header: str | None, token: str) -> bool:
    """`X-Telegram-Bot-Api-Secret-Token` equals the `secret_token` we set, compared in
    constant time. No header, or no token configured: refused."""
    if header is None or not token:
        return False
    given = header.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(given, token.encode("utf-8", "surrogatepass"))


ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "message_reaction",
    "business_message",
    "edited_business_message",
]


def set_webhook(token: str, url: str, secret_token: str, platforms: Platforms) -> Request:
    """Point the bot at our endpoint; every update will carry `secret_token` in
    X-Telegram-Bot-Api-Secret-Token. Reactions must be asked for by name."""
    body = {"url": url, "secret_token": secret_token, "allowed_updates": ALLOWED_UPDATES}
    return Request("POST", f"{platforms.telegram}/bot{token}/setWebhook", body)


def delete_webhook(token: str, platforms: Platforms) -> Request:
    return Request("POST", f"{platforms.telegram}/bot{token}/deleteWebhook", {})


def call_ok(status: int, body: Any) -> tuple[bool, str]:
    """Whether a Bot API call succeeded, and Telegram's own words when it did not."""
    answer = body if isinstance(body, dict) else {}
    if 200 <= status < 300 and answer.get("ok") is True:
        return True, ""
    return False, str(answer.get("description") or f"HTTP {status}")
