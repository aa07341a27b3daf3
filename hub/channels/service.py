"""Platform channels: connecting and disconnecting them, and finding the channel (with its
decrypted secrets) that a webhook is for, by account id or by channel id, without a
database round trip per delivery."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from adapters import registry
from adapters.base import ChannelContext
from adapters.meta import instagram_login
from adapters.meta import onboarding as meta_onboarding
from adapters.meta.instagram_login import Account as IgAccount
from adapters.outbound import Platforms, Request, redact
from adapters.protocol import Adapter, Given, Refused
from hub.channels import pasted
from hub.channels.options import normalize_origins
from hub.channels.unsubscribe import Unsubscribed, unsubscribe_channel
from hub.errors import BadRequest, Conflict
from hub.storage import audit, tenancy
from hub.storage.cache import Cached
from hub.storage.inbox import channel_of
from hub.storage.models import AuditEvent, Channel, ChannelAccount
from hub.storage.store import Store
from hub.storage.vault import Vault
from schemas.message import ChannelKind

# Business Login for Instagram connects channels of this kind.
LOGIN_KIND = instagram_login.KIND

# What a connection writes into a channel's settings, every way of connecting: a reconnect
# replaces these wholesale, so nothing of the previous login outlives it (an old
# `token_expires_at` would send a Page token to Instagram's refresh; an old
# `connected_by_user_id` would let the previous person's deauthorization disconnect it).
# The admin's own settings (routing, widget options, hours, template sync) stay.
LOGIN_OWNED = frozenset(
    {
        "username",
        "picture_url",
        "token_expires_at",
        "connected_by_user_id",
        "page_name",
        "subscribed",
        "subscribe_note",
        "display_phone_number",
        "verified_name",
    }
)


def reconnected(settings: Mapping[str, Any], login: Mapping[str, Any]) -> dict[str, Any]:
    """A channel's settings once a login (re)connected it: the login's own replace the
    previous login's."""
    return {k: v for k, v in settings.items() if k not in LOGIN_OWNED} | dict(login)


class ConnectBody(BaseModel):
    """What an admin pastes to connect a channel by hand. Secrets go in, never come out."""

    model_config = ConfigDict(extra="forbid")
    kind: ChannelKind
    name: str = Field(min_length=1, max_length=200)
    account_id: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[^\s/]+$",
        description="Instagram account id, Page id or WhatsApp phone number id; for Telegram "
        "the bot id is read from the bot token",
    )
    business_account_id: str | None = Field(
        default=None, max_length=100, description="WhatsApp WABA id"
    )
    page_id: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[0-9]+$",
        description="Instagram with a Page token: the Facebook Page the account is linked to",
    )
    access_token: str | None = Field(default=None, max_length=4096)
    app_secret: str | None = Field(
        default=None,
        max_length=200,
        description="Only for a channel with its own Meta app; the hosted app's otherwise",
    )
    verify_token: str | None = Field(default=None, min_length=8, max_length=200)
    bot_token: str | None = Field(default=None, max_length=200, pattern=r"^[0-9]+:[A-Za-z0-9_-]+$")
    allowed_origins: list[str] = Field(default_factory=list, max_length=50)


@dataclass(frozen=True, slots=True)
class Resolved:
    context: ChannelContext
    secrets: dict[str, str]
    status: str

    @property
    def active(self) -> bool:
        return self.status != "disconnected"


