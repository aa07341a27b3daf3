"""Connecting Meta channels the way a business does: Facebook Login for Business (Pages, and
Instagram professional accounts through their Page), WhatsApp Embedded Signup, and checking a
token an admin pasted. Pure builders and readers; `hub.channels.facebook`,
`hub.channels.signup` and `hub.channels.pasted` perform them.

Facebook Login for Business:
1. The browser goes to the hosted app's OAuth dialog, with the Login configuration
   (`config_id`) when the hub has one, else with `SCOPES`.
2. The callback's `code` is exchanged at `/oauth/access_token`, then that token for a
   long-lived one (`grant_type=fb_exchange_token`).
3. `/me` names the Facebook user (the app-scoped id Meta's deauthorize and data-deletion
   callbacks name); `/me/accounts` lists their Pages with a Page token each, and each Page's
   `instagram_business_account`, page by page (`paging.cursors.after`).
4. Each Page the admin picks is subscribed to the app's webhooks:
   `POST /{page-id}/subscribed_apps?subscribed_fields=...` with its Page token. An Instagram
   account connected through Facebook Login receives its webhooks through that subscription.

WhatsApp Embedded Signup: the JS SDK's session info gives the WABA id and phone number id and
FB.login the `code`; the code is exchanged (no redirect_uri), the WABA is subscribed
(`POST /{waba-id}/subscribed_apps`) and the number registered for Cloud API
(`POST /{phone-number-id}/register` with a 6-digit two-step verification PIN).

Tokens travel in the Authorization header, except where Graph's token endpoints take them
as parameters; those URLs are never logged (callers log the method and path only).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from adapters.base import as_dict, as_id, as_list, nonempty_text
from adapters.outbound import Request
from schemas.message import ChannelKind

# The kinds these flows connect (the hub names no platform kind itself).
MESSENGER, INSTAGRAM, WHATSAPP = ChannelKind.MESSENGER, ChannelKind.INSTAGRAM, ChannelKind.WHATSAPP
PAGE_KINDS = (MESSENGER.value, INSTAGRAM.value)

# Why each permission (Facebook Login for Business, user access token):
# - pages_show_list: `/me/accounts`, the Pages the person can pick from;
# - pages_manage_metadata: subscribing a Page to the app's webhooks (`subscribed_apps`);
# - pages_messaging: reading and answering the Page's Messenger conversations;
# - instagram_basic: the Page's `instagram_business_account` and its username;
# - instagram_manage_messages: Instagram Direct messages of that account;
# - pages_read_engagement: reading Page content the webhooks point at (the Page's
#   `instagram_business_account` field and its feed's comments need it with a Page token).
SCOPES = (
    "pages_show_list",
    "pages_manage_metadata",
    "pages_messaging",
    "instagram_basic",
    "instagram_manage_messages",
    "pages_read_engagement",
)
PAGE_FIELDS = (  # the Page webhook fields the inbox uses
    "messages",
    "messaging_postbacks",
    "message_reads",
    "message_deliveries",
    "message_reactions",
    "feed",
)
INSTAGRAM_FIELDS = (  # the same list as Business Login for Instagram subscribes
    "messages",
    "messaging_postbacks",
    "messaging_seen",
    "message_reactions",
    "comments",
)
ACCOUNT_FIELDS = "id,name,access_token,instagram_business_account{id,username}"
PAGES_PER_CALL = 50
PIN_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Endpoints:
    dialog: str = "https://www.facebook.com/v23.0/dialog/oauth"
    graph: str = "https://graph.facebook.com/v23.0"
    instagram: str = "https://graph.instagram.com/v23.0"


@dataclass(frozen=True, slots=True)
class Page:
    page_id: str
    name: str | None
    token: str = field(repr=False)
    instagram_id: str | None = None
    instagram_username: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """The platform's reason: its HTTP status, its error code ("190", "100/33") and message."""

    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Person:
    user_id: str  # app-scoped: what Meta's callbacks name
    name: str | None


# Facebook Login for Business


def dialog_url(
    endpoints: Endpoints, app_id: str, redirect_uri: str, state: str, config_id: str | None
) -> str:
    query = {"client_id": app_id, "redirect_uri": redirect_uri, "state": state}
    if config_id:  # the configuration holds the permissions and the token type
        query |= {
            "config_id": config_id,
            "response_type": "code",
            "override_default_response_type": "true",
        }
    else:
        query |= {"response_type": "code", "scope": ",".join(SCOPES)}
    return f"{endpoints.dialog}?{urlencode(query)}"


