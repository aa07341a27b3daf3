"""Business Login for Instagram: the OAuth calls that connect an Instagram professional
account, and the refresh that keeps its long-lived token alive. Pure builders and readers;
`hub.channels.oauth` performs them.

1. The admin's browser goes to the authorize URL with only the scopes the product uses.
2. The callback's `code` is exchanged for a short-lived token (1 hour), then that for a
   long-lived one (60 days, refreshable).
3. `/me` gives the account id, username and picture; `subscribed_apps` subscribes the
   account to the webhook fields the inbox uses.
The token endpoints take their secrets as query or form parameters, as documented: the
URLs built here are never logged (`adapters.outbound.redact` does not know them, so callers log
only `Request.method` and the path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from adapters.base import as_dict, as_id, as_list, nonempty_text
from adapters.outbound import Request
from schemas.message import ChannelKind

KIND = ChannelKind.INSTAGRAM  # the kind of channel this login connects

SCOPES = (
    "instagram_business_basic",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
)
WEBHOOK_FIELDS = (
    "messages",
    "messaging_postbacks",
    "messaging_seen",
    "message_reactions",
    "comments",
)


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorize: str = "https://www.instagram.com/oauth/authorize"
    oauth: str = "https://api.instagram.com/oauth"
    graph_root: str = "https://graph.instagram.com"  # unversioned: token exchange and refresh
    graph: str = "https://graph.instagram.com/v23.0"


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    expires_in_s: int | None = None


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    username: str | None
    picture_url: str | None
    app_user_id: str | None = None  # `/me`'s `id`: the app-scoped id Meta's callbacks name


def authorize_url(endpoints: Endpoints, app_id: str, redirect_uri: str, state: str) -> str:
    query = {
        "client_id": app_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": ",".join(SCOPES),
        "state": state,
    }
    return f"{endpoints.authorize}?{urlencode(query)}"


def exchange_code(
    endpoints: Endpoints, app_id: str, app_secret: str, redirect_uri: str, code: str
) -> Request:
    form = {
        "client_id": app_id,
        "client_secret": app_secret,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
        "code": code,
    }
    return Request("POST", f"{endpoints.oauth}/access_token", form=form)


def long_lived(endpoints: Endpoints, app_secret: str, short_token: str) -> Request:
    query = {
        "grant_type": "ig_exchange_token",
        "client_secret": app_secret,
        "access_token": short_token,
    }
    return Request("GET", f"{endpoints.graph_root}/access_token?{urlencode(query)}")


def refresh(endpoints: Endpoints, token: str) -> Request:
    query = {"grant_type": "ig_refresh_token", "access_token": token}
    return Request("GET", f"{endpoints.graph_root}/refresh_access_token?{urlencode(query)}")


def me(endpoints: Endpoints, token: str) -> Request:
    return Request(
        "GET",
        f"{endpoints.graph}/me?fields=user_id,username,profile_picture_url",
        headers={"Authorization": f"Bearer {token}"},
    )


def subscribe(endpoints: Endpoints, account_id: str, token: str) -> Request:
    query = urlencode({"subscribed_fields": ",".join(WEBHOOK_FIELDS)})
    return Request(
        "POST",
        f"{endpoints.graph}/{account_id}/subscribed_apps?{query}",
        headers={"Authorization": f"Bearer {token}"},
    )


def read_token(body: Any) -> Token | None:
    """`{"access_token", "expires_in"?}`, or the code exchange's `{"data": [{...}]}`."""
    answer = as_dict(body)
    data = as_list(answer.get("data"))
    if data:
        answer = as_dict(data[0])
    token = nonempty_text(answer.get("access_token"))
    if token is None:
        return None
    expires = answer.get("expires_in")
    return Token(
        token, int(expires) if isinstance(expires, int) and not isinstance(expires, bool) else None
    )


def read_account(body: Any) -> Account | None:
    answer = as_dict(body)
    account_id = as_id(answer.get("user_id")) or as_id(answer.get("id"))
    if account_id is None:
        return None
    return Account(
        account_id,
        nonempty_text(answer.get("username")),
        nonempty_text(answer.get("profile_picture_url")),
        as_id(answer.get("id")),
    )


def read_error(body: Any) -> str:
    error = as_dict(as_dict(body).get("error"))
    return str(error.get("message") or as_dict(body).get("error_message") or "the platform refused")
