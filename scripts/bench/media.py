#!/usr/bin/env python3
"""Media benchmark: agents' uploads per second, and a WhatsApp image's time to its hub URL.

    .venv-bench/bin/python scripts/bench/media.py [--dur 10] [--conns 4] [--images 100 --rate 20]

Sets up a hub as in production (a temporary Postgres database, `hub migrate`, `hub serve` and
`hub worker` with Redis, as `scripts/bench/webhooks.py` does), with the Graph API pointed at a
loopback media server (`mediaserve.py`) that answers WhatsApp's media lookup and download and
checks the channel's token on both. Then:

1. **Uploads**: `--conns` agents post replies with one file each to a web-chat conversation
   (multipart to `POST /api/conversations/{id}/messages`) for `--dur` seconds, one request in
   flight per agent: a 1024x768 photo (about 300 KB: sniffed, re-encoded without metadata,
   thumbnailed, stored), then a small PDF (sniffed and stored). Reports uploads/s, the answer's
   p50/p99, and `hub serve`'s CPU per upload.
2. **WhatsApp image to hub URL**: `--images` signed WhatsApp image webhooks at `--rate` per
   second to /webhooks/meta; an agent socket times `message.created` (the live path) and the
   `message.updated` that gives the attachment its hub URL (the media group's lookup, download,
   cleaning and storing), both from the POST's start.

Prints one JSON line per part and a summary; stops the servers, drops the database and deletes
the Redis keys of its prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchkit import _load_run, pct
from mediaserve import MediaServer

ORIGIN = "https://shop.bench.example"
PHONE_ID = "1099887766554433"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n" + b"0" * 20_000 + b"\ntrailer<<>>\n%%EOF\n"


def whatsapp_image(media_id: str, wamid: str, sender: str) -> bytes:
    """A WhatsApp image message, shaped like tests/fixtures/whatsapp/message_image.json."""
    message = {
        "from": sender,
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": {"mime_type": "image/jpeg", "sha256": "0" * 44, "id": media_id},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Bench"}, "wa_id": sender}],
        "messages": [message],
    }
    change = {"value": value, "field": "messages"}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return json.dumps(body, separators=(",", ":")).encode()


async def webchat_conversation(client: Any, base: str, auth: dict[str, str]) -> str:
    """A web-chat conversation with one visitor message in it, stored."""
    from websockets.asyncio.client import connect

    site = {"kind": "webchat", "name": "Bench site", "allowed_origins": [ORIGIN]}
    channel = (await client.post(f"{base}/api/channels", json=site, headers=auth)).json()
    key = {"channel": channel["public_key"]}
    answer = await client.post(f"{base}/api/widget/token", json=key, headers={"origin": ORIGIN})
    token, conversation_id = answer.json()["token"], answer.json()["conversation_id"]
    ws_url = base.replace("http", "ws", 1) + "/ws/visitor"
    async with connect(ws_url, additional_headers={"origin": ORIGIN}) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token}))
        await ws.send(json.dumps({"type": "message.send", "client_id": "v", "text": "hello"}))
        while json.loads(await ws.recv()).get("type") != "ack":
            pass
    for _ in range(500):
        found = await client.get(f"{base}/api/conversations/{conversation_id}", headers=auth)
        if found.status_code == 200:
            return str(conversation_id)
        await asyncio.sleep(0.02)
    raise RuntimeError("the visitor's conversation was not stored")


async def uploads(
    bench: Any,
    a: argparse.Namespace,
    base: str,
    auth: dict[str, str],
    pid: int,
    photo: bytes | None,
) -> dict[str, Any]:
    import httpx

    what = "photo" if photo else "pdf"
    name, data = ("photo.jpg", photo) if photo else ("r.pdf", PDF)
    async with httpx.AsyncClient(timeout=60) as client:
        conversation = await webchat_conversation(client, base, auth)
        url = f"{base}/api/conversations/{conversation}/messages"
        took: list[float] = []
        statuses: dict[int, int] = {}
        deadline = time.monotonic() + a.dur
        cpu_before = bench.cpu_seconds(pid)
        started = time.monotonic()

        async def agent() -> None:
            while time.monotonic() < deadline:
                form = {"client_id": uuid.uuid4().hex, "text": "here it is"}
                t0 = time.perf_counter()
                answer = await client.post(
                    url, data=form, files=[("attachments", (name, data))], headers=auth
                )
                took.append((time.perf_counter() - t0) * 1000)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        await asyncio.gather(*(agent() for _ in range(a.conns)))
        elapsed = time.monotonic() - started
        cpu = bench.cpu_seconds(pid) - cpu_before
    done = statuses.get(202, 0)
    return {
        "part": f"uploads ({what}, {len(data) // 1024} KB)",
        "date": time.strftime("%Y-%m-%d"),
        "conns": a.conns,
        "uploads": done,
        "failed": sum(statuses.values()) - done,
        "uploads_per_s": round(done / elapsed, 1),
        "p50_ms": pct(took, 0.5),
        "p99_ms": pct(took, 0.99),
        "server_cpu_ms_per_upload": round(cpu * 1000 / done, 2) if done else None,
    }


async def whatsapp_images(
    a: argparse.Namespace, base: str, auth: dict[str, str], secret: bytes, media: MediaServer
) -> dict[str, Any]:
    import httpx
    from websockets.asyncio.client import connect

    posted: dict[str, float] = {}
    finished = asyncio.Event()
    created: dict[str, float] = {}
    ready: dict[str, float] = {}
    other: dict[str, str] = {}
    ws_url = base.replace("http", "ws", 1) + "/ws/agent"
    async with connect(ws_url, max_size=None) as ws, httpx.AsyncClient(timeout=30) as client:
        await ws.send(json.dumps({"type": "hello", "token": auth["authorization"][7:]}))
        while json.loads(await ws.recv()).get("type") != "welcome":
            pass

        async def listen() -> None:
            async for raw in ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                data = frame.get("data") or {}
                if frame.get("name") == "message.created":
                    created.setdefault(data["message"]["platform_message_id"], now)
                elif frame.get("name") == "message.updated":
                    files = (data.get("changes") or {}).get("attachments") or []
                    wamid = data.get("platform_message_id", "")
                    if files and files[0].get("state") == "ready":
                        ready.setdefault(wamid, now)
                    elif files:
                        other[wamid] = str(files[0].get("state"))
                    if len(ready) + len(other) >= a.images:
                        finished.set()

        listener = asyncio.create_task(listen())
        run = secrets.token_hex(3)
        for i in range(a.images):
            wamid = f"wamid.bench{run}{i}"
            body = whatsapp_image(f"{run}{i}", wamid, f"90555{i % 50:07d}")
            signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            posted[wamid] = time.perf_counter()
            answer = await client.post(
                f"{base}/webhooks/meta",
                content=body,
                headers={"content-type": "application/json", "x-hub-signature-256": signature},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"the webhook was refused: {answer.status_code} {answer.text}")
            await asyncio.sleep(1 / a.rate)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), a.drain)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    to_created = [(created[k] - t) * 1000 for k, t in posted.items() if k in created]
    to_ready = [(ready[k] - t) * 1000 for k, t in posted.items() if k in ready]
    return {
        "part": "whatsapp image to hub URL",
        "date": time.strftime("%Y-%m-%d"),
        "images": a.images,
        "rate": a.rate,
        "created": len(to_created),
        "ready": len(to_ready),
        "not_ready": a.images - len(to_ready),
        "states_not_ready": sorted(set(other.values())),
        "created_p50_ms": pct(to_created, 0.5),
        "created_p99_ms": pct(to_created, 0.99),
        "ready_p50_ms": pct(to_ready, 0.5),
        "ready_p99_ms": pct(to_ready, 0.99),
        "ready_max_ms": pct(to_ready, 1.0),
        "media_requests": media.requests,
        "media_refused": media.refused,
    }


async def drive(
    bench: Any, a: argparse.Namespace, env: dict[str, str], port: int, media: MediaServer
) -> list[dict[str, Any]]:
    import httpx

    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer {env['HUB_BENCH_TOKEN']}"}
    async with httpx.AsyncClient(timeout=30) as client:
        whatsapp = {
            "kind": "whatsapp",
            "name": "Bench WhatsApp",
            "account_id": PHONE_ID,
            "access_token": media.token,
        }
        answer = await client.post(f"{base}/api/channels", json=whatsapp, headers=auth)
        if answer.status_code != 201:
            raise RuntimeError(f"POST /api/channels: {answer.status_code} {answer.text}")
    rows = []
    for photo in (media.jpeg, None):
        bench.log(f"media: {'photo' if photo else 'PDF'} uploads, {a.conns} agents, {a.dur:g}s")
        rows.append(await uploads(bench, a, base, auth, int(env["HUB_BENCH_SERVE_PID"]), photo))
        print(json.dumps(rows[-1]), flush=True)
    bench.log(f"media: {a.images} WhatsApp images at {a.rate:g}/s")
    secret = env["HUB_META_APP_SECRET"].encode()
    rows.append(await whatsapp_images(a, base, auth, secret, media))
    print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dur", type=float, default=10, help="seconds of uploads, per file kind")
    ap.add_argument("--conns", type=int, default=4, help="agents uploading at once")
    ap.add_argument("--images", type=int, default=100, help="WhatsApp image webhooks")
    ap.add_argument("--rate", type=float, default=20, help="WhatsApp image webhooks a second")
    ap.add_argument("--drain", type=float, default=60, help="seconds to wait for the last URL")
    ap.add_argument("--hub-venv", default=None, help="run the hub from this virtualenv")
    a = ap.parse_args()
    bench = _load_run()
    hub_venv = Path(a.hub_venv).resolve() if a.hub_venv else bench.VENV
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.bash('ensure_redis; ensure_venv "$1" "" "$2"', str(bench.VENV), str(bench.REQUIREMENTS))
    bench.bash("ensure_postgres")
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="hub-bench-media-") as tmp_name,
        MediaServer(secrets.token_urlsafe(24)) as media,
    ):
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        hub.env["HUB_META_APP_SECRET"] = secrets.token_hex(32)
        hub.env["HUB_GRAPH_URL"] = f"{media.base}/graph"
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            hub.setup()
            port = bench.free_port()
            hub_bin = str(hub_venv / "bin" / "hub")
            argv = [hub_bin, "serve", "--host", "127.0.0.1", "--port", str(port)]
            server = servers.start("hub", argv, env=hub.env, cwd=tmp)
            worker = servers.start("hub-worker", [hub_bin, "worker"], env=hub.env, cwd=tmp)
            bench.wait_until(lambda: bench.healthy(port), "/healthz answering 200", server,
                             servers, "hub")  # fmt: skip
            if worker.poll() is not None:
                raise RuntimeError(f"hub worker exited:\n{servers.output('hub-worker')}")
            env = hub.env | {"HUB_BENCH_SERVE_PID": str(server.pid)}
            rows = asyncio.run(drive(bench, a, env, port, media))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            bench.log(f"failed: {exc}")
            return 1
        finally:
            servers.stop_all()
            hub.cleanup()
            os.chdir(cwd)
    print()
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
