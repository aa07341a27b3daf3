"""The fake platform's onboarding endpoints: Facebook Login for Business, WhatsApp Embedded
Signup, and the reads and subscriptions that check a pasted token. Mounted by
`FakePlatform.app` before its own routes (one line), strict like the rest of the fake:

- `GET /graph/{v}/oauth/access_token`: a Login code (with the redirect_uri it was issued
  for), an Embedded Signup code (without one), or `grant_type=fb_exchange_token`; always with
  the app's id and secret. A wrong code is Graph's error 100.
- `GET /graph/{v}/me` and `/me/accounts` with a bearer token; the Pages come one per call
  with `paging.cursors.after` and `next`, so a client must follow the cursor.
- `GET /graph/{v}/{page-id}` with that Page's token (fields id, name,
  instagram_business_account); `GET /graph/{v}/{phone-number-id}` with the number's token
  (display_phone_number, verified_name). Other nodes go to the media and profile routes.
- `POST /graph/{v}/{page-id}/subscribed_apps?subscribed_fields=...` with the Page token
  (messages among the fields), `POST /graph/{v}/{waba-id}/subscribed_apps` with the business
  token (any node that is not a Page or a number is a WABA its numbers' tokens reach), and
  `POST /graph/{v}/{phone-number-id}/register` `{messaging_product, pin}` (6 digits).
A token the fake does not know is refused like Graph refuses one: HTTP 400, code 190.

Shapes, constructed from these documented descriptions (no recorded answer was at hand):
`/me/accounts` from https://developers.facebook.com/docs/pages/getting-started (data[] of
access_token, category, name, id, tasks; paging cursors as every Graph edge); the code exchange
and Embedded Signup's register and WABA subscription from
https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/implementation/
and .../whatsapp/business-phone-numbers/registration/; Facebook Login for Business's dialog
and permissions from https://developers.facebook.com/docs/facebook-login/facebook-login-for-business;
Graph's error body from https://developers.facebook.com/docs/graph-api/guides/error-handling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from tests.fakeplatform import FakePlatform

APP_ID = "880000000000001"
APP_SECRET = "meta-app-secret-for-tests"
FB_CODE = "AQB-facebook-login-code"
FB_SHORT = "EAAshort-user-token"
FB_LONG = "EAAlong-user-token"
FB_USER_ID = "10160000000000001"  # the app-scoped id of the person who signed in
ES_CODE = "AQC-embedded-signup-code"
ES_USER_ID = "10160000000000002"  # who finished Embedded Signup
PAGE_FIELDS = {
    "messages",
    "messaging_postbacks",
    "message_reads",
    "message_deliveries",
    "message_reactions",
    "message_echoes",
    "feed",
}


@dataclass(frozen=True)
class FakePage:
    page_id: str
    name: str
    token: str
    instagram_id: str | None = None
    instagram_username: str | None = None


# A second Page, with an Instagram account linked to it.
PAGE_TWO = FakePage(
    "109000000000002", "Kahve Shop", "EAAfake-page-two-token", "17841400000000009", "kahve.shop"
)
# A Page whose Instagram account an admin connects by pasting its Page token.
MANUAL_PAGE = FakePage(
    "109000000000003", "Kahve Manual", "EAAmanual-page-token-1c0b", "17841400000000002", "manual"
)


@dataclass
class FakeOnboarding:
    fake: FakePlatform
    pages: list[FakePage] = field(default_factory=list)
    subscribed: dict[str, str] = field(default_factory=dict)  # node -> subscribed_fields
    registered: dict[str, str] = field(default_factory=dict)  # phone number id -> pin
    wabas: dict[str, list[str]] = field(default_factory=dict)  # more WABAs -> their numbers

    def __post_init__(self) -> None:
        from tests.fakeplatform import FB

        fixed = [PAGE_TWO, MANUAL_PAGE]  # a test may add them to the fake's accounts to send
        known = {p.page_id for p in fixed}
        self.pages = [
            *[
                FakePage(a.account_id, "Kahve Co", a.token)
                for a in self.fake.accounts
                if a.kind == FB and a.account_id not in known
            ],
            *fixed,
        ]

    @classmethod
    def of(cls, fake: FakePlatform) -> FakeOnboarding:
        """The fake's onboarding state (made on first use, one per fake)."""
        found = fake.__dict__.get("_onboarding")
        if not isinstance(found, cls):  # the fake is a plain dataclass: kept beside its fields
            found = fake.__dict__["_onboarding"] = cls(fake)
        return found

    def routes(self) -> list[Route]:
        graph = "/graph/{version}"
        return [
            Route(f"{graph}/oauth/access_token", self._access_token, methods=["GET"]),
            Route(f"{graph}/me", self._me, methods=["GET"]),
            Route(f"{graph}/me/accounts", self._accounts, methods=["GET"]),
            Route(f"{graph}/{{node}}", self._node, methods=["GET"]),
            Route(f"{graph}/{{node}}/subscribed_apps", self._subscribe, methods=["POST"]),
            Route(f"{graph}/{{node}}/subscribed_apps", self._unsubscribe, methods=["DELETE"]),
            Route(f"{graph}/{{node}}/register", self._register, methods=["POST"]),
            Route(f"{graph}/{{node}}/phone_numbers", self._waba_numbers, methods=["GET"]),
            Route("/instagram/{version}/me", self._instagram_me, methods=["GET"]),
            Route(
                "/instagram/{version}/{node}/subscribed_apps",
                self._instagram_subscribe,
                methods=["POST"],
            ),
        ]

    # Who is who

    def _numbers(self) -> list[Any]:
        from tests.fakeplatform import WA

        return [a for a in self.fake.accounts if a.kind == WA]

    def _number(self, node: str) -> Any:
        return next((a for a in self._numbers() if a.account_id == node), None)

    def _whatsapp(self) -> Any:
        """The fake's WhatsApp number (an account that matches no id when it has none)."""
        from tests.fakeplatform import WA, Account

        found = next((a for a in self.fake.accounts if a.kind == WA), None)
        return found or Account(WA, "-", "-")

    def _bearer(self, request: Request) -> str:
        from tests.fakeplatform import Reject

        if "access_token" in request.query_params:
            raise Reject("fake: a token in the query string ends up in logs; use the header")
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer "):
            raise Reject("fake: Authorization must be 'Bearer <token>'", code=190)
        return given.removeprefix("Bearer ")

    def _invalid(self) -> Exception:
        from tests.fakeplatform import Reject

        return Reject("Invalid OAuth access token - Cannot parse access token", code=190)

    # Endpoints

    async def _access_token(self, request: Request) -> Response:
        from tests.fakeplatform import Reject

        def check(p: dict[str, str]) -> Any:
            if p.get("client_id") != APP_ID or p.get("client_secret") != APP_SECRET:
                raise Reject("Error validating client secret.", code=1)
            if p.get("grant_type") == "fb_exchange_token":
                if set(p) != {"grant_type", "client_id", "client_secret", "fb_exchange_token"}:
                    raise Reject(f"fake: fb_exchange_token takes no {sorted(p)}")
                if p["fb_exchange_token"] != FB_SHORT:
                    raise self._invalid()
                return {"access_token": FB_LONG, "token_type": "bearer", "expires_in": 5183944}
            code = p.get("code")
            if code == FB_CODE and p.get("redirect_uri", "").endswith("/oauth/facebook/callback"):
                return {"access_token": FB_SHORT, "token_type": "bearer", "expires_in": 5400}
            if code == ES_CODE and "redirect_uri" not in p:
                return {"access_token": self._whatsapp().token, "token_type": "bearer"}
            raise Reject("Invalid verification code format.", code=100)

        return await self.fake._oauth(request, check)

    async def _me(self, request: Request) -> Response:
        def check(p: dict[str, str]) -> Any:
            token = self._bearer(request)
            if token == FB_LONG:
                return {"id": FB_USER_ID, "name": "Ayşe Yılmaz"}
            if any(a.token == token for a in self._numbers()):
                return {"id": ES_USER_ID, "name": "Kahve Co WhatsApp"}
            page = next((pg for pg in self.pages if pg.token == token), None)
            if page is None:
                raise self._invalid()
            return {"id": page.page_id, "name": page.name}

        return await self.fake._oauth(request, check)

    async def _accounts(self, request: Request) -> Response:
        from tests.fakeplatform import Reject

        def check(p: dict[str, str]) -> Any:
            if self._bearer(request) != FB_LONG:
                raise self._invalid()
            fields = p.get("fields", "")
            if not {"id", "access_token"} <= set(re.split(r"[,{}]", fields)):
                raise Reject("fake: ask /me/accounts for at least id and access_token")
            at = int(p.get("after", "0") or 0)
            if at >= len(self.pages):
                raise Reject("fake: no such cursor")
            page = self.pages[at]
            row: dict[str, Any] = {
                "id": page.page_id,
                "name": page.name,
                "access_token": page.token,
                "category": "Coffee Shop",
                "tasks": ["MANAGE", "MESSAGING"],
            }
            if page.instagram_id and "instagram_business_account" in fields:
                row["instagram_business_account"] = {
                    "id": page.instagram_id,
                    "username": page.instagram_username,
                }
            paging: dict[str, Any] = {"cursors": {"before": str(at), "after": str(at + 1)}}
            if at + 1 < len(self.pages):
                paging["next"] = f"{request.url.replace(query=f'after={at + 1}')}"
            return {"data": [row], "paging": paging}

        return await self.fake._oauth(request, check)

    async def _node(self, request: Request) -> Response:
        from tests.fakeplatform import Reject

        node = request.path_params["node"]
        page = next((pg for pg in self.pages if pg.page_id == node), None)
        number = self._number(node)
        if page is None and number is None:
            return await self.fake.media._graph_node(request)

        def check(p: dict[str, str]) -> Any:
            token = self._bearer(request)
            fields = set(p.get("fields", "").split(","))
            if page is not None:
                if token != page.token:
                    raise self._invalid()
                if not fields <= {"id", "name", "instagram_business_account"}:
                    raise Reject(f"fake: a Page has no fields {sorted(fields)} here")
                answer: dict[str, Any] = {"id": page.page_id, "name": page.name}
                if "instagram_business_account" in fields and page.instagram_id:
                    answer["instagram_business_account"] = {"id": page.instagram_id}
                return answer
            if number is None or token != number.token:
                raise self._invalid()
            if not fields <= {"display_phone_number", "verified_name", "id"}:
                raise Reject(f"fake: a phone number has no fields {sorted(fields)} here")
            return {
                "id": node,
                "display_phone_number": "+90 555 000 0001",
                "verified_name": "Kahve Co",
            }

        return await self.fake._oauth(request, check)

    async def _waba_numbers(self, request: Request) -> Response:
        """`GET /{waba-id}/phone_numbers`: its numbers under `data`, with cursor `paging`
        (the documented sample response of the WhatsApp Business Account's phone_numbers
        edge)."""
        from tests.fakeplatform import WABA_ID, Reject

        node = request.path_params["node"]

        def check(p: dict[str, str]) -> Any:
            numbers = {WABA_ID: [n.account_id for n in self._numbers()], **self.wabas}
            if node not in numbers:
                raise Reject(f"Unsupported get request. Object with ID '{node}' does not exist")
            if self._bearer(request) not in {n.token for n in self._numbers()}:
                raise self._invalid()
            fields = set(p.get("fields", "id").split(","))
            if not fields <= {"id", "display_phone_number", "verified_name", "quality_rating"}:
                raise Reject(f"fake: a phone number has no fields {sorted(fields)} here")
            return {
                "data": [{"id": number} for number in numbers[node]],
                "paging": {"cursors": {"before": "QVFIUbefore", "after": "QVFIUafter"}},
            }

        return await self.fake._oauth(request, check)

    async def _subscribe(self, request: Request) -> Response:
        from tests.fakeplatform import Reject

        node = request.path_params["node"]

        def check(p: dict[str, str]) -> Any:
            token = self._bearer(request)
            page = next((pg for pg in self.pages if pg.page_id == node), None)
            if page is None and self._number(node) is None:
                # A WABA: the fake keeps none, so any other node its numbers' tokens reach.
                if not any(a.token == token for a in self._numbers()):
                    raise self._invalid()
                if p:
                    raise Reject(f"fake: a WABA is subscribed without parameters, got {sorted(p)}")
                self.subscribed[node] = ""
                return {"success": True}
            if page is None:
                raise Reject(f"Unsupported post request. Object with ID '{node}' does not exist")
            if token != page.token:
                raise Reject(
                    "(#210) A page access token is required to request this resource.", code=210
                )
            fields = set(p.get("subscribed_fields", "").split(","))
            if "messages" not in fields or not fields <= PAGE_FIELDS:
                raise Reject(
                    f"fake: subscribed_fields must be Page fields with messages: {sorted(fields)}"
                )
            self.subscribed[node] = p["subscribed_fields"]
            return {"success": True}

        return await self.fake._oauth(request, check)

    # Instagram accounts of the fake's own other than the Business Login one (whose
    # routes are the fake's)

    def _instagram(self, request: Request) -> Any:
        from tests.fakeplatform import IG, INSTAGRAM

        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        found = next((a for a in self.fake.accounts if a.kind == IG and a.token == token), None)
        return None if found is None or found.token == INSTAGRAM.token else found

    async def _instagram_me(self, request: Request) -> Response:
        account = self._instagram(request)
        if account is None:
            return await self.fake._ig_me(request)

        def check(p: dict[str, str]) -> Any:
            self._bearer(request)
            return {
                "user_id": account.account_id,
                "username": "shop",
                "id": "2" + account.account_id[-8:],
            }

        return await self.fake._oauth(request, check)

    async def _instagram_subscribe(self, request: Request) -> Response:
        from tests.fakeplatform import Reject

        account = self._instagram(request)
        if account is None:
            return await self.fake._ig_subscribe(request)

        def check(p: dict[str, str]) -> Any:
            self._bearer(request)
            if request.path_params["node"] != account.account_id:
                raise Reject("fake: subscribe the token's own account")
            if "messages" not in p.get("subscribed_fields", "").split(","):
                raise Reject("fake: subscribe the connected account to at least messages")
            self.subscribed[account.account_id] = p["subscribed_fields"]
            return {"success": True}

        return await self.fake._oauth(request, check)

    async def _unsubscribe(self, request: Request) -> Response:
        """Page Subscribed Apps, "Deleting", for the Pages only this module knows."""
        from tests.fakeplatform import FB, Reject

        node = request.path_params["node"]
        page = next((pg for pg in self.pages if pg.page_id == node), None)
        if page is None or any(a.account_id == node for a in self.fake.accounts):
            return await self.fake._unsubscribe(FB, request)

        def check(p: dict[str, str]) -> Any:
            if self._bearer(request) != page.token:
                raise self._invalid()
            if p:
                raise Reject(f"fake: unsubscribing takes no parameters, got {sorted(p)}")
            self.subscribed.pop(node, None)
            return {"success": True}

        return await self.fake._oauth(request, check)

    async def _register(self, request: Request) -> Response:
        from tests.fakeplatform import Reject

        node = request.path_params["node"]

        def check(req: Request, body: Any) -> dict[str, Any]:
            number = self._number(node)
            if number is None:
                raise Reject(f"Unsupported post request. Object with ID '{node}' does not exist")
            if self._bearer(req) != number.token:
                raise self._invalid()
            if not isinstance(body, dict) or set(body) != {"messaging_product", "pin"}:
                raise Reject("fake: register takes {messaging_product, pin}")
            if body["messaging_product"] != "whatsapp" or not re.fullmatch(
                r"[0-9]{6}", str(body["pin"])
            ):
                raise Reject("(#100) Param pin must be 6 digits", code=100)
            self.registered[node] = body["pin"]
            return {"success": True}

        return await self.fake._handle(request, False, check)
