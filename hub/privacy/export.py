"""Subject-access export: everything the workspace holds about one contact, as one JSON file.

What is held: the contact row, its identity on each channel, its conversations with their
labels and agents' read positions, and every message in them (agents' private notes included,
since they are data about the person; `raw` platform payloads too). Admins only; audited as
`contact.exported` with ids, never the content.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from hub.conversations.views import contact_out, conversation_out, stored_message
from hub.errors import NotFound
from hub.storage.models import MessageRow
from hub.storage.store import Store
from hub.web.http import (
    as_json,
    authenticate,
    client_ip,
    parse_uuid,
    require_admin,
    services,
)
from hub.web.operation import Operation, id_param, route
from schemas.message import utc_now
from schemas.rest.privacy import ContactExport

FORMAT = "sosyocrm.contact-export.v1"


async def messages_of(
    store: Store, workspace_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[MessageRow]:
    if not ids:
        return []
    query = (
        select(MessageRow)
        .where(MessageRow.workspace_id == workspace_id, col(MessageRow.conversation_id).in_(ids))
        .order_by(col(MessageRow.conversation_id), col(MessageRow.sent_at), col(MessageRow.id))
    )
    async with store.sessions() as s:
        return list((await s.exec(query)).all())


async def export_contact(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    contact_id = parse_uuid(request.path_params["contact_id"], "contact")
    svc = services(request)
    found = await svc.store.contact_panel(principal.workspace_id, contact_id)
    if found is None:
        raise NotFound("No such contact.")
    contact, identities, conversations = found
    ids = [c.id for c in conversations]
    messages = await messages_of(svc.store, principal.workspace_id, ids)
    labels = await svc.store.labels(principal.workspace_id, ids)
    reads = {c.id: await svc.store.reads(principal.workspace_id, c.id) for c in conversations}
    document: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": utc_now().isoformat(),
        "workspace_id": str(principal.workspace_id),
        "contact": as_json(contact_out(contact.id, contact))
        | {
            "email": contact.email,
            "created_at": contact.created_at.isoformat(),
            "updated_at": contact.updated_at.isoformat(),
        },
        "identities": [
            {
                "channel_id": str(i.channel_id),
                "platform_user_id": i.platform_user_id,
                "created_at": i.created_at.isoformat(),
            }
            for i in identities
        ],
        "conversations": [
            as_json(conversation_out(c, contact, 0, labels.get(c.id)))
            | {
                "created_at": c.created_at.isoformat(),
                "reads": [
                    {"user_id": str(r.user_id), "up_to": r.up_to, "read_at": r.read_at.isoformat()}
                    for r in reads[c.id]
                ],
            }
            for c in conversations
        ],
        "messages": [as_json(stored_message(m)) for m in messages],
    }
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        "contact.exported",
        "contact",
        str(contact.id),
        ip=client_ip(request),
    )
    return Response(
        json.dumps(document, ensure_ascii=False, indent=1),
        media_type="application/json",
        headers={
            "content-disposition": f'attachment; filename="contact-{contact.id}.json"',
            "cache-control": "no-store",
        },
    )


routes = [
    route(
        "/api/contacts/{contact_id}/export",
        export_contact,
        "GET",
        op=Operation(
            "Export everything held about a contact (subject access)",
            {200: ("A JSON file (Content-Disposition: attachment)", ContactExport)},
            (401, 403, 404),
            params=(id_param("contact_id", "A contact id"),),
            description="Admins only. Audited as `contact.exported` (ids only).",
        ),
    )
]
