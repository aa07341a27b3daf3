"""The canned responses' REST endpoints (`hub.canned.service`): any member lists, and keeps
their own; admins keep the workspace's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.canned import placeholders
from hub.canned.service import CannedBody, CannedPatch, canned_json
from hub.errors import NotFound
from hub.web.http import authenticate, parse_uuid, read_body, services


class CannedOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID
    shortcut: str
    text: str = Field(description="As saved, placeholders and all")
    personal: bool = Field(description="The caller's own; otherwise the workspace's")
    updated_at: datetime
    rendered: str | None = Field(
        default=None,
        description="With conversation_id: the text for that conversation's contact and the "
        "caller (placeholders filled in)",
    )


class CannedPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[CannedOut] = Field(
        description="By shortcut; the caller's own before the workspace's of the same shortcut"
    )


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Keyword arguments of `hub.web.openapi._Op`, per (path, method)."""
    one = "/api/canned-responses/{canned_id}"
    canned = {
        "name": "canned_id",
        "in": "path",
        "required": True,
        "description": "A canned response id",
        "schema": {"type": "string", "format": "uuid"},
    }
    conversation = {
        "name": "conversation_id",
        "in": "query",
        "required": False,
        "description": "Render each for this conversation's contact and the caller",
        "schema": {"type": "string", "format": "uuid"},
    }
    placeholders_doc = (
        "Placeholders: {{contact.name}}, {{contact.first_name}}, {{agent.name}}, "
        "{{agent.first_name}}, each with an optional fallback ({{contact.first_name | there}}); "
        "400 `unknown_placeholder` for any other."
    )
    return {
        ("/api/canned-responses", "get"): dict(
            summary="The canned responses the caller may insert",
            ok={200: ("The workspace's and the caller's own", CannedPage)},
            errors=(401, 404),
            params=(conversation,),
        ),
        ("/api/canned-responses", "post"): dict(
            summary="Save a canned response",
            ok={201: ("Saved", CannedOut)},
            errors=(400, 401, 403, 409, 413),
            body=CannedBody,
            description="The workspace's (admins; agents get 403) or, with personal, the "
            "caller's own. 409 when the owner has the shortcut already. " + placeholders_doc,
        ),
        (one, "patch"): dict(
            summary="Change a canned response",
            ok={200: ("Changed", CannedOut)},
            errors=(400, 401, 403, 404, 409, 413),
            body=CannedPatch,
            params=(canned,),
            description="The workspace's: admins only (403). Another agent's own: 404.",
        ),
        (one, "delete"): dict(
            summary="Delete a canned response",
            ok={204: ("Deleted", None)},
            errors=(401, 403, 404),
            params=(canned,),
        ),
    }


async def list_canned(request: Request) -> Response:
    """All the caller may insert; with `conversation_id`, each also rendered for it."""
    principal = await authenticate(request)
    svc = services(request)
    rows = await svc.canned.visible(principal)
    wanted = request.query_params.get("conversation_id")
    if not wanted:
        return JSONResponse({"items": [canned_json(r) for r in rows]})
    conversation = await svc.store.conversation(
        principal.workspace_id, parse_uuid(wanted, "conversation")
    )
    if conversation is None:
        raise NotFound("No such conversation.")
    contacts = await svc.store.contacts(principal.workspace_id, [conversation.contact_id])
    contact = contacts.get(conversation.contact_id)
    contact_name = (contact.name or contact.username) if contact else None
    known = placeholders.values(contact_name, principal.name)
    return JSONResponse(
        {"items": [canned_json(r, placeholders.render(r.text, known)) for r in rows]}
    )


async def create_canned(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, CannedBody)
    row = await services(request).canned.create(principal, body)
    return JSONResponse(canned_json(row), status_code=201)


async def change_canned(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, CannedPatch)
    canned_id = parse_uuid(request.path_params["canned_id"], "canned response")
    row = await services(request).canned.change(principal, canned_id, body)
    return JSONResponse(canned_json(row))


async def delete_canned(request: Request) -> Response:
    principal = await authenticate(request)
    canned_id = parse_uuid(request.path_params["canned_id"], "canned response")
    await services(request).canned.delete(principal, canned_id)
    return Response(status_code=204)


routes = [
    Route("/api/canned-responses", list_canned, methods=["GET"]),
    Route("/api/canned-responses", create_canned, methods=["POST"]),
    Route("/api/canned-responses/{canned_id}", change_canned, methods=["PATCH"]),
    Route("/api/canned-responses/{canned_id}", delete_canned, methods=["DELETE"]),
]
