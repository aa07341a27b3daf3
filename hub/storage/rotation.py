"""`hub rotate-keys`: every sealed secret re-encrypted under the newest key of
HUB_ENCRYPTION_KEYS, while the hub keeps running; afterwards the older keys may be dropped.

Channels are taken in small batches, each in a short transaction of its own that locks its
rows (`FOR UPDATE` on Postgres; SQLite has a single writer anyway). A row is written only
if it still holds what was read, so a token the hub refreshed meanwhile is never put back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select

from hub.storage.models import Channel
from hub.storage.store import Store
from hub.storage.vault import SecretUnreadable, Vault

BATCH_ROWS = 100


@dataclass(frozen=True, slots=True)
class Rotation:
    rotated: int
    current: int  # already under the newest key
    unreadable: tuple[uuid.UUID, ...]  # channels whose secrets no configured key opens


async def rotate_secrets(store: Store, vault: Vault, *, batch_rows: int = BATCH_ROWS) -> Rotation:
    """Rotate every channel's sealed secrets; audited as `secrets.rotated` with the count."""
    rotated = current = 0
    unreadable: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while True:
        query = select(Channel.id, Channel.secrets).where(col(Channel.secrets).is_not(None))
        if after is not None:
            query = query.where(col(Channel.id) > after)
        query = query.order_by(col(Channel.id)).limit(batch_rows).with_for_update()
        async with store.sessions() as s, s.begin():
            rows = list((await s.exec(query)).all())
            conn = await s.connection()
            for channel_id, sealed in rows:
                if sealed is None or vault.is_current(sealed):
                    current += 1
                    continue
                try:
                    fresh = vault.rotate(sealed)
                except SecretUnreadable:
                    unreadable.append(channel_id)
                    continue
                written = await conn.execute(
                    sa.update(Channel)
                    .where(col(Channel.id) == channel_id, col(Channel.secrets) == sealed)
                    .values(secrets=fresh)
                )
                rotated += written.rowcount
        if len(rows) < batch_rows:
            break
        after = rows[-1][0]
    detail = {"count": rotated, "unreadable": len(unreadable)}
    await store.audit(None, "system", None, "secrets.rotated", detail=detail)
    return Rotation(rotated, current, tuple(unreadable))