def exchange_code(
    endpoints: Endpoints, app_id: str, app_secret: str, code: str, redirect_uri: str | None
) -> Request:
    """The code for a user token. Embedded Signup's code comes from the JS SDK and is
    exchanged without a redirect_uri."""
    query = {"client_id": app_id, "client_secret": app_secret, "code": code}
    if redirect_uri is not None:
        query["redirect_uri"] = redirect_uri
    return Request("GET", f"{endpoints.graph}/oauth/access_token?{urlencode(query)}")


def long_lived(endpoints: Endpoints, app_id: str, app_secret: str, token: str) -> Request:
    query = {
        "grant_type": "fb_exchange_token",
        "client_id": app_id,
        "client_secret": app_secret,
        "fb_exchange_token": token,
    }
    return Request("GET", f"{endpoints.graph}/oauth/access_token?{urlencode(query)}")


def me(endpoints: Endpoints, token: str) -> Request:
    return Request("GET", f"{endpoints.graph}/me?fields=id,name", headers=_bearer(token))


def accounts(endpoints: Endpoints, token: str, after: str | None = None) -> Request:
    query = {"fields": ACCOUNT_FIELDS, "limit": str(PAGES_PER_CALL)}
    if after:
        query["after"] = after
    return Request(
        "GET", f"{endpoints.graph}/me/accounts?{urlencode(query)}", headers=_bearer(token)
    )


def read_pages(body: Any) -> tuple[list[Page], str | None]:
    """One page of `/me/accounts`: the Pages with their tokens, and the cursor of the next
    page (None when `paging.next` says there is none)."""
    pages = []
    for item in as_list(as_dict(body).get("data")):
        row = as_dict(item)
        page_id, token = as_id(row.get("id")), nonempty_text(row.get("access_token"))
        if page_id is None or token is None:
            continue  # a Page the person cannot act for (no task that gives a token)
        instagram = as_dict(row.get("instagram_business_account"))
        pages.append(
            Page(
                page_id,
                nonempty_text(row.get("name")),
                token,
                as_id(instagram.get("id")),
                nonempty_text(instagram.get("username")),
            )
        )
    paging = as_dict(as_dict(body).get("paging"))
    after = nonempty_text(as_dict(paging.get("cursors")).get("after"))
    return pages, after if paging.get("next") and after else None


def read_person(body: Any) -> Person | None:
    answer = as_dict(body)
    user_id = as_id(answer.get("id"))
    return Person(user_id, nonempty_text(answer.get("name"))) if user_id else None


# Subscribing to the app's webhooks


def subscribe_page(endpoints: Endpoints, page_id: str, page_token: str) -> Request:
    query = urlencode({"subscribed_fields": ",".join(PAGE_FIELDS)})
    return Request(
        "POST",
        f"{endpoints.graph}/{_seg(page_id)}/subscribed_apps?{query}",
        headers=_bearer(page_token),
    )


def subscribe_instagram(endpoints: Endpoints, account_id: str, token: str) -> Request:
    """An account with an Instagram user token (Business Login for Instagram)."""
    query = urlencode({"subscribed_fields": ",".join(INSTAGRAM_FIELDS)})
    return Request(
        "POST",
        f"{endpoints.instagram}/{_seg(account_id)}/subscribed_apps?{query}",
        headers=_bearer(token),
    )


def subscribe_waba(endpoints: Endpoints, waba_id: str, token: str) -> Request:
    return Request(
        "POST", f"{endpoints.graph}/{_seg(waba_id)}/subscribed_apps", headers=_bearer(token)
    )


# WhatsApp


def phone_number(endpoints: Endpoints, phone_number_id: str, token: str) -> Request:
    return Request(
        "GET",
        f"{endpoints.graph}/{_seg(phone_number_id)}?fields=display_phone_number,verified_name",
        headers=_bearer(token),
    )


def waba_numbers(endpoints: Endpoints, waba_id: str, token: str) -> Request:
    """The WABA's phone numbers (`GET /{waba-id}/phone_numbers`, a list under `data` with
    cursor `paging`)."""
    return Request(
        "GET", f"{endpoints.graph}/{_seg(waba_id)}/phone_numbers?fields=id", headers=_bearer(token)
    )