class Channels:
    def __init__(
        self, store: Store, vault: Vault, *, cache_ttl_s: float, platforms: Platforms | None = None
    ) -> None:
        self.store = store
        self.vault = vault
        self.platforms = platforms or Platforms()
        self._by_account: Cached[tuple[str, str], Resolved | None] = Cached(cache_ttl_s)
        self._by_id: Cached[uuid.UUID, Resolved | None] = Cached(cache_ttl_s)

    # Connecting

    async def connect(
        self,
        workspace_id: uuid.UUID,
        actor_id: uuid.UUID,
        body: ConnectBody,
        base_url: str = "",
        *,
        ip: str | None = None,
    ) -> tuple[Channel, dict[str, str]]:
        """Create the channel; answers it with the secrets generated for the admin to paste
        (the verify token or webhook secret), shown this once."""
        kind = ChannelKind(body.kind)
        adapter = registry.get(kind)
        if adapter is None:  # the web chat: the hub's own channel
            channel = await self.store.create_channel(
                workspace_id,
                kind,
                body.name,
                allowed_origins=normalize_origins(body.allowed_origins),
            )
            await self.store.audit(
                workspace_id,
                "user",
                str(actor_id),
                "channel.connected",
                "channel",
                str(channel.id),
                ip=ip,
            )
            return channel, {}
        sealed, account_id, shown, kept = self._secrets_for(adapter, body)
        channel_id = uuid.uuid4()
        if await self._taken(kind, account_id):
            raise Conflict("That account is already connected to a channel.")
        # After the check: never re-point a connected bot.
        url = f"{base_url}/webhooks/{adapter.family}/{channel_id}"
        request = adapter.on_connect(kept, url, self.platforms)
        if request is not None:
            ok, why = await _platform_call(adapter, request)
            if not ok:
                raise BadRequest(f"{adapter.title} did not accept the webhook: {why}")
        account_ids = {adapter.account_field: account_id}
        if body.business_account_id:
            account_ids["business_account_id"] = body.business_account_id
        checked = None
        if adapter.family == "meta":  # the token checked, the account subscribed
            checked = await pasted.check(
                kind,
                account_id,
                kept["access_token"],
                meta_onboarding.Endpoints(
                    graph=self.platforms.graph, instagram=self.platforms.instagram
                ),
                page_id=body.page_id,
                waba_id=body.business_account_id,
            )
            account_ids |= checked.account_ids
        channel = Channel(
            id=channel_id,
            workspace_id=workspace_id,
            kind=kind,
            name=body.name,
            account_ids=account_ids,
            secrets=sealed,
            settings=checked.as_settings() if checked else {},
            connected_by=checked.connected_by if checked else None,
            connected_via="token",
        )
        try:
            async with self.store.sessions() as s, s.begin():
                s.add(channel)
                await s.flush()
                s.add(
                    ChannelAccount(
                        workspace_id=workspace_id,
                        channel_id=channel.id,
                        kind=kind,
                        account_id=account_id,
                    )
                )
                await s.flush()  # the unique key refuses an account connected meanwhile
                connected = _audit(workspace_id, actor_id, "channel.connected", channel.id, ip)
                await audit.append(s, connected)
        except IntegrityError:
            raise Conflict("That account is already connected to a channel.") from None
        self._by_account.forget((kind.value, account_id))  # it may be cached as unknown
        return channel, shown

    async def _taken(self, kind: ChannelKind, account_id: str) -> bool:
        """Whether the account is connected in any workspace: an account is one channel's
        anywhere (the unique key says so), so this looks past the caller's workspace, which
        its row-level security would otherwise show alone."""
        with tenancy.acting_for(None):
            async with self.store.sessions() as s:
                found = await s.exec(
                    select(ChannelAccount).where(
                        ChannelAccount.kind == kind, ChannelAccount.account_id == account_id
                    )
                )
                return found.first() is not None

    def _secrets_for(
        self, adapter: Adapter, body: ConnectBody
    ) -> tuple[str, str, dict[str, str], dict[str, str]]:
        """The sealed secrets, the account id, what to show the admin and the secrets
        themselves (for the connect call)."""
        given = Given(
            account_id=body.account_id,
            business_account_id=body.business_account_id,
            access_token=body.access_token,
            app_secret=body.app_secret,
            verify_token=body.verify_token,
            bot_token=body.bot_token,
            page_id=body.page_id,
        )
        try:
            credentials = adapter.credentials(given)
        except Refused as exc:
            raise BadRequest(str(exc)) from None
        sealed = self.vault.seal(credentials.secrets)
        return sealed, credentials.account_id, credentials.shown, credentials.secrets

    async def disconnect(
        self,
        workspace_id: uuid.UUID,
        actor_id: uuid.UUID | None,
        channel_id: uuid.UUID,
        *,
        ip: str | None = None,
        action: str = "channel.disconnected",
    ) -> tuple[Channel, Unsubscribed]:
        """Stop routing to the channel, destroy its secrets and unsubscribe it at the platform
        (best effort, `hub.channels.unsubscribe`); its conversations stay. Without an actor the
        platform did it (a deauthorization, audited as `action`)."""
        async with self.store.sessions() as s, s.begin():
            channel = await channel_of(s, workspace_id, channel_id)
            for account in (
                await s.exec(select(ChannelAccount).where(ChannelAccount.channel_id == channel_id))
            ).all():
                await s.delete(account)
            secrets = self.vault.open(channel.secrets) if channel.secrets else {}
            channel.status = "disconnected"
            channel.secrets = None
            s.add(channel)
            await audit.append(s, _audit(workspace_id, actor_id, action, channel_id, ip))
        self._by_id.forget(channel_id)
        self._by_account.forget_where(
            lambda resolved: resolved is not None and resolved.context.channel_id == channel_id
        )
        # Outside the transaction, with the secrets read before they were destroyed.
        return channel, await unsubscribe_channel(channel, secrets, self.platforms)

    async def connect_instagram(
        self,
        workspace_id: uuid.UUID,
        actor_id: uuid.UUID,
        name: str,
        account: IgAccount,
        token: str,
        expires_at: datetime,
    ) -> Channel:
        """A channel from Business Login for Instagram; connecting an account this workspace
        already has renews its token (the way back from "needs reconnect")."""
        settings = {
            "username": account.username,
            "picture_url": account.picture_url,
            "token_expires_at": expires_at.isoformat(),
            # Who authorized the app: a deauthorize callback names them (hub.privacy.routes).
            "connected_by_user_id": account.app_user_id,
            "subscribed": True,
        }
        sealed = self.vault.seal({"access_token": token})
        async with self.store.sessions() as s, s.begin():
            held = (
                await s.exec(
                    select(ChannelAccount).where(
                        ChannelAccount.kind == LOGIN_KIND,
                        ChannelAccount.account_id == account.account_id,
                    )
                )
            ).first()
            if held is not None and held.workspace_id != workspace_id:
                raise Conflict("That Instagram account is connected to another workspace.")
            channel = await s.get(Channel, held.channel_id) if held is not None else None
            if channel is None:
                channel = Channel(
                    workspace_id=workspace_id,
                    kind=LOGIN_KIND,
                    name=name,
                    account_ids={
                        registry.adapter_for(LOGIN_KIND).account_field: account.account_id
                    },
                )
                s.add(channel)
                await s.flush()
                s.add(
                    ChannelAccount(
                        workspace_id=workspace_id,
                        channel_id=channel.id,
                        kind=LOGIN_KIND,
                        account_id=account.account_id,
                    )
                )
            # Its ids as this login knows them: no Page of a Facebook Login left behind.
            channel.account_ids = {
                registry.adapter_for(LOGIN_KIND).account_field: account.account_id
            }
            channel.secrets = sealed
            channel.settings = reconnected(channel.settings, settings)
            channel.status = "connected"
            channel.connected_by = account.app_user_id
            channel.connected_via = "instagram_login"
            s.add(channel)
            await audit.append(s, _audit(workspace_id, actor_id, "channel.connected", channel.id))
        self._by_id.forget(channel.id)
        self._by_account.forget((LOGIN_KIND.value, account.account_id))
        return channel

    def forget(self, channel_id: uuid.UUID, kind: ChannelKind, account_id: str) -> None:
        """Drop what this node remembers of a channel changed elsewhere in the hub."""
        self._by_id.forget(channel_id)
        self._by_account.forget((kind.value, account_id))

    async def instagram_tokens_due(self, before: datetime) -> list[tuple[uuid.UUID, str]]:
        async with self.store.sessions() as s:
            rows = (
                await s.exec(
                    select(Channel).where(Channel.kind == LOGIN_KIND, Channel.status == "connected")
                )
            ).all()
        due = []
        for row in rows:
            expires = row.settings.get("token_expires_at")
            token = self.vault.open(row.secrets).get("access_token")
            if expires and token and datetime.fromisoformat(expires) <= before:
                due.append((row.id, token))
        return due

    async def replace_token(self, channel_id: uuid.UUID, token: str, expires_at: datetime) -> None:
        async with self.store.sessions() as s, s.begin():
            channel = await s.get(Channel, channel_id)
            if channel is None:
                return
            channel.secrets = self.vault.seal(
                {**self.vault.open(channel.secrets), "access_token": token}
            )
            channel.settings = {**channel.settings, "token_expires_at": expires_at.isoformat()}
            s.add(channel)
            refreshed = _audit(channel.workspace_id, None, "channel.token_refreshed", channel_id)
            refreshed.actor_type = "system"  # the hub's refresher, not the platform
            await audit.append(s, refreshed)
        self._by_id.forget(channel_id)

    async def mark(self, channel_id: uuid.UUID, status: str) -> None:
        """A platform told us the channel's token is dead (or it came back): admins see it."""
        async with self.store.sessions() as s, s.begin():
            channel = await s.get(Channel, channel_id)
            if channel is None or channel.status in (status, "disconnected"):
                return
            channel.status = status
            s.add(channel)
            action = f"channel.{status.replace('_', '-')}"
            await audit.append(s, _audit(channel.workspace_id, None, action, channel_id))
        self._by_id.forget(channel_id)

    # Routing webhooks

    async def by_account(self, kind: ChannelKind, account_id: str) -> Resolved | None:
        async def load() -> Resolved | None:
            async with self.store.sessions() as s:
                row = (
                    await s.exec(
                        select(Channel)
                        .join(ChannelAccount, ChannelAccount.channel_id == Channel.id)  # type: ignore[arg-type]
                        .where(
                            ChannelAccount.kind == kind.value,
                            ChannelAccount.account_id == account_id,
                        )
                    )
                ).first()
            return self._resolve(row)

        resolved = await self._by_account.load((kind.value, account_id), load)
        return resolved if resolved is not None and resolved.active else None

    async def by_id(self, channel_id: uuid.UUID) -> Resolved | None:
        async def load() -> Resolved | None:
            async with self.store.sessions() as s:
                return self._resolve(await s.get(Channel, channel_id))

        resolved = await self._by_id.load(channel_id, load)
        return resolved if resolved is not None and resolved.active else None

    def _resolve(self, row: Channel | None) -> Resolved | None:
        adapter = registry.get(row.kind) if row is not None else None
        if row is None or adapter is None:
            return None
        account_id = str(row.account_ids.get(adapter.account_field, ""))
        context = ChannelContext(row.workspace_id, row.id, adapter.kind, account_id)
        return Resolved(context, self.vault.open(row.secrets), row.status)


def _audit(
    workspace_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    channel_id: uuid.UUID,
    ip: str | None = None,
) -> AuditEvent:
    """Channel audit rows hold ids only; no actor means the platform did it."""
    return audit.record(
        workspace_id,
        action,
        "channel",
        channel_id,
        actor_type="user" if actor_id else "platform",
        actor_id=actor_id,
        ip=ip,
    )


async def _platform_call(adapter: Adapter, request: Request) -> tuple[bool, str]:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.request(request.method, request.url, json=request.json)
    except httpx.TransportError as exc:
        return False, redact(f"{type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = None
    return adapter.interpret_call(response.status_code, body)


def webhook_info(channel: Channel, base_url: str, shown: dict[str, str]) -> dict[str, Any]:
    """What the admin pastes into the platform's dashboard."""
    adapter = registry.get(channel.kind)
    return {} if adapter is None else adapter.webhook_info(base_url, channel.id, shown)
