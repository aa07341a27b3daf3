"""Connecting a WhatsApp number with Embedded Signup (`adapters.meta.onboarding`).

The console launches it with Meta's JavaScript SDK (`FB.login` with the app's Embedded Signup
configuration, `response_type: code` and `extras.sessionInfoVersion`); the SDK hands the page
a `code`, and the session info message (`WA_EMBEDDED_SIGNUP`, event `FINISH`) the WABA id and
phone number id. The console posts the three here. A number another workspace holds is
refused first, before anything changes at Meta. The hub exchanges the code for the business
token, reads the number with it (proving the token reaches that number) and the WABA's
numbers (the number must be among them), subscribes the WABA to the app's webhooks,
registers the number for Cloud API with a new 6-digit PIN, and stores the channel with the
token and the PIN sealed.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from adapters.meta import onboarding as ob
from adapters.meta.instagram_login import read_token
from adapters.outbound import Request as Call
from hub.channels import logins
from hub.channels.facebook import OAuthFailed, app_of, endpoints
from hub.channels.pasted import PlatformRefused, WrongAccount, perform
from hub.channels.routes import channel_out
from hub.errors import Forbidden
from hub.web.http import answer, authenticate, read_body, require_admin, services
from hub.web.operation import Operation, route
from schemas.rest.channels import ChannelOut, SignupConfig

_ID = r"^[0-9]{1,30}$"


class Finished(BaseModel):
    """What the JavaScript SDK delivered to the console."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=2048, description="FB.login's authResponse.code")
    waba_id: str = Field(pattern=_ID, description="The session info's data.waba_id")
    phone_number_id: str = Field(pattern=_ID, description="The session info's data.phone_number_id")
    name: str = Field(default="WhatsApp", min_length=1, max_length=200)


async def config(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    settings = services(request).settings
    app_id, _ = app_of(settings)
    if not settings.whatsapp_signup_config_id:
        raise Forbidden("Embedded Signup (HUB_WHATSAPP_SIGNUP_CONFIG_ID) is not configured.")
    version = settings.graph_url.rstrip("/").rsplit("/", 1)[-1]
    return answer(
        SignupConfig(
            app_id=app_id, config_id=settings.whatsapp_signup_config_id, sdk_version=version
        )
    )


async def finish(request: Request) -> Response:
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_body(request, Finished)
    svc = services(request)
    app_id, app_secret = app_of(svc.settings)
    where = endpoints(svc.settings)
    # Before Meta is changed: subscribing the WABA and re-registering the number with a new
    # PIN would break a number another workspace holds.
    await logins.refuse_if_held(
        svc.channels, principal.workspace_id, ob.WHATSAPP, body.phone_number_id
    )
    async with httpx.AsyncClient() as client:

        async def step(call: Call, what: str) -> Any:
            return await _step(client, call, what)

        token = read_token(
            await step(
                ob.exchange_code(where, app_id, app_secret, body.code, None),
                "Meta refused the signup's code",
            )
        )
        if token is None:
            raise OAuthFailed("Meta gave no business token for the signup's code.")
        business = token.access_token
        number = await step(
            ob.phone_number(where, body.phone_number_id, business),
            "The business token cannot read that phone number",
        )
        numbers = await step(
            ob.waba_numbers(where, body.waba_id, business),
            "The business token cannot read the WhatsApp Business Account's numbers",
        )
        if ob.lists_number(numbers, body.phone_number_id) is False:
            raise WrongAccount("That phone number is not in that WhatsApp Business Account.")
        person = ob.read_person(await step(ob.me(where, business), "Meta refused the token"))
        await step(
            ob.subscribe_waba(where, body.waba_id, business),
            "Subscribing the WhatsApp Business Account to the app's webhooks failed",
        )
        pin = ob.new_pin()
        await step(
            ob.register(where, body.phone_number_id, business, pin),
            "Registering the phone number for Cloud API failed",
        )
    shown = number if isinstance(number, dict) else {}
    channel = await logins.store(
        svc.channels,
        principal.workspace_id,
        principal.user_id,
        kind=ob.WHATSAPP,
        name=body.name,
        account_ids={"phone_number_id": body.phone_number_id, "business_account_id": body.waba_id},
        secrets={"access_token": business, "pin": pin},
        settings={
            "display_phone_number": shown.get("display_phone_number"),
            "verified_name": shown.get("verified_name"),
            "subscribed": True,
        },
        connected_by=person.user_id if person else None,
        connected_via="embedded_signup",
    )
    await svc.ingress.channel_updated(principal.workspace_id, channel.id, "connected")
    # Its templates, once answered, as for a number connected any other way.
    sync = BackgroundTask(svc.templates().sync_quietly, principal.workspace_id, channel.id)
    return answer(channel_out(channel), 201, background=sync)


async def _step(client: httpx.AsyncClient, call: Call, what: str) -> Any:
    done = await perform(client, call)
    if done is None:
        raise OAuthFailed("Meta could not be reached; try again.")
    status, reply = done
    refused = not 200 <= status < 300 or (call.method == "POST" and not ob.succeeded(status, reply))
    if refused:
        raise PlatformRefused(what, ob.refusal(status, reply))
    return reply


api_routes = [
    route(
        "/api/channels/whatsapp/signup",
        config,
        "GET",
        op=Operation(
            "What the console needs to launch WhatsApp Embedded Signup (admins)",
            {200: ("The app id, configuration id and SDK version", SignupConfig)},
            (401, 403),
            description="403 when HUB_META_APP_ID or HUB_WHATSAPP_SIGNUP_CONFIG_ID is unset.",
        ),
    ),
    route(
        "/api/channels/whatsapp/signup",
        finish,
        "POST",
        op=Operation(
            "Connect the WhatsApp number Embedded Signup set up (admins)",
            {201: ("The channel, connected and registered", ChannelOut)},
            (400, 401, 403, 409, 413),
            body=Finished,
            description="Exchanges the code, reads the number with the business token, "
            "subscribes the WABA (`subscribed_apps`) and registers the number with a new "
            "6-digit PIN (kept encrypted with the token). 400 `platform_refused` with Meta's "
            "`platform` {status, code, message} when a step is refused; 400 `wrong_account` "
            "for a number the WABA does not list; 409 for a number another workspace holds, "
            "before anything changes at Meta.",
        ),
    ),
]
