"""Serving a conversation's files: to the workspace's agents (session cookie or API token) and
to the visitor of a web-chat conversation (its token, in the Authorization header).

A file is found under the caller's own workspace and conversation only: another workspace's
file, or another visitor's, is 404 exactly like a random name. What is served is named by the
type read from its bytes when it was kept, checked against the allowlist again; anything that
is not an image, audio or video is a download (`Content-Disposition: attachment`), everything
is `nosniff` and sandboxed, and a single byte range is answered (206) so voice notes and
videos seek.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hub.media.library import Found, MediaLibrary, NoSuchFile
from hub.web.http import authenticate, parse_uuid, services
from hub.web.operation import Operation, param, route
from hub.webchat.routes import cors, preflight, visitor_from_header

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_FILE = param("file", "path", "The file's id (`Attachment.file`)", {"type": "string"})
_SIZE = param(
    "size",
    "query",
    "`thumb`: an image's thumbnail (WebP, at most 320 pixels a side)",
    {"type": "string", "enum": ["thumb"]},
)


def _thumb(request: Request) -> bool:
    size = request.query_params.get("size")
    if size not in (None, "thumb"):
        raise NoSuchFile()
    return size == "thumb"


def library(request: Request) -> MediaLibrary:
    return services(request).library


async def agent_file(request: Request) -> Response:
    principal = await authenticate(request)
    conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
    if await services(request).store.conversation(principal.workspace_id, conversation_id) is None:
        raise NoSuchFile()
    found = await library(request).find(
        principal.workspace_id, conversation_id, request.path_params["file"], thumb=_thumb(request)
    )
    return await serve(request, found)


async def visitor_file(request: Request) -> Response:
    if (early := preflight(request, "GET")) is not None:
        return early
    claims = await visitor_from_header(request)
    conversation = services(request).ingress.visitor_conversation(claims)
    found = await library(request).find(
        claims.workspace_id, conversation.id, request.path_params["file"], thumb=_thumb(request)
    )
    return cors(await serve(request, found), request.headers.get("origin"))


async def serve(request: Request, found: Found) -> Response:
    stored, kind = found.stored, found.kind
    size = stored.size_bytes
    file = request.path_params.get("file") or stored.key.rsplit("/", 1)[-1]
    headers = {
        "content-type": kind.header,
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
        "content-disposition": f'{"inline" if kind.inline else "attachment"}; filename="{file}"',
        "cache-control": "private, max-age=300",
        "accept-ranges": "bytes",
        "etag": f'"{"t-" if request.query_params.get("size") else ""}{file}"',
    }
    if request.headers.get("if-none-match") == headers["etag"]:
        return Response(status_code=304, headers=_without_body(headers))
    wanted = _range(request.headers.get("range"), size)
    if isinstance(wanted, str):
        headers["content-range"] = f"bytes */{size}"
        return Response(status_code=416, headers=_without_body(headers))
    store = library(request).store
    if wanted is None:
        opened = await store.open(stored.key)
        if opened is None:
            raise NoSuchFile()
        headers["content-length"] = str(opened.stored.size_bytes)
        return StreamingResponse(opened.chunks, headers=headers)
    # Only the asked bytes are read and streamed: a player asks `bytes=0-` for every video.
    start, end = wanted
    opened = await store.open(stored.key, start, end)
    if opened is None:
        raise NoSuchFile()
    headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(end - start + 1)
    return StreamingResponse(opened.chunks, status_code=206, headers=headers)


def _without_body(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("content-type", "content-disposition")}


def _range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one range asked for, as (first, last) byte; None for the whole file (no header,
    several ranges, or one that cannot be read), "unsatisfiable" past the end."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            return "unsatisfiable"
        return max(size - count, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return start, end


_SERVED = {
    200: ("The file, typed from its bytes", None),
    206: ("The byte range asked for (`Range: bytes=a-b`)", None),
}
_HOW = (
    " Images, audio and video are served inline; other files as downloads. Audio and video "
    "answer one byte range (206) so players can seek; past the end is 416."
)

routes = [
    route(
        "/api/conversations/{conversation_id}/media/{file}",
        agent_file,
        "GET",
        op=Operation(
            "A file of a conversation",
            _SERVED,
            (401, 404),
            params=(
                param(
                    "conversation_id",
                    "path",
                    "The conversation",
                    {"type": "string", "format": "uuid"},
                ),
                _FILE,
                _SIZE,
            ),
            binary=True,
            description="The workspace's agents only: another workspace's file is 404." + _HOW,
        ),
    ),
    route(
        "/api/widget/media/{file}",
        visitor_file,
        "GET",
        "OPTIONS",
        op=Operation(
            "A file of the visitor's own conversation",
            _SERVED,
            (401, 403, 404),
            params=(_FILE, _SIZE),
            auth=False,
            binary=True,
            description="Public, with the visitor token in `Authorization: Bearer` (never in "
            "a URL); the request's Origin must be one of the channel's allowed origins." + _HOW,
        ),
    ),
]
