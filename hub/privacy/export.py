"""Subject-access export: everything the workspace holds about one contact, as one JSON file.

What is held: the contact row and its custom attributes, its identity on each channel, its
conversations with their labels, custom attributes and agents' read positions, and every
message in them (agents' private notes included, since they are data about the person; `raw`
platform payloads too), and the merges it is in, pending or confirmed. Admins only; audited as
`contact.exported` with ids, never the content.

The files the hub stores for those messages are listed under `files`, each with an absolute
link to the agents' route for it (`/api/conversations/{id}/media/{file}`), which answers the
exporting admin's session or API token: a JSON document cannot hold the bytes, and the links
stay as private as the inbox's own (a file erased since answers 404).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from hub.attributes.service import Attributes
from hub.contacts.merge import merges_of
from hub.conversations.views import contact_out, conversation_out, stored_message
from hub.errors import NotFound
from hub.media.library import agent_url
from hub.storage.models import MessageRow
from hub.storage.store import Store
from hub.web.http import (
    as_json,
    authenticate,
    client_ip,
    parse_uuid,
    public_base,
    require_admin,
    services,
)
from hub.web.operation import Operation, id_param, route
from schemas.message import Attachment, utc_now
from schemas.rest.privacy import ContactExport, ExportedFile

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


def files_of_messages(base: str, messages: list[MessageRow]) -> list[ExportedFile]:
    """The stored files among the messages' attachments, with links on the hub at `base`."""
    found = []
    for message in messages:
        for raw in message.attachments or []:
            try:
                attachment = Attachment.model_validate(raw)
            except ValueError:  # not one the hub could have stored a file for
                continue
            if attachment.file is None:
                continue
            url = base + agent_url(message.conversation_id, attachment.file)
            found.append(
                ExportedFile(
                    message_id=message.id,
                    conversation_id=message.conversation_id,
                    file=attachment.file,
                    type=str(attachment.type),
                    name=attachment.name,
                    mime_type=attachment.mime_type,
                    size=attachment.size,
                    url=url,
                    thumbnail_url=url + "?size=thumb" if attachment.thumbnail else None,
                )
            )
    return found


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
    attributes = Attributes(svc.store.sessions)
    held = await attributes.values_of(principal.workspace_id, "conversation", ids)
    document: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": utc_now().isoformat(),
        "workspace_id": str(principal.workspace_id),
        "contact": as_json(contact_out(contact.id, contact))
        | {
            "email": contact.email,
            "phone": contact.phone,
            "company": contact.company,
            "notes": contact.notes,
            "visitor": contact.visitor,
            "created_at": contact.created_at.isoformat(),
            "updated_at": contact.updated_at.isoformat(),
            "attributes": await attributes.values(principal.workspace_id, "contact", contact.id),
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
                "attributes": held.get(c.id, {}),
                "reads": [
                    {"user_id": str(r.user_id), "up_to": r.up_to, "read_at": r.read_at.isoformat()}
                    for r in reads[c.id]
                ],
            }
            for c in conversations
        ],
        "messages": [as_json(stored_message(m)) for m in messages],
        "files": [as_json(f) for f in files_of_messages(public_base(request), messages)],
        "merges": [
            as_json(m)
            for m in await merges_of(svc.store.sessions, principal.workspace_id, contact.id)
        ],
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
