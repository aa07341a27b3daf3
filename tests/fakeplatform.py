"""A fake Graph API (Messenger, WhatsApp), Instagram Graph API and Telegram Bot API for
outbound tests, served by a real uvicorn on a loopback port in a background thread.

It is strict on purpose: every request is checked against the documented shape
(docs/platforms.md §2c, §3b, §4b, §5c): JSON body, only known fields, right types, the bearer
token of the account addressed, text within the limit. A request that does not fit is
answered 400 in the platform's error format with a message starting "fake:" and kept in
`.rejected`, so a test fails loudly and says why. Accepted requests are kept in
`.requests` and answered like the real APIs, with unique ids, unless scripted otherwise
with `fail_next` / `slow_next`.

    with running_fake() as fake:
        outcome = await send(client, out, fake.base_urls())
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.outbound import Platforms, base_urls
from schemas.message import ChannelKind
from tests import fakesendmedia, faketelegram, faketemplates
from tests.fakecomments import comments_of
from tests.fakemedia import FakeMedia
from tests.fakeonboarding import FakeOnboarding

IG, FB, WA, TG = (
    ChannelKind.INSTAGRAM,
    ChannelKind.MESSENGER,
    ChannelKind.WHATSAPP,
    ChannelKind.TELEGRAM,
)
LIMITS = {IG: 1000, FB: 2000, WA: 4096, TG: 4096}  # characters, as documented


@dataclass(frozen=True)
class Account:
    kind: ChannelKind
    account_id: str  # IG account id, Page id, phone number id, bot id
    token: str  # access token, or the bot token


INSTAGRAM = Account(IG, "17841400000000001", "IGAAfake-instagram-token")
MESSENGER = Account(FB, "102030405060708", "EAAfake-page-token")
WHATSAPP = Account(WA, "106540352242922", "EAAfake-whatsapp-token")
TELEGRAM = Account(TG, "7000000001", "7000000001:AAHfake-telegram-token")
WABA_ID = "102290129340398"  # the WhatsApp Business Account that WHATSAPP's number is in
ACCOUNTS = (INSTAGRAM, MESSENGER, WHATSAPP, TELEGRAM)
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")


@dataclass(frozen=True)
class Received:
    """A request as the fake got it (`body` decoded when JSON) and what it answered."""

    method: str
    path: str  # as sent, e.g. "/graph/v23.0/102030405060708/messages"
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any
    answer: Any = None


@dataclass
class _Script:
    path_substring: str
    status: int
    body: Any
    headers: dict[str, str] | None
    times: int

    def response(self) -> Response:
        if self.body is None:
            return Response(status_code=self.status, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class Reject(Exception):
    """The request is not what the platform accepts."""

    def __init__(self, problem: str, status: int = 400, code: int = 100) -> None:
        super().__init__(problem)
        self.status = status
        self.code = code  # a Graph error code, or Telegram's error_code


Check = Callable[[Request, Any], dict[str, Any]]  # validates, or raises Reject; the answer


@dataclass
class FakePlatform:
    accounts: tuple[Account, ...] = ACCOUNTS
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # the path of every request, on arrival
    rejected: list[tuple[Received, str]] = field(default_factory=list)
    _scripts: list[_Script] = field(default_factory=list)
    _slow_s: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    uploads: dict[str, fakesendmedia.Part] = field(default_factory=dict)  # WhatsApp media ids
    media: FakeMedia = field(init=False)  # files served per platform (tests/fakemedia.py)

    def __post_init__(self) -> None:
        self.media = FakeMedia(self)

    def base_urls(self) -> Platforms:
        return base_urls(f"http://127.0.0.1:{self.port}")

    def fail_next(
        self,
        path_substring: str,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` well-formed requests whose path contains
        `path_substring` with this recorded error instead of a success."""
        with self._lock:
            self._scripts.append(_Script(path_substring, status, body, headers, times))

    def slow_next(self, seconds: float) -> None:
        """Hold the next request this long before answering it."""
        with self._lock:
            self._slow_s.append(seconds)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.started.clear()
            self.rejected.clear()
            self._scripts.clear()
            self._slow_s.clear()
            self.uploads.clear()

    @property
    def app(self) -> Starlette:
        def post(path: str, check: Check, telegram: bool = False) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._handle(request, telegram, check)

            return Route(path, endpoint, methods=["POST"])

        graph, ig = "/graph/{version}/{node}", "/instagram/{version}/{node}"
        return Starlette(
            routes=[
                *FakeOnboarding.of(self).routes(),
                *self.media.routes(),
                *faketemplates.routes(self),  # WhatsApp templates: before /messages below
                *comments_of(self).routes(),
                post(f"{graph}/messages", self._graph_messages),
                post(f"{graph}/comments", partial(self._comment, FB)),
                post(f"{ig}/messages", partial(self._dm, IG)),
                post(f"{ig}/replies", partial(self._comment, IG)),
                post("/telegram/bot{token}/sendMessage", self._telegram, telegram=True),
                post(f"{graph}/media", partial(fakesendmedia.whatsapp_upload, self)),
                *[
                    post(f"/telegram/bot{{token}}/{m}", partial(self._tg_file, m), telegram=True)
                    for m in fakesendmedia.TG_FIELDS
                ],
                post(
                    "/telegram/bot{token}/answerCallbackQuery",
                    partial(faketelegram.answer_callback_query, self),
                    telegram=True,
                ),
                post("/telegram/bot{token}/setWebhook", self._set_webhook, telegram=True),
                post("/telegram/bot{token}/deleteWebhook", self._delete_webhook, telegram=True),
                Route("/iglogin/oauth/access_token", self._ig_code, methods=["POST"]),
                Route("/instagram/access_token", self._ig_exchange, methods=["GET"]),
                Route("/instagram/refresh_access_token", self._ig_refresh, methods=["GET"]),
                Route("/instagram/{version}/me", self._ig_me, methods=["GET"]),
                Route(f"{ig}/subscribed_apps", self._ig_subscribe, methods=["POST"]),
                Route(f"{ig}/subscribed_apps", partial(self._unsubscribe, IG), methods=["DELETE"]),
                Route(
                    f"{graph}/subscribed_apps", partial(self._unsubscribe, FB), methods=["DELETE"]
                ),
                Route(graph, partial(self._profile, FB), methods=["GET"]),
                Route(ig, partial(self._profile, IG), methods=["GET"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "DELETE"]),
            ]
        )

    async def _unknown(self, request: Request) -> Response:
        problem = Reject(f"fake: no such endpoint {request.method} {request.url.path}", 404, 803)
        received = Received(request.method, request.url.path, request.url.query, {}, None)
        self.rejected.append((received, str(problem)))
        return _error(request.url.path.startswith("/telegram/"), problem)

    async def _handle(self, request: Request, telegram: bool, check: Check) -> Response:
        with self._lock:
            self.started.append(request.url.path)
            slow_s = self._slow_s.pop(0) if self._slow_s else 0.0
        if slow_s:
            await asyncio.sleep(slow_s)
        raw = await request.body()
        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            raw.decode(errors="replace"),
        )
        try:
            if fakesendmedia.is_multipart(request):
                self._no_query_token(request)
                body: Any = await fakesendmedia.read_multipart(request)
            else:
                body = self._json(request, raw)
            received = dataclasses.replace(received, body=body)
            answer: dict[str, Any] = check(request, body)
        except Reject as exc:
            self.rejected.append((received, str(exc)))
            return _error(telegram, exc)
        script = self._scripted(request.url.path)
        answered = script.body if script is not None else answer
        self.requests.append(dataclasses.replace(received, answer=answered))
        return script.response() if script is not None else JSONResponse(answer)

    # Shapes

    def _graph_messages(self, request: Request, body: Any) -> dict[str, Any]:
        """Messenger and WhatsApp share the path; the node says which product it is."""
        node = request.path_params["node"]
        whatsapp = any(a.kind == WA and a.account_id == node for a in self.accounts)
        if whatsapp:
            return self._whatsapp(request, body)
        if isinstance(body, fakesendmedia.Multipart):
            return fakesendmedia.messenger_file(self, request, body)
        return self._dm(FB, request, body)

    def _dm(self, kind: ChannelKind, request: Request, body: Any) -> dict[str, Any]:
        self._auth(request, self._node_account(request, kind))
        message = body.get("message") if isinstance(body, dict) else None
        if kind == IG and isinstance(message, dict) and "attachment" in message:
            return fakesendmedia.instagram_file(body)
        allowed = {"recipient", "message", "messaging_type", "tag"}
        _keys(body, required={"recipient", "message"}, allowed=allowed)
        if kind == FB and body.get("messaging_type") not in MESSAGING_TYPES:
            raise Reject("fake: messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG")
        tagged = body.get("messaging_type") == "MESSAGE_TAG"
        if tagged != ("tag" in body) or body.get("tag", "HUMAN_AGENT") != "HUMAN_AGENT":
            raise Reject("fake: a MESSAGE_TAG send needs tag HUMAN_AGENT, and only it has a tag")
        recipient = body["recipient"]
        if not isinstance(recipient, dict) or len(recipient) != 1:
            raise Reject("fake: recipient must be {id} or {comment_id}")
        ((key, value),) = recipient.items()
        if key not in ("id", "comment_id") or not _str(value):
            raise Reject("fake: recipient must be {id} or {comment_id}, a non-empty string")
        _keys(body["message"], required={"text"}, allowed={"text"}, where="message")
        _text(body["message"]["text"], LIMITS[kind])
        recipient_id = value if key == "id" else f"{next(self._ids)}"
        return {"recipient_id": recipient_id, "message_id": f"m_{uuid.uuid4().hex}"}

    def _comment(self, kind: ChannelKind, request: Request, body: Any) -> dict[str, Any]:
        self._auth(request, *[a for a in self.accounts if a.kind == kind])
        _keys(body, required={"message"}, allowed={"message"})
        _text(body["message"], LIMITS[kind])
        node = request.path_params["node"]
        return {"id": f"{node}_{next(self._ids)}" if "_" in node else str(next(self._ids))}

    def _whatsapp(self, request: Request, body: Any) -> dict[str, Any]:
        self._auth(request, self._node_account(request, WA))
        if isinstance(body, dict) and body.get("type") == "reaction":
            return self._whatsapp_reaction(body)
        if isinstance(body, dict) and body.get("type") in fakesendmedia.WA_MESSAGE_TYPES:
            return fakesendmedia.whatsapp_message(self, body)
        required = {"messaging_product", "recipient_type", "to", "type", "text"}
        _keys(body, required=required, allowed=required | {"context"})
        if body["messaging_product"] != "whatsapp":
            raise Reject('fake: messaging_product must be "whatsapp"')
        if body["recipient_type"] != "individual" or body["type"] != "text":
            raise Reject('fake: recipient_type must be "individual" and type "text"')
        to = body["to"]
        if not _str(to) or not to.lstrip("+").isdigit():
            raise Reject("fake: to must be a phone number / wa_id string")
        _keys(body["text"], required={"body"}, allowed={"body", "preview_url"}, where="text")
        _text(body["text"]["body"], LIMITS[WA])
        if not isinstance(body["text"].get("preview_url", False), bool):
            raise Reject("fake: text.preview_url must be a boolean")
        if "context" in body:
            _keys(body["context"], required={"message_id"}, allowed={"message_id"}, where="context")
            if not _str(body["context"]["message_id"]):
                raise Reject("fake: context.message_id must be a non-empty string")
        wamid = f"wamid.{uuid.uuid4().hex.upper()}"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }

    def _whatsapp_reaction(self, body: dict[str, Any]) -> dict[str, Any]:
        required = {"messaging_product", "recipient_type", "to", "type", "reaction"}
        _keys(body, required=required, allowed=required)
        if body["messaging_product"] != "whatsapp" or body["recipient_type"] != "individual":
            raise Reject('fake: messaging_product "whatsapp", recipient_type "individual"')
        reaction = body["reaction"]
        _keys(
            reaction,
            required={"message_id", "emoji"},
            allowed={"message_id", "emoji"},
            where="reaction",
        )
        if not _str(reaction["message_id"]) or not isinstance(reaction["emoji"], str):
            raise Reject("fake: reaction needs a message_id and an emoji (empty to remove)")
        to = body["to"]
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.{uuid.uuid4().hex.upper()}"}],
        }

    def _tg_file(self, method: str, request: Request, body: Any) -> dict[str, Any]:
        return fakesendmedia.telegram_file(self, method, request, body)

    def _telegram(self, request: Request, body: Any) -> dict[str, Any]:
        token = request.path_params["token"]
        bot = next((a for a in self.accounts if a.kind == TG), None)
        if bot is None or token != bot.token:
            raise Reject("Unauthorized", status=401, code=401)
        allowed = {"chat_id", "text", "message_thread_id", "reply_parameters"}
        _keys(body, required={"chat_id", "text"}, allowed=allowed)
        chat_id = body["chat_id"]
        if not (_int(chat_id) or (_str(chat_id) and chat_id.startswith("@"))):
            raise Reject("fake: chat_id must be an integer or an @username string")
        _text(body["text"], LIMITS[TG])
        if "message_thread_id" in body and not _int(body["message_thread_id"]):
            raise Reject("fake: message_thread_id must be an integer")
        if "reply_parameters" in body:
            reply = body["reply_parameters"]
            allowed = {"message_id", "chat_id", "allow_sending_without_reply"}
            _keys(reply, required={"message_id"}, allowed=allowed, where="reply_parameters")
            if not _int(reply["message_id"]):
                raise Reject("fake: reply_parameters.message_id must be an integer")
        chat = chat_id if isinstance(chat_id, int) else -1000000000000 - next(self._ids)
        result: dict[str, Any] = {
            "message_id": next(self._ids),
            "from": {"id": int(bot.account_id), "is_bot": True, "first_name": "Fake bot"},
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
            "date": int(time.time()),
            "text": body["text"],
        }
        if "message_thread_id" in body:
            result |= {"message_thread_id": body["message_thread_id"], "is_topic_message": True}
        return {"ok": True, "result": result}

    async def _profile(self, kind: ChannelKind, request: Request) -> Response:
        """GET /{psid or igsid}?fields=...: the user-profile endpoints."""
        received = Received(
            "GET",
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            None,
        )
        allowed = (
            {"first_name", "last_name", "profile_pic"}
            if kind == FB
            else {"name", "username", "profile_pic"}
        )
        try:
            if "access_token" in request.query_params:
                raise Reject("fake: a token in the query string ends up in logs; use the header")
            self._auth(request, *[a for a in self.accounts if a.kind == kind])
            fields = set(request.query_params.get("fields", "").split(","))
            if not fields or not fields <= allowed:
                raise Reject(f"fake: profile fields must be some of {sorted(allowed)}")
        except Reject as exc:
            self.rejected.append((received, str(exc)))
            return _error(False, exc)
        script = self._scripted(request.url.path)
        node = request.path_params["node"]
        values = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "name": "Ada Lovelace",
            "username": "ada.l",
            "profile_pic": f"https://cdn.example/{node}.jpg",
        }
        answer = {"id": node} | {f: values[f] for f in fields}
        self.requests.append(
            dataclasses.replace(received, answer=script.body if script else answer)
        )
        return script.response() if script is not None else JSONResponse(answer)

    # Business Login for Instagram. The app's id and secret, and the code the "user" grants.
    IG_APP_ID = "990000000000001"
    IG_APP_SECRET = "ig-app-secret-for-tests"
    IG_CODE = "AQD-granted-code"
    IG_SHORT = "IGQshort-lived-token"

    async def _oauth(self, request: Request, check: Callable[[dict[str, str]], Any]) -> Response:
        form = parse_qsl((await request.body()).decode()) if request.method == "POST" else []
        params = {**dict(request.query_params), **dict(form)}
        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            params,
        )
        try:
            answer = check(params)
        except Reject as exc:
            self.rejected.append((received, str(exc)))
            return _error(False, exc)
        script = self._scripted(request.url.path)
        self.requests.append(
            dataclasses.replace(received, answer=script.body if script else answer)
        )
        return script.response() if script is not None else JSONResponse(answer)

    async def _ig_code(self, request: Request) -> Response:
        def check(p: dict[str, str]) -> Any:
            expected = {
                "client_id": self.IG_APP_ID,
                "client_secret": self.IG_APP_SECRET,
                "grant_type": "authorization_code",
                "code": self.IG_CODE,
            }
            if any(p.get(k) != v for k, v in expected.items()) or not p.get("redirect_uri"):
                raise Reject("Invalid authorization code", code=400)
            return {
                "data": [
                    {
                        "access_token": self.IG_SHORT,
                        "user_id": INSTAGRAM.account_id,
                        "permissions": "instagram_business_basic",
                    }
                ]
            }

        return await self._oauth(request, check)

    async def _ig_exchange(self, request: Request) -> Response:
        def check(p: dict[str, str]) -> Any:
            if p != {
                "grant_type": "ig_exchange_token",
                "client_secret": self.IG_APP_SECRET,
                "access_token": self.IG_SHORT,
            }:
                raise Reject("fake: ig_exchange_token needs the app secret and the short token")
            return {"access_token": INSTAGRAM.token, "token_type": "bearer", "expires_in": 5183944}

        return await self._oauth(request, check)

    async def _ig_refresh(self, request: Request) -> Response:
        def check(p: dict[str, str]) -> Any:
            if p.get("grant_type") != "ig_refresh_token" or not p.get("access_token"):
                raise Reject("fake: ig_refresh_token needs the long-lived token")
            return {
                "access_token": "IGQrefreshed-" + uuid.uuid4().hex,
                "token_type": "bearer",
                "expires_in": 5183944,
            }

        return await self._oauth(request, check)

    async def _ig_me(self, request: Request) -> Response:
        def check(p: dict[str, str]) -> Any:
            self._auth(request, INSTAGRAM)
            return {
                "user_id": INSTAGRAM.account_id,
                "username": "kahve.co",
                "profile_picture_url": "https://cdn.example/kahve.jpg",
                "id": "1",
            }

        return await self._oauth(request, check)

    async def _ig_subscribe(self, request: Request) -> Response:
        def check(p: dict[str, str]) -> Any:
            self._auth(request, INSTAGRAM)
            if request.path_params["node"] != INSTAGRAM.account_id or "messages" not in p.get(
                "subscribed_fields", ""
            ):
                raise Reject("fake: subscribe the connected account to at least messages")
            return {"success": True}

        return await self._oauth(request, check)

    async def _unsubscribe(self, kind: ChannelKind, request: Request) -> Response:
        """Page / WABA (Graph) and Instagram user (graph.instagram.com) Subscribed Apps,
        "Deleting": DELETE with no body and the token of the node addressed, in the header."""

        def check(p: dict[str, str]) -> Any:
            node = request.path_params["node"]
            if kind == IG:
                self._auth(request, self._node_account(request, IG))
            elif node == WABA_ID:
                self._auth(request, *[a for a in self.accounts if a.kind == WA])
            else:
                self._auth(request, self._node_account(request, FB))
            if p:
                raise Reject(f"fake: unsubscribing takes no parameters, got {sorted(p)}")
            return {"success": True}

        return await self._oauth(request, check)

    def _bot(self, request: Request) -> Account:
        token = request.path_params["token"]
        bot = next((a for a in self.accounts if a.kind == TG and a.token == token), None)
        if bot is None:
            raise Reject("Unauthorized", status=401, code=401)
        return bot

    def _set_webhook(self, request: Request, body: Any) -> dict[str, Any]:
        self._bot(request)
        allowed = {
            "url",
            "secret_token",
            "allowed_updates",
            "drop_pending_updates",
            "max_connections",
        }
        _keys(body, required={"url"}, allowed=allowed)
        if not _str(body["url"]) or not body["url"].startswith("https://"):
            raise Reject("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        token = body.get("secret_token")
        if token is not None and not (
            isinstance(token, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,256}", token)
        ):
            raise Reject("Bad Request: secret token contains unallowed characters")
        updates = body.get("allowed_updates", [])
        if not isinstance(updates, list) or not all(_str(u) for u in updates):
            raise Reject("fake: allowed_updates must be a list of strings")
        return {"ok": True, "result": True, "description": "Webhook was set"}

    def _delete_webhook(self, request: Request, body: Any) -> dict[str, Any]:
        self._bot(request)
        _keys(body, required=set(), allowed={"drop_pending_updates"})
        return {"ok": True, "result": True, "description": "Webhook was deleted"}

    # Helpers

    def _no_query_token(self, request: Request) -> None:
        if "access_token" in request.query_params:
            raise Reject("fake: a token in the query string ends up in logs; use the header")

    def _json(self, request: Request, raw: bytes) -> Any:
        self._no_query_token(request)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            raise Reject("fake: the body must be JSON (content-type application/json)")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise Reject(f"fake: the body is not JSON: {exc}") from None

    def _node_account(self, request: Request, kind: ChannelKind) -> Account:
        node = request.path_params["node"]
        found = next((a for a in self.accounts if a.kind == kind and a.account_id == node), None)
        if found is None:
            raise Reject(f"Unsupported post request. Object with ID '{node}' does not exist")
        return found

    def _auth(self, request: Request, *accounts: Account) -> None:
        given = request.headers.get("authorization", "")
        if not any(given == f"Bearer {a.token}" for a in accounts):
            raise Reject("fake: Authorization must be 'Bearer <that account's token>'", code=190)

    def _scripted(self, path: str) -> _Script | None:
        with self._lock:
            script = next((s for s in self._scripts if s.path_substring in path), None)
            if script is not None:
                script.times -= 1
                if script.times <= 0:
                    self._scripts.remove(script)
        return script


def _keys(value: Any, *, required: set[str], allowed: set[str], where: str = "the body") -> None:
    if not isinstance(value, dict):
        raise Reject(f"fake: {where} must be an object")
    if missing := required - value.keys():
        raise Reject(f"fake: {where} lacks {sorted(missing)}")
    if unknown := value.keys() - allowed:
        raise Reject(f"fake: {where} has unknown fields {sorted(unknown)}")


def _text(value: Any, limit: int) -> None:
    if not _str(value) or len(value) > limit:
        raise Reject(f"fake: the text must be a string of 1 to {limit} characters")


def _str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error(telegram: bool, exc: Reject) -> Response:
    if telegram:
        description = str(exc) if exc.status == 401 else f"Bad Request: {exc}"
        body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": description}
    else:
        error = {"message": f"(#{exc.code}) {exc}", "type": "OAuthException", "code": exc.code}
        body = {"error": error | {"fbtrace_id": "Afake" + uuid.uuid4().hex[:16]}}
    return JSONResponse(body, status_code=exc.status)


@contextmanager
def running_fake(accounts: tuple[Account, ...] = ACCOUNTS) -> Iterator[FakePlatform]:
    """The fake, served until the block ends. The socket is bound before uvicorn starts,
    so there is no race for the port."""
    fake = FakePlatform(accounts)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        fake.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the fake platform server did not start")
        time.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
