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

from adapters.base import as_dict
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
        answer = await perform(client, ob.check_pasted(kind, account_id, token, endpoints, page_id))
        if answer is None:
            return _unreachable("check the token")
        connected_by, wrong = ob.read_pasted(
            kind, account_id, page_id, _accepted(answer, "Meta refused the token")
        )
        if wrong is not None:
            raise WrongAccount(wrong)
        subscribe = ob.subscribe_pasted(kind, account_id, token, endpoints, page_id, waba_id)
        if isinstance(subscribe, str):
            return Checked(False, subscribe, connected_by)
        done = await perform(client, subscribe)
        if done is None:
            return _unreachable("subscribe the account to the app's webhooks")
        if not ob.succeeded(*done):
            raise PlatformRefused("Subscribing to the app's webhooks failed", ob.refusal(*done))
        return Checked(True, None, connected_by, {"page_id": page_id} if page_id else {})


def _accepted(answer: tuple[int, Any], what: str) -> dict[str, Any]:
    status, body = answer
    if not 200 <= status < 300:
        raise PlatformRefused(what, ob.refusal(status, body))
    return as_dict(body)
