"""The contact panel's REST API: an agent edits a contact (`hub.contacts.edit`)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.members import Actor
from hub.contacts.edit import ContactEditor, ContactPatch
from hub.contacts.merge import ContactMerger, merge_out
from hub.conversations.routes import get_contact
from hub.web.http import answer, authenticate, client_ip, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, route
from schemas.rest.conversations import ContactMergeOut, ContactPanel


class MergeRequest(BaseModel):
    """The contact to merge into the one in the path (the same person on another channel)."""

    model_config = ConfigDict(extra="forbid")
    other_id: uuid.UUID


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


def _merger(request: Request) -> ContactMerger:
    svc = services(request)
    return ContactMerger(svc.store.sessions, svc.bus, svc.ingress)


async def merge_contacts(request: Request) -> Response:
    """Any agent may merge; what moved is recorded so that an undo restores exactly."""
    principal = await authenticate(request)
    body = await read_body(request, MergeRequest)
    kept_id = parse_uuid(request.path_params["contact_id"], "contact")
    actor = Actor(principal.user_id, client_ip(request))
    merger = _merger(request)
    merge = await merger.merge(principal.workspace_id, actor, kept_id, body.other_id)
    async with merger.sessions() as s:
        return answer(await merge_out(s, merge))


async def undo_merge(request: Request) -> Response:
    principal = await authenticate(request)
    merge_id = parse_uuid(request.path_params["merge_id"], "merge")
    actor = Actor(principal.user_id, client_ip(request))
    await _merger(request).undo(principal.workspace_id, actor, merge_id)
    return Response(status_code=204)


async def confirm_merge(request: Request) -> Response:
    principal = await authenticate(request)
    merge_id = parse_uuid(request.path_params["merge_id"], "merge")
    actor = Actor(principal.user_id, client_ip(request))
    merger = _merger(request)
    merge = await merger.confirm(principal.workspace_id, actor, merge_id)
    async with merger.sessions() as s:
        return answer(await merge_out(s, merge))


_MERGE = id_param("merge_id", "A merge id")

routes = [
    route(
        "/api/contacts/{contact_id}/merge",
        merge_contacts,
        "POST",
        op=Operation(
            "Merge another contact into this one (the same person on another channel)",
            {200: ("The pending merge", ContactMergeOut)},
            (400, 401, 403, 404, 409, 413),
            body=MergeRequest,
            params=(id_param("contact_id", "The contact to keep"),),
            description="The other contact's conversations, identities and messages move to "
            "this one; neither contact's fields change. Pending until confirmed: undo puts "
            "back exactly what moved. New messages of the other contact's identities land on "
            "this one. 400 `same_contact`; 404 when either is not in the workspace; 409 "
            "`merge_pending` when either is already in a pending merge. Audited as "
            "`contact.merged` (ids only); both contacts' `contact.updated` follow with `by`.",
        ),
    ),
    route(
        "/api/contacts/merges/{merge_id}/undo",
        undo_merge,
        "POST",
        op=Operation(
            "Undo a pending merge",
            {204: ("Undone: what moved is back on the other contact", None)},
            (400, 401, 403, 404, 409),
            params=(_MERGE,),
            description="409 `merge_confirmed` once confirmed. Audited as `contact.merge_undone`.",
        ),
    ),
    route(
        "/api/contacts/merges/{merge_id}/confirm",
        confirm_merge,
        "POST",
        op=Operation(
            "Confirm a merge: the other contact is deleted, its messages stay on this one",
            {200: ("The confirmed merge", ContactMergeOut)},
            (400, 401, 403, 404, 409),
            params=(_MERGE,),
            description="The merged-away contact's row (its own fields and custom "
            "attributes) is deleted; the merge stays as a redirect so that new messages of "
            "its identities land on the kept contact. 409 `merge_confirmed` when confirmed "
            "already. Audited as `contact.merge_confirmed`.",
        ),
    ),
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
