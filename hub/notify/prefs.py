"""An agent's notification preferences (`schemas.rest.notify.NotificationPrefs`), one row per
member of a workspace; no row means the defaults. The inbox reads them for its sound and
desktop notifications, the push worker for Web Push."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from hub.storage.models import NotificationPrefs as PrefsRow
from hub.storage.store import Sessions
from schemas.message import utc_now
from schemas.rest.notify import NotificationPrefs


class Prefs:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def of(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> NotificationPrefs:
        return (await self.of_many(workspace_id, [user_id]))[user_id]

    async def of_many(
        self, workspace_id: uuid.UUID, user_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, NotificationPrefs]:
        async with self.sessions() as s:
            rows = await s.exec(
                select(PrefsRow).where(
                    PrefsRow.workspace_id == workspace_id, col(PrefsRow.user_id).in_(user_ids)
                )
            )
            found = {row.user_id: row.prefs for row in rows.all()}
        # Keys a later version dropped are ignored, new ones take their default.
        defaults = NotificationPrefs().model_dump()
        return {
            user: NotificationPrefs.model_validate(
                defaults | {k: v for k, v in (found.get(user) or {}).items() if k in defaults}
            )
            for user in user_ids
        }

    async def put(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, prefs: NotificationPrefs
    ) -> NotificationPrefs:
        async with self.sessions() as s, s.begin():
            row = await s.get(PrefsRow, (workspace_id, user_id))
            if row is None:
                row = PrefsRow(workspace_id=workspace_id, user_id=user_id)
            row.prefs = prefs.model_dump()
            row.updated_at = utc_now()
            s.add(row)
        return NotificationPrefs.model_validate(row.prefs)  # every field set: all answered
