"""The caller's own profile (GET and PATCH /api/me/profile): the name their team sees. The
account is global, so the name changes in every workspace of theirs; the e-mail is shown but
not changed here, since it is the sign-in and changing it would need the new address proven
first."""

from __future__ import annotations

import unicodedata

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from hub.errors import BadRequest, NotFound
from hub.storage import tenancy
from hub.storage.models import User
from hub.web.http import Body, answer, authenticate, client_ip, read_body, services
from hub.web.operation import Operation, route
from schemas.rest.profile import Profile

MAX_NAME_CHARS = 200


class ProfilePatch(Body):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, description="Not blank")


def clean_name(raw: str) -> str:
    """The name as kept: trimmed, with no control or format characters (a name shows in
    every inbox and letter, where such characters could reorder or hide text)."""
    name = raw.strip()
    if not name:
        raise BadRequest("Give your name: it is how your team sees you.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise BadRequest("A name cannot hold control characters.")
    return name


def profile_of(user: User) -> Profile:
    return Profile(
        user_id=user.id,
        name=user.name,
        email=user.email,
        two_factor=user.two_factor_enabled_at is not None,
    )


async def my_profile(request: Request) -> Response:
    principal = await authenticate(request)
    user = await services(request).store.user_by_id(principal.user_id)
    if user is None:
        raise NotFound("No such user.")
    return answer(profile_of(user))


async def change_profile(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, ProfilePatch)
    name = clean_name(body.name)
    svc = services(request)
    async with svc.store.sessions() as s, s.begin():
        user = await s.get(User, principal.user_id)
        if user is None:
            raise NotFound("No such user.")
        before = user.name
        user.name = name
        s.add(user)
    changed = profile_of(user)
    if before != name:
        # every workspace the user is in, past this one's row-level security (as /api/me reads
        # them): each keeps a copy of the member's name, and each hears of the change
        for workspace, _role in await svc.store.workspaces_of(principal.user_id):
            await svc.store.forget_member(workspace.id, principal.user_id)
            with tenancy.acting_for(workspace.id):
                await svc.store.audit(
                    workspace.id,
                    "user",
                    str(principal.user_id),
                    "profile.changed",
                    "user",
                    str(principal.user_id),
                    ip=client_ip(request),
                    detail={"fields": ["name"]},
                )
    return answer(changed)


routes = [
    route(
        "/api/me/profile",
        my_profile,
        "GET",
        op=Operation("My profile", {200: ("The caller's name and e-mail", Profile)}, (401,)),
    ),
    route(
        "/api/me/profile",
        change_profile,
        "PATCH",
        op=Operation(
            "Change my name",
            {200: ("The profile as changed", Profile)},
            (400, 401, 403, 404, 413),
            body=ProfilePatch,
            description="The name the team sees, in every workspace of the account (1 to 200 "
            "characters, trimmed; 400 `bad_request` when blank or holding control "
            "characters). The e-mail is not changed here. Audited as `profile.changed` "
            "(which fields, never their values).",
        ),
    ),
]
