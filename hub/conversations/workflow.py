"""The inbox's workflow routes: how many conversations each status and assignee filter holds,
and one action applied to many conversations at once (assign, status, label, priority).

A bulk action is the single PATCH's change applied per conversation through the same
`Ingress.change_conversation`: the same checks, the same `conversation.updated` event (so the
same storing, audit and automation), and one result per id, a refusal of one never stopping
the others."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from hub.automation.bodies import Label, Priority
from hub.errors import BadRequest, HubError
from hub.storage.counts import filter_counts
from hub.web.http import Body, answer, authenticate, read_body, services
from hub.web.operation import Operation, param, route
from schemas.rest.workflow import (
    AssigneeCounts,
    BulkItem,
    BulkResult,
    FilterCounts,
    StatusCounts,
)

# Limits
MAX_BULK_IDS = 100


class BulkBody(Body):
    ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_BULK_IDS, description=f"At most {MAX_BULK_IDS} conversations"
    )
    action: Literal["assign", "status", "label", "priority"]
    assignee_id: uuid.UUID | None = Field(
        default=None, description="assign: a member of the workspace; null unassigns"
    )
    status: Literal["open", "pending", "resolved"] | None = Field(
        default=None, description="status: the new status (snoozing takes one at a time)"
    )
    label: Label | None = Field(default=None, description="label: added to each one's labels")
    priority: Priority | None = Field(default=None, description="priority: null clears it")


async def counts(request: Request) -> Response:
    principal = await authenticate(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in ("open", "pending", "resolved", "snoozed"):
        raise BadRequest("status must be open, pending, resolved or snoozed.")
    wanted = request.query_params.get("assignee", "any")
    assignee: uuid.UUID | str | None = {"me": principal.user_id, "none": None}.get(wanted, wanted)
    if wanted not in ("me", "none", "any"):
        raise BadRequest("assignee must be me, none or any.")
    mentioned = request.query_params.get("mentions")
    if mentioned not in (None, "me"):
        raise BadRequest("mentions must be me.")
    statuses, assignees = await filter_counts(
        services(request).store.sessions,
        principal.workspace_id,
        principal.user_id,
        status=status,
        assignee=assignee,
        mentioned=principal.user_id if mentioned else None,
    )
    return answer(
        FilterCounts(status=StatusCounts(**statuses), assignee=AssigneeCounts(**assignees))
    )


async def bulk(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, BulkBody)
    svc = services(request)
    changes: dict[str, object]
    if body.action in ("assign", "priority") and (
        ("assignee_id" if body.action == "assign" else "priority") not in body.model_fields_set
    ):
        raise BadRequest(f"The {body.action} action needs its value (null to clear it).")
    if body.action == "assign":
        if body.assignee_id is not None and not await svc.store.is_member(
            principal.workspace_id, body.assignee_id
        ):
            raise BadRequest("The assignee is not a member of this workspace.")
        changes = {"assignee_id": str(body.assignee_id) if body.assignee_id else None}
    elif body.action == "status":
        if body.status is None:
            raise BadRequest("The status action needs status: open, pending or resolved.")
        changes = {"status": body.status}
    elif body.action == "label":
        if body.label is None:
            raise BadRequest("The label action needs a label.")
        changes = {"labels_add": [body.label]}
    else:
        changes = {"priority": body.priority}
    results: list[BulkItem] = []
    for conversation_id in dict.fromkeys(body.ids):  # each once, in the order given
        try:
            published = await svc.ingress.change_conversation(principal, conversation_id, changes)
        except HubError as refused:
            results.append(BulkItem(id=conversation_id, ok=False, code=refused.code))
        else:
            results.append(BulkItem(id=conversation_id, ok=True, event_id=published.id))
    return answer(BulkResult(results=results, applied=sum(r.ok for r in results)))


routes = [
    route(
        "/api/conversations/counts",
        counts,
        "GET",
        op=Operation(
            "How many conversations each status and assignee filter holds",
            {200: ("The counts", FilterCounts)},
            (400, 401),
            params=(
                param(
                    "status",
                    "query",
                    "The status under which the assignee counts are taken (none: all)",
                    {"type": "string", "enum": ["open", "pending", "resolved", "snoozed"]},
                ),
                param(
                    "assignee",
                    "query",
                    "The assignee filter under which the status counts are taken",
                    {"type": "string", "enum": ["me", "none", "any"], "default": "any"},
                ),
                param(
                    "mentions",
                    "query",
                    "`me`: the status counts of the conversations where the caller was "
                    "@mentioned (the inbox's Mentions filter)",
                    {"type": "string", "enum": ["me"]},
                ),
            ),
        ),
    ),
    route(
        "/api/conversations/bulk",
        bulk,
        "POST",
        op=Operation(
            "Assign, set the status of, label or set the priority of many conversations",
            {200: ("One result per id", BulkResult)},
            (400, 401, 403, 413),
            body=BulkBody,
            description=f"Up to {MAX_BULK_IDS} ids and one action: `assign` (`assignee_id`, "
            "null unassigns), `status` (`status`: open, pending or resolved), `label` (`label`, "
            "added) or `priority` (`priority`, null clears it). Each conversation changes as "
            "its own PATCH would (one `conversation.updated` event each, stored and audited "
            "the same way); one not in this workspace is reported with `ok: false` and its "
            "`code` (`not_found`) while the others are applied.",
        ),
    ),
]
