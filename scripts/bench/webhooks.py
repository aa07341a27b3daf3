#!/usr/bin/env python3
"""Webhook benchmark: signed Meta (Messenger) webhooks through the hub to agent sockets.

    .venv-bench/bin/python scripts/bench/webhooks.py [--rate 500] [--dur 5] [--subs 1] [--conns 8]
    .venv-bench/bin/python scripts/bench/webhooks.py --rate 100,500,1000,1500 --runs 2
    .venv-bench/bin/python scripts/bench/webhooks.py --rate 500 --durable-ack aof --redis-aof always

Sets up a hub as in production: a temporary Postgres database, `hub migrate`, a workspace with
its admin and an API token (the helpers of `scripts/bench/run`), `hub serve` (one process,
REDIS_URL, a Redis prefix of its own, HUB_META_APP_SECRET set to a generated value) and
`hub worker` (persists every message to Postgres). The admin connects a Messenger channel for a
Page id with POST /api/channels; K agent sockets open on /ws/agent (hello with the API token).

Then a separate poster process POSTs signed Messenger webhooks to /webhooks/meta at R per
second for D seconds (open loop: each POST starts at its scheduled time whatever the others do)
through an httpx HTTP/1.1 keep-alive pool of C connections. Each body is one unique message
(unique mid, one of --senders senders) whose text carries the POST's start time in ms
(wall clock, µs precision) and its scheduled time; latency = agent frame receive time - POST
start time ("p99 from due" counts from the scheduled time, the wait for a free connection too).

Measures: accepted (2xx), rejected, delivered to the agents, latency p50/p99/max POST → agent
frame, HTTP response time p50/p99, and how long after the last POST's response every accepted
message is in Postgres (SELECT count(*) FROM messages, polled every 10-25 ms), and whether that
is within 2 s. Also the CPU time of `hub serve`, `hub worker` and the poster. With
--media-worker the worker is split as operators split it: `hub worker --without media` and a
second `hub worker --groups media` (its CPU reported apart), so photos never delay persistence.

Prints one JSON line per run and a table. Afterwards stops the servers, drops the database and
deletes the Redis keys of its prefix. Several rates (comma-separated) and --runs N reuse the
same deployment, one run after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit import _load_run, durable_args, durable_redis, install_uvloop, pct, run_id, table
from mediaserve import MediaServer

HERE = Path(__file__).resolve().parent
SELF = Path(__file__).resolve()


# --------------------------------------------------------------------------- poster process


def messenger_body(
    page_id: str, sender: str, mid: str, text: str, now_ms: int, image: str | None = None
) -> bytes:
    """A Messenger delivery of one text message, shaped like
    tests/fixtures/messenger/webhook_text_full.json; with `image`, it also carries a photo
    at that URL (as tests/fixtures/messenger/event_image_attachment.json), which the hub fetches."""
    message: dict[str, Any] = {"mid": mid, "text": text}
    if image:
        message["attachments"] = [{"type": "image", "payload": {"url": image}}]
    return json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": now_ms,
                    "messaging": [
                        {
                            "sender": {"id": sender},
                            "recipient": {"id": page_id},
                            "timestamp": now_ms,
                            "message": message,
                        }
                    ],
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


class RawClient:
    """A lean HTTP/1.1 keep-alive connection (stdlib asyncio): ~10x less CPU per POST than
    httpx, so that on a small machine the load generator takes less of the hub's CPU."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


