"""A route that carries its own OpenAPI operation: each routes module declares, beside each
endpoint, what the document says of it (`route(..., op=Operation(...))`); `hub.web.openapi`
walks the routes and assembles the document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Stands for HUB_PAGE_MAX_ITEMS in a parameter's schema or a description: the document is
# built for a given page limit.
PAGE_MAX = "{page_max_items}"

Answer = tuple[str, type[BaseModel] | None]  # a description, and the JSON body (None: empty)


@dataclass(frozen=True)
class Operation:
    """What the document says of one route (one method)."""

    summary: str
    answers: Mapping[int, Answer]  # the 2xx statuses
    errors: tuple[int, ...] = ()  # the error statuses, each answered with an ErrorBody
    body: type[BaseModel] | None = None
    params: tuple[dict[str, Any], ...] = ()
    auth: bool = True
    description: str = ""
    body_media: str = "application/json"  # or a form: application/x-www-form-urlencoded
    form: type[BaseModel] | None = None  # also accepted as multipart/form-data (with files)
    binary: bool = False  # the 2xx answers are files (any type), not JSON
    html: bool = False  # the 2xx answers are HTML too (for a browser), JSON when asked for


class ApiRoute(Route):
    """A Starlette route with the operation the document gives it."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        methods: list[str] | None,
        operation: Operation,
    ) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.operation = operation


def route(
    path: str,
    endpoint: Callable[[Request], Awaitable[Response]],
    *methods: str,
    op: Operation,
) -> ApiRoute:
    """A route answering `methods` (none: any method, documented as GET)."""
    return ApiRoute(path, endpoint, methods=list(methods) or None, operation=op)


def param(
    name: str,
    where: str,
    description: str,
    schema: dict[str, Any],
    *,
    required: bool | None = None,
) -> dict[str, Any]:
    """An OpenAPI parameter; one in the path is always required, one in the query by choice."""
    return {
        "name": name,
        "in": where,
        "required": where == "path" if required is None else required,
        "description": description,
        "schema": schema,
    }


def id_param(name: str, description: str) -> dict[str, Any]:
    """A uuid in the path."""
    return param(name, "path", description, {"type": "string", "format": "uuid"})


def limit_param(description: str = "Page size", default: int = 50) -> dict[str, Any]:
    """The `limit` query parameter: 1 to HUB_PAGE_MAX_ITEMS."""
    schema = {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": default}
    return param("limit", "query", description, schema)


def cursor_param() -> dict[str, Any]:
    return param("cursor", "query", "`next_cursor` of the previous page", {"type": "string"})
