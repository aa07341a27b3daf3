"""The fake platform's WhatsApp message templates: the WhatsApp Business Account's list
(`GET /graph/{version}/{waba_id}/message_templates`, paged by cursor) and template sends
(`POST /graph/{version}/{phone_number_id}/messages` with `type: template`), strict about
the documented shapes and answering Meta's template errors:

- 132001 the template does not exist in that language (or is not approved yet),
- 132000 the number of parameters does not match the template's variables,
- 132012 a parameter of the wrong kind (a header image given as text),
- 132015 paused, 132016 disabled.

Other WhatsApp sends are handed to the fake's own handler unchanged. Mounted in
`tests/fakeplatform.py` with one line; a test reaches it as `faketemplates.of(fake)`.

The catalogue below is made for these tests from the documented shape of a template
(`{id, name, language, status, category, components: [{type: HEADER|BODY|FOOTER|BUTTONS,
...}]}`); its values are invented.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from tests.fakeplatform import FakePlatform

WABA_ID = "102290129340398"  # the same as tests.fakeplatform.WABA_ID (no import cycle)
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA = ("image", "video", "document")

ORDER_UPDATE: dict[str, Any] = {
    "id": "1689556908129832",
    "name": "order_update",
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order {{2}} is on its way.",
            "example": {"body_text": [["Ada", "A-1001"]]},
        },
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
                {"type": "QUICK_REPLY", "text": "Thanks"},
            ],
        },
    ],
}
WELCOME: dict[str, Any] = {
    "id": "1689556908129833",
    "name": "welcome_back",
    "language": "tr",
    "status": "APPROVED",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Merhaba {{1}}, sizi yeniden görmek güzel!"}],
}
HELLO: dict[str, Any] = {
    "id": "1689556908129834",
    "name": "hello_world",
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
        {"type": "BODY", "text": "Welcome and congratulations!"},
    ],
}
APPOINTMENT: dict[str, Any] = {
    "id": "1689556908129835",
    "name": "appointment",
    "language": "en",
    "status": "APPROVED",
    "category": "UTILITY",
    "parameter_format": "NAMED",
    "components": [
        {"type": "BODY", "text": "Hi {{first_name}}, see you at {{time}}."},
        {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": ["CODE1"]}]},
    ],
}
PAUSED: dict[str, Any] = {
    "id": "1689556908129836",
    "name": "spring_sale",
    "language": "en",
    "status": "PAUSED",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Spring sale: {{1}} off."}],
}
PENDING: dict[str, Any] = {
    "id": "1689556908129837",
    "name": "new_offer",
    "language": "en",
    "status": "PENDING",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "A new offer for you."}],
}
CATALOGUE = [ORDER_UPDATE, WELCOME, HELLO, APPOINTMENT, PAUSED, PENDING]

_BY_FAKE: dict[int, FakeTemplates] = {}


@dataclass
class FakeTemplates:
    fake: FakePlatform
    catalogue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # WABA id -> list
    page_size: int = 2  # small, so a sync must follow the cursor
    listed: list[str] = field(default_factory=list)  # the query of every list call
    sent: list[dict[str, Any]] = field(default_factory=list)  # the accepted `template` objects
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def put(self, *templates: dict[str, Any], waba_id: str = WABA_ID) -> None:
        self.catalogue[waba_id] = [copy.deepcopy(t) for t in templates]

    def set_status(self, name: str, status: str) -> None:
        for held in self.catalogue.values():
            for template in held:
                if template["name"] == name:
                    template["status"] = status

    def routes(self) -> list[Route]:
        graph = "/graph/{version}/{node}"
        return [
            Route(f"{graph}/message_templates", self._list, methods=["GET"]),
            Route(f"{graph}/messages", self._messages, methods=["POST"]),
        ]

    # Listing

    async def _list(self, request: Request) -> Response:
        from tests.fakeplatform import WA, Received, Reject, _error

        node = request.path_params["node"]
        received = Received("GET", request.url.path, request.url.query, {}, None)
        try:
            if "access_token" in request.query_params:
                raise Reject("fake: a token in the query string ends up in logs; use the header")
            self.fake._auth(request, *[a for a in self.fake.accounts if a.kind == WA])
            if node not in self.catalogue:
                raise Reject(f"Unsupported get request. Object with ID '{node}' does not exist")
            fields = set(request.query_params.get("fields", "").split(","))
            if not {"name", "language", "status", "components"} <= fields:
                raise Reject("fake: ask for the fields name, language, status and components")
            limit = request.query_params.get("limit", "25")
            if not limit.isdigit() or not 0 < int(limit) <= 1000:
                raise Reject("fake: limit must be a number from 1 to 1000")
        except Reject as exc:
            self.fake.rejected.append((received, str(exc)))
            return _error(False, exc)
        scripted = self.fake._scripted(request.url.path)
        if scripted is not None:
            self.fake.requests.append(received)
            return scripted.response()
        start = _offset(request.query_params.get("after"))
        size = min(int(limit), self.page_size)
        items = self.catalogue[node][start : start + size]
        cursors = {"before": _cursor(start), "after": _cursor(start + len(items))}
        paging: dict[str, Any] = {"cursors": cursors}
        if start + size < len(self.catalogue[node]):
            paging["next"] = (
                f"https://graph.facebook.com/v23.0/{node}/message_templates"
                f"?limit={size}&after={cursors['after']}"
            )
        self.listed.append(request.url.query)
        answer = {"data": copy.deepcopy(items), "paging": paging}
        self.fake.requests.append(received)
        return JSONResponse(answer)

    # Sending

    async def _messages(self, request: Request) -> Response:
        raw = await request.body()  # kept by Starlette: the handler below reads it again
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") == "template":
            return await self.fake._handle(request, False, partial(self._template))
        return await self.fake._handle(request, False, self.fake._graph_messages)

    def _template(self, request: Request, body: Any) -> dict[str, Any]:
        from tests.fakeplatform import WA, Reject, _keys, _str

        account = self.fake._node_account(request, WA)
        self.fake._auth(request, account)
        required = {"messaging_product", "recipient_type", "to", "type", "template"}
        _keys(body, required=required, allowed=required)
        if body["messaging_product"] != "whatsapp" or body["recipient_type"] != "individual":
            raise Reject('fake: messaging_product "whatsapp", recipient_type "individual"')
        to = body["to"]
        if not _str(to) or not to.lstrip("+").isdigit():
            raise Reject("fake: to must be a phone number / wa_id string")
        template = body["template"]
        _keys(
            template,
            required={"name", "language"},
            allowed={"name", "language", "components"},
            where="template",
        )
        _keys(template["language"], required={"code"}, allowed={"code", "policy"}, where="language")
        known = self._known(template["name"], template["language"]["code"])
        self._check(known, template.get("components", []))
        self.sent.append(template)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": f"wamid.{uuid.uuid4().hex.upper()}", "message_status": "accepted"}],
        }

    def _known(self, name: Any, language: Any) -> dict[str, Any]:
        found = next(  # any WABA's: the fake does not say which number is in which
            (
                t
                for held in self.catalogue.values()
                for t in held
                if t["name"] == name and t["language"] == language
            ),
            None,
        )
        if found is None or found["status"] in ("PENDING", "REJECTED", "DELETED"):
            raise _meta(132001, "Template name does not exist in the translation", 404)
        if found["status"] == "PAUSED":
            raise _meta(132015, "Template is Paused")
        if found["status"] == "DISABLED":
            raise _meta(132016, "Template is disabled")
        return found

    def _check(self, template: dict[str, Any], components: Any) -> None:
        from tests.fakeplatform import Reject, _keys

        if not isinstance(components, list):
            raise Reject("fake: template.components must be a list")
        given: dict[str, list[dict[str, Any]]] = {}
        for component in components:
            _keys(
                component,
                required={"type"},
                allowed={"type", "parameters", "sub_type", "index"},
                where="a component",
            )
            kind = component["type"]
            if kind not in ("header", "body", "button"):
                raise Reject(f"fake: component type {kind!r} is not header, body or button")
            parameters = component.get("parameters", [])
            if not isinstance(parameters, list):
                raise Reject("fake: parameters must be a list")
            for parameter in parameters:
                self._parameter(parameter)
            if kind == "button":
                if component.get("sub_type") not in ("url", "quick_reply", "copy_code"):
                    raise Reject(
                        "fake: a button component needs sub_type url/quick_reply/copy_code"
                    )
                index = component.get("index")
                if not isinstance(index, str) or not index.isdigit():
                    raise Reject("fake: a button component's index is a string of digits")
                kind = f"button{index}"
            given[kind] = parameters
        expected = _expected(template)
        for where in sorted(set(expected) | set(given)):
            want, got = expected.get(where, []), given.get(where, [])
            if len(want) != len(got):
                raise _meta(
                    132000, "Number of parameters does not match the expected number of params"
                )
            for kind, parameter in zip(want, got, strict=True):
                if kind != parameter["type"]:
                    raise _meta(
                        132012, "Parameter format does not match format in the created template"
                    )

    def _parameter(self, parameter: Any) -> None:
        from tests.fakeplatform import Reject, _keys, _str

        if not isinstance(parameter, dict) or not _str(parameter.get("type")):
            raise Reject("fake: a parameter is an object with a type")
        kind = parameter["type"]
        if kind == "text":
            _keys(
                parameter,
                required={"type", "text"},
                allowed={"type", "text", "parameter_name"},
                where="a text parameter",
            )
            if not _str(parameter["text"]):
                raise Reject("fake: a text parameter needs a non-empty text")
        elif kind in MEDIA:
            _keys(parameter, required={"type", kind}, allowed={"type", kind}, where="a media one")
            medium = parameter[kind]
            allowed = {"link", "id", "caption"} | ({"filename"} if kind == "document" else set())
            if not isinstance(medium, dict) or len({"link", "id"} & medium.keys()) != 1:
                raise Reject(f"fake: {kind} needs exactly one of link and id")
            _keys(medium, required=set(), allowed=allowed, where=kind)
            if "link" in medium and not str(medium["link"]).startswith("https://"):
                raise Reject("fake: a media link must be https")
            if "id" in medium and medium["id"] not in self.fake.uploads:
                raise Reject(f"fake: no uploaded media with id {medium['id']}")
        elif kind == "coupon_code":
            _keys(
                parameter,
                required={"type", "coupon_code"},
                allowed={"type", "coupon_code"},
                where="a coupon_code parameter",
            )
        elif kind != "payload":
            raise Reject(f"fake: parameter type {kind!r} is not one this fake knows")


def _meta(code: int, message: str, status: int = 400) -> Exception:
    """A template error in Graph's shape (`(#code) message`), kept in the fake's `.rejected`
    like any refusal."""
    from tests.fakeplatform import Reject

    return Reject(message, status, code)


def _expected(template: dict[str, Any]) -> dict[str, list[str]]:
    """The parameter kinds each component of a template takes, as WhatsApp counts them."""
    expected: dict[str, list[str]] = {}
    for component in template.get("components", []):
        kind = component.get("type")
        if kind == "HEADER":
            header_format = component.get("format", "TEXT")
            if header_format == "TEXT":
                found = set(VARIABLE.findall(component.get("text", "")))
                if found:
                    expected["header"] = ["text"] * len(found)
            elif header_format.lower() in MEDIA:
                expected["header"] = [header_format.lower()]
        elif kind == "BODY":
            found = set(VARIABLE.findall(component.get("text", "")))
            if found:
                expected["body"] = ["text"] * len(found)
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons", [])):
                if button.get("type") == "URL" and VARIABLE.search(button.get("url", "")):
                    expected[f"button{index}"] = ["text"]
                elif button.get("type") == "COPY_CODE":
                    expected[f"button{index}"] = ["coupon_code"]
    return expected


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError):
        return 0


def routes(fake: FakePlatform) -> list[Route]:
    """The routes to mount in the fake; made once per fake, with the catalogue in it."""
    templates = FakeTemplates(fake)
    templates.put(*CATALOGUE)
    _BY_FAKE[id(fake)] = templates
    return templates.routes()


def of(fake: FakePlatform) -> FakeTemplates:
    return _BY_FAKE[id(fake)]
