"""`GET /media/s/{token}`: a conversation's file by a short-lived signed link
(`hub.media.links`), public, for a platform that fetches the files the hub sends (Instagram).
Served like an agent's download (`hub.media.routes.serve`): typed from its bytes, `nosniff`,
sandboxed, one byte range answered.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.media.links import PATH, MediaLinks
from hub.media.routes import serve
from hub.web.http import services
from hub.web.operation import Operation, param, route


async def signed_file(request: Request) -> Response:
    svc = services(request)
    target = MediaLinks(svc.settings.secret_key).read(request.path_params["token"])
    found = await svc.library.find(target.workspace_id, target.conversation_id, target.file)
    return await serve(request, found)


routes = [
    route(
        PATH + "{token}",
        signed_file,
        "GET",
        op=Operation(
            "A file, by a short-lived signed link",
            {
                200: ("The file, typed from its bytes", None),
                206: ("The byte range asked for (`Range: bytes=a-b`)", None),
            },
            (404, 410),
            params=(param("token", "path", "The signed link's token", {"type": "string"}),),
            auth=False,
            binary=True,
            description="Public: what the hub gives a platform that fetches an agent's files "
            "by URL (Instagram). A link names one file and works for ten minutes; a link "
            "whose signature does not match is 404 `media_link_invalid`, an expired one 410 "
            "`media_link_expired`, a file erased since 404 `no_such_file`.",
        ),
    ),
]
