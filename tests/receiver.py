"""A receiver on loopback for outbound webhooks: the workspace's own system in tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Receiver:
    """The workspace's own system: records each request, answers the next queued status."""

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    otherwise: int = 200
    location: str | None = None  # sent with a 3xx answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def hook(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.requests.append({"headers": dict(request.headers), "body": body})
        status = self.answers.pop(0) if self.answers else self.otherwise
        moved = {"location": self.location} if self.location and 300 <= status < 400 else None
        return Response(status_code=status, headers=moved)


def free_port() -> int:
    """A loopback port nothing listens on (a receiver that is down, until one starts there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_receiver(port: int = 0, host: str = "127.0.0.1", **tls: Any) -> Iterator[Receiver]:
    """A receiver on loopback (on `port`, if given; on another loopback address, if given);
    `tls` are uvicorn's ssl_* settings."""
    made = Receiver()
    app = Starlette(routes=[Route("/hook", made.hook, methods=["POST"])])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    made.port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **tls))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield made
    server.should_exit = True
    thread.join(5)
