"""The fake platform's comment moderation, strict about the documented shapes
(docs/platforms.md §2c, §3b; Meta's Instagram comment moderation and Page comment docs):

- Instagram: `POST /instagram/{version}/{comment_id}?hide=true|false` with no body, and
  `DELETE /instagram/{version}/{comment_id}`, with the Instagram account's bearer token.
- Facebook Page: `POST /graph/{version}/{comment_id}` with the JSON body `{"is_hidden": bool}`
  (nothing else), and `DELETE /graph/{version}/{comment_id}`, with the Page's bearer token.
- Instagram through its Facebook Page (Facebook Login for Business): Instagram's calls, with
  `?hide=true|false` and no body, on `/graph/{version}/{comment_id}` with the Page's token.

Both answer `{"success": true}`. A token in the query string, a body where none belongs, a
missing or non-boolean flag, another account's token, or a comment deleted before is refused
as the platform would (kept in the fake's `.rejected` with a "fake:" reason). What was done is
kept per comment in `.hidden` and `.deleted`, and every accepted call in the fake's
`.requests`. Private and public replies go through the fake's `/messages`, `/replies` and
`/comments` checks (tests/fakeplatform.py); `private_replies` lists the comment ids a private
reply named there, in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.message import ChannelKind

if TYPE_CHECKING:
    from tests.fakeplatform import FakePlatform

_OF: dict[int, FakeComments] = {}


def comments_of(fake: FakePlatform) -> FakeComments:
    """The fake's comments: made once per fake, so the one mounting line in fakeplatform.py
    and the tests see the same state."""
    found = _OF.get(id(fake))
    if found is None or found.fake is not fake:
        found = _OF[id(fake)] = FakeComments(fake)
    return found


@dataclass
class FakeComments:
    fake: FakePlatform
    hidden: dict[str, bool] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def routes(self) -> list[Route]:
        return [
            Route(
                "/graph/{version}/{node}",
                self._facebook,
                methods=["POST", "DELETE"],
            ),
            Route(
                "/instagram/{version}/{node}",
                self._instagram,
                methods=["POST", "DELETE"],
            ),
        ]

    @property
    def private_replies(self) -> list[str]:
        found = []
        for r in self.fake.requests:
            recipient = r.body.get("recipient") if isinstance(r.body, dict) else None
            if r.path.endswith("/messages") and isinstance(recipient, dict):
                if "comment_id" in recipient:
                    found.append(str(recipient["comment_id"]))
        return found

    async def _facebook(self, request: Request) -> Response:
        def check(raw: bytes) -> Any:
            if request.method == "DELETE":
                _no_body(raw)
                return None
            if "hide" in request.query_params:  # an Instagram comment, through its Page
                _no_body(raw)
                if (
                    request.query_params["hide"] not in ("true", "false")
                    or len(request.query_params) != 1
                ):
                    raise _reject("fake: hiding an Instagram comment takes ?hide=true|false only")
                return None
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                raise _reject("fake: hiding a Page comment takes a JSON body {is_hidden}")
            body = _decoded(raw)
            if not isinstance(body, dict) or set(body) != {"is_hidden"}:
                raise _reject("fake: the body must be exactly {is_hidden}")
            if not isinstance(body["is_hidden"], bool):
                raise _reject("fake: is_hidden must be true or false")
            return body

        return await self._moderate(request, ChannelKind.MESSENGER, check)

    async def _instagram(self, request: Request) -> Response:
        def check(raw: bytes) -> Any:
            _no_body(raw)
            if request.method == "POST":
                hide = request.query_params.get("hide")
                if hide not in ("true", "false") or set(request.query_params) != {"hide"}:
                    raise _reject("fake: hiding an Instagram comment takes ?hide=true|false only")
            return None

        return await self._moderate(request, ChannelKind.INSTAGRAM, check)

    async def _moderate(self, request: Request, kind: ChannelKind, check: Any) -> Response:
        from tests.fakeplatform import Received, Reject, _error

        raw = await request.body()
        node = request.path_params["node"]
        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            raw.decode(errors="replace"),
        )
        try:
            self.fake._no_query_token(request)
            self.fake._auth(request, *[a for a in self.fake.accounts if a.kind == kind])
            body = check(raw)
            if node in self.deleted:
                raise Reject(f"Unsupported post request. Object with ID '{node}' does not exist")
        except Reject as exc:
            self.fake.rejected.append((received, str(exc)))
            return _error(False, exc)
        script = self.fake._scripted(request.url.path)
        if script is not None:
            self.fake.requests.append(received)
            return script.response()
        if request.method == "DELETE":
            self.deleted.add(node)
        elif kind == ChannelKind.INSTAGRAM or "hide" in request.query_params:
            self.hidden[node] = request.query_params["hide"] == "true"
        else:
            self.hidden[node] = bool(body["is_hidden"])
        answer = {"success": True}
        self.fake.requests.append(
            Received(
                received.method,
                received.path,
                received.query,
                received.headers,
                body,
                answer,
            )
        )
        return JSONResponse(answer)


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise _reject("fake: the body is not JSON") from None


def _no_body(raw: bytes) -> None:
    if raw.strip():
        raise _reject("fake: this call takes no body")


def _reject(problem: str) -> Exception:
    from tests.fakeplatform import Reject

    return Reject(problem)
