"""The web-chat channel: visitor tokens for a channel's public key, and Origin checks.

A channel's `allowed_origins` lists exact origins (`https://shop.example`); `*` allows
every origin. An empty list allows none: a new channel must say where it is embedded.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

from hub.auth import Signer, VisitorClaims
from hub.errors import NotFound, OriginNotAllowed, Unauthenticated
from hub.models import Channel
from hub.store import Store


@dataclass(frozen=True, slots=True)
class WebChannel:
    id: uuid.UUID
    workspace_id: uuid.UUID
    public_key: str
    allowed_origins: tuple[str, ...]
    active: bool

    def check_origin(self, origin: str | None) -> None:
        if "*" in self.allowed_origins:
            return
        if origin is None or origin.rstrip("/") not in self.allowed_origins:
            raise OriginNotAllowed()


def _web_channel(row: Channel) -> WebChannel:
    return WebChannel(
        row.id,
        row.workspace_id,
        row.public_key or "",
        tuple(o.rstrip("/") for o in row.allowed_origins),
        row.status != "disconnected",
    )


class WebChat:
    def __init__(self, store: Store, signer: Signer, *, cache_ttl_s: float) -> None:
        self.store = store
        self.signer = signer
        self.cache_ttl_s = cache_ttl_s
        self._by_key: dict[str, tuple[float, WebChannel | None]] = {}
        self._by_id: dict[uuid.UUID, tuple[float, WebChannel | None]] = {}

    async def by_public_key(self, public_key: str) -> WebChannel:
        now = time.monotonic()
        cached = self._by_key.get(public_key)
        if cached is None or cached[0] <= now:
            row = await self.store.channel_by_public_key(public_key)
            channel = _web_channel(row) if row is not None and row.kind == "webchat" else None
            cached = self._by_key[public_key] = (now + self.cache_ttl_s, channel)
            if len(self._by_key) > 50_000:
                self._by_key.clear()
        if cached[1] is None or not cached[1].active:
            raise NotFound("No web-chat channel has that public key.")
        return cached[1]

    async def by_id(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> WebChannel:
        now = time.monotonic()
        cached = self._by_id.get(channel_id)
        if cached is None or cached[0] <= now:
            row = await self.store.channel(workspace_id, channel_id)
            channel = _web_channel(row) if row is not None and row.kind == "webchat" else None
            cached = self._by_id[channel_id] = (now + self.cache_ttl_s, channel)
            if len(self._by_id) > 50_000:
                self._by_id.clear()
        channel = cached[1]
        if channel is None or not channel.active or channel.workspace_id != workspace_id:
            raise Unauthenticated("The visitor token's channel is not available.")
        return channel

    async def issue(
        self, public_key: str, origin: str | None, previous: str | None
    ) -> tuple[str, VisitorClaims]:
        """A visitor token for the channel; a still-valid previous token of the same channel
        keeps the same visitor (and so the same conversation)."""
        channel = await self.by_public_key(public_key)
        channel.check_origin(origin)
        visitor_id = None
        if previous:
            try:
                old = self.signer.read_visitor_token(previous)
            except Unauthenticated:
                old = None
            if old is not None and old.channel_id == channel.id:
                visitor_id = old.visitor_id
        claims = VisitorClaims(
            channel.workspace_id, channel.id, visitor_id or secrets.token_hex(16)
        )
        return self.signer.visitor_token(claims), claims

    async def authenticate(self, token: str, origin: str | None) -> VisitorClaims:
        claims = self.signer.read_visitor_token(token)
        channel = await self.by_id(claims.workspace_id, claims.channel_id)
        channel.check_origin(origin)
        return claims
