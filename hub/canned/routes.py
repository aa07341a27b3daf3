"""The canned responses' REST endpoints (`hub.canned.service`): any member lists, and keeps
their own; admins keep the workspace's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.canned import placeholders
from hub.canned.service import CannedBody, CannedPatch
from hub.errors import NotFound
from hub.storage.models import CannedResponse
from hub.web.http import answer, authenticate, parse_uuid, read_body, services
from hub.web.operation import Operation, id_param, param, route
from schemas.rest.canned import CannedOut, CannedPage


def canned_out(row: CannedResponse, rendered: str | None = None) -> CannedOut:
    out = CannedOut(
        id=row.id,
        shortcut=row.shortcut,
        text=row.text,
        personal=row.user_id is not None,
        updated_at=row.updated_at,
    )
    if rendered is not None:  # otherwise no `rendered` key at all
        out.rendered = rendered
    return out


async def list_canned(request: Request) -> Response:
    """All the caller may insert; with `conversation_id`, each also rendered for it."""
    principal = await authenticate(request)
    svc = services(request)
    rows = await svc.canned.visible(principal)
    wanted = request.query_params.get("conversation_id")
    if not wanted:
        return answer(CannedPage(items=[canned_out(r) for r in rows]))
    conversation = await svc.store.conversation(
        principal.workspace_id, parse_uuid(wanted, "conversation")
    )
    if conversation is None:
        raise NotFound("No such conversation.")
    contacts = await svc.store.contacts(principal.workspace_id, [conversation.contact_id])
    contact = contacts.get(conversation.contact_id)
    contact_name = (contact.name or contact.username) if contact else None
    known = placeholders.values(contact_name, principal.name)
    return answer(
        CannedPage(items=[canned_out(r, placeholders.render(r.text, known)) for r in rows])
    )


async def create_canned(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, CannedBody)
    row = await services(request).canned.create(principal, body)
    return answer(canned_out(row), 201)


async def change_canned(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, CannedPatch)
    canned_id = parse_uuid(request.path_params["canned_id"], "canned response")
    row = await services(request).canned.change(principal, canned_id, body)
    return answer(canned_out(row))


async def delete_canned(request: Request) -> Response:
    principal = await authenticate(request)
    canned_id = parse_uuid(request.path_params["canned_id"], "canned response")
    await services(request).canned.delete(principal, canned_id)
    return Response(status_code=204)


_ONE = "/api/canned-responses/{canned_id}"
_CANNED = id_param("canned_id", "A canned response id")
_PLACEHOLDERS = (
    "Placeholders: {{contact.name}}, {{contact.first_name}}, {{agent.name}}, "
    "{{agent.first_name}}, each with an optional fallback ({{contact.first_name | there}}); "
    "400 `unknown_placeholder` for any other."
)

routes = [
    route(
        "/api/canned-responses",
        list_canned,
        "GET",
        op=Operation(
            "The canned responses the caller may insert",
            {200: ("The workspace's and the caller's own", CannedPage)},
            (401, 404),
            params=(
                param(
                    "conversation_id",
                    "query",
                    "Render each for this conversation's contact and the caller",
                    {"type": "string", "format": "uuid"},
                ),
            ),
        ),
    ),
    route(
        "/api/canned-responses",
        create_canned,
        "POST",
        op=Operation(
            "Save a canned response",
            {201: ("Saved", CannedOut)},
            (400, 401, 403, 409, 413),
            body=CannedBody,
            description="The workspace's (admins; agents get 403) or, with personal, the "
            "caller's own. 409 when the owner has the shortcut already. " + _PLACEHOLDERS,
        ),
    ),
    route(
        _ONE,
        change_canned,
        "PATCH",
        op=Operation(
            "Change a canned response",
            {200: ("Changed", CannedOut)},
            (400, 401, 403, 404, 409, 413),
            body=CannedPatch,
            params=(_CANNED,),
            description="The workspace's: admins only (403). Another agent's own: 404.",
        ),
    ),
    route(
        _ONE,
        delete_canned,
        "DELETE",
        op=Operation(
            "Delete a canned response",
            {204: ("Deleted", None)},
            (401, 403, 404),
            params=(_CANNED,),
        ),
    ),
]
