"""A Meta token an admin pasted (self-hosters' way of connecting): checked against the
platform, then the Page, Instagram account or WABA subscribed to the app's webhooks, so the
channel actually receives messages.

- Messenger: `GET /{page-id}?fields=id,name` with the Page token (it must be that Page's),
  then `POST /{page-id}/subscribed_apps`.
- Instagram through a Page (`page_id` given): the Page read with its token must name the
  account as its `instagram_business_account`; the Page is subscribed.
- Instagram with an Instagram user token (Business Login): `GET {instagram}/me` must be the
  account; its `id` is who connected it; `POST {instagram}/{ig-id}/subscribed_apps`.
- WhatsApp: `GET /{phone-number-id}` must be readable with the token; the WABA
  (`business_account_id`) is subscribed when given.

A refusal is answered 400 `platform_refused` with Meta's status, code and words. When Meta
cannot be reached at all (no answer), the channel is connected unchecked and the answer says
so (`subscribed: false` with a note): a hub whose egress is briefly down can still be set up,
and the admin sees what is left to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters.base import as_dict, as_id
from adapters.meta import onboarding as ob
from adapters.outbound import TIMEOUT_S
from adapters.outbound import Request as Call
from hub.errors import BadRequest
from schemas.message import ChannelKind

log = logging.getLogger("hub.pasted")


class PlatformRefused(BadRequest):
    """Meta refused a token or a step of connecting; `platform` carries its reason."""

    code = "platform_refused"
    default_message = "The platform refused."

    def __init__(self, what: str, refusal: ob.Refusal) -> None:
        super().__init__(f"{what}: {refusal.message}")
        self.extra = {
            "platform": {
                "status": refusal.status,
                "code": refusal.code,
                "message": refusal.message,
            }
        }


class WrongAccount(BadRequest):
    code = "wrong_account"
    default_message = "The token is not for that account."


@dataclass(frozen=True, slots=True)
class Checked:
    subscribed: bool
    note: str | None = None
    connected_by: str | None = None  # the app-scoped id, where the platform tells it
    account_ids: dict[str, str] = field(default_factory=dict)  # more ids it named

    def as_settings(self) -> dict[str, Any]:
        return {"subscribed": self.subscribed, "subscribe_note": self.note}


async def perform(client: httpx.AsyncClient, call: Call) -> tuple[int, Any] | None:
    """The call's status and JSON body (None when it is not JSON); None when the platform
    could not be reached. The URL may carry a secret: only the method and path are logged."""
    try:
        response = await client.request(
            call.method, call.url, json=call.json, headers=call.headers, timeout=TIMEOUT_S
        )
    except httpx.TransportError as exc:
        path = httpx.URL(call.url).path
        log.warning("Meta %s %s failed: %s", call.method, path, type(exc).__name__)
        return None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _unreachable(step: str) -> Checked:
    return Checked(False, f"Meta could not be reached to {step}; connect again to retry")


async def check(
    kind: ChannelKind,
    account_id: str,
    token: str,
    endpoints: ob.Endpoints,
    *,
    page_id: str | None = None,
    waba_id: str | None = None,
) -> Checked:
    async with httpx.AsyncClient() as client:
        connected_by = None
        if kind is ChannelKind.MESSENGER or page_id:
            node = page_id or account_id
            answer = await perform(
                client, ob.page_of(endpoints, node, token, kind is ChannelKind.INSTAGRAM)
            )
            if answer is None:
                return _unreachable("check the token")
            body = _accepted(answer, "Meta refused the Page token")
            if as_id(body.get("id")) != node:
                raise WrongAccount("The token is not that Page's token.")
            linked = as_id(as_dict(body.get("instagram_business_account")).get("id"))
            if kind is ChannelKind.INSTAGRAM and linked != account_id:
                raise WrongAccount("That Instagram account is not the one linked to the Page.")
            subscribe: Call | None = ob.subscribe_page(endpoints, node, token)
        elif kind is ChannelKind.INSTAGRAM:
            answer = await perform(client, ob.instagram_me(endpoints, token))
            if answer is None:
                return _unreachable("check the token")
            body = _accepted(answer, "Instagram refused the token")
            if as_id(body.get("user_id")) != account_id:
                raise WrongAccount("The token is not that Instagram account's token.")
            connected_by = as_id(body.get("id"))
            subscribe = ob.subscribe_instagram(endpoints, account_id, token)
        else:
            answer = await perform(client, ob.phone_number(endpoints, account_id, token))
            if answer is None:
                return _unreachable("check the token")
            _accepted(answer, "Meta refused the token for that phone number")
            subscribe = ob.subscribe_waba(endpoints, waba_id, token) if waba_id else None
        if subscribe is None:
            note = "no business_account_id (WABA id) was given: subscribe the WABA yourself"
            return Checked(False, note, connected_by)
        done = await perform(client, subscribe)
        if done is None:
            return _unreachable("subscribe the account to the app's webhooks")
        if not ob.succeeded(*done):
            raise PlatformRefused("Subscribing to the app's webhooks failed", ob.refusal(*done))
        extra = {"page_id": page_id} if page_id else {}
        return Checked(True, None, connected_by, extra)


def _accepted(answer: tuple[int, Any], what: str) -> dict[str, Any]:
    status, body = answer
    if not 200 <= status < 300:
        raise PlatformRefused(what, ob.refusal(status, body))
    return as_dict(body)
