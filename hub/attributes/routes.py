"""Custom attributes' REST endpoints: admins define them (`/api/attributes`), agents read the
definitions and set values on contacts and conversations. A change of values is stored, then
published (`conversation.updated` or `contact.updated` with `attributes` and `by`) so every
open inbox shows it."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.members import Actor
from hub.attributes.bodies import DefinitionBody, DefinitionPatch, ValuesBody
from hub.attributes.kinds import Subject
from hub.attributes.service import Attributes, definition_out
from hub.errors import NotFound
from hub.web.http import (
    admin_actor,
    answer,
    authenticate,
    client_ip,
    parse_uuid,
    read_body,
    services,
)
from hub.web.operation import Operation, id_param, route
from schemas.events import ContactUpdated, ConversationUpdated
from schemas.rest.attributes import AttributeValues, DefinitionOut, DefinitionPage


def _attributes(request: Request) -> Attributes:
    return Attributes(services(request).store.sessions)


async def list_definitions(request: Request) -> Response:
    principal = await authenticate(request)
    rows = await _attributes(request).definitions(principal.workspace_id)
    return answer(DefinitionPage(items=[definition_out(r) for r in rows]))


async def add_definition(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, DefinitionBody)
    row = await _attributes(request).create(principal.workspace_id, actor, body)
    return answer(definition_out(row), 201)


async def change_definition(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    definition_id = parse_uuid(request.path_params["attribute_id"], "attribute")
    patch = await read_body(request, DefinitionPatch)
    row = await _attributes(request).change(principal.workspace_id, actor, definition_id, patch)
    return answer(definition_out(row))


async def delete_definition(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    definition_id = parse_uuid(request.path_params["attribute_id"], "attribute")
    await _attributes(request).delete(principal.workspace_id, actor, definition_id)
    return Response(status_code=204)


async def _subject(request: Request, subject: Subject) -> tuple[uuid.UUID, uuid.UUID]:
    principal = await authenticate(request)
    return principal.workspace_id, parse_uuid(request.path_params[f"{subject}_id"], subject)


async def get_conversation_values(request: Request) -> Response:
    workspace_id, subject_id = await _subject(request, "conversation")
    return await _values(request, workspace_id, "conversation", subject_id)


async def get_contact_values(request: Request) -> Response:
    workspace_id, subject_id = await _subject(request, "contact")
    return await _values(request, workspace_id, "contact", subject_id)


async def _values(
    request: Request, workspace_id: uuid.UUID, subject: Subject, subject_id: uuid.UUID
) -> Response:
    store, attributes = services(request).store, _attributes(request)
    exists = (
        await store.conversation(workspace_id, subject_id)
        if subject == "conversation"
        else (await store.contacts(workspace_id, [subject_id])).get(subject_id)
    )
    if exists is None:
        raise NotFound(f"No such {subject}.")
    return answer(
        AttributeValues(values=await attributes.values(workspace_id, subject, subject_id))
    )


async def set_conversation_values(request: Request) -> Response:
    return await _set(request, "conversation")


async def set_contact_values(request: Request) -> Response:
    return await _set(request, "contact")


async def _set(request: Request, subject: Subject) -> Response:
    principal = await authenticate(request)
    subject_id = parse_uuid(request.path_params[f"{subject}_id"], subject)
    body = await read_body(request, ValuesBody)
    actor = Actor(principal.user_id, client_ip(request))
    attributes = _attributes(request)
    workspace_id = principal.workspace_id
    changes = await attributes.set_values(workspace_id, actor, subject, subject_id, body.values)
    if changes:
        data: ContactUpdated | ConversationUpdated = (
            ConversationUpdated(conversation_id=subject_id, attributes=changes, by=actor.user_id)
            if subject == "conversation"
            else ContactUpdated(contact_id=subject_id, attributes=changes, by=actor.user_id)
        )
        await services(request).bus.publish(str(workspace_id), data.NAME, data.dump())
    return answer(
        AttributeValues(values=await attributes.values(workspace_id, subject, subject_id))
    )


_ONE = "/api/attributes/{attribute_id}"
_ID = id_param("attribute_id", "An attribute definition's id")
_CONVERSATION = "/api/conversations/{conversation_id}/attributes"
_CONTACT = "/api/contacts/{contact_id}/attributes"
_SET = (
    "Only the keys given change; null clears one. 400 `unknown_attribute` for a key that is "
    "not an attribute of this kind of record, `invalid_attribute_value` for a value that "
    "does not fit its type (a number; a date as YYYY-MM-DD; one of a list's options; an "
    "http or https link; text up to 500 characters). Nothing is stored unless all fit. "
    "Published as `{event}` with `attributes` and `by`, so every open inbox shows it."
)

routes = [
    route(
        "/api/attributes",
        list_definitions,
        "GET",
        op=Operation(
            "The workspace's custom attributes",
            {200: ("Every definition", DefinitionPage)},
            (401,),
        ),
    ),
    route(
        "/api/attributes",
        add_definition,
        "POST",
        op=Operation(
            "Define a custom attribute (admins)",
            {201: ("Defined", DefinitionOut)},
            (400, 401, 403, 409, 413),
            body=DefinitionBody,
            description="Audited (`attribute.created`). 409 `conflict` when the key is taken "
            "(keys are unique in the workspace, for contacts and conversations together).",
        ),
    ),
    route(
        _ONE,
        change_definition,
        "PATCH",
        op=Operation(
            "Rename a custom attribute or change a list's options (admins)",
            {200: ("Changed", DefinitionOut)},
            (400, 401, 403, 404, 409, 413),
            body=DefinitionPatch,
            params=(_ID,),
            description="Values no longer among a list's options are removed. Audited "
            "(`attribute.updated`).",
        ),
    ),
    route(
        _ONE,
        delete_definition,
        "DELETE",
        op=Operation(
            "Delete a custom attribute and all its values (admins)",
            {204: ("Deleted", None)},
            (401, 403, 404),
            params=(_ID,),
            description="Audited (`attribute.deleted`, with how many values went).",
        ),
    ),
    route(
        _CONVERSATION,
        get_conversation_values,
        "GET",
        op=Operation(
            "A conversation's custom attribute values",
            {200: ("By key", AttributeValues)},
            (401, 404),
            params=(id_param("conversation_id", "A conversation id"),),
        ),
    ),
    route(
        _CONVERSATION,
        set_conversation_values,
        "PATCH",
        op=Operation(
            "Set or clear a conversation's custom attribute values",
            {200: ("All its values, as stored", AttributeValues)},
            (400, 401, 403, 404, 413),
            body=ValuesBody,
            params=(id_param("conversation_id", "A conversation id"),),
            description=_SET.format(event="conversation.updated"),
        ),
    ),
    route(
        _CONTACT,
        get_contact_values,
        "GET",
        op=Operation(
            "A contact's custom attribute values",
            {200: ("By key", AttributeValues)},
            (401, 404),
            params=(id_param("contact_id", "A contact id"),),
        ),
    ),
    route(
        _CONTACT,
        set_contact_values,
        "PATCH",
        op=Operation(
            "Set or clear a contact's custom attribute values",
            {200: ("All their values, as stored", AttributeValues)},
            (400, 401, 403, 404, 413),
            body=ValuesBody,
            params=(id_param("contact_id", "A contact id"),),
            description=_SET.format(event="contact.updated"),
        ),
    ),
]
