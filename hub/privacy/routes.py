"""Privacy endpoints: Meta's data-deletion and deauthorize callbacks, the public status page
of a deletion request, and the admins' deletion requests under /api/deletions.

Both callbacks are form posts with a `signed_request` (`adapters.meta.signed`)
signed by the hosted app or by a channel's own app; one that does not verify is answered
400 with a machine-readable code and changes nothing. Erasure (`hub.privacy.erasure`) starts as soon
as the answer is sent; the worker's sweep finishes whatever a crash interrupts.
"""

from __future__ import annotations

import html
import logging
import re
import uuid
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, model_validator
from sqlmodel import col, select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from adapters.meta import signed
from hub.channels import metaapps
from hub.errors import BadRequest, NotFound
from hub.privacy import platform
from hub.privacy.deletions import Deletions, counts_of
from hub.privacy.erasure import Target
from hub.storage.models import ContactIdentity, DeletionRequest
from hub.web.http import (
    Body,
    answer,
    authenticate,
    client_ip,
    page_limit,
    parse_uuid,
    public_base,
    read_body,
    read_raw,
    require_admin,
    services,
)
from hub.web.operation import Operation, cursor_param, id_param, limit_param, param, route
from schemas.message import contact_id_for
from schemas.rest.privacy import (
    Deauthorized,
    Deletion,
    DeletionAccepted,
    DeletionCounts,
    DeletionFiled,
    DeletionPage,
    DeletionState,
)

log = logging.getLogger("hub.privacy")

CODE = re.compile(r"[0-9a-f]{32}")
NO_STORE = {"cache-control": "no-store"}


class MalformedSignedRequest(BadRequest):
    code = "malformed_signed_request"
    default_message = "The form field signed_request is missing or malformed."


class BadSignedRequestSignature(BadRequest):
    code = "bad_signature"
    default_message = "The signed_request is not signed by any app secret this hub holds."


class BadSignedRequestAlgorithm(BadRequest):
    code = "bad_algorithm"
    default_message = "The signed_request's algorithm is not HMAC-SHA256."


REFUSALS: dict[signed.Refusal, type[BadRequest]] = {
    signed.Refusal.MALFORMED: MalformedSignedRequest,
    signed.Refusal.BAD_SIGNATURE: BadSignedRequestSignature,
    signed.Refusal.BAD_ALGORITHM: BadSignedRequestAlgorithm,
}


# Meta's form post as the document describes it; the endpoints read it raw.
class SignedRequestForm(BaseModel):
    signed_request: str = Field(
        description="<base64url HMAC-SHA256 signature>.<base64url JSON payload>, signed with "
        "the app secret; the payload has algorithm HMAC-SHA256 and user_id (app-scoped)"
    )


class DeletionBody(Body):
    contact_id: uuid.UUID | None = Field(default=None, description="A contact of the workspace")
    channel_id: uuid.UUID | None = Field(
        default=None, description="With platform_user_id: the person as that channel knows them"
    )
    platform_user_id: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_subject(self) -> DeletionBody:
        by_contact = self.contact_id is not None
        by_identity = self.channel_id is not None and self.platform_user_id is not None
        if by_contact == by_identity or (by_contact and (self.channel_id or self.platform_user_id)):
            raise ValueError("give contact_id, or channel_id with platform_user_id")
        return self


# Meta's callbacks


async def _verified(request: Request) -> tuple[str, list[metaapps.AppChannel]]:
    """The user id of a signed request that verifies, and the channels of its app."""
    body = await read_raw(request)
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise MalformedSignedRequest() from None
    svc = services(request)
    channels = await metaapps.meta_channels(svc.store, svc.vault)
    read = signed.read_signed_request(
        form.get("signed_request"), metaapps.secrets(svc.settings, channels)
    )
    if isinstance(read, signed.Refusal):
        raise REFUSALS[read]()
    user_id = read.payload.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, str | int) or not str(user_id):
        raise MalformedSignedRequest("The signed_request names no user_id.")
    return str(user_id), metaapps.using(svc.settings, channels, read.secret)


