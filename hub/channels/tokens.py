"""Instagram's long-lived tokens: the calls shared by the OAuth callback and the refresher,
and `TokenRefresher`, the worker task that renews tokens well before their 60 days run out;
a refresh that fails marks the channel "needs reconnect"."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import httpx

from adapters.meta import instagram_login as ig
from adapters.outbound import Request as Call
from hub.channels.service import Channels
from hub.settings import Settings
from hub.workers.periodic import Periodic
from schemas.message import utc_now

log = logging.getLogger("hub.tokens")

REFRESH_BEFORE = timedelta(days=10)
REFRESH_EVERY_S = 3600.0


def endpoints(settings: Settings) -> ig.Endpoints:
    graph = settings.instagram_graph_url
    return ig.Endpoints(
        authorize=settings.instagram_authorize_url,
        oauth=settings.instagram_oauth_url,
        graph_root=re.sub(r"/v[0-9.]+$", "", graph),  # the token endpoints are unversioned
        graph=graph,
    )


async def call(client: httpx.AsyncClient, call: Call) -> Any:
    """One OAuth call; the URL may carry a secret, so only the method and path are ever logged."""
    try:
        response = await client.request(call.method, call.url, data=call.form, headers=call.headers)
    except httpx.TransportError as exc:
        log.warning(
            "Instagram %s %s failed: %s", call.method, httpx.URL(call.url).path, type(exc).__name__
        )
        return None
    try:
        return response.json()
    except ValueError:
        return None


class TokenRefresher(Periodic):
    """Refreshes Instagram tokens that expire within `REFRESH_BEFORE`; a worker task."""

    name = "token-refresh"

    def __init__(
        self, channels: Channels, settings: Settings, *, every_s: float = REFRESH_EVERY_S
    ) -> None:
        super().__init__(every_s=every_s)
        self.channels, self.settings = channels, settings

    async def round(self) -> None:
        await self.refresh_due(utc_now())

    async def refresh_due(self, now: datetime) -> int:
        """Refresh every due token; answers how many were refreshed."""
        channels = self.channels
        where = endpoints(self.settings)
        refreshed = 0
        async with httpx.AsyncClient(timeout=10) as client:
            for channel_id, token in await channels.instagram_tokens_due(now + REFRESH_BEFORE):
                fresh = ig.read_token(await call(client, ig.refresh(where, token)))
                if fresh is None:
                    await channels.mark(channel_id, "needs_reconnect")
                    continue
                expires_at = now + timedelta(seconds=fresh.expires_in_s or 60 * 86400)
                await channels.replace_token(channel_id, fresh.access_token, expires_at)
                refreshed += 1
        return refreshed
