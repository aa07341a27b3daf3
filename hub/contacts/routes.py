"""The contact panel's REST API: an agent edits a contact (`hub.contacts.edit`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.members import Actor
from hub.contacts.edit import ContactEditor, ContactPatch
from hub.conversations.routes import get_contact
from hub.web.http import authenticate, client_ip, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, route
from schemas.rest.conversations import ContactPanel


async def change_contact(request: Request) -> Response:
    """Any agent of the workspace may correct a contact; the panel comes back as stored."""
    principal = await authenticate(request)
    body = await read_body(request, ContactPatch)
    contact_id = parse_uuid(request.path_params["contact_id"], "contact")
    svc = services(request)
    editor = ContactEditor(svc.store.sessions, svc.bus)
    await editor.change(
        principal.workspace_id, Actor(principal.user_id, client_ip(request)), contact_id, body
    )
    return await get_contact(request)


routes = [
    route(
        "/api/contacts/{contact_id}",
        change_contact,
        "PATCH",
        op=Operation(
            "Edit a contact's name, e-mail, phone, company or notes",
            {200: ("The contact panel, as stored", ContactPanel)},
            (400, 401, 403, 404, 413),
            body=ContactPatch,
            params=(id_param("contact_id", "A contact id"),),
            description="A field left out stays; null or an empty string clears it. The e-mail "
            "must look like name@domain.tld (400 `invalid_email`) and the phone be 7 to 15 "
            "digits after an optional + (400 `invalid_phone`; spaces, dots, dashes and "
            "brackets are dropped). Audited as `contact.updated` (the fields' names, never "
            "their values) and published to the agents as `contact.updated` with `by`.",
        ),
    ),
]
