"""Who is writing: the Graph user-profile endpoints of Messenger (PSID) and Instagram
(IGSID), so agents see people, not ids. Pure `build` / `interpret`; `fetch` is the I/O,
run by the worker's profile group, never on the webhook path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from adapters.base import nonempty_text
from adapters.outbound import Platforms, Request
from adapters.protocol import Profile
from schemas.message import ChannelKind

FIELDS = {
    ChannelKind.MESSENGER: "first_name,last_name,profile_pic",
    ChannelKind.INSTAGRAM: "name,username,profile_pic",
}


def build(
    kind: ChannelKind, user_id: str, secrets: Mapping[str, str], platforms: Platforms
) -> Request | None:
    token = secrets.get("access_token")
    if kind not in FIELDS or not token or not user_id.replace("_", "").isalnum():
        return None
    # An Instagram account connected through its Page asks with the Page token on the Graph API.
    instagram_login = kind == ChannelKind.INSTAGRAM and not secrets.get("page_id")
    base = platforms.instagram if instagram_login else platforms.graph
    url = f"{base}/{user_id}?fields={FIELDS[kind]}"
    return Request("GET", url, headers={"Authorization": f"Bearer {token}"})


def interpret(status: int, body: Any) -> Profile | None:
    if not 200 <= status < 300 or not isinstance(body, dict) or "error" in body:
        return None
    first, last = nonempty_text(body.get("first_name")), nonempty_text(body.get("last_name"))
    name = nonempty_text(body.get("name")) or " ".join(p for p in (first, last) if p) or None
    return Profile(
        name, nonempty_text(body.get("username")), nonempty_text(body.get("profile_pic"))
    )


async def fetch(
    client: httpx.AsyncClient,
    kind: ChannelKind,
    user_id: str,
    secrets: Mapping[str, str],
    platforms: Platforms,
) -> Profile | None:
    """The profile, or None when it cannot be had now (no permission, a network error)."""
    request = build(kind, user_id, secrets, platforms)
    if request is None:
        return None
    try:
        response = await client.request("GET", request.url, headers=request.headers, timeout=10)
        body = response.json()
    except (httpx.TransportError, ValueError):
        return None
    return interpret(response.status_code, body)
