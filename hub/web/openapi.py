"""The OpenAPI 3.1 document of the REST API, served at /api/openapi.json.

Each route declares its own operation (`hub.web.operation`); this walks the documented routes
(`hub.web.api`) and assembles them with the models they name: request bodies from the hub,
answers from `schemas.rest` (checked against real answers in tests/test_openapi.py).
Starlette answers HEAD for every GET route on its own, and the widget's OPTIONS (CORS
preflights) are plumbing; neither is listed.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.accounts.auth import SESSION_COOKIE
from hub.settings import Settings
from hub.web import api
from hub.web.http import SAFE_METHODS
from hub.web.operation import PAGE_MAX, Operation
from schemas.rest.base import ErrorBody

REF = "#/components/schemas/{model}"

ERRORS = {
    400: "The body, a parameter or the cursor is malformed (`bad_request`), a new password "
    "does not follow the password rule (`weak_password`), a custom attribute that does not "
    "exist or a value that does not fit its type (`unknown_attribute`, "
    "`invalid_attribute_value`), a contact's e-mail or phone is not of its form "
    "(`invalid_email`, `invalid_phone`), or a push subscription's endpoint is not https on a "
    "public address (`invalid_push_endpoint`), its keys are no P-256 point and 16-byte "
    "secret (`invalid_push_keys`), or a contact merged with itself (`same_contact`)",
    401: "No valid session or bearer token (`unauthenticated`), or a wrong second factor or "
    "sign-in ticket (`two_factor_failed`, `ticket_invalid`)",
    403: "Not allowed (`forbidden`, `csrf_failed`, `origin_not_allowed`, `identity_invalid`, "
    "`visitor_info_off`)",
    404: "No such resource in this workspace (`not_found`)",
    409: "Conflicts with what exists (`conflict`, `two_factor_on`, `two_factor_off`, "
    "`two_factor_required`, `account_shared`), a contact already in a pending merge "
    "(`merge_pending`), or a merge confirmed already (`merge_confirmed`)",
    410: "The signed link has expired (`media_link_expired`), or an e-mailed link was used, "
    "revoked or expired (`invitation_invalid`, `reset_invalid`)",
    413: "The body is over HUB_MAX_BODY_BYTES, or a file over HUB_MAX_MEDIA_BYTES or the "
    "channel's limit (`too_big`, `media_too_large`)",
    415: "A file's type is outside the allowlist or not taken by the channel "
    "(`unsupported_media_type`, `media_refused_by_channel`)",
    429: "Too many attempts (`too_many_attempts`, `rate_limited`), or too many connections "
    "from one address (`too_many_connections`)",
    503: "A backing service or the platform did not answer (`unavailable`, `template_sync_failed`)",
    502: "The platform refused the change or could not be reached; the message gives its "
    "reason (`platform_refused`)",
}
RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 1},
}


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if self.schemas.setdefault(name, definition) != definition:
                raise ValueError(f"Two different schemas are named {name}.")
        return {"$ref": REF.format(model=model.__name__)}


def _security(method: str) -> list[dict[str, list[str]]]:
    unsafe = method.upper() not in SAFE_METHODS
    return [{"session": [], "csrf": []} if unsafe else {"session": []}, {"bearer": []}]


def _paged(value: Any, page_max_items: int) -> Any:
    """`value` with PAGE_MAX made the page limit."""
    if value == PAGE_MAX:
        return page_max_items
    if isinstance(value, str):
        return value.replace(PAGE_MAX, str(page_max_items))
    if isinstance(value, dict):
        return {k: _paged(v, page_max_items) for k, v in value.items()}
    return value


def _operation(
    components: _Components, path: str, method: str, op: Operation, page_max_items: int
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, model) in sorted(op.answers.items()):
        responses[str(status)] = {"description": description}
        if op.binary:
            file = {"schema": {"type": "string", "format": "binary"}}
            responses[str(status)]["content"] = {"*/*": file}
        if model is not None:
            schema = components.ref(model, "serialization")
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
            if op.html:
                responses[str(status)]["content"]["text/html"] = {"schema": {"type": "string"}}
    error = {"application/json": {"schema": components.ref(ErrorBody, "serialization")}}
    for status in op.errors:
        responses[str(status)] = {"description": ERRORS[status], "content": error}
        if status == 503:
            responses[str(status)]["headers"] = {"Retry-After": RETRY_AFTER}
    words = [w.strip("{}") for w in path.split("/") if w and w != "api"]
    operation: dict[str, Any] = {
        "operationId": "_".join([method, *words]).replace("-", "_").replace(".", "_"),
        "summary": op.summary,
        "parameters": [_paged(p, page_max_items) for p in op.params],
        "responses": responses,
        "security": _security(method) if op.auth else [],
    }
    if op.description:
        operation["description"] = _paged(op.description, page_max_items)
    if op.body is not None:
        schema = components.ref(op.body, "validation")
        content = {op.body_media: {"schema": schema}}
        operation["requestBody"] = {"required": True, "content": content}
    if op.form is not None:
        form = {"schema": components.ref(op.form, "validation")}
        body = operation.setdefault("requestBody", {"required": True, "content": {}})
        body["content"]["multipart/form-data"] = form
    return operation


@functools.cache
def document(page_max_items: int = Settings.page_max_items) -> dict[str, Any]:
    """The document (built once per page limit and cached: do not mutate it)."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in api.routes:
        # Starlette adds HEAD to every GET route; OPTIONS is CORS plumbing; none: any method.
        methods = sorted((route.methods or {"GET"}) - {"HEAD", "OPTIONS"})
        for method in (m.lower() for m in methods):
            if method in paths.get(route.path, {}):
                raise ValueError(f"Two routes document {method} {route.path}.")
            paths.setdefault(route.path, {})[method] = _operation(
                components, route.path, method, route.operation, page_max_items
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SosyoCRM hub",
            "version": "1",
            "description": "The REST API. Live events come over the websockets (docs/protocol.md).",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "Set by POST /api/auth/login",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The csrf_token of login or /api/me; sent with the "
                    "cookie on every unsafe method",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "hubt_...",
                    "description": "An API token from POST /api/tokens",
                },
            },
        },
    }


async def endpoint(request: Request) -> Response:
    return JSONResponse(document(request.app.state.services.settings.page_max_items))
