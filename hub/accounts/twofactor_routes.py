"""Two-factor sign-in's REST API (`hub.accounts.twofactor`): the code step of signing in,
a user's own enrolment, codes and turning it off, and an admin's reset of a member's.

Enrolment and its changes need a cookie session, never a bearer token: a leaked API token
must not be able to put a second factor on its owner's account, or take one off. API tokens
themselves are not asked for a code: they are made from a session that was (docs/privacy.md).
Every wrong code counts toward the sign-in lockout of the account's e-mail, wherever it is
typed, and is audited as `login.two_factor_failed` with the step it was typed at.
"""

from __future__ import annotations

import json
from typing import Any, Self

from pydantic import Field, model_validator
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts import lockout
from hub.accounts.auth import Principal, verify_password
from hub.accounts.routes import session_response
from hub.accounts.twofactor import (
    TICKET_MAX_AGE_S,
    Ticket,
    TicketInvalid,
    Tickets,
    TwoFactor,
    TwoFactorFailed,
    TwoFactorRequired,
    TwoFactorRequiredOfAdmins,
    spend_ticket,
    ticket_spent,
)
from hub.errors import Conflict, Forbidden, NotFound, Unauthenticated
from hub.storage import tenancy
from hub.storage.models import Membership, User
from hub.web.http import (
    Body,
    admin_actor,
    answer,
    authenticate,
    client_ip,
    parse_uuid,
    read_body,
    services,
)
from hub.web.operation import Operation, id_param, route
from schemas.rest.accounts import LoginResult
from schemas.rest.twofactor import (
    RecoveryCodes,
    TwoFactorConfirmed,
    TwoFactorSetup,
    TwoFactorStatus,
)

_TICKET = Field(min_length=10, max_length=1000, description="From the sign-in answer")


class SecondFactor(Body):
    code: str | None = Field(
        default=None, min_length=6, max_length=8, description="The app's six digits"
    )
    recovery_code: str | None = Field(
        default=None, min_length=16, max_length=40, description="One of the recovery codes"
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("give code or recovery_code")
        return self


class TicketStep(SecondFactor):
    ticket: str = _TICKET


class SetupBody(Body):
    ticket: str | None = Field(
        default=None,
        min_length=10,
        max_length=1000,
        description="Only for the enrolment a sign-in requires (`two_factor_setup_required`); "
        "a signed-in user sends no body",
    )


class ConfirmBody(Body):
    code: str = Field(min_length=6, max_length=8, description="The app's six digits")
    ticket: str | None = Field(
        default=None,
        min_length=10,
        max_length=1000,
        description="As given to the set-up; then the answer also signs in",
    )


class DisableBody(SecondFactor):
    password: str = Field(min_length=1, max_length=1024)


class AccountShared(Conflict):
    code = "account_shared"
    default_message = (
        "This person also belongs to another workspace; they turn two-factor off themselves, "
        "with a recovery code."
    )


def _two_factor(request: Request) -> TwoFactor:
    svc = services(request)
    return TwoFactor(svc.store.sessions, svc.vault)


def _tickets(request: Request) -> Tickets:
    return Tickets(services(request).settings.secret_key)


async def _session_user(request: Request) -> tuple[Principal, User]:
    principal = await authenticate(request)
    if principal.via != "session":
        raise Unauthenticated("Two-factor sign-in is changed from a signed-in session.")
    user = await services(request).store.user_by_id(principal.user_id)
    if user is None:
        raise Unauthenticated()
    return principal, user


async def _ticket_user(request: Request, kind: str, raw: str) -> tuple[Principal, User, Ticket]:
    """The member a live, unspent ticket names, if their password is still the one it saw."""
    svc = services(request)
    ticket = _tickets(request).read(kind, raw)
    principal = await svc.store.principal(
        ticket.user_id, ticket.workspace_id, "session", password_mark=ticket.password_mark
    )
    user = await svc.store.user_by_id(ticket.user_id)
    if principal is None or user is None or await ticket_spent(svc.bus, ticket):
        raise TicketInvalid()
    tenancy.act_for(principal.workspace_id)
    return principal, user, ticket


async def _refuse_if_locked(request: Request, user: User) -> None:
    svc = services(request)
    await lockout.refuse_if_locked(svc.bus, svc.settings.secret_key, user.email, client_ip(request))


async def _failed(request: Request, principal: Principal, user: User, step: str) -> None:
    """A wrong code: counted toward the lockout and audited (no code in the row)."""
    svc = services(request)
    ip = client_ip(request)
    await lockout.note_failure(svc.bus, svc.settings.secret_key, user.email, ip)
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(user.id),
        "login.two_factor_failed",
        "user",
        str(user.id),
        ip=ip,
        detail={"step": step},
    )


