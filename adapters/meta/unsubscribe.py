"""Unsubscribing a Meta channel's account from the hub's webhooks when it is disconnected.
Pure: `build` makes the request (or says why there is none), `interpret` reads the answer;
`hub.channels.unsubscribe` does the I/O.

- Messenger, and Instagram through a Page: `DELETE {graph}/{page_id}/subscribed_apps` with
  the Page access token (Graph "Page Subscribed Apps", Deleting); the answer is
  `{"success": true}`.
- WhatsApp: `DELETE {graph}/{waba_id}/subscribed_apps` with the access token; only a
  channel that was given its `business_account_id` can be unsubscribed.
- Instagram through Business Login: `DELETE {instagram}/{ig_user_id}/subscribed_apps` with
  the Instagram user token, the mirror of the POST made at connect (`instagram_login`).
Tokens go in the Authorization header, never in the query, so a logged URL holds none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from adapters.outbound import Platforms, Request
from schemas.message import ChannelKind


def build(
    kind: ChannelKind,
    account_ids: Mapping[str, Any],
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    platforms: Platforms,
) -> Request | str:
    """The request that unsubscribes the channel, or why there is none to make."""
    token = secrets.get("access_token")
    if not token:
        return "the channel has no access token"
    if kind is ChannelKind.WHATSAPP:
        node, base = account_ids.get("business_account_id"), platforms.graph
        if not node:
            return "no business_account_id (WABA id) was given at connect"
    elif kind is ChannelKind.MESSENGER or account_ids.get("page_id"):
        node, base = account_ids.get("page_id"), platforms.graph
    elif settings.get("connected_by_user_id") or settings.get("token_expires_at"):
        node, base = account_ids.get("instagram_account_id"), platforms.instagram
    else:  # pasted by hand with a Page token but without the Page's id
        return "unsubscribe the Instagram account at its Facebook Page"
    if not node:
        return "the channel has no account id"
    return Request(
        "DELETE",
        f"{base}/{quote(str(node), safe='')}/subscribed_apps",
        headers={"Authorization": f"Bearer {token}"},
    )


def interpret(status: int, body: Any) -> tuple[bool, str]:
    """Whether the platform confirmed it, and its own words when it did not."""
    answer = body if isinstance(body, dict) else {}
    if 200 <= status < 300 and answer.get("success") is True:
        return True, ""
    error = answer.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return False, str(message or f"HTTP {status}")
