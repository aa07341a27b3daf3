"""A third-party web site on its own loopback origin, for embedding the widget the way a
customer's site does: one page whose HTML the test chooses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Site:
    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = site.pages.get(self.path.split("?")[0])
                body = (page or "not found").encode()
                self.send_response(200 if page is not None else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, path: str, script: str, head: str = "") -> str:
        """A shop page at `path` whose body ends with `script` (the embed tag); its URL."""
        self.pages[path] = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Shop</title>"
            f"{head}</head><body><h1>A shop</h1><p>Products here.</p>{script}</body></html>"
        )
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def third_party() -> Iterator[Site]:
    site = Site()
    try:
        yield site
    finally:
        site.close()
