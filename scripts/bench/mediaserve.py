"""A platform's media, served on loopback for the benchmarks (stdlib only, in a thread).

- `GET /graph/<media-id>` answers like the Graph API's media lookup (WhatsApp): the bearer
  token must be the one given; the answer names the download URL, the type and the size.
- `GET /download/<media-id>` is that download (the same bearer token again).
- `GET /cdn/<name>` is an attachment URL as Messenger and Instagram send them (no token).

Every path serves the same photo-like JPEG, made once at start (noise, so it does not
compress to nothing: about 300 KB at 1024x768).
"""

from __future__ import annotations

import io
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def photo(width: int = 1024, height: int = 768, seed: int = 7) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    noise = bytes(rng.getrandbits(8) for _ in range((width // 4) * (height // 4) * 3))
    small = Image.frombytes("RGB", (width // 4, height // 4), noise)
    out = io.BytesIO()
    small.resize((width, height)).save(out, "JPEG", quality=85)
    return out.getvalue()


class MediaServer:
    def __init__(self, token: str) -> None:
        self.token = token
        self.jpeg = photo()
        self.requests = 0
        self.refused = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.requests += 1
                kind, _, name = self.path.lstrip("/").partition("/")
                authorized = self.headers.get("authorization") == f"Bearer {server.token}"
                if kind in ("graph", "download") and not authorized:
                    server.refused += 1
                    return self.answer(401, b'{"error":{"code":190}}', "application/json")
                if kind == "graph":
                    body = {
                        "messaging_product": "whatsapp",
                        "url": f"{server.base}/download/{name}",
                        "mime_type": "image/jpeg",
                        "sha256": "0" * 64,
                        "file_size": len(server.jpeg),
                        "id": name,
                    }
                    return self.answer(200, json.dumps(body).encode(), "application/json")
                if kind in ("download", "cdn"):
                    return self.answer(200, server.jpeg, "image/jpeg")
                return self.answer(404, b"{}", "application/json")

            def answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MediaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
