"""Security headers on every HTTP answer, in one ASGI middleware.

- Everywhere: no MIME sniffing, no referrer.
- The hub's own pages (inbox, admin console, demo): a Content-Security-Policy header that also
  forbids framing them (`frame-ancestors 'none'`, and X-Frame-Options for old browsers), so no
  other site can overlay the inbox (clickjacking).
- Private answers (/api/*, except the widget's public ones that set their own): `no-store`, so no
  shared or browser cache keeps conversations or tokens.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pictures and players load only the hub's own files (and blob: previews of files about to be
# sent): a link that a contact or a platform gave is never fetched by an agent's browser.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The console also runs Meta's JavaScript SDK for WhatsApp Embedded Signup: its script, and
# the facebook.com frames it opens and talks to.
ADMIN_CSP = PAGE_CSP.replace(
    "script-src 'self'", "script-src 'self' https://connect.facebook.net"
).replace(
    "connect-src 'self'",
    "connect-src 'self' https://www.facebook.com https://graph.facebook.com; "
    "frame-src https://www.facebook.com https://web.facebook.com",
)
PAGES = frozenset({"/", "/admin", "/invite", "/reset"})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if path in PAGES:
                    extra += [
                        (
                            b"content-security-policy",
                            (ADMIN_CSP if path == "/admin" else PAGE_CSP).encode(),
                        ),
                        (b"x-frame-options", b"DENY"),
                    ]
                if path.startswith("/api/") and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
