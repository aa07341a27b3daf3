"""Security headers: every page the app answers with HTML carries the strict policy, found by
walking the app's own routes (and every file under /static that is a page), so a page added
later is checked without being named here; HSTS only with an https public URL; and no page's
markup holds an inline script, style or event handler the policy would refuse."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from hub.settings import Settings
from hub.web.app import STATIC, WIDGET, create_app
from hub.web.headers import PAGE_CSP, SecurityHeaders
from hub.web.logs import RequestIds
from tests.helpers import Tenant, prepare

STRICT = {
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
    "default-src": ["'none'"],
    "style-src": ["'self'"],
}
HSTS = "max-age=31536000; includeSubDomains"


def policy(header: str) -> dict[str, list[str]]:
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def assert_strict_page(answer: Response | object, where: str) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    csp = policy(headers["content-security-policy"])
    for name, sources in STRICT.items():
        assert csp.get(name) == sources, (where, name, csp.get(name))
    assert csp["script-src"][0] == "'self'", where
    assert all(s.startswith(("'self'", "https://")) for s in csp["script-src"]), where
    assert "unsafe" not in headers["content-security-policy"], where
    assert headers["x-frame-options"] == "DENY", where
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] == "no-referrer", where


@pytest.fixture
def app_client(settings: Settings) -> Iterator[tuple[TestClient, Tenant]]:
    settings = settings.with_overrides(demo=True, public_url="http://testserver")
    [acme] = prepare(settings, "acme")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client, acme


def test_every_html_answer_of_the_app_carries_the_strict_policy(
    app_client: tuple[TestClient, Tenant],
) -> None:
    client, acme = app_client
    app = client.app
    assert isinstance(app, Starlette)
    pages: dict[str, Response] = {}
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        if "{" in route.path:
            continue
        answer = client.get(route.path, params={"channel": acme.public_key})
        assert answer.headers["x-content-type-options"] == "nosniff", route.path
        assert answer.headers["referrer-policy"] == "no-referrer", route.path
        assert "strict-transport-security" not in answer.headers, route.path  # http here
        if answer.headers.get("content-type", "").startswith("text/html"):
            pages[route.path] = answer  # type: ignore[assignment]
        elif route.path == "/sw.js":  # a worker's policy comes with its script: the pages' own
            assert answer.headers["content-security-policy"] == PAGE_CSP
        else:
            assert "content-security-policy" not in answer.headers, route.path
    for file in sorted(STATIC.glob("*.html")):
        pages[f"/static/{file.name}"] = client.get(f"/static/{file.name}")  # type: ignore[assignment]
    # The deletion status page, the one page with a parameter.
    filed = client.post(
        "/api/deletions",
        json={"contact_id": str(uuid.uuid4())},
        headers={"authorization": f"Bearer {acme.api_token}"},
    )
    assert filed.status_code in (200, 201, 202), filed.text
    code = filed.json()["confirmation_code"]
    pages["/privacy/deletion/{code}"] = client.get(f"/privacy/deletion/{code}")  # type: ignore[assignment]

    assert {"/", "/admin", "/demo", "/static/inbox.html", "/static/admin.html"} <= set(pages)
    for path, answer in pages.items():
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert_strict_page(answer, path)
    # The console keeps Meta's SDK (WhatsApp Embedded Signup) wherever it is served from.
    for path in ("/admin", "/static/admin.html"):
        csp = policy(pages[path].headers["content-security-policy"])
        assert csp["script-src"] == ["'self'", "https://connect.facebook.net"], path
        assert "https://www.facebook.com" in csp["frame-src"], path
    for path in ("/", "/demo", "/privacy/deletion/{code}"):
        csp = policy(pages[path].headers["content-security-policy"])
        assert csp["script-src"] == ["'self'"] and "frame-src" not in csp, path
    assert policy(pages["/demo"].headers["content-security-policy"])["media-src"] == [
        "'self'",
        "blob:",
    ]
    # The widget's own answers are not pages: its script stays loadable from any site.
    script = client.get("/widget.js")
    assert "content-security-policy" not in script.headers
    assert "cross-origin-resource-policy" not in script.headers


def test_a_page_added_later_is_covered_by_its_content_type() -> None:
    async def invite(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>Invitation</title>")

    async def data(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def own(request: Request) -> Response:
        return HTMLResponse("<p>file</p>", headers={"content-security-policy": "sandbox"})

    app = Starlette(
        routes=[Route("/invite", invite), Route("/api/thing", data), Route("/file", own)],
        middleware=[Middleware(RequestIds, security=SecurityHeaders())],
    )
    client = TestClient(app)
    assert_strict_page(client.get("/invite"), "/invite")
    answer = client.get("/api/thing")
    assert "content-security-policy" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/file").headers["content-security-policy"] == "sandbox"  # its own wins


@pytest.mark.parametrize(
    ("public_url", "hsts"), [("https://hub.example", True), ("http://hub.example", False)]
)
def test_hsts_only_when_the_public_url_is_https(
    settings: Settings, public_url: str, hsts: bool
) -> None:
    settings = settings.with_overrides(public_url=public_url)
    prepare(settings)
    with TestClient(create_app(settings), base_url=public_url) as client:
        for path in ("/", "/admin", "/api/me", "/widget.js", "/healthz"):
            answer = client.get(path)
            assert (answer.headers.get("strict-transport-security") == HSTS) is hsts, path
            assert ("strict-transport-security" in answer.headers) is hsts, path


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("an inline <script>")
        if tag == "style":
            self.found.append("a <style> element")
        if tag == "meta" and ("http-equiv", "Content-Security-Policy") in attrs:
            self.found.append("a policy in a <meta> (the header is the one policy)")
        self.found += [f"a {n}= attribute on <{tag}>" for n in names if n == "style"]
        self.found += [f"an {n}= handler on <{tag}>" for n in names if re.fullmatch(r"on\w+", n)]
        self.found += [
            f"a javascript: URL on <{tag}>"
            for _, value in attrs
            if value and value.strip().lower().startswith("javascript:")
        ]


@pytest.mark.unit
@pytest.mark.parametrize(
    "page",
    [*sorted(STATIC.glob("*.html")), WIDGET / "demo.html"],
    ids=lambda p: Path(p).name,
)
def test_no_page_holds_inline_script_or_style(page: Path) -> None:
    markup = _Markup()
    markup.feed(page.read_text())
    assert markup.found == [], f"{page.name}: {markup.found}"
