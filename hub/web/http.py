"""HTTP plumbing every REST route shares: the services, bodies read within limits, who is
calling (session cookie with CSRF, or bearer token), and the small parsers of path and query."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.accounts.auth import API_TOKEN_PREFIX, SESSION_COOKIE, Principal
from hub.accounts.members import Actor
from hub.errors import BadRequest, CsrfFailed, Forbidden, NotFound, TooBig, Unauthenticated
from hub.services import Services
from hub.storage import tenancy
from schemas import frames

M = TypeVar("M", bound=BaseModel)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def services(request: Request) -> Services:
    value: Services = request.app.state.services
    return value


async def read_raw(request: Request) -> bytes:
    """The body's bytes, refusing one over the limit before reading it whole."""
    limit = services(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooBig(f"Request bodies are limited to {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooBig(f"Request bodies are limited to {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, model: type[M]) -> M:
    """Parse a JSON body into `model`, with a machine-readable 400 for what does not fit."""
    body = await read_raw(request)
    if b"\\u0000" in body:
        try:
            body = frames.without_nul(body.decode()).encode()
        except UnicodeDecodeError:
            raise BadRequest("The body is not UTF-8.") from None
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"Invalid body at {where}: {first['msg']}") from None


async def authenticate(request: Request) -> Principal:
    svc = services(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        principal = (
            await svc.store.principal_for_api_token(token)
            if token.startswith(API_TOKEN_PREFIX)
            else None
        )
        if principal is None:
            raise Unauthenticated("The bearer token is not valid.")
        tenancy.act_for(principal.workspace_id)
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated()
    session = svc.signer.read_session(cookie)
    if request.method not in SAFE_METHODS and not svc.signer.check_csrf(
        session.nonce, request.headers.get("x-csrf-token")
    ):
        raise CsrfFailed()
    alive = await svc.user_sessions.alive(
        session.workspace_id, session.user_id, session.session_id, session.secret
    )
    principal = (
        await svc.store.principal(
            session.user_id, session.workspace_id, "session", password_mark=session.password_mark
        )
        if alive
        else None
    )
    if principal is None:
        raise Unauthenticated(
            "The session has ended (signed out, password changed or membership removed)."
        )
    tenancy.act_for(principal.workspace_id)
    return dataclasses.replace(principal, session_id=session.session_id)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only admins may do this.")


async def admin_actor(request: Request) -> tuple[Principal, Actor]:
    """The caller, who must be an admin, and who they are for the audit log."""
    principal = await authenticate(request)
    require_admin(principal)
    return principal, Actor(principal.user_id, client_ip(request))


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No such {what}.") from None


def page_limit(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit", str(default))
    maximum = services(request).settings.page_max_items
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}.")
    return int(raw)


def client_ip(request: Request) -> str | None:
    """The peer's address as the server saw it (behind a proxy, run uvicorn with
    --proxy-headers and --forwarded-allow-ips so that this is the client's)."""
    return request.client.host if request.client else None


def public_base(request: Request) -> str:
    """The hub's URL for an answer to the caller itself (a webhook URL to paste, an export's
    file links): HUB_PUBLIC_URL, else the URL the caller used. Never for a letter
    (`letter_base`)."""
    return services(request).settings.public_url or str(request.base_url).rstrip("/")


def letter_base(request: Request) -> str | None:
    """Where the links in a letter lead: HUB_PUBLIC_URL, never the caller's Host header (a
    forged one would put the caller's site, with a genuine token, in a letter to someone
    else). Settings refuse SMTP without a public URL; in log-only mode without one, the
    address the connection arrived at, which the server's socket decides and the client
    cannot (uvicorn's scope `server`; `--proxy-headers` never changes it). None when there
    is neither (a unix socket): the letter is not sent (`hub.accounts.letters.unsent`)."""
    settings = services(request).settings
    if settings.public_url is not None:
        return settings.public_url
    server = request.scope.get("server")
    if settings.smtp_host is not None or not server or server[1] is None:
        return None
    host, port = str(server[0]), int(server[1])
    scheme = "https" if request.scope.get("scheme") in ("https", "wss") else "http"
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def as_json(model: BaseModel) -> dict[str, Any]:
    """An answer model (`schemas.rest`) as JSON; a key it was never given is left out."""
    return model.model_dump(mode="json", exclude_unset=True)


def answer(
    model: BaseModel,
    status_code: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> JSONResponse:
    return JSONResponse(
        as_json(model), status_code=status_code, headers=headers, background=background
    )