async def data_deletion(request: Request) -> Response:
    """Erase the person in every channel of the app that signed the request, and disconnect
    the channels they connected (`hub.privacy.platform`), erasing those channels' data where
    their workspace says so."""
    user_id, channels = await _verified(request)
    svc = services(request)
    theirs = await platform.disconnect_theirs(
        svc, channels, user_id, action="channel.deletion_requested", ip=client_ip(request)
    )
    query = select(ContactIdentity.workspace_id, ContactIdentity.contact_id).where(
        col(ContactIdentity.channel_id).in_([c.channel_id for c in channels]),
        ContactIdentity.platform_user_id == user_id,
    )
    async with svc.store.sessions() as s:
        found = sorted({(str(w), str(c)) for w, c in (await s.exec(query)).all()})
    targets = [Target(w, c) for w, c in found]
    targets += [t for t in await platform.channel_targets(svc, theirs) if t not in targets]
    workspaces = {uuid.UUID(t.workspace_id) for t in targets} | {c.workspace_id for c in theirs}
    row = await svc.deletions.file(
        "meta",
        user_id,
        targets,
        workspace_id=next(iter(workspaces)) if len(workspaces) == 1 else None,
        actor=("platform", None),
        ip=client_ip(request),
    )
    code = row.confirmation_code
    return answer(
        DeletionAccepted(
            url=f"{public_base(request)}/privacy/deletion/{code}", confirmation_code=code
        ),
        background=BackgroundTask(_run, svc.deletions, row.id),
    )


async def deauthorize(request: Request) -> Response:
    """Disconnect the channels of the app that this user connected (`hub.privacy.platform`)."""
    user_id, channels = await _verified(request)
    await platform.disconnect_theirs(
        services(request),
        channels,
        user_id,
        action="channel.deauthorized",
        ip=client_ip(request),
    )
    return answer(Deauthorized())


async def _run(deletions: Deletions, request_id: uuid.UUID) -> None:
    try:
        await deletions.run(request_id)
    except Exception:  # the sweep takes it up again once its lease lapses
        log.warning("deletion request %s stopped; the sweep resumes it", request_id, exc_info=True)


# The public status page

