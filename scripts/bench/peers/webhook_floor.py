"""The webhook floor: a bare Starlette endpoint that reads the body, checks its
X-Hub-Signature-256 (HMAC-SHA256 of the raw bytes with the app secret, compared in constant
time) and XADDs the body to one Redis stream. No routing by account, no parsing, no
de-duplication, no middleware, no log line: the least a Python web process can do to take a
signed webhook durably, so the hub's CPU per webhook is read against it (webhook_cost.py).

    HUB_META_APP_SECRET=... uvicorn peers.webhook_floor:app --port PORT --http httptools

Served as `hub serve` serves the hub (uvicorn on uvloop with httptools, no access log).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from peers import REDIS_URL

STREAM = "bench:webhooks"
STREAM_MAXLEN = 10_000
SECRET = os.environ.get("HUB_META_APP_SECRET", "").encode()
_redis = redis.Redis.from_url(REDIS_URL)


async def webhook(request: Request) -> Response:
    body = await request.body()
    given = request.headers.get("x-hub-signature-256", "")
    wanted = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not SECRET or not hmac.compare_digest(given, wanted):
        return JSONResponse({"error": "bad_signature"}, status_code=401)
    await _redis.xadd(STREAM, {"d": body}, maxlen=STREAM_MAXLEN, approximate=True)
    return JSONResponse({"accepted": 1})


async def healthz(request: Request) -> Response:
    return Response("ok")


app = Starlette(
    routes=[Route("/webhooks/meta", webhook, methods=["POST"]), Route("/healthz", healthz)]
)