async def _second_factor(
    request: Request, principal: Principal, user: User, body: SecondFactor, step: str
) -> None:
    """Check a code or spend a recovery code of the user's; TwoFactorFailed if neither."""
    await _refuse_if_locked(request, user)
    two_factor = _two_factor(request)
    if body.code is not None:
        if await two_factor.check_code(user.id, body.code):
            return
    elif body.recovery_code is not None and user.two_factor_enabled_at is not None:
        if await two_factor.use_recovery_code(user.id, body.recovery_code):
            await _audit(request, principal, "two_factor.recovery_code_used", {"step": step})
            return
    await _failed(request, principal, user, step)
    raise TwoFactorFailed()


async def _audit(
    request: Request, principal: Principal, action: str, detail: dict[str, Any] | None = None
) -> None:
    await services(request).store.audit(
        principal.workspace_id,
        "user",
        str(principal.user_id),
        action,
        "user",
        str(principal.user_id),
        ip=client_ip(request),
        detail=detail,
    )


def _with_codes(response: Response, codes: list[str]) -> Response:
    """The session answer (`session_response`, cookie and all), its body given the codes."""
    assert isinstance(response.body, bytes)
    body = json.loads(response.body) | {"recovery_codes": codes}
    response.body = response.render(TwoFactorConfirmed.model_validate(body).model_dump(mode="json"))
    response.headers["content-length"] = str(len(response.body))
    return response


async def _status(request: Request, principal: Principal) -> TwoFactorStatus:
    enabled_at, left = await _two_factor(request).status(principal.user_id)
    workspace = await services(request).store.workspace(principal.workspace_id)
    required = bool(workspace and workspace.require_two_factor_for_admins and principal.is_admin)
    return TwoFactorStatus(
        enabled=enabled_at is not None,
        enabled_at=enabled_at,
        recovery_codes_left=left,
        required=required,
    )


# Signing in


async def login_step(request: Request) -> Response:
    body = await read_body(request, TicketStep)
    principal, user, ticket = await _ticket_user(request, "code", body.ticket)
    await _second_factor(request, principal, user, body, "sign_in")
    await spend_ticket(services(request).bus, ticket)
    await services(request).store.audit(
        principal.workspace_id,
        "user",
        str(user.id),
        "login.succeeded",
        ip=client_ip(request),
        detail={"two_factor": "code" if body.code is not None else "recovery_code"},
    )
    return await session_response(request, principal, user.password_hash)


# The user's own


async def get_status(request: Request) -> Response:
    principal = await authenticate(request)
    return answer(await _status(request, principal))


async def setup(request: Request) -> Response:
    body = await read_body(request, SetupBody)
    if body.ticket is not None:
        _, user, _ = await _ticket_user(request, "setup", body.ticket)
    else:
        _, user = await _session_user(request)
    enrolment = await _two_factor(request).begin(user.id)
    return answer(
        TwoFactorSetup(otpauth_uri=enrolment.uri, secret=enrolment.secret, qr_svg=enrolment.svg),
        headers={"cache-control": "no-store"},
    )


