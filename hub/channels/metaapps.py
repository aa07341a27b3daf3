"""Which Meta app a platform callback is for, and which channels use that app.

The hub answers for the hosted app (HUB_META_APP_SECRET, and HUB_INSTAGRAM_APP_SECRET for
Business Login for Instagram) and for every channel connected with its own app (its
`app_secret`, sealed in the vault). A signed request names its app only by the secret that
signed it, so every secret is tried (`adapters.meta.signed.read_signed_request`) and the
channels are then picked by the secret that matched.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from adapters import registry
from adapters.meta import instagram_login
from hub.settings import Settings
from hub.storage.models import Channel
from hub.storage.store import Store
from hub.storage.vault import SecretUnreadable, Vault

log = logging.getLogger("hub.metaapps")


@dataclass(frozen=True, slots=True)
class AppChannel:
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    kind: str
    status: str
    account_ids: dict[str, str]
    settings: dict[str, Any]
    app_secret: str | None = field(repr=False)  # its own app's; None: the hosted app's
    connected_by: str | None = None  # the app-scoped id of who connected it


async def meta_channels(store: Store, vault: Vault) -> list[AppChannel]:
    """Every Instagram, Messenger and WhatsApp channel of every workspace."""
    meta_kinds = [adapter.kind.value for adapter in registry.family("meta")]
    query = select(Channel).where(col(Channel.kind).in_(meta_kinds))
    async with store.sessions() as s:
        rows = (await s.exec(query)).all()
    found = []
    for row in rows:
        try:
            own = vault.open(row.secrets).get("app_secret") or None
        except SecretUnreadable:
            log.warning("channel %s: secrets unreadable; taken as the hosted app's", row.id)
            own = None
        found.append(
            AppChannel(
                row.workspace_id,
                row.id,
                row.kind,
                row.status,
                dict(row.account_ids),
                dict(row.settings),
                own,
                row.connected_by,
            )
        )
    return found


def secrets(settings: Settings, channels: list[AppChannel]) -> list[str]:
    """Every app secret the hub holds, each once."""
    values = [settings.meta_app_secret, settings.instagram_app_secret]
    values += [c.app_secret for c in channels]
    return list(dict.fromkeys(v for v in values if v))


def using(settings: Settings, channels: list[AppChannel], secret: str) -> list[AppChannel]:
    """The channels of the app whose secret this is. A channel without its own app is the
    hosted app's; that includes disconnected channels, whose secrets (and so whichever app
    they had) were destroyed: their stored conversations are still the hub's to erase."""

    def same(value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(str(value).encode(), secret.encode())

    chosen = []
    for channel in channels:
        if channel.app_secret is not None:
            match = same(channel.app_secret)
        else:
            match = same(settings.meta_app_secret) or (
                channel.kind == instagram_login.KIND and same(settings.instagram_app_secret)
            )
        if match:
            chosen.append(channel)
    return chosen


def connected_by(channel: AppChannel, user_id: str) -> bool:
    """Whether the user a callback names is the one who connected the channel: the
    app-scoped id stored when it was connected (`channels.connected_by`: the Facebook user of
    Facebook Login or Embedded Signup, `/me`'s id of Business Login for Instagram or of a
    pasted Instagram token), or its account itself (an Instagram account that authorized
    Business Login is the channel's account)."""
    if user_id in (channel.connected_by, channel.settings.get("connected_by_user_id")):
        return True
    return user_id in {str(v) for k, v in channel.account_ids.items() if k != "business_account_id"}
