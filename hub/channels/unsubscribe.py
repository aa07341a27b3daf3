"""Telling the platform to stop delivering a disconnected channel's webhooks: the one I/O
around the adapter's `on_disconnect`. Best effort: the channel is disconnected locally whatever the
platform answers (its webhooks are no longer routed either way), and the outcome is reported
to the admin and logged without secrets."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from adapters import registry
from adapters.outbound import TIMEOUT_S, Platforms, Request, redact
from adapters.protocol import Adapter
from hub.storage.models import Channel

log = logging.getLogger("hub.unsubscribe")


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """`done`: True when the platform confirmed, False when it refused, failed or there was
    nothing the hub could call (`note` says which), None for a web chat (nothing to undo)."""

    done: bool | None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"unsubscribed": self.done, "unsubscribe_note": self.note}


async def unsubscribe_channel(
    channel: Channel, secrets: Mapping[str, str], platforms: Platforms
) -> Unsubscribed:
    adapter = registry.get(channel.kind)
    if adapter is None:  # the web chat: no platform to tell
        return Unsubscribed(None)
    request = adapter.on_disconnect(channel.account_ids, channel.settings, secrets, platforms)
    if isinstance(request, str):
        log.info("channel %s not unsubscribed at the platform: %s", channel.id, request)
        return Unsubscribed(False, request)
    ok, why = await _call(adapter, request)
    if not ok:  # the channel is gone either way; its webhooks now find no channel
        log.warning("unsubscribing channel %s at the platform failed: %s", channel.id, why)
        return Unsubscribed(False, why)
    return Unsubscribed(True)


async def _call(adapter: Adapter, request: Request) -> tuple[bool, str]:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.request(
                request.method, request.url, json=request.json, headers=request.headers
            )
    except httpx.TransportError as exc:
        return False, redact(f"{type(exc).__name__}: {exc}")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    ok, why = adapter.interpret_call(response.status_code, body)
    return ok, redact(why)
