"""A Web Push service on loopback, for tests: it keeps what each request carried and answers
each path with the status it was told (201 unless told otherwise). `verified` checks a request
as a push service would (RFC 8292: the VAPID JWT, ES256, signed by the key it names, for this
origin, not expired) and `decrypted` opens its body as the browser would (RFC 8291,
aes128gcm), with the subscriber's own private key and auth secret."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Browser:
    """A subscriber's keys, as a browser makes them."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def keys(self) -> dict[str, str]:
        point = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64encode(point), "auth": b64encode(self.auth)}


@dataclass
class PushService:
    base: str
    received: list[Received]
    statuses: dict[str, int]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@contextmanager
def running_push_service() -> Iterator[PushService]:
    received: list[Received] = []
    statuses: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(statuses.get(self.path, 201))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PushService(f"http://127.0.0.1:{server.server_port}", received, statuses)
    finally:
        server.shutdown()
        server.server_close()


def verified(request: Received, public_key: str, origin: str) -> dict[str, Any]:
    """The JWT's claims, once its signature, key, audience and expiry are checked."""
    scheme, _, params = request.headers["authorization"].partition(" ")
    assert scheme == "vapid", scheme
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"].rstrip("=") == public_key.rstrip("=")
    header, claims, signature = parts["t"].split(".")
    assert json.loads(b64decode(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = b64decode(signature)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64decode(public_key))
    key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    found: dict[str, Any] = json.loads(b64decode(claims))
    assert found["aud"] == origin, found
    assert time.time() < found["exp"] <= time.time() + 24 * 3600
    assert found["sub"].startswith(("mailto:", "https://"))
    return found


def decrypted(request: Received, browser: Browser) -> dict[str, Any]:
    assert request.headers["content-encoding"] == "aes128gcm"
    plain = http_ece.decrypt(
        request.body, private_key=browser.private, auth_secret=browser.auth, version="aes128gcm"
    )
    data: dict[str, Any] = json.loads(plain)
    return data