async def confirm(request: Request) -> Response:
    body = await read_body(request, ConfirmBody)
    ticket: Ticket | None = None
    if body.ticket is not None:
        principal, user, ticket = await _ticket_user(request, "setup", body.ticket)
    else:
        principal, user = await _session_user(request)
    await _refuse_if_locked(request, user)
    codes = await _two_factor(request).confirm(user.id, body.code)
    if codes is None:
        await _failed(request, principal, user, "confirm")
        raise TwoFactorFailed()
    # A session that began with the password alone (perhaps someone else's, with a stolen
    # password) must not outlive the owner's securing the account: every other session of
    # the account ends, in every workspace, as a new password does. This one goes on; an
    # enrolment at sign-in has none yet and starts it below.
    ended = await services(request).user_sessions.end_everywhere(user.id, keep=principal.session_id)
    await _audit(request, principal, "two_factor.enabled", {"sessions_ended": ended})
    if ticket is None:
        confirmed = TwoFactorConfirmed(recovery_codes=codes)
        return answer(confirmed, headers={"cache-control": "no-store"})
    await spend_ticket(services(request).bus, ticket)
    await services(request).store.audit(
        principal.workspace_id,
        "user",
        str(user.id),
        "login.succeeded",
        ip=client_ip(request),
        detail={"two_factor": "enrolled"},
    )
    response = _with_codes(await session_response(request, principal, user.password_hash), codes)
    response.headers["cache-control"] = "no-store"
    return response


async def disable(request: Request) -> Response:
    body = await read_body(request, DisableBody)
    principal, user = await _session_user(request)
    if user.two_factor_enabled_at is None:
        raise TwoFactorRequired()
    if await _two_factor(request).required_of(user.id):  # before a recovery code is spent
        raise TwoFactorRequiredOfAdmins()
    await _refuse_if_locked(request, user)
    if not verify_password(user.password_hash, body.password):
        await _failed(request, principal, user, "disable")
        raise Unauthenticated("The password is wrong.")
    await _second_factor(request, principal, user, body, "disable")
    await _two_factor(request).disable(user.id)
    await _audit(request, principal, "two_factor.disabled")
    return Response(status_code=204)


async def regenerate(request: Request) -> Response:
    body = await read_body(request, SecondFactor)
    principal, user = await _session_user(request)
    if user.two_factor_enabled_at is None:
        raise TwoFactorRequired()
    await _second_factor(request, principal, user, body, "recovery_codes")
    codes = await _two_factor(request).regenerate(user.id)
    await _audit(request, principal, "two_factor.recovery_codes_replaced")
    return answer(RecoveryCodes(recovery_codes=codes), headers={"cache-control": "no-store"})


# An admin's reset


async def reset_member(request: Request) -> Response:
    principal, actor = await admin_actor(request)
    user_id = parse_uuid(request.path_params["user_id"], "member")
    svc = services(request)
    if not await svc.store.is_member(principal.workspace_id, user_id):
        raise NotFound("No such member.")
    if user_id == actor.user_id:  # else a session or API token alone would take it off
        raise Forbidden(
            "Your own second factor is turned off from Security, with your password and a code."
        )
    # Memberships elsewhere are past this workspace's row-level security: counted, not read.
    with tenancy.acting_for(None):
        async with svc.store.sessions() as s:
            workspaces = (
                await s.exec(select(Membership.workspace_id).where(Membership.user_id == user_id))
            ).all()
    if len(workspaces) > 1:
        raise AccountShared()
    if not await _two_factor(request).disable(user_id):
        raise TwoFactorRequired("This member has no second factor to reset.")
    await svc.store.audit(
        principal.workspace_id,
        "user",
        str(actor.user_id),
        "two_factor.reset",
        "user",
        str(user_id),
        ip=actor.ip,
    )
    return Response(status_code=204)


_ANSWER_CODES = "Send exactly one of `code` and `recovery_code`."

