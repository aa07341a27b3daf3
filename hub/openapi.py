"""The OpenAPI document of the REST API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "SosyoCRM hub", "version": "1"}, "paths": {}}


async def endpoint(request: Request) -> Response:
    return JSONResponse(document())
