"""The workspace's own settings: its name, how long it keeps messages (`hub.privacy.retention`),
whether Meta's data-deletion callback for the person who connected a channel also erases
that channel's conversations (`hub.privacy.platform`), and whether its admins must sign in
with a second factor (`hub.accounts.twofactor`).

Every member reads them; admins change them, audited as `retention.changed` with the old and
new number of days (None: kept forever), `workspace.platform_deletion_changed` and
`workspace.two_factor_changed`.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator
from starlette.requests import Request
from starlette.responses import Response

from hub.errors import NotFound
from hub.storage import audit
from hub.storage.models import Workspace
from hub.web.http import answer, authenticate, client_ip, read_body, require_admin, services
from hub.web.operation import Operation, route
from schemas.rest.accounts import WorkspaceOut

MAX_RETENTION_DAYS = 3650


class WorkspacePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retention_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days messages are kept before the worker's sweep deletes them, with the "
        "conversations and contacts they leave empty; null keeps them forever",
    )
    platform_deletion_erases: StrictBool = Field(
        default=False,
        description="true: Meta's data-deletion callback for the person who connected a "
        "channel also erases its conversations; false: it disconnects the channel only",
    )

    require_two_factor_for_admins: StrictBool = Field(
        default=False,
        description="true: admins sign in with a second factor, and one without it enrols "
        "at their next sign-in; agents are not asked",
    )

    @model_validator(mode="after")
    def _something(self) -> WorkspacePatch:
        if not self.model_fields_set:
            raise ValueError(
                "give retention_days, platform_deletion_erases or require_two_factor_for_admins"
            )
        return self


def workspace_out(row: Workspace) -> WorkspaceOut:
    return WorkspaceOut(
        id=row.id,
        name=row.name,
        retention_days=row.retention_days,
        platform_deletion_erases=row.platform_deletion_erases,
        require_two_factor_for_admins=row.require_two_factor_for_admins,
    )


async def _workspace(request: Request, workspace_id: uuid.UUID) -> Workspace:
    async with services(request).store.sessions() as s:
        row = await s.get(Workspace, workspace_id)
    if row is None:
        raise NotFound("No such workspace.")
    return row


async def get_workspace(request: Request) -> Response:
    principal = await authenticate(request)
    return answer(workspace_out(await _workspace(request, principal.workspace_id)))


async def change_workspace(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_body(request, WorkspacePatch)
    async with services(request).store.sessions() as s, s.begin():
        row = await s.get(Workspace, principal.workspace_id, with_for_update=True)
        if row is None:
            raise NotFound("No such workspace.")
        if "platform_deletion_erases" in body.model_fields_set and (
            row.platform_deletion_erases != body.platform_deletion_erases
        ):
            await audit.append(
                s,
                audit.record(
                    row.id,
                    "workspace.platform_deletion_changed",
                    "workspace",
                    row.id,
                    actor_type="user",
                    actor_id=principal.user_id,
                    ip=client_ip(request),
                    detail={"to": body.platform_deletion_erases},
                ),
            )
            row.platform_deletion_erases = body.platform_deletion_erases
            s.add(row)
        if "require_two_factor_for_admins" in body.model_fields_set and (
            row.require_two_factor_for_admins != body.require_two_factor_for_admins
        ):
            await audit.append(
                s,
                audit.record(
                    row.id,
                    "workspace.two_factor_changed",
                    "workspace",
                    row.id,
                    actor_type="user",
                    actor_id=principal.user_id,
                    ip=client_ip(request),
                    detail={"require_for_admins": body.require_two_factor_for_admins},
                ),
            )
            row.require_two_factor_for_admins = body.require_two_factor_for_admins
            s.add(row)
        old = row.retention_days
        if "retention_days" in body.model_fields_set and old != body.retention_days:
            row.retention_days = body.retention_days
            s.add(row)
            await audit.append(
                s,
                audit.record(
                    row.id,
                    "retention.changed",
                    "workspace",
                    row.id,
                    actor_type="user",
                    actor_id=principal.user_id,
                    ip=client_ip(request),
                    detail={"from": old, "to": body.retention_days},
                ),
            )
    return answer(workspace_out(row))


routes = [
    route(
        "/api/workspace",
        get_workspace,
        "GET",
        op=Operation(
            "The workspace and its retention",
            {200: ("The caller's workspace", WorkspaceOut)},
            (401,),
        ),
    ),
    route(
        "/api/workspace",
        change_workspace,
        "PATCH",
        op=Operation(
            "Change how long messages are kept, what Meta's data deletion erases, and whether "
            "admins need a second factor",
            {200: ("Changed (or already so)", WorkspaceOut)},
            (400, 401, 403, 413),
            body=WorkspacePatch,
            description="Admins only. The worker's sweep (every HUB_RETENTION_SWEEP_S) then "
            "deletes older messages, the conversations and contacts they leave empty and "
            "the stream entries before the cut. Audited as `retention.changed` with the old "
            "and new number of days, and `workspace.two_factor_changed`.",
        ),
    ),
]
