"""Invitations' REST API: an admin invites (POST /api/members), lists, resends and revokes;
the invited person opens the link's page and accepts (`hub.accounts.invitations`). The letter
goes out after the answer (a background task), so the answer is the same, and as quick,
whatever the e-mail and whatever the mail server does."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts import letters, lockout
from hub.accounts.auth import verify_password
from hub.accounts.invitations import Sent
from hub.accounts.passwords import MAX_PASSWORD_CHARS, check_new_password
from hub.accounts.routes import session_response
from hub.accounts.twofactor import Tickets, second_step
from hub.errors import BadRequest, Unauthenticated
from hub.storage.models import Invitation
from hub.web.http import Body, admin_actor, answer, client_ip, letter_base, parse_uuid, read_body
from hub.web.http import services as services_of
from hub.web.operation import Operation, id_param, route
from schemas.rest.accounts import InvitationOut, InvitationPage, InvitationView
from schemas.rest.twofactor import LoginAnswer


class NewMember(Body):
    email: str = Field(min_length=3, max_length=320)
    role: Literal["admin", "agent"] = "agent"
    language: Literal["en", "tr"] = Field(
        default="en", description="The invitation letter's language (the console's)"
    )


class InvitationResend(Body):
    language: Literal["en", "tr"] = "en"


class InvitationToken(Body):
    token: str = Field(min_length=1, max_length=200, description="From the link's fragment")


class AcceptBody(InvitationToken):
    password: str = Field(
        min_length=1,
        max_length=MAX_PASSWORD_CHARS,
        description="A new account's chosen password, or an existing account's own",
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="A new account's name"
    )


def invitation_out(row: Invitation) -> InvitationOut:
    return InvitationOut(
        id=row.id,
        email=row.email,
        role=row.role,
        invited_by=row.invited_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _letter_task(request: Request, sent: Sent, language: letters.Language) -> BackgroundTask:
    row, base = sent.invitation, letter_base(request)
    if base is None:
        return BackgroundTask(letters.unsent, "invitation")
    letter = letters.invitation(
        language,
        to=row.email,
        workspace=sent.workspace_name,
        inviter=sent.inviter_name,
        role=row.role,
        link=f"{base}/invite#{sent.token}",
        expires=row.expires_at.strftime("%Y-%m-%d %H:%M"),
    )
    return BackgroundTask(services_of(request).mailer.send, letter)


async def add_member(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    body = await read_body(request, NewMember)
    sent = await services_of(request).invitations.invite(
        principal.workspace_id, actor, email=body.email, role=body.role
    )
    out = invitation_out(sent.invitation)
    return answer(out, 202, background=_letter_task(request, sent, body.language))


async def list_invitations(request: Request) -> Response:
    principal, _ = await admin_actor(request)
    rows = await services_of(request).invitations.pending(principal.workspace_id)
    return answer(InvitationPage(items=[invitation_out(r) for r in rows]))


async def resend_invitation(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    invitation_id = _invitation_id(request)
    body = await read_body(request, InvitationResend)
    sent = await services_of(request).invitations.resend(
        principal.workspace_id, actor, invitation_id
    )
    out = invitation_out(sent.invitation)
    return answer(out, 202, background=_letter_task(request, sent, body.language))


async def revoke_invitation(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    row = await services_of(request).invitations.revoke(
        principal.workspace_id, actor, _invitation_id(request)
    )
    return answer(invitation_out(row))


async def open_invitation(request: Request) -> Response:
    body = await read_body(request, InvitationToken)
    opened = await services_of(request).invitations.open(body.token)
    row = opened.invitation
    return answer(
        InvitationView(
            workspace_name=opened.workspace_name,
            email=row.email,
            role=row.role,
            has_account=opened.has_account,
            expires_at=row.expires_at,
        )
    )


async def accept_invitation(request: Request) -> Response:
    """A new person: name and a password that follows the rule. An account: its password,
    under the sign-in lockout. Then the membership, and what a right password leads to at
    sign-in (`second_step`): a session in that workspace, or, for an account with two-factor
    on or an admin a workspace requires it of, the code step or enrolment first. The
    membership stays either way; a password alone never opens a session that sign-in would
    have asked a second factor for."""
    svc = services_of(request)
    body = await read_body(request, AcceptBody)
    row, user = await svc.invitations.invitee(body.token)
    ip = client_ip(request)
    if user is None:
        if body.name is None or not body.name.strip():
            raise BadRequest("Give your name: it is how your team sees you.")
        check_new_password(body.password, email=row.email, name=body.name)
        user, row = await svc.invitations.accept_new(
            body.token, name=body.name.strip(), password=body.password, ip=ip
        )
    else:
        key = svc.settings.secret_key
        await lockout.refuse_if_locked(svc.bus, key, user.email, ip)
        if not verify_password(user.password_hash, body.password):
            await lockout.note_failure(svc.bus, key, user.email, ip)
            await svc.store.audit(None, "anonymous", None, "login.failed", ip=ip)
            raise Unauthenticated("Wrong password for this account.")
        row = await svc.invitations.accept_existing(body.token, user, ip=ip)
    await svc.store.forget_member(row.workspace_id, user.id)
    principal = await svc.store.principal(user.id, row.workspace_id, "session")
    assert principal is not None
    workspace = await svc.store.workspace(row.workspace_id)
    challenge = second_step(Tickets(svc.settings.secret_key), user, workspace, principal)
    if challenge is not None:  # no session yet, as at sign-in
        return answer(challenge)
    return await session_response(request, principal, user.password_hash)


def _invitation_id(request: Request) -> uuid.UUID:
    return parse_uuid(request.path_params["invitation_id"], "invitation")


_INVITATION = id_param("invitation_id", "An invitation's id")
_SAME = (
    "The answer is the same whether or not the e-mail has an account anywhere; the letter "
    "goes out after it, and a mail server's failure is logged, never answered."
)

routes = [
    route(
        "/api/members",
        add_member,
        "POST",
        op=Operation(
            "Invite a member (admins)",
            {202: ("Invited; the letter is on its way", InvitationOut)},
            (400, 401, 403, 409, 413),
            body=NewMember,
            description="E-mails a link (`{public_url}/invite#<token>`) that works once, "
            "until HUB_INVITATION_TTL_S has passed; the person becomes a member only by "
            "accepting it. A newer invitation of the same e-mail replaces a pending one. "
            f"{_SAME} 409 when the e-mail is already a member of this workspace. Audited as "
            "`invitation.sent`.",
        ),
    ),
    route(
        "/api/invitations",
        list_invitations,
        "GET",
        op=Operation(
            "Pending invitations (admins)", {200: ("Every pending one", InvitationPage)}, (401, 403)
        ),
    ),
    route(
        "/api/invitations/{invitation_id}/resend",
        resend_invitation,
        "POST",
        op=Operation(
            "Send an invitation again (admins)",
            {202: ("A new link and expiry; the old link stops working", InvitationOut)},
            (400, 401, 403, 404, 413),
            body=InvitationResend,
            params=(_INVITATION,),
            description="Audited as `invitation.resent`.",
        ),
    ),
    route(
        "/api/invitations/{invitation_id}",
        revoke_invitation,
        "DELETE",
        op=Operation(
            "Revoke an invitation (admins)",
            {200: ("Revoked; its link stops working", InvitationOut)},
            (401, 403, 404),
            params=(_INVITATION,),
            description="Audited as `invitation.revoked`.",
        ),
    ),
    route(
        "/api/invitations/open",
        open_invitation,
        "POST",
        op=Operation(
            "What an invitation link is for",
            {200: ("The workspace, the e-mail and which form to show", InvitationView)},
            (400, 410, 413),
            body=InvitationToken,
            auth=False,
            description="For the invite page; the token travels in the body, never in a URL. "
            "410 `invitation_invalid` for a link that was used, revoked, replaced or expired.",
        ),
    ),
    route(
        "/api/invitations/accept",
        accept_invitation,
        "POST",
        op=Operation(
            "Accept an invitation and sign in",
            {
                200: (
                    "A member now; the session cookie set, or the second step it needs",
                    LoginAnswer,
                )
            },
            (400, 401, 409, 410, 413, 429),
            body=AcceptBody,
            auth=False,
            description="A new person gives a name and a password, which must follow the "
            "password rule (400 `weak_password`). An existing account gives its password "
            "(401 if wrong; the sign-in lockout applies, 429 `too_many_attempts`). 410 "
            "`invitation_invalid` for a link that was used, revoked, replaced or expired. "
            "The person is a member from then on; the session follows the sign-in's rules: an "
            "account with two-factor on answers `two_factor_required` with a ticket for POST "
            "/api/auth/login/two-factor, and an admin of a workspace that requires two-factor, "
            "without it, `two_factor_setup_required` (enrol with the ticket), both without a "
            "cookie. Audited as `invitation.accepted` and `member.added`.",
        ),
    ),
]
