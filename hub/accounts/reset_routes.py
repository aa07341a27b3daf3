"""Password reset's REST API (`hub.accounts.resets`). Asking answers 202 with the same body
whatever the e-mail; the account's lookup, the link and the letter all happen after the answer
(a background task), so neither the answer nor its timing says whether the e-mail has an
account."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts import letters, lockout
from hub.accounts.passwords import MAX_PASSWORD_CHARS, check_new_password
from hub.web.http import Body, answer, client_ip, letter_base, read_body, services
from hub.web.operation import Operation, route
from schemas.rest.accounts import Accepted

SENT = (
    "If that e-mail has an account, a link to choose a new password is on its way. "
    "Check your inbox."
)


class ResetRequest(Body):
    email: str = Field(min_length=3, max_length=320)
    language: Literal["en", "tr"] = Field(default="en", description="The letter's language")


class ResetConfirm(Body):
    token: str = Field(min_length=1, max_length=200, description="From the link's fragment")
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


async def request_reset(request: Request) -> Response:
    svc = services(request)
    body = await read_body(request, ResetRequest)
    ip = client_ip(request)
    allowed = await lockout.count_reset_request(svc.bus, svc.settings.secret_key, body.email, ip)
    base = letter_base(request)

    async def send() -> None:
        if not allowed:
            return
        if base is None:
            letters.unsent("password-reset")
            return
        started = await svc.resets.start(body.email)
        if started is None:
            return
        user, token, expires = started
        letter = letters.password_reset(
            body.language,
            to=user.email,
            link=f"{base}/reset#{token}",
            expires=expires.strftime("%Y-%m-%d %H:%M"),
        )
        await svc.mailer.send(letter)

    return answer(Accepted(message=SENT), 202, background=BackgroundTask(send))


async def confirm_reset(request: Request) -> Response:
    svc = services(request)
    body = await read_body(request, ResetConfirm)
    user = await svc.resets.user_of(body.token)
    check_new_password(body.new_password, email=user.email, name=user.name)
    await svc.resets.finish(body.token, body.new_password, ip=client_ip(request))
    # As a password change does, less the session it keeps: there is none here. Their rows go
    # (a new session's list shows none of them), socket tokens minted from them are refused
    # and their open sockets close with 4410, in every workspace of the account.
    await svc.user_sessions.end_everywhere(user.id)
    return Response(status_code=204)


routes = [
    route(
        "/api/password-reset",
        request_reset,
        "POST",
        op=Operation(
            "Ask for a password-reset link",
            {202: ("The same answer whatever the e-mail", Accepted)},
            (400, 413, 429),
            body=ResetRequest,
            auth=False,
            description="When the e-mail has an account, a letter with a link "
            "(`{public_url}/reset#<token>`) that works once, until HUB_PASSWORD_RESET_TTL_S "
            "has passed. Past 5 requests for one e-mail in an hour the answer stays the same "
            "and no letter goes out. 429 `rate_limited`, with Retry-After, past 30 requests "
            "from one address in an hour (counted whatever the e-mail).",
        ),
    ),
    route(
        "/api/password-reset/confirm",
        confirm_reset,
        "POST",
        op=Operation(
            "Choose a new password with a reset link",
            {204: ("Changed; every session of the account has ended, everywhere", None)},
            (400, 410, 413),
            body=ResetConfirm,
            auth=False,
            description="400 `weak_password` when the password does not follow the rule (the "
            "link still works); 410 `reset_invalid` for a link that was used or expired. "
            "Every other outstanding link of the account stops working. Every session of the "
            "account, in every workspace, ends: its cookie, its socket tokens and its open "
            "sockets (closed with 4410). Audited as `password.reset` in each workspace of the "
            "account.",
        ),
    ),
]
