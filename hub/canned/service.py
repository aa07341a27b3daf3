"""Canned responses: saved replies an agent inserts in the composer with `/shortcut`.

The workspace's are shared by every member and kept by admins; an agent's own are theirs
alone (`personal`). A shortcut is unique within its owner; an agent's own shadows the
workspace's of the same name in the composer. Texts may hold placeholders
(`hub.canned.placeholders`); asked for one conversation, each response comes rendered for its
contact and the asking agent, ready to insert.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from hub.accounts.auth import Principal
from hub.canned import placeholders
from hub.errors import Conflict, Forbidden, NotFound
from hub.storage.models import CannedResponse
from hub.storage.store import Sessions
from schemas.message import utc_now

SHORTCUT = r"^[a-z0-9][a-z0-9_-]{0,39}$"
MAX_PER_OWNER = 500


class CannedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = Field(pattern=SHORTCUT, description="Typed as /shortcut: a-z, 0-9, _ and -")
    text: str = Field(min_length=1, max_length=5000, description="May hold placeholders")
    personal: bool = Field(
        default=False, description="The caller's own; otherwise the workspace's (admins)"
    )


class CannedPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str | None = Field(default=None, pattern=SHORTCUT)
    text: str | None = Field(default=None, min_length=1, max_length=5000)


class Canned:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def visible(self, principal: Principal) -> list[CannedResponse]:
        """The workspace's and the caller's own, own first within a shortcut."""
        async with self.sessions() as s:
            rows = await s.exec(
                select(CannedResponse).where(
                    CannedResponse.workspace_id == principal.workspace_id,
                    col(CannedResponse.user_id).is_(None)
                    | (CannedResponse.user_id == principal.user_id),
                )
            )
            found = list(rows.all())
        return sorted(found, key=lambda r: (r.shortcut, r.user_id is None))

    async def create(self, principal: Principal, body: CannedBody) -> CannedResponse:
        placeholders.check(body.text)
        owner = _owner(principal, body.personal)
        async with self.sessions() as s, s.begin():
            mine = await _owned(s, principal.workspace_id, owner)
            if len(mine) >= MAX_PER_OWNER:
                raise Conflict(f"At most {MAX_PER_OWNER} canned responses each.")
            if any(r.shortcut == body.shortcut for r in mine):
                raise _taken(body.shortcut)
            row = CannedResponse(
                workspace_id=principal.workspace_id,
                user_id=owner,
                shortcut=body.shortcut,
                text=body.text,
            )
            s.add(row)
        return row

    async def change(
        self, principal: Principal, canned_id: uuid.UUID, patch: CannedPatch
    ) -> CannedResponse:
        if patch.text is not None:
            placeholders.check(patch.text)
        async with self.sessions() as s, s.begin():
            row = await _editable(s, principal, canned_id)
            if patch.shortcut is not None and patch.shortcut != row.shortcut:
                mine = await _owned(s, principal.workspace_id, row.user_id)
                if any(r.shortcut == patch.shortcut for r in mine):
                    raise _taken(patch.shortcut)
                row.shortcut = patch.shortcut
            if patch.text is not None:
                row.text = patch.text
            row.updated_at = utc_now()
            s.add(row)
        return row

    async def delete(self, principal: Principal, canned_id: uuid.UUID) -> None:
        async with self.sessions() as s, s.begin():
            await s.delete(await _editable(s, principal, canned_id))


def _owner(principal: Principal, personal: bool) -> uuid.UUID | None:
    if personal:
        return principal.user_id
    if not principal.is_admin:
        raise Forbidden("Only admins keep the workspace's canned responses; save it as personal.")
    return None


def _taken(shortcut: str) -> Conflict:
    return Conflict(f"/{shortcut} is taken already.")


async def _owned(s: Any, workspace_id: uuid.UUID, owner: uuid.UUID | None) -> list[CannedResponse]:
    whose = (
        col(CannedResponse.user_id).is_(None) if owner is None else CannedResponse.user_id == owner
    )
    rows = await s.exec(
        select(CannedResponse).where(CannedResponse.workspace_id == workspace_id, whose)
    )
    return list(rows.all())


async def _editable(s: Any, principal: Principal, canned_id: uuid.UUID) -> CannedResponse:
    row: CannedResponse | None = (
        await s.exec(
            select(CannedResponse).where(
                CannedResponse.workspace_id == principal.workspace_id,
                CannedResponse.id == canned_id,
            )
        )
    ).first()
    if row is None or (row.user_id is not None and row.user_id != principal.user_id):
        raise NotFound("No such canned response.")  # another agent's own: not even seen
    if row.user_id is None and not principal.is_admin:
        raise Forbidden("Only admins change the workspace's canned responses.")
    return row