STATES = {
    "received": "We have received this request; deleting will start shortly.",
    "in_progress": "We are deleting the data.",
    "done": "Done: the data we held has been deleted.",
    "no_data": "Done: we held no data about you.",
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Data deletion request</title></head>
<body><main><h1>Data deletion request</h1><p data-status="{status}">{text}</p></main></body>
</html>
"""


async def deletion_status(request: Request) -> Response:
    """The state of a request, and nothing else: HTML, or JSON when asked for."""
    code = request.path_params["code"]
    row = await services(request).deletions.by_code(code) if CODE.fullmatch(code) else None
    if row is None:
        raise NotFound("No such deletion request.")
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        state = DeletionState(confirmation_code=row.confirmation_code, status=row.status)
        return answer(state, headers=NO_STORE)
    page = PAGE.format(status=html.escape(row.status), text=html.escape(STATES[row.status]))
    return HTMLResponse(page, headers=NO_STORE)


# The admins' deletion requests


def deletion_out(row: DeletionRequest) -> Deletion:
    return Deletion(
        id=row.id,
        confirmation_code=row.confirmation_code,
        source=row.source,
        status=row.status,
        counts=DeletionCounts(**counts_of(row)),
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
    )


async def create_deletion(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_body(request, DeletionBody)
    svc = services(request)
    workspace_id = principal.workspace_id
    if body.contact_id is not None:
        subject, contact_id = f"contact:{body.contact_id}", body.contact_id
    else:
        assert body.channel_id is not None and body.platform_user_id is not None
        await svc.store.existing_channel(workspace_id, body.channel_id)
        subject = f"identity:{body.channel_id}:{body.platform_user_id}"
        query = select(ContactIdentity.contact_id).where(
            ContactIdentity.workspace_id == workspace_id,
            ContactIdentity.channel_id == body.channel_id,
            ContactIdentity.platform_user_id == body.platform_user_id,
        )
        async with svc.store.sessions() as s:
            known = (await s.exec(query)).first()
        # Not stored yet (still on the stream): the id it will have.
        contact_id = known or contact_id_for(workspace_id, body.channel_id, body.platform_user_id)
    row = await svc.deletions.file(
        "admin",
        subject,
        [Target(str(workspace_id), str(contact_id))],
        workspace_id=workspace_id,
        actor=("user", str(principal.user_id)),
        ip=client_ip(request),
    )
    return answer(
        DeletionFiled(id=row.id, confirmation_code=row.confirmation_code, status=row.status),
        202,
        background=BackgroundTask(_run, svc.deletions, row.id),
    )


async def list_deletions(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    rows, cursor = await services(request).deletions.page(
        principal.workspace_id,
        limit=page_limit(request),
        cursor=request.query_params.get("cursor"),
    )
    return answer(DeletionPage(items=[deletion_out(r) for r in rows], next_cursor=cursor))


async def get_deletion(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    deletion_id = parse_uuid(request.path_params["deletion_id"], "deletion request")
    row = await services(request).deletions.get(principal.workspace_id, deletion_id)
    if row is None:
        raise NotFound("No such deletion request.")
    return answer(deletion_out(row))


_FORM = "application/x-www-form-urlencoded"
_SIGNED = (
    " Public, answered to Meta: the form field `signed_request` must verify under the hosted "
    "app's secret or a channel's own app secret (400 `bad_signature`), with algorithm "
    "HMAC-SHA256 (400 `bad_algorithm`); anything else malformed is 400 "
    "`malformed_signed_request`. A refused request changes nothing."
)

api_routes = [
    route(
        "/api/deletions",
        create_deletion,
        "POST",
        op=Operation(
            "Erase a person (admins)",
            {202: ("Filed; erasure has started", DeletionFiled)},
            (400, 401, 403, 404, 413),
            body=DeletionBody,
            description="Give `contact_id`, or `channel_id` with `platform_user_id` (404 for "
            "a channel of another workspace). Erases the contact, its identities, "
            "conversations, messages, read positions and labels, and their stream events; "
            "agents get `contact.deleted`. A subject the hub knows nothing of ends `no_data`. "
            "Audited as `deletion.requested` and `deletion.completed`.",
        ),
    ),
    route(
        "/api/deletions",
        list_deletions,
        "GET",
        op=Operation(
            "The workspace's deletion requests (admins)",
            {200: ("A page", DeletionPage)},
            (400, 401, 403),
            params=(limit_param(), cursor_param()),
            description="Meta's requests are listed in the workspace they erased from (one "
            "that touched several workspaces is in none).",
        ),
    ),
    route(
        "/api/deletions/{deletion_id}",
        get_deletion,
        "GET",
        op=Operation(
            "One deletion request (admins)",
            {200: ("The request", Deletion)},
            (401, 403, 404),
            params=(id_param("deletion_id", "A deletion request's id"),),
        ),
    ),
]
routes = [
    route(
        "/privacy/meta/data-deletion",
        data_deletion,
        "POST",
        op=Operation(
            "Meta's data-deletion callback",
            {200: ("Filed; erasure has started", DeletionAccepted)},
            (400, 413),
            body=SignedRequestForm,
            body_media=_FORM,
            auth=False,
            description="Erases the person (`user_id`) from every channel of the app that "
            "signed the request: contact, identities, conversations, messages and their "
            "stream events. Idempotent: a repeat files a new request that ends `no_data`."
            + _SIGNED,
        ),
    ),
    route(
        "/privacy/meta/deauthorize",
        deauthorize,
        "POST",
        op=Operation(
            "Meta's deauthorize callback",
            {200: ("Done", Deauthorized)},
            (400, 413),
            body=SignedRequestForm,
            body_media=_FORM,
            auth=False,
            description="Disconnects the app's channels that this user connected (the "
            "channel's account is the user, or the user authorized it through Business Login "
            "for Instagram): secrets destroyed, routing stopped, `channel.updated` to agents; "
            "audited as `channel.deauthorized` by the platform." + _SIGNED,
        ),
    ),
    route(
        "/privacy/deletion/{code}",
        deletion_status,
        "GET",
        op=Operation(
            "The state of a deletion request (public)",
            {200: ("The state; HTML, or JSON with Accept: application/json", DeletionState)},
            (404,),
            params=(param("code", "path", "The confirmation code", {"type": "string"}),),
            auth=False,
            html=True,
            description="Tells the state only: received, in_progress, done or no_data.",
        ),
    ),
]
