"""Connecting Messenger Pages and Instagram accounts (through their Page) with Facebook Login
for Business (`adapters.meta.onboarding`).

1. `POST /api/channels/facebook/authorize` (admins) answers the hosted app's OAuth dialog URL;
   its `state` is signed, bound to the workspace and the admin, and expires in ten minutes.
2. `GET /oauth/facebook/callback` checks the state, exchanges the code for a long-lived user
   token, reads who signed in (`/me`) and their Pages (`/me/accounts`, every page of it), and
   keeps them sealed on the bus for ten minutes under a random ticket; the browser goes to
   the console with the ticket (`/admin?facebook_pages=<ticket>`).
3. `GET /api/channels/facebook/pages/{ticket}` lists those Pages (never their tokens) for the
   admin to pick from; `POST` the same path with the picks subscribes each picked Page to the
   app's webhooks and stores a Messenger and/or Instagram channel per pick with the Page token
   sealed, and who signed in as the channels' `connected_by`.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import httpx
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.meta import onboarding as ob
from adapters.meta.instagram_login import read_token
from hub.channels import logins
from hub.channels.pasted import PlatformRefused, perform
from hub.channels.routes import channel_out
from hub.errors import BadRequest, Forbidden, NotFound
from hub.services import Services
from hub.settings import Settings
from hub.storage.models import Channel
from hub.web.http import answer, authenticate, public_base, read_body, require_admin, services
from hub.web.operation import Operation, param, route
from schemas.message import ChannelKind
from schemas.rest.channels import AuthorizeUrl, ConnectedChannels, FacebookPage, FacebookPages

STATE_MAX_AGE_S = 600
TICKET_TTL_S = 600
MAX_ACCOUNT_CALLS = 20  # 50 Pages a call: 1000 Pages is past any business's list


class OAuthFailed(BadRequest):
    code = "oauth_failed"
    default_message = "Facebook did not complete the connection."


class Picks(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messenger: list[str] = Field(
        default_factory=list, max_length=100, description="Page ids to connect for Messenger"
    )
    instagram: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Page ids whose linked Instagram account to connect",
    )


def endpoints(settings: Settings) -> ob.Endpoints:
    return ob.Endpoints(
        dialog=settings.facebook_dialog_url,
        graph=settings.graph_url,
        instagram=settings.instagram_graph_url,
    )


def app_of(settings: Settings) -> tuple[str, str]:
    if not settings.meta_app_id or not settings.meta_app_secret:
        raise Forbidden("The hosted Meta app (HUB_META_APP_ID, HUB_META_APP_SECRET) is not set.")
    return settings.meta_app_id, settings.meta_app_secret


def _states(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="hub.facebook-oauth")


def _redirect_uri(request: Request) -> str:
    return f"{public_base(request)}/oauth/facebook/callback"


async def authorize(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    settings = services(request).settings
    app_id, _ = app_of(settings)
    state = _states(settings).dumps(
        {"w": str(principal.workspace_id), "u": str(principal.user_id), "r": secrets.token_hex(8)}
    )
    config_id = settings.facebook_login_config_id
    url = ob.dialog_url(endpoints(settings), app_id, _redirect_uri(request), state, config_id)
    return JSONResponse({"url": url, "scopes": [] if config_id else list(ob.SCOPES)})


async def callback(request: Request) -> Response:
    svc = services(request)
    app_id, app_secret = app_of(svc.settings)
    try:
        state: dict[str, str] = _states(svc.settings).loads(
            request.query_params.get("state", ""), max_age=STATE_MAX_AGE_S
        )
    except (BadSignature, SignatureExpired):
        raise OAuthFailed(
            "The connection request is not valid or has expired; start again."
        ) from None
    if request.query_params.get("error"):
        return RedirectResponse("/admin?facebook=cancelled", status_code=303)
    code = request.query_params.get("code")
    if not code:
        raise OAuthFailed("Facebook sent no authorization code.")
    where = endpoints(svc.settings)
    async with httpx.AsyncClient() as client:
        exchanged = await _call(
            client, ob.exchange_code(where, app_id, app_secret, code, _redirect_uri(request))
        )
        short = read_token(exchanged)
        if short is None:
            raise OAuthFailed("Facebook refused the authorization code.")
        long = read_token(
            await _call(client, ob.long_lived(where, app_id, app_secret, short.access_token))
        )
        token = long.access_token if long is not None else short.access_token
        person = ob.read_person(await _call(client, ob.me(where, token)))
        if person is None:
            raise OAuthFailed("Facebook did not say who signed in.")
        pages = await _all_pages(client, where, token)
    ticket = secrets.token_urlsafe(24)
    held = {
        "u": state["u"],
        "by": person.user_id,
        "pages": [
            {
                "id": p.page_id,
                "name": p.name,
                "token": p.token,
                "ig": p.instagram_id,
                "ig_name": p.instagram_username,
            }
            for p in pages
        ],
    }
    await svc.bus.remember(
        state["w"], _key(ticket), svc.vault.seal({"held": json.dumps(held)}), ttl_s=TICKET_TTL_S
    )
    return RedirectResponse(f"/admin?facebook_pages={ticket}", status_code=303)


async def _call(client: httpx.AsyncClient, call: Any) -> Any:
    done = await perform(client, call)
    if done is None:
        raise OAuthFailed("Facebook could not be reached; try again.")
    status, body = done
    if not 200 <= status < 300:
        raise PlatformRefused("Facebook refused", ob.refusal(status, body))
    return body


async def _all_pages(client: httpx.AsyncClient, where: ob.Endpoints, token: str) -> list[ob.Page]:
    pages: list[ob.Page] = []
    after: str | None = None
    for _ in range(MAX_ACCOUNT_CALLS):
        found, after = ob.read_pages(await _call(client, ob.accounts(where, token, after)))
        pages += found
        if after is None:
            break
    return pages


def _key(ticket: str) -> str:
    return f"fblogin:{ticket}"


async def _held(
    svc: Services, workspace_id: uuid.UUID, user_id: uuid.UUID, ticket: str
) -> dict[str, Any]:
    sealed = await svc.bus.recall(str(workspace_id), _key(ticket))
    held: dict[str, Any] = json.loads(svc.vault.open(sealed)["held"]) if sealed else {}
    if held.get("u") != str(user_id):  # another admin's sign-in, or expired
        raise NotFound("No such Facebook sign-in; it expires after ten minutes.")
    return held


async def _connected(svc: Services, workspace_id: uuid.UUID) -> dict[str, set[ChannelKind]]:
    """Which kinds each Page already gives this workspace."""
    query = select(Channel).where(
        Channel.workspace_id == workspace_id,
        col(Channel.kind).in_(ob.PAGE_KINDS),
        Channel.status != "disconnected",
    )
    async with svc.store.sessions() as s:
        rows = (await s.exec(query)).all()
    found: dict[str, set[ChannelKind]] = {}
    for row in rows:
        page = row.account_ids.get("page_id")
        if page:
            found.setdefault(str(page), set()).add(ChannelKind(row.kind))
    return found


async def list_pages(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    svc = services(request)
    held = await _held(
        svc, principal.workspace_id, principal.user_id, request.path_params["ticket"]
    )
    connected = await _connected(svc, principal.workspace_id)
    items = [
        FacebookPage(
            page_id=p["id"],
            name=p["name"],
            instagram_account_id=p["ig"],
            instagram_username=p["ig_name"],
            connected=sorted(connected.get(p["id"], set())),
        )
        for p in held["pages"]
    ]
    return answer(FacebookPages(items=items))


async def pick_pages(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_body(request, Picks)
    svc = services(request)
    held = await _held(
        svc, principal.workspace_id, principal.user_id, request.path_params["ticket"]
    )
    pages = {p["id"]: p for p in held["pages"]}
    unknown = [p for p in body.messenger + body.instagram if p not in pages]
    if unknown:
        raise BadRequest(f"Not among the Pages of this sign-in: {', '.join(sorted(unknown))}.")
    if any(not pages[p]["ig"] for p in body.instagram):
        raise BadRequest("A Page picked for Instagram has no Instagram account linked.")
    if not body.messenger and not body.instagram:
        raise BadRequest("Pick at least one Page.")
    where = endpoints(svc.settings)
    async with httpx.AsyncClient() as client:
        for page_id in dict.fromkeys(body.messenger + body.instagram):
            page = pages[page_id]
            done = await perform(client, ob.subscribe_page(where, page_id, page["token"]))
            if done is None:
                raise OAuthFailed("Facebook could not be reached; try again.")
            if not ob.succeeded(*done):
                raise PlatformRefused(
                    f"Subscribing the Page {page_id} to the app's webhooks failed",
                    ob.refusal(*done),
                )
    made = []
    for kind, picked in ((ob.MESSENGER, body.messenger), (ob.INSTAGRAM, body.instagram)):
        for page_id in picked:
            page = pages[page_id]
            instagram = kind is ob.INSTAGRAM
            account_ids = (
                {"instagram_account_id": page["ig"], "page_id": page_id}
                if instagram
                else {"page_id": page_id}
            )
            name = (
                (f"@{page['ig_name']}" if page["ig_name"] else page["ig"])
                if instagram
                else page["name"]
            )
            made.append(
                await logins.store(
                    svc.channels,
                    principal.workspace_id,
                    principal.user_id,
                    kind=kind,
                    name=(name or page_id)[:200],
                    account_ids=account_ids,
                    # An Instagram account sends through its Page (adapters.meta.send).
                    secrets={"access_token": page["token"]}
                    | ({"page_id": page_id} if instagram else {}),
                    settings={
                        "page_name": page["name"],
                        "username": page["ig_name"] if instagram else None,
                        "subscribed": True,
                    },
                    connected_by=held["by"],
                    connected_via="facebook_login",
                )
            )
    for channel in made:
        await svc.ingress.channel_updated(principal.workspace_id, channel.id, "connected")
    return answer(ConnectedChannels(items=[channel_out(c) for c in made]), 201)


_TICKET = param("ticket", "path", "From the callback's redirect", {"type": "string"})

api_routes = [
    route(
        "/api/channels/facebook/authorize",
        authorize,
        "POST",
        op=Operation(
            "Start connecting Pages and Instagram accounts with Facebook Login for Business "
            "(admins)",
            {200: ("Where to send the browser", AuthorizeUrl)},
            (401, 403),
            description="The hosted app's OAuth dialog, with HUB_FACEBOOK_LOGIN_CONFIG_ID's "
            "configuration when set, else with the minimal scopes listed. The callback "
            "(/oauth/facebook/callback) redirects to /admin?facebook_pages=<ticket>.",
        ),
    ),
    route(
        "/api/channels/facebook/pages/{ticket}",
        list_pages,
        "GET",
        op=Operation(
            "The Pages of a Facebook sign-in, to pick from (admins)",
            {200: ("The Pages, without their tokens", FacebookPages)},
            (401, 403, 404),
            params=(_TICKET,),
            description="404 once the sign-in is ten minutes old or for another admin.",
        ),
    ),
    route(
        "/api/channels/facebook/pages/{ticket}",
        pick_pages,
        "POST",
        op=Operation(
            "Connect the picked Pages (Messenger) and their Instagram accounts (admins)",
            {201: ("The channels made or reconnected", ConnectedChannels)},
            (400, 401, 403, 404, 409, 413),
            body=Picks,
            params=(_TICKET,),
            description="Each picked Page is subscribed to the app's webhooks "
            "(`subscribed_apps`) with its Page token, which is stored encrypted. 400 "
            "`platform_refused` with Meta's reason when a subscription is refused; 409 for "
            "an account another workspace has.",
        ),
    ),
]
routes = [Route("/oauth/facebook/callback", callback, methods=["GET"])]
