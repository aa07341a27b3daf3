"""Connecting Instagram through Business Login for Instagram.

`POST /api/channels/instagram/authorize` (admins) answers the URL to send the browser to;
its `state` is signed, bound to the workspace and the admin, and expires in ten minutes.
`GET /oauth/instagram/callback` checks the state, exchanges the code for a short-lived
then a long-lived token, reads the account, subscribes it to the webhook fields and
stores the channel with its token sealed; then it sends the browser back to the inbox.
`hub.channels.tokens.TokenRefresher` (a worker task) keeps the token alive afterwards.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta

import httpx
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.meta import instagram_login as ig
from hub.channels.tokens import call, endpoints
from hub.errors import BadRequest, Forbidden
from hub.settings import Settings
from hub.web.http import authenticate, public_base, read_body, require_admin, services
from hub.web.operation import Operation, route
from schemas.message import utc_now
from schemas.rest.channels import AuthorizeUrl

log = logging.getLogger("hub.oauth")

STATE_MAX_AGE_S = 600


class AuthorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="Instagram", min_length=1, max_length=200)


class OAuthFailed(BadRequest):
    code = "oauth_failed"
    default_message = "Instagram did not complete the connection."


def _states(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="hub.instagram-oauth")


def _redirect_uri(request: Request) -> str:
    return f"{public_base(request)}/oauth/instagram/callback"


def _app(settings: Settings) -> tuple[str, str]:
    if not settings.instagram_app_id or not settings.instagram_app_secret:
        raise Forbidden("Business Login for Instagram is not configured on this hub.")
    return settings.instagram_app_id, settings.instagram_app_secret


async def authorize(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_body(request, AuthorizeBody)
    settings = services(request).settings
    app_id, _ = _app(settings)
    state = _states(settings).dumps(
        {
            "w": str(principal.workspace_id),
            "u": str(principal.user_id),
            "n": body.name,
            "r": secrets.token_hex(8),
        }
    )
    url = ig.authorize_url(endpoints(settings), app_id, _redirect_uri(request), state)
    return JSONResponse({"url": url, "scopes": list(ig.SCOPES)})


async def callback(request: Request) -> Response:
    svc = services(request)
    settings = svc.settings
    app_id, app_secret = _app(settings)
    try:
        state: dict[str, str] = _states(settings).loads(
            request.query_params.get("state", ""), max_age=STATE_MAX_AGE_S
        )
    except (BadSignature, SignatureExpired):
        raise OAuthFailed(
            "The connection request is not valid or has expired; start again."
        ) from None
    if request.query_params.get("error"):
        return RedirectResponse("/?instagram=cancelled", status_code=303)
    code = request.query_params.get("code")
    if not code:
        raise OAuthFailed("Instagram sent no authorization code.")
    where = endpoints(settings)
    async with httpx.AsyncClient(timeout=10) as client:
        short = ig.read_token(
            await call(
                client, ig.exchange_code(where, app_id, app_secret, _redirect_uri(request), code)
            )
        )
        if short is None:
            raise OAuthFailed("Instagram refused the authorization code.")
        long = ig.read_token(
            await call(client, ig.long_lived(where, app_secret, short.access_token))
        )
        if long is None:
            raise OAuthFailed("Instagram refused to issue a long-lived token.")
        account = ig.read_account(await call(client, ig.me(where, long.access_token)))
        if account is None:
            raise OAuthFailed("Instagram did not say which account was connected.")
        subscribed = await call(client, ig.subscribe(where, account.account_id, long.access_token))
        if not isinstance(subscribed, dict) or subscribed.get("success") not in (True, "true"):
            raise OAuthFailed(
                f"Subscribing the account to webhooks failed: {ig.read_error(subscribed)}"
            )
    expires_at = utc_now() + timedelta(seconds=long.expires_in_s or 60 * 86400)
    channel = await svc.channels.connect_instagram(
        uuid.UUID(state["w"]),
        uuid.UUID(state["u"]),
        state["n"],
        account,
        long.access_token,
        expires_at,
    )
    return RedirectResponse(f"/?connected={channel.id}", status_code=303)


# Business Login's first step; its callback is below.
api_routes = [
    route(
        "/api/channels/instagram/authorize",
        authorize,
        "POST",
        op=Operation(
            "Start connecting Instagram with Business Login (admins)",
            {200: ("Where to send the browser", AuthorizeUrl)},
            (400, 401, 403, 413),
            body=AuthorizeBody,
            description="The callback (/oauth/instagram/callback) checks the signed state, "
            "stores the account with its long-lived token and redirects to the inbox.",
        ),
    ),
]
routes = [Route("/oauth/instagram/callback", callback, methods=["GET"])]