async def post_load(cfg: dict[str, Any]) -> dict[str, Any]:
    """Open loop: a scheduler puts each POST on a queue at its due time; `conns` connection
    workers take them in order, one request in flight per connection (as HTTP/1.1 keep-alive
    does). The text carries the POST's start; the wait on the queue is reported apart."""
    import httpx

    url, secret = cfg["url"], cfg["secret"].encode()
    rate, dur, conns = cfg["rate"], cfg["dur"], cfg["conns"]
    run, page, senders = cfg["run"], cfg["page"], cfg["senders"]
    n = round(rate * dur)
    parts = httpx.URL(url)
    http_ms: list[float] = []
    wait_ms: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    last_start = last_end = 0.0
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    client = httpx.AsyncClient(limits=limits, timeout=30)
    raws = [RawClient(parts.host, parts.port or 80) for _ in range(conns)]

    async def connection(index: int) -> None:
        nonlocal last_end, last_start
        raw = raws[index]
        while (item := await queue.get()) is not None:
            i, due_wall = item
            start_wall = time.time()
            wait_ms.append((start_wall - due_wall) * 1000)
            last_start = max(last_start, start_wall)
            text = f"bench-wh {run} {i} {start_wall * 1000:.3f} {due_wall * 1000:.3f}"
            every = cfg["image_every"]
            image = f"{cfg['media']}/cdn/{run}{i}.jpg" if every and i % every == 0 else None
            body = messenger_body(
                page, f"9{i % senders:015d}", f"m_{run}_{i}", text, int(start_wall * 1000), image
            )
            signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            headers = {"content-type": "application/json", "x-hub-signature-256": signature}
            t0 = time.perf_counter()
            try:
                if cfg["client"] == "raw":
                    key = str(await raw.post(parts.raw_path.decode(), body, headers))
                else:
                    key = str((await client.post(url, content=body, headers=headers)).status_code)
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                key = type(exc).__name__
                raw.writer = None
                if len(errors) < 5:
                    errors.append(repr(exc))
            http_ms.append((time.perf_counter() - t0) * 1000)
            statuses[key] = statuses.get(key, 0) + 1
            last_end = max(last_end, time.time())

    try:
        # Warm the connections: Meta keeps its connections open, so the timed run does too.
        if cfg["client"] == "raw":
            for raw in raws:
                raw.reader, raw.writer = await asyncio.open_connection(raw.host, raw.port)
        else:
            base = url.split("/webhooks", 1)[0]
            await asyncio.gather(*(client.get(f"{base}/healthz") for _ in range(conns)))
        workers = [asyncio.create_task(connection(k)) for k in range(conns)]
        loop = asyncio.get_running_loop()
        t_start, wall_start = loop.time(), time.time()
        behind_ms = 0.0
        for i in range(n):
            offset = i / rate
            delay = t_start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind_ms = max(behind_ms, -delay * 1000)
            queue.put_nowait((i, wall_start + offset))
        send_s = loop.time() - t_start
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
    finally:
        await client.aclose()
        for raw in raws:
            await raw.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    accepted = sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    return {
        "sent": n,
        "accepted": accepted,
        "rejected": n - accepted,
        "statuses": statuses,
        "errors": errors,
        "http_p50_ms": pct(http_ms, 0.50),
        "http_p99_ms": pct(http_ms, 0.99),
        "http_max_ms": pct(http_ms, 1.0),
        "client_wait_p99_ms": pct(wait_ms, 0.99),
        "client_wait_max_ms": pct(wait_ms, 1.0),
        "scheduler_behind_max_ms": round(behind_ms, 2),
        "posted_per_s": round(n / send_s, 1) if send_s else None,
        "first_post_wall": wall_start,
        "last_post_start_wall": last_start,
        "last_post_end_wall": last_end,
        "poster_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def poster_main(raw: str) -> int:
    install_uvloop()
    print(json.dumps(asyncio.run(post_load(json.loads(raw)))), flush=True)
    return 0


# --------------------------------------------------------------------------- agent side


@dataclass
class Collect:
    run: str = ""
    latencies: list[float] = field(default_factory=list)
    scheduled: list[float] = field(default_factory=list)  # from the due time, queue included
    seen: list[set[int]] = field(default_factory=list)
    duplicates: int = 0
    stray: int = 0
    errors: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(len(s) for s in self.seen)


async def open_agent(url: str, token: str) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=30)
    await ws.send(json.dumps({"type": "hello", "token": token}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("type") == "welcome":
            return ws
        if frame.get("type") == "error":
            await ws.close()
            raise RuntimeError(f"the hub refused the agent socket: {frame}")


async def agent_loop(ws: Any, index: int, state: Collect) -> None:
    import websockets

    try:
        async for raw in ws:
            received = time.time() * 1000
            if '"message.created"' not in raw:
                if '"type":"error"' in raw and len(state.errors) < 5:
                    state.errors.append(raw[:300])
                continue
            frame = json.loads(raw)
            text = ((frame.get("data") or {}).get("message") or {}).get("text") or ""
            parts = text.split(" ")
            if len(parts) != 5 or parts[0] != "bench-wh" or parts[1] != state.run:
                state.stray += 1
                continue
            seq = int(parts[2])
            seen = state.seen[index]
            if seq in seen:
                state.duplicates += 1
                continue
            seen.add(seq)
            state.latencies.append(received - float(parts[3]))
            state.scheduled.append(received - float(parts[4]))
    except websockets.ConnectionClosed as exc:
        state.errors.append(f"agent socket {index} closed: {exc}")


# --------------------------------------------------------------------------- orchestration


async def count_messages(conn: Any) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM messages"))


async def one_run(
    bench: Any,
    a: argparse.Namespace,
    rate: float,
    env: dict[str, str],
    port: int,
    state: Collect,
    pg: Any,
    procs: dict[str, int],
) -> dict[str, Any]:
    run = run_id()
    state.run, state.latencies, state.scheduled, state.duplicates, state.stray = run, [], [], 0, 0
    state.seen = [set() for _ in range(a.subs)]
    baseline = await count_messages(pg)
    cfg = {
        "url": f"http://127.0.0.1:{port}/webhooks/meta",
        "secret": env["HUB_META_APP_SECRET"],
        "rate": rate,
        "dur": a.dur,
        "conns": a.conns,
        "run": run,
        "page": a.page_id,
        "senders": a.senders,
        "client": a.client,
        "media": a.media_base,
        "image_every": round(1 / a.images) if a.images else 0,
    }
    cpu_before = {name: bench.cpu_seconds(pid) for name, pid in procs.items()}
    poster = await asyncio.create_subprocess_exec(
        bench.PY,
        str(SELF),
        "--poster",
        json.dumps(cfg),
        stdout=asyncio.subprocess.PIPE,
        env=bench.base_env(),
        start_new_session=True,
    )
    # Persistence timeline, polled all along: (wall time, rows of this run).
    timeline: list[tuple[float, int]] = []
    poster_done = asyncio.Event()

    async def poll() -> None:
        while True:
            count = await count_messages(pg) - baseline
            timeline.append((time.time(), count))
            await asyncio.sleep(0.01 if poster_done.is_set() else 0.025)

    poller = asyncio.create_task(poll())
    try:
        out, _ = await asyncio.wait_for(poster.communicate(), a.dur + 120)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(poster.pid, signal.SIGKILL)
        poller.cancel()
        raise
    poster_done.set()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if poster.returncode != 0 or not lines:
        poller.cancel()
        raise RuntimeError(f"the poster failed (exit {poster.returncode}): {out.decode()[-2000:]}")
    row: dict[str, Any] = json.loads(lines[-1])
    accepted = row["accepted"]
    want = accepted * a.subs
    deadline = time.monotonic() + a.drain
    while time.monotonic() < deadline:
        persisted = timeline[-1][1] if timeline else 0
        if state.total() >= want and persisted >= accepted:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # one more poll
    poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    cpu = {name: bench.cpu_seconds(pid) - cpu_before[name] for name, pid in procs.items()}

    last_end = row["last_post_end_wall"]
    done_at = next((t for t, c in timeline if c >= accepted), None)
    persisted = timeline[-1][1] if timeline else 0
    lag = None if done_at is None else round(max(0.0, done_at - last_end), 3)
    delivered = state.total()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "rate": rate,
        "dur": a.dur,
        "images": a.images,
        "subs": a.subs,
        "conns": a.conns,
        "client": a.client,
        "sent": row["sent"],
        "accepted": accepted,
        "rejected": row["rejected"],
        "delivered": delivered,
        "loss": want - delivered,
        "duplicates": state.duplicates,
        "p50_ms": pct(state.latencies, 0.50),
        "p99_ms": pct(state.latencies, 0.99),
        "max_ms": pct(state.latencies, 1.0),
        "sched_p99_ms": pct(state.scheduled, 0.99),
        "http_p50_ms": row["http_p50_ms"],
        "http_p99_ms": row["http_p99_ms"],
        "http_max_ms": row["http_max_ms"],
        "posted_per_s": row["posted_per_s"],
        "client_wait_p99_ms": row["client_wait_p99_ms"],
        "client_wait_max_ms": row["client_wait_max_ms"],
        "scheduler_behind_max_ms": row["scheduler_behind_max_ms"],
        "persisted": persisted,
        "persist_lag_s": lag,
        "persisted_within_2s": lag is not None and lag <= 2.0,
        "server_cpu_s": round(cpu.get("hub", 0.0), 2),
        "worker_cpu_s": round(cpu.get("worker", 0.0), 2),
        "media_worker_cpu_s": round(cpu["media"], 2) if "media" in cpu else None,
        "poster_cpu_s": row["poster_cpu_s"],
        "server_cpu_us_per_webhook": round(cpu.get("hub", 0.0) * 1e6 / accepted, 1)
        if accepted
        else None,
        "statuses": row["statuses"],
    }
    if row["errors"] or state.errors or state.stray:
        result["errors"] = row["errors"] + state.errors[:5]
        result["stray_frames"] = state.stray
    return result


async def drive(
    bench: Any, a: argparse.Namespace, env: dict[str, str], port: int, procs: dict[str, int]
) -> list[dict[str, Any]]:
    import asyncpg
    import httpx

    token = env["HUB_BENCH_TOKEN"]
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/api/channels",
            headers={"authorization": f"Bearer {token}"},
            json={
                "kind": "messenger",
                "name": "Bench Page",
                "account_id": a.page_id,
                "access_token": "bench-" + secrets.token_hex(16),
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/channels: {response.status_code} {response.text}")
    pg = await asyncpg.connect(env["DATABASE_URL"].replace("+asyncpg", ""))
    state = Collect()
    sockets = [await open_agent(f"ws://127.0.0.1:{port}/ws/agent", token) for _ in range(a.subs)]
    state.seen = [set() for _ in sockets]
    readers = [asyncio.create_task(agent_loop(ws, i, state)) for i, ws in enumerate(sockets)]
    rows: list[dict[str, Any]] = []
    try:
        for rate in a.rates:
            for _ in range(a.runs):
                bench.log(
                    f"webhooks: {rate:g}/s for {a.dur:g}s, {a.subs} agent socket(s), "
                    f"{a.conns} connections, {a.client} client"
                )
                row = await one_run(bench, a, rate, env, port, state, pg, procs)
                print(json.dumps(row), flush=True)
                rows.append(row)
                await asyncio.sleep(a.pause)
    finally:
        for reader in readers:
            reader.cancel()
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        await pg.close()
    return rows


COLUMNS = {
    "rate": "rate/s", "sent": "sent", "accepted": "2xx", "rejected": "rej",
    "delivered": "delivered", "loss": "loss", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
    "max_ms": "max ms", "http_p50_ms": "http p50", "http_p99_ms": "http p99",
    "client_wait_p99_ms": "queue p99", "sched_p99_ms": "p99 from due",
    "persist_lag_s": "persist lag s", "persisted_within_2s": "≤2s",
    "server_cpu_us_per_webhook": "serve CPU us/wh", "server_cpu_s": "serve CPU s",
    "worker_cpu_s": "worker CPU s", "media_worker_cpu_s": "media worker CPU s",
    "poster_cpu_s": "poster CPU s",
}  # fmt: skip


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--poster":
        return poster_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", default="500", help="webhooks/s; several: 100,500,1000")
    ap.add_argument("--dur", type=float, default=5)
    ap.add_argument("--subs", type=int, default=1, help="agent sockets")
    ap.add_argument("--conns", type=int, default=8, help="HTTP/1.1 keep-alive connections")
    ap.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="the poster's HTTP client: httpx.AsyncClient, or a lean stdlib HTTP/1.1 client",
    )
    ap.add_argument("--images", type=float, default=0, help="share of webhooks with a photo")
    ap.add_argument("--senders", type=int, default=100, help="distinct Messenger senders (PSIDs)")
    ap.add_argument("--runs", type=int, default=1, help="runs per rate")
    ap.add_argument("--drain", type=float, default=10, help="seconds to wait for late frames/rows")
    ap.add_argument("--pause", type=float, default=1, help="seconds between runs")
    ap.add_argument("--page-id", default="1895382890692545")
    ap.add_argument("--hub-venv", default=None, help="run the hub from this virtualenv")
    ap.add_argument("--profile", metavar="PATH", help="py-spy record `hub serve` into PATH")
    ap.add_argument("--profile-worker", metavar="PATH", help="py-spy record `hub worker` into PATH")
    ap.add_argument(
        "--media-worker",
        action="store_true",
        help="`hub worker --without media` plus a second `hub worker --groups media`",
    )
    ap.add_argument(
        "--source",
        metavar="DIR",
        help="import the hub (and adapters) from DIR instead of the working tree, e.g. a "
        "snapshot made with `git archive HEAD hub adapters | tar -x -C DIR`",
    )
    durable_args(ap)
    a = ap.parse_args()
    a.rates = [float(r) for r in a.rate.split(",") if r.strip()]
    if a.profile:
        a.profile = str(Path(a.profile).resolve())
    if a.profile_worker:
        a.profile_worker = str(Path(a.profile_worker).resolve())
    bench = _load_run()
    hub_venv = Path(a.hub_venv).resolve() if a.hub_venv else bench.VENV
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.bash('ensure_redis; ensure_venv "$1" "" "$2"', str(bench.VENV), str(bench.REQUIREMENTS))
    bench.bash("ensure_postgres")
    if (a.profile or a.profile_worker) and not (bench.VENV / "bin" / "py-spy").exists():
        subprocess.run([bench.PY, "-m", "pip", "install", "-q", "py-spy"], check=True)

    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="hub-bench-wh-") as tmp_name,
        MediaServer(secrets.token_urlsafe(16)) as media,  # serves the photos' URLs
        durable_redis(a) as redis_env,  # --durable-ack / --redis-aof: a Redis of the run's own
    ):
        a.media_base = media.base
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        hub.env |= redis_env
        hub.env["HUB_META_APP_SECRET"] = secrets.token_hex(32)
        hub.env["HUB_META_VERIFY_TOKEN"] = secrets.token_urlsafe(16)
        hub.env["HUB_MEDIA_ALLOW_PRIVATE"] = "true"  # the photos are served on loopback
        if a.source:
            hub.env["PYTHONPATH"] = str(Path(a.source).resolve())
        cwd = os.getcwd()
        os.chdir(tmp)  # `python -c` puts the cwd first on sys.path: keep the repo's hub out
        profilers: list[tuple[subprocess.Popen[bytes], str]] = []
        try:
            hub.setup()
            port = bench.free_port()
            while 8000 <= port <= 8999:
                port = bench.free_port()
            hub_bin = str(hub_venv / "bin" / "hub")
            argv = [hub_bin, "serve", "--host", "127.0.0.1", "--port", str(port)]
            server = servers.start("hub", argv, env=hub.env, cwd=tmp)
            workers = {"worker": ("hub-worker", ["--without", "media"] if a.media_worker else [])}
            if a.media_worker:
                workers["media"] = ("hub-media-worker", ["--groups", "media"])
            started = {key: servers.start(name, [hub_bin, "worker", *args], env=hub.env, cwd=tmp)
                       for key, (name, args) in workers.items()}  # fmt: skip
            worker = started["worker"]
            bench.wait_until(lambda: bench.healthy(port), "/healthz answering 200", server,
                             servers, "hub")  # fmt: skip
            for key, proc in started.items():
                if proc.poll() is not None:
                    name = workers[key][0]
                    raise RuntimeError(f"{name} exited:\n{servers.output(name)}")
            for path, proc in ((a.profile, server), (a.profile_worker, worker)):
                if path:
                    profilers.append((bench.start_profiler(path, proc.pid), path))
            install_uvloop()
            procs = {"hub": server.pid} | {key: p.pid for key, p in started.items()}
            rows = asyncio.run(drive(bench, a, hub.env, port, procs))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            bench.log(f"failed: {exc}")
            return 1
        finally:
            for profiler, path in profilers:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(60)
                bench.log(f"py-spy profile written to {path}")
            servers.stop_all()
            hub.cleanup()
            os.chdir(cwd)
    if rows:
        print("\n" + table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
