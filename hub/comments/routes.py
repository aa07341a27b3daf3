"""Moderating a public comment from the inbox (`hub.comments.service`): any agent of the
workspace may hide it, show it again, or delete it on the platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from adapters.meta.moderation import Action
from hub.accounts.members import Actor
from hub.comments.service import Moderation
from hub.web.http import answer, authenticate, client_ip, parse_uuid, services
from hub.web.operation import Operation, id_param, route
from schemas.rest.comments import ModerationOut


def _moderating(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        principal = await authenticate(request)
        svc = services(request)
        conversation_id = parse_uuid(request.path_params["conversation_id"], "conversation")
        message_id = parse_uuid(request.path_params["message_id"], "message")
        done = await Moderation(svc.store.sessions, svc.bus, svc.channels, svc.platforms).moderate(
            principal,
            Actor(principal.user_id, client_ip(request)),
            conversation_id,
            message_id,
            action,
        )
        return answer(done)

    return endpoint


_ONE = "/api/conversations/{conversation_id}/messages/{message_id}"
_PARAMS = (
    id_param("conversation_id", "A comment conversation's id"),
    id_param("message_id", "The comment's message id"),
)
_ERRORS = (400, 401, 403, 404, 409, 502)
_SAID = (
    "Instagram and Facebook Page comments only (400 otherwise). The platform is asked first; "
    "what it refuses is 502 `platform_refused` with its reason, and nothing changes. What it "
    "does is published as `message.updated` to every inbox, stored, and audited (`{audit}`)."
)

routes = [
    route(
        f"{_ONE}/hide",
        _moderating("hide"),
        "POST",
        op=Operation(
            "Hide a comment on the platform",
            {200: ("Hidden: only its author and their friends still see it", ModerationOut)},
            _ERRORS,
            params=_PARAMS,
            description=_SAID.format(audit="comment.hidden"),
        ),
    ),
    route(
        f"{_ONE}/unhide",
        _moderating("unhide"),
        "POST",
        op=Operation(
            "Show a hidden comment again",
            {200: ("Shown to everyone again", ModerationOut)},
            _ERRORS,
            params=_PARAMS,
            description=_SAID.format(audit="comment.unhidden"),
        ),
    ),
    route(
        _ONE,
        _moderating("delete"),
        "DELETE",
        op=Operation(
            "Delete a comment on the platform",
            {200: ("Deleted there; kept here as deleted, without its text", ModerationOut)},
            _ERRORS,
            params=_PARAMS,
            description=_SAID.format(audit="comment.deleted")
            + " A deleted comment cannot be brought back (409 once deleted).",
        ),
    ),
]