def lists_number(body: Any, phone_number_id: str) -> bool | None:
    """Whether the WABA's numbers include this one: None when the answer cannot say (not a
    list, or only its first page, `paging.next`)."""
    answer = as_dict(body)
    if not isinstance(answer.get("data"), list):
        return None
    if phone_number_id in {as_id(as_dict(row).get("id")) for row in as_list(answer["data"])}:
        return True
    return None if as_dict(answer.get("paging")).get("next") else False


def register(endpoints: Endpoints, phone_number_id: str, token: str, pin: str) -> Request:
    return Request(
        "POST",
        f"{endpoints.graph}/{_seg(phone_number_id)}/register",
        json={"messaging_product": "whatsapp", "pin": pin},
        headers=_bearer(token),
    )


def new_pin() -> str:
    """A two-step verification PIN for a number registered here; kept sealed with the token."""
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


# Checking a pasted token


def page_of(endpoints: Endpoints, page_id: str, token: str, instagram: bool = False) -> Request:
    """A Page read with its own token: proves the token is that Page's, and with `instagram`
    names the Instagram account linked to it (that field needs instagram_basic)."""
    fields = "id,name,instagram_business_account" if instagram else "id,name"
    return Request(
        "GET", f"{endpoints.graph}/{_seg(page_id)}?fields={fields}", headers=_bearer(token)
    )


def instagram_me(endpoints: Endpoints, token: str) -> Request:
    return Request(
        "GET", f"{endpoints.instagram}/me?fields=user_id,username", headers=_bearer(token)
    )


def check_pasted(
    kind: ChannelKind, account_id: str, token: str, endpoints: Endpoints, page_id: str | None
) -> Request:
    """The read that proves a pasted token is the account's: a Page read with its token
    (Messenger, and Instagram through its Page), `/me` with an Instagram user token, a phone
    number read with a WhatsApp token."""
    if kind is MESSENGER or page_id:
        return page_of(endpoints, page_id or account_id, token, kind is INSTAGRAM)
    if kind is INSTAGRAM:
        return instagram_me(endpoints, token)
    return phone_number(endpoints, account_id, token)


def read_pasted(
    kind: ChannelKind, account_id: str, page_id: str | None, body: Any
) -> tuple[str | None, str | None]:
    """From the check's answer: the app-scoped id of who connected it (where `/me` tells),
    and why the token is not for that account (None when it is)."""
    answer = as_dict(body)
    if kind is MESSENGER or page_id:
        if as_id(answer.get("id")) != (page_id or account_id):
            return None, "The token is not that Page's token."
        linked = as_id(as_dict(answer.get("instagram_business_account")).get("id"))
        if kind is INSTAGRAM and linked != account_id:
            return None, "That Instagram account is not the one linked to the Page."
        return None, None
    if kind is INSTAGRAM:
        if as_id(answer.get("user_id")) != account_id:
            return None, "The token is not that Instagram account's token."
        return as_id(answer.get("id")), None
    return None, None


def subscribe_pasted(
    kind: ChannelKind,
    account_id: str,
    token: str,
    endpoints: Endpoints,
    page_id: str | None,
    waba_id: str | None,
) -> Request | str:
    """The subscription to the app's webhooks, or why there is none to make."""
    if kind is MESSENGER or page_id:
        return subscribe_page(endpoints, page_id or account_id, token)
    if kind is INSTAGRAM:
        return subscribe_instagram(endpoints, account_id, token)
    if waba_id:
        return subscribe_waba(endpoints, waba_id, token)
    return "no business_account_id (WABA id) was given: subscribe the WABA yourself"


# Reading answers


def succeeded(status: int, body: Any) -> bool:
    """`{"success": true}`; Messenger's documented sample sends it as the string "true"."""
    return 200 <= status < 300 and as_dict(body).get("success") in (True, "true")


def refusal(status: int, body: Any, platform: str = "Meta") -> Refusal:
    """Graph's `{"error": {"message", "code", "error_subcode"?}}` as a `Refusal`."""
    error = as_dict(as_dict(body).get("error"))
    code = as_id(error.get("code"))
    subcode = as_id(error.get("error_subcode"))
    message = nonempty_text(error.get("message")) or f"{platform} answered HTTP {status}"
    if code is None:
        return Refusal(status, f"http_{status}", message)
    return Refusal(status, f"{code}/{subcode}" if subcode else code, message)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _seg(value: str) -> str:
    return quote(str(value), safe="")