routes = [
    route(
        "/api/auth/login/two-factor",
        login_step,
        "POST",
        op=Operation(
            "Sign in: the second step, with a code or a recovery code",
            {200: ("Signed in; sets the cookie", LoginResult)},
            (400, 401, 413, 429),
            body=TicketStep,
            auth=False,
            description="After `/api/auth/login` answered `two_factor_required` with a ticket "
            f"(good for {TICKET_MAX_AGE_S} s, once). {_ANSWER_CODES} A code is accepted for "
            "the current 30-second step and the one before, once. A wrong one answers 401 "
            "`two_factor_failed` and counts toward the sign-in lockout (429 "
            "`too_many_attempts`); an expired or used ticket answers 401 `ticket_invalid`. "
            "Audited as `login.succeeded`, `login.two_factor_failed` and "
            "`two_factor.recovery_code_used`.",
        ),
    ),
    route(
        "/api/me/two-factor",
        get_status,
        "GET",
        op=Operation(
            "My second factor",
            {200: ("Whether it is on, and the recovery codes left", TwoFactorStatus)},
            (401,),
        ),
    ),
    route(
        "/api/me/two-factor/setup",
        setup,
        "POST",
        op=Operation(
            "Begin enrolling an authenticator app",
            {200: ("The secret, its otpauth URI and QR code, shown once", TwoFactorSetup)},
            (400, 401, 403, 409, 413),
            body=SetupBody,
            description="From a cookie session (not a bearer token), or with the ticket of a "
            "sign-in that answered `two_factor_setup_required`. The secret waits, sealed, "
            "until confirmed; a second set-up replaces it. 409 `two_factor_on` when it is "
            "already on.",
        ),
    ),
    route(
        "/api/me/two-factor/confirm",
        confirm,
        "POST",
        op=Operation(
            "Turn two-factor on with a first code",
            {200: ("On; the recovery codes, shown once", TwoFactorConfirmed)},
            (400, 401, 403, 409, 413, 429),
            body=ConfirmBody,
            description="With the set-up's ticket, the answer also signs in (sets the cookie, "
            "with `user` and `csrf_token`). Every other session of the account, in every "
            "workspace, ends (its cookie, socket tokens and open sockets, closed with 4410); "
            "the one making the request goes on. A wrong code answers 401 "
            "`two_factor_failed` and counts toward the lockout. Audited as "
            "`two_factor.enabled` (with `sessions_ended`).",
        ),
    ),
    route(
        "/api/me/two-factor",
        disable,
        "DELETE",
        op=Operation(
            "Turn two-factor off",
            {204: ("Off; the secret and the recovery codes are deleted", None)},
            (400, 401, 403, 409, 413, 429),
            body=DisableBody,
            description=f"Needs the password and a code. {_ANSWER_CODES} 409 "
            "`two_factor_required` while a workspace where the user is an admin requires "
            "two-factor of its admins (checked first: no code is spent). Audited as "
            "`two_factor.disabled`.",
        ),
    ),
    route(
        "/api/me/two-factor/recovery-codes",
        regenerate,
        "POST",
        op=Operation(
            "New recovery codes",
            {200: ("The new codes, shown once; the old ones stop working", RecoveryCodes)},
            (400, 401, 403, 409, 413, 429),
            body=SecondFactor,
            description=f"Needs a code. {_ANSWER_CODES} Audited as "
            "`two_factor.recovery_codes_replaced`.",
        ),
    ),
    route(
        "/api/members/{user_id}/two-factor",
        reset_member,
        "DELETE",
        op=Operation(
            "Reset a member's second factor (admins)",
            {204: ("Off; they sign in with their password and may enrol again", None)},
            (401, 403, 404, 409),
            params=(id_param("user_id", "A member's user id"),),
            description="For a member who lost their device and their recovery codes; not "
            "for the admin's own (403: that takes the password and a code). 409 "
            "`account_shared` when the account also belongs to another workspace (its admins "
            "could not agree), `two_factor_off` when there is nothing to reset. Audited as "
            "`two_factor.reset`.",
        ),
    ),
]
