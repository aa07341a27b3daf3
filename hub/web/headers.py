"""Security headers on every HTTP answer, in one ASGI middleware.

- Everywhere: no MIME sniffing, no referrer, and, when the hub's public URL is https,
  Strict-Transport-Security (a browser that once reached the hub over https never again
  tries plain http, for a year, subdomains included).
- Every HTML answer, whatever its path (the inbox, the console, the demo shop, the deletion
  status page, any page added later): a strict Content-Security-Policy: scripts and styles
  from the hub's own files only (nothing inline), no plugins, no `<base>`, forms post only
  to the hub, and `frame-ancestors 'none'` (with X-Frame-Options for old browsers), so no
  other site can overlay a hub page (clickjacking). The pages are told apart by the answer's
  content type, not by a list of paths, so a new page cannot be left out. An answer that
  sets its own policy keeps it (a stored file: `default-src 'none'; sandbox`).
- Private answers (/api/*, except the widget's public ones that set their own): `no-store`, so no
  shared or browser cache keeps conversations or tokens.

`SecurityHeaders` holds them; `hub.web.logs.RequestIds` adds them to every HTTP answer.

The widget is not a hub page: /widget.js runs in the customer's page and draws in a shadow
root there (no iframe of the hub's), so no hub page needs to be framed by another site.
"""

from __future__ import annotations

# Pictures and players load only the hub's own files (and blob: previews of files about to be
# sent): a link that a contact or a platform gave is never fetched by an agent's browser.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
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
# The demo shop embeds the widget as a customer's page would: /widget.js, its requests and
# its socket (all to the hub, which is this page's origin), and the files of the conversation,
# which it shows from blob: URLs. The widget's styles are a constructed stylesheet, which a
# policy without 'unsafe-inline' allows (docs/widget.md).
DEMO_CSP = PAGE_CSP.replace("media-src 'self'", "media-src 'self' blob:")
CSP_BY_PATH = {"/admin": ADMIN_CSP, "/static/admin.html": ADMIN_CSP, "/demo": DEMO_CSP}

HSTS = b"max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """The headers above, for one hub (https or not), added to an HTTP answer's own: `RequestIds`
    adds them in the one wrapper of `send` it makes for every request anyway (a middleware of
    their own, and its wrapper, were 3% of a webhook's CPU)."""

    def __init__(self, *, https: bool = False) -> None:
        self.everywhere = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if https:
            self.everywhere.append((b"strict-transport-security", HSTS))

    def add(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Add to an answer's `headers` those it does not set itself."""
        present = {name.lower(): value for name, value in headers}
        extra = self.everywhere
        if present.get(b"content-type", b"").lower().startswith(b"text/html"):
            policy = CSP_BY_PATH.get(path, PAGE_CSP).encode()
            extra = [*extra, (b"content-security-policy", policy), (b"x-frame-options", b"DENY")]
        if path.startswith("/api/"):
            extra = [*extra, (b"cache-control", b"no-store")]
        headers += [(k, v) for k, v in extra if k not in present]
