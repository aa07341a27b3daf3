"""The web-chat channel: visitor tokens for a channel's public key, and Origin checks.

A channel's `allowed_origins` lists exact origins (`https://shop.example`); `*` allows
every origin. An empty list allows none: a new channel must say where it is embedded.

Identity verification: a site that knows who its user is passes `user_id` and `user_hash`,
the hex HMAC-SHA256 of the user id under the channel's identity secret (computed on the
site's server). Such a visitor's id is derived from (channel, user id), so the same person
gets the same conversation on every device.

During a database outage a visitor token is still checked (it is signed and names its
workspace, channel and visitor; the conversation is derived from them) against the channel's
last known public key, origins and status (`hub.storage.lastknown`), and anonymous visitors,
new or returning, still get tokens: a visitor can connect and chat. An identified visitor's
token (its check needs the channel's identity secret) waits for the database: `unavailable`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from hub.accounts.auth import Signer, VisitorClaims
from hub.bus import parse_id
from hub.errors import IdentityInvalid, NotFound, OriginNotAllowed, Unauthenticated, outage
from hub.storage import tenancy
from hub.storage.cache import Cached
from hub.storage.lastknown import LastKnown
from hub.storage.models import Channel
from hub.storage.store import Store
from hub.storage.vault import Vault

READS = SQLModel.metadata.tables["conversation_reads"]
IDENTIFIED = "u-"  # anonymous visitor ids are plain hex
WEB_CHATS = "web-chats"  # the bus tag of public keys' last known channels: a key names no workspace


@dataclass(frozen=True, slots=True)
class WebChannel:
    id: uuid.UUID
    workspace_id: uuid.UUID
    public_key: str
    allowed_origins: tuple[str, ...]
    active: bool
    settings: dict[str, Any] = field(default_factory=dict)
    # Only the sealed form is cached; it is opened when an identified visitor asks.
    sealed_secrets: str | None = None

    @property
    def has_identity_secret(self) -> bool:
        # A web chat's secrets hold nothing but its identity secret.
        return self.sealed_secrets is not None

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
        dict(row.settings),
        row.secrets,
    )


def identified_visitor_id(channel_id: uuid.UUID, user_id: str) -> str:
    """The same visitor for the same user of the same channel, whichever device asks."""
    digest = hashlib.sha256(f"{channel_id}\n{user_id}".encode()).hexdigest()
    return IDENTIFIED + digest[:40]


class WebChat:
    def __init__(
        self,
        store: Store,
        signer: Signer,
        vault: Vault,
        *,
        cache_ttl_s: float,
        last_known: LastKnown | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.vault = vault
        self.last_known = last_known
        self._by_key: Cached[str, WebChannel | None] = Cached(cache_ttl_s)
        self._by_id: Cached[uuid.UUID, WebChannel | None] = Cached(cache_ttl_s)

    async def by_public_key(self, public_key: str) -> WebChannel:
        async def load() -> WebChannel | None:
            row = await self.store.channel_by_public_key(public_key)
            channel = _web_channel(row) if row is not None and row.kind == "webchat" else None
            if channel is not None and self.last_known is not None:
                where = f"{channel.workspace_id}|{channel.id}"
                await self.last_known.keep(WEB_CHATS, f"key:{public_key}", where)
                await self._keep(channel.workspace_id, channel.id, channel)
            return channel

        channel = await self._by_key.load(public_key, load)
        if channel is None or not channel.active:
            raise NotFound("No web-chat channel has that public key.")
        return channel

    async def by_id(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> WebChannel:
        async def load() -> WebChannel | None:
            row = await self.store.channel(workspace_id, channel_id)
            channel = _web_channel(row) if row is not None and row.kind == "webchat" else None
            await self._keep(workspace_id, channel_id, channel)
            return channel

        try:
            channel = await self._by_id.load(channel_id, load)
        except Exception as exc:
            channel = await self._known(exc, workspace_id, channel_id)
        if channel is None or not channel.active or channel.workspace_id != workspace_id:
            raise Unauthenticated("The visitor token's channel is not available.")
        return channel

    async def forget(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        """Drop this node's cached view of a channel after a change (other nodes see it
        within `cache_ttl_s`), and the last known copy (read again at the next use)."""
        self._by_id.forget(channel_id)
        self._by_key.forget_where(lambda channel: channel is not None and channel.id == channel_id)
        if self.last_known is not None:
            await self.last_known.forget(str(workspace_id), f"webchat:{channel_id}")

    async def _keep(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, channel: WebChannel | None
    ) -> None:
        if self.last_known is None:
            return
        if channel is None:
            self.last_known.drop(str(workspace_id), f"webchat:{channel_id}")
            return
        # What a visitor's reconnect checks, and no secret.
        kept = {"k": channel.public_key, "o": channel.allowed_origins, "a": channel.active}
        await self.last_known.keep(str(workspace_id), f"webchat:{channel_id}", json.dumps(kept))

    async def _known(
        self, exc: Exception, workspace_id: uuid.UUID, channel_id: uuid.UUID
    ) -> WebChannel:
        """During an outage, the channel as last read (without its settings and secrets);
        else `exc` goes on."""
        if self.last_known is None or not outage(exc):
            raise exc
        kept = await self.last_known.recall(
            str(workspace_id), f"webchat:{channel_id}", "a web-chat channel"
        )
        if kept is None:
            raise exc
        data = json.loads(kept)
        return WebChannel(
            channel_id, workspace_id, str(data["k"]), tuple(data["o"]), bool(data["a"])
        )

    async def _known_key(self, exc: Exception, public_key: str, user_id: str | None) -> WebChannel:
        """During an outage, the channel of a public key as last read, for an anonymous
        visitor's token; else `exc` goes on (an identified visitor's check needs the
        channel's secret, which is kept nowhere but the database)."""
        if self.last_known is None or user_id is not None or not outage(exc):
            raise exc
        kept = await self.last_known.recall(WEB_CHATS, f"key:{public_key}", "a web-chat key")
        if kept is None:
            raise exc
        workspace_id, channel_id = (uuid.UUID(part) for part in kept.split("|"))
        channel = await self._known(exc, workspace_id, channel_id)
        if channel.public_key != public_key or not channel.active:
            raise NotFound("No web-chat channel has that public key.")
        return channel

    async def issue(
        self,
        public_key: str,
        origin: str | None,
        previous: str | None,
        *,
        user_id: str | None = None,
        user_hash: str | None = None,
    ) -> tuple[str, VisitorClaims]:
        """A visitor token for the channel; a still-valid previous token of the same channel
        keeps the same visitor (and so the same conversation). With `user_id` the visitor is
        that user, if `user_hash` verifies; the previous token is then ignored."""
        try:
            channel = await self.by_public_key(public_key)
        except Exception as exc:
            channel = await self._known_key(exc, public_key, user_id)
        channel.check_origin(origin)
        visitor_id = None
        if user_id is not None:
            self._verify(channel, user_id, user_hash)
            visitor_id = identified_visitor_id(channel.id, user_id)
        elif previous:
            try:
                old = self.signer.read_visitor_token(previous)
            except Unauthenticated:
                old = None
            # A signed-in user's visitor is never continued without the user's id and hash
            # (the site's user signed out): a new anonymous visitor begins.
            if (
                old is not None
                and old.channel_id == channel.id
                and not old.visitor_id.startswith(IDENTIFIED)
            ):
                visitor_id = old.visitor_id
        claims = VisitorClaims(
            channel.workspace_id, channel.id, visitor_id or secrets.token_hex(16)
        )
        return self.signer.visitor_token(claims), claims

    def _verify(self, channel: WebChannel, user_id: str, user_hash: str | None) -> None:
        secret = self.vault.open(channel.sealed_secrets).get("identity_secret")
        if not secret:
            raise IdentityInvalid("This channel has no identity secret; leave out user_id.")
        expected = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
        given = (user_hash or "").lower()
        if not given.isascii() or not hmac.compare_digest(expected, given):
            raise IdentityInvalid()

    async def agent_read_up_to(
        self, workspace_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> str | None:
        """The furthest any agent has read the conversation (an event id), as the live
        `agent_read_up_to` tells the visitor: kept, so a reloaded widget shows it too."""
        async with self.store.sessions() as orm:
            found = await (await orm.connection()).execute(
                sa.select(READS.c.up_to).where(
                    READS.c.workspace_id == workspace_id, READS.c.conversation_id == conversation_id
                )
            )
            positions = [row[0] for row in found.all()]
        return max(positions, key=parse_id, default=None)

    async def authenticate(self, token: str, origin: str | None) -> VisitorClaims:
        claims = self.signer.read_visitor_token(token)
        channel = await self.by_id(claims.workspace_id, claims.channel_id)
        channel.check_origin(origin)
        tenancy.act_for(claims.workspace_id)
        return claims
