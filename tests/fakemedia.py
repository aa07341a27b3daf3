"""The fake platform's media: files a test puts on WhatsApp, Telegram or Meta's CDN, served
the way each platform serves them, and strict about who asks.

- WhatsApp: `GET /graph/{version}/{media-id}` with the bearer token of the number the media
  belongs to answers `{messaging_product, url, mime_type, sha256, file_size, id}`; the `url`
  (here `/lookaside/whatsapp_business/attachments/?mid=...`) needs that bearer too. Another
  account's token gets Graph's error 100 (the id "does not exist, cannot be loaded due to
  missing permissions").
- Telegram: `POST /telegram/bot<token>/getFile {file_id}` answers a File with `file_path`;
  the bytes are at `/telegram/file/bot<token>/<file_path>`. Only the owning bot's token
  works; a file over 20 MB is "Bad Request: file is too big", as the Bot API answers.
- Instagram and Messenger: `/cdn/<name>` serves the link put in the webhook, and refuses a
  request that carries a token (the CDN needs none and must not get one).

A request that breaks these rules is answered as the platform would and kept in the fake's
`.rejected` with a "fake:" reason. Scripts per file: `fail` (the next tries answer these
statuses), `hang` (hold the download), `chunked` (no Content-Length, so only counting the
bytes can stop it), and `announce` (a size the platform states, whatever is served).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from schemas.message import ChannelKind

if TYPE_CHECKING:
    from tests.fakeplatform import Account, FakePlatform

Stage = Literal["lookup", "download"]
TELEGRAM_BOT_LIMIT = 20 * 1024 * 1024


@dataclass
class MediaFile:
    key: str  # the WhatsApp media id, the Telegram file_id, or the CDN name
    platform: Literal["whatsapp", "telegram", "cdn"]
    data: bytes
    content_type: str
    owner: Account | None  # whose token may fetch it (none for the CDN)
    path: str = ""  # Telegram's file_path
    announced: int | None = None  # the size the platform states, when not len(data)
    chunked: bool = False
    hang_s: float = 0.0
    failures: dict[str, list[int]] = field(default_factory=lambda: {"lookup": [], "download": []})

    @property
    def size(self) -> int:
        return self.announced if self.announced is not None else len(self.data)


@dataclass
class FakeMedia:
    fake: FakePlatform
    files: dict[str, MediaFile] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)  # keys asked for (WA lookup, getFile)
    asked: list[str] = field(default_factory=list)  # keys whose download was asked for
    downloads: list[str] = field(default_factory=list)  # keys whose bytes were served
    refused: list[str] = field(default_factory=list)  # keys asked for with another's token
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(7_300_000_000_001))

    # Putting files

    def whatsapp(self, data: bytes, content_type: str, owner: Account) -> str:
        media_id = str(next(self._ids))
        self.files[media_id] = MediaFile(media_id, "whatsapp", data, content_type, owner)
        return media_id

    def telegram(self, data: bytes, content_type: str, bot: Account, path: str) -> str:
        file_id = "BQACAgIAAxkBAAI" + uuid.uuid4().hex
        self.files[file_id] = MediaFile(file_id, "telegram", data, content_type, bot, path=path)
        return file_id

    def cdn(self, data: bytes, content_type: str) -> str:
        name = uuid.uuid4().hex
        self.files[name] = MediaFile(name, "cdn", data, content_type, None)
        return f"http://127.0.0.1:{self.fake.port}/cdn/{name}?oh=signature&oe=expiry"

    # Scripts

    def fail(self, key: str, *statuses: int, stage: Stage = "download") -> None:
        """Answer the next tries of this stage with these statuses, one each."""
        self.files[key].failures[stage].extend(statuses)

    def hang(self, key: str, seconds: float) -> None:
        """Hold the download this long (or until `release`) before answering it."""
        self.files[key].hang_s = seconds

    def release(self, key: str) -> None:
        self.files[key].hang_s = 0.0

    def chunked(self, key: str) -> None:
        self.files[key].chunked = True

    def announce(self, key: str, size: int) -> None:
        self.files[key].announced = size

    # Serving

    def routes(self) -> list[Route]:
        return [
            Route("/graph/{version}/{node}", self._graph_node, methods=["GET"]),
            Route("/lookaside/whatsapp_business/attachments/", self._lookaside, methods=["GET"]),
            Route("/telegram/bot{token}/getFile", self._get_file, methods=["POST"]),
            Route("/telegram/file/bot{token}/{path:path}", self._telegram_file, methods=["GET"]),
            Route("/cdn/{name}", self._cdn, methods=["GET"]),
        ]

    async def _graph_node(self, request: Request) -> Response:
        """A WhatsApp media id; any other node is a user profile (the fake's own route)."""
        found = self.files.get(request.path_params["node"])
        if found is None or found.platform != "whatsapp":
            from tests.fakeplatform import FB

            return await self.fake._profile(FB, request)
        if "access_token" in request.query_params:
            return self._reject(request, "a token in the query string ends up in logs")
        if not self._bearer(request, found):
            return self._graph_error(
                request,
                400,
                100,
                f"Unsupported get request. Object with ID '{found.key}' does not exist, cannot "
                "be loaded due to missing permissions, or does not support this operation",
            )
        self.lookups.append(found.key)
        if failed := self._failed(found, "lookup"):
            return failed
        query = f"mid={found.key}&ext={uuid.uuid4().int % 10**10}&hash=ATt{uuid.uuid4().hex}"
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"http://127.0.0.1:{self.fake.port}/lookaside/whatsapp_business/"
                f"attachments/?{query}",
                "mime_type": found.content_type,
                "sha256": hashlib.sha256(found.data).hexdigest(),
                "file_size": str(found.size),
                "id": found.key,
            }
        )

    async def _lookaside(self, request: Request) -> Response:
        found = self.files.get(request.query_params.get("mid", ""))
        if found is None or found.platform != "whatsapp":
            return self._reject(request, "no such WhatsApp media URL", 404)
        if not self._bearer(request, found):
            return self._reject(request, "a WhatsApp media URL needs the number's bearer", 401)
        return await self._serve(found)

    async def _get_file(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self._reject(request, "getFile's body must be JSON", telegram=True)
        file_id = body.get("file_id") if isinstance(body, dict) else None
        if not isinstance(body, dict) or set(body) != {"file_id"} or not isinstance(file_id, str):
            return self._reject(request, "getFile takes exactly {file_id}", telegram=True)
        found = self.files.get(file_id)
        if not any(a.kind == ChannelKind.TELEGRAM and a.token == token for a in self.fake.accounts):
            return self._telegram_error(request, 401, "Unauthorized")
        if found is None or found.platform != "telegram" or found.owner is None:
            return self._telegram_error(
                request, 400, "Bad Request: wrong file_id or the file is temporarily unavailable"
            )
        if found.owner.token != token:
            return self._telegram_error(
                request, 400, "Bad Request: wrong file_id or the file is temporarily unavailable"
            )
        self.lookups.append(found.key)
        if failed := self._failed(found, "lookup"):
            return failed
        if found.size > TELEGRAM_BOT_LIMIT:
            return self._telegram_error(request, 400, "Bad Request: file is too big")
        result = {
            "file_id": found.key,
            "file_unique_id": "AgAD" + found.key[-8:],
            "file_size": found.size,
            "file_path": found.path,
        }
        return JSONResponse({"ok": True, "result": result})

    async def _telegram_file(self, request: Request) -> Response:
        token, path = request.path_params["token"], request.path_params["path"]
        found = next(
            (f for f in self.files.values() if f.platform == "telegram" and f.path == path), None
        )
        if found is None or found.owner is None or found.owner.token != token:
            return self._reject(request, "no such file for this bot token", 404)
        return await self._serve(found)

    async def _cdn(self, request: Request) -> Response:
        found = self.files.get(request.path_params["name"])
        if found is None or found.platform != "cdn":
            return self._reject(request, "no such CDN file", 404)
        if "authorization" in request.headers or "access_token" in request.query_params:
            return self._reject(request, "a CDN link must be fetched without a token", 400)
        return await self._serve(found)

    async def _serve(self, found: MediaFile) -> Response:
        self.asked.append(found.key)
        held = asyncio.get_running_loop().time()
        # Polled: `release` comes from the test's thread, not this loop.
        while found.hang_s and asyncio.get_running_loop().time() - held < found.hang_s:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if failed := self._failed(found, "download"):
            return failed
        self.downloads.append(found.key)
        if not found.chunked:
            return Response(found.data, media_type=found.content_type)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(found.data), 16 * 1024):
                yield found.data[start : start + 16 * 1024]

        return StreamingResponse(chunks(), media_type=found.content_type)

    # Helpers

    def _bearer(self, request: Request, found: MediaFile) -> bool:
        owner = found.owner
        return owner is not None and request.headers.get("authorization") == (
            f"Bearer {owner.token}"
        )

    def _failed(self, found: MediaFile, stage: Stage) -> Response | None:
        scripted = found.failures[stage]
        if not scripted:
            return None
        status = scripted.pop(0)
        if found.platform == "telegram" and stage == "lookup":
            body: Any = {"ok": False, "error_code": status, "description": "Internal Server Error"}
            return JSONResponse(body, status_code=status)
        return Response(b"scripted failure", status_code=status)

    def _reject(
        self, request: Request, problem: str, status: int = 400, *, telegram: bool = False
    ) -> Response:
        from tests.fakeplatform import Received, Reject, _error

        received = Received(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            None,
        )
        self.fake.rejected.append((received, f"fake: {problem}"))
        return _error(telegram, Reject(f"fake: {problem}", status))

    def _graph_error(self, request: Request, status: int, code: int, message: str) -> Response:
        self.refused.append(request.path_params["node"])
        error = {"message": message, "type": "GraphMethodException", "code": code}
        return JSONResponse({"error": error | {"error_subcode": 33}}, status_code=status)

    def _telegram_error(self, request: Request, status: int, description: str) -> Response:
        body = {"ok": False, "error_code": status, "description": description}
        return JSONResponse(body, status_code=status)
