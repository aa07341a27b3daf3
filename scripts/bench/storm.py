#!/usr/bin/env python3
"""Reconnect storm: every web-chat visitor drops at once while replies keep flowing; all resume.

    .venv-bench/bin/python scripts/bench/storm.py                   # 5000 visitors, 200 replies/s
    .venv-bench/bin/python scripts/bench/storm.py --visitors 300 --warmup 5 --procs 1

Issue 8: "5,000 visitors drop at once while messages keep flowing and all resume: every one is
caught up within 10 s, with zero loss and zero duplicates."

Deployment (the helpers of `scripts/bench/run`, as soak.py): a temporary Postgres database,
`hub migrate`, a workspace with its admin, API token and web-chat channel (allowed origin set
with PATCH /api/channels/{id}), one `hub serve` and one `hub worker` on Redis with a prefix of
their own, all from `.venv-bench` (uvloop).

Visitors: --visitors tokens are signed here with the hub's own `hub.accounts.auth.Signer` (the
server's HUB_SECRET_KEY; what POST /api/widget/token would answer, without 5,000 HTTP round
trips), one anonymous visitor (so one conversation) each. They are spread over --procs client
processes
(`websockets` asyncio client, compression off, uvloop), each visitor on its own /ws/visitor
socket. Each says hello and sends one message (so its conversation exists), then only listens.

Traffic: from then on an agent replies into the visitors' conversations at --rate per second,
round robin over the visitors, with `POST /api/conversations/{id}/messages` (the API token; a
lean keep-alive HTTP client over --conns connections, open loop). A reply counts as sent when
its 202 arrives ("acked", at time A). Replies go on during the whole run.

The storm: after --warmup seconds (default 30: every visitor has had a reply, so its cursor is
the id of that reply's event) every client process aborts all its sockets at once (SO_LINGER 0
and `transport.abort()`: a TCP reset, no close handshake; time D). Each visitor reconnects at
once and says hello with `resume_from` = the id of the last event it received (retrying after
0.2-0.7 s if the connection fails). W = when its resumed `welcome` arrives.

Caught up: a visitor is caught up at C = max(W, latest first-arrival of every reply to its
conversation acked before W), i.e. once it is back and has every reply that was acknowledged
before the hub welcomed it back, whether it came before the drop, in the replay or live.
**Catch-up time = C - D**, reported as p50/p99/max over the visitors and as the number caught up
within 10 s. The run ends when every visitor is back (welcomed) or --timeout s after the drop:
2 s later the replies stop (those still waiting for a connection 10 s after that are not sent:
"unsent"), and after --drain s more the sockets close.

**Lost**: replies acked during the run (before the replies stopped) that their visitor never
received. **Duplicates**: reply frames a visitor received more than once (by text). Also
counted: resumes refused with `cursor_too_old` (the visitor reloads over REST: counted as not
caught up) and failed connection attempts. CPU seconds of `hub serve`, `hub worker`, Redis is
not counted; the clients' CPU from the drop to the end tells whether they kept up.

Prints progress every 2 s, one JSON line, then a markdown table. Exits 1 if a reply was lost or
duplicated or not every visitor was caught up within 10 s. Afterwards it stops the processes,
drops the database and deletes its Redis keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchkit import _load_run, install_uvloop, pct  # noqa: E402
from webhooks import RawClient  # noqa: E402

ORIGIN = "https://storm.example"
TARGET_S = 10.0


def redis_cpu_s(url: str) -> float:
    """Redis's own CPU time so far (user + sys; the server is shared with anything else)."""
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- client process


class Visitor:
    __slots__ = (
        "cursor", "dropped", "error", "expect_drop", "index", "seen", "token", "tries",
        "welcomed", "ws",
    )  # fmt: skip

    def __init__(self, index: int, token: str) -> None:
        self.index, self.token = index, token
        self.ws: Any = None
        self.cursor: str | None = None
        self.seen: dict[int, list[float]] = {}  # reply seq -> [times received, first arrival]
        self.dropped: float | None = None
        self.welcomed: float | None = None  # the resumed welcome, after the drop
        self.tries = 0
        self.error: str | None = None
        self.expect_drop = False


async def visitor_life(v: Visitor, url: str, first: asyncio.Semaphore, up: asyncio.Event) -> None:
    """Connects (resuming after the first time), reads until the socket drops, reconnects."""
    from websockets.asyncio.client import connect

    while True:
        resuming = v.cursor is not None
        try:
            async with first if not resuming else contextlib.nullcontext():
                ws = await connect(
                    url,
                    origin=ORIGIN,  # type: ignore[arg-type]
                    compression=None,
                    ping_interval=None,
                    open_timeout=60,
                    close_timeout=1,
                )
            v.ws = ws
            hello: dict[str, Any] = {"type": "hello", "token": v.token}
            if resuming:
                hello["resume_from"] = v.cursor
            await ws.send(json.dumps(hello))
            if not resuming:
                await ws.send(json.dumps({"type": "message.send", "client_id": "hi", "text": "hi"}))
            async for raw in ws:
                receive(v, raw, up)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if v.cursor is None:  # never welcomed: this visitor failed to start
                v.error = f"{type(exc).__name__}: {exc}"[:200]
                return
            if v.error == "cursor_too_old":
                return
            if v.expect_drop:  # our own abort: reconnect at once
                v.expect_drop = False
                continue
            if v.dropped is not None and v.welcomed is None:
                v.tries += 1
            await asyncio.sleep(0.2 + random.random() / 2)


def receive(v: Visitor, raw: str | bytes, up: asyncio.Event) -> None:
    frame = json.loads(raw)
    kind = frame.get("type")
    if kind == "event":
        v.cursor = frame["id"]
        if frame.get("name") == "message.created":
            text = frame["data"]["message"].get("text") or ""
            if text.startswith("storm "):
                seq = int(text.split(" ", 2)[1])
                seen = v.seen.get(seq)
                if seen is None:
                    v.seen[seq] = [1, time.monotonic()]
                else:
                    seen[0] += 1
    elif kind == "welcome":
        if v.dropped is not None and v.welcomed is None:
            v.welcomed = time.monotonic()
        elif v.cursor is None:
            v.cursor = frame["cursor"]
    elif kind == "ack":
        up.set()
    elif kind == "error":
        if frame.get("code") == "cursor_too_old":
            v.error = "cursor_too_old"
        elif v.error is None:
            v.error = f"error {frame.get('code')}"


def abort(v: Visitor) -> None:
    ws, v.ws = v.ws, None
    v.dropped = time.monotonic()
    if ws is None:
        return
    v.expect_drop = True
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:  # a reset, not a FIN: like a dropped network
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def client_main(cfg: dict[str, Any]) -> None:
    """One client process: its share of visitors; commands on stdin, reports on stdout."""
    visitors = [Visitor(i, t) for i, t in cfg["tokens"]]
    first = asyncio.Semaphore(cfg["concurrency"])
    ups = {v.index: asyncio.Event() for v in visitors}
    tasks = [
        asyncio.create_task(visitor_life(v, cfg["url"], first, ups[v.index])) for v in visitors
    ]
    while True:  # ready when every visitor's first message is acked
        up = sum(e.is_set() for e in ups.values())
        failed = sum(1 for v in visitors if v.error)
        emit({"up": up, "failed": failed})
        if up + failed >= len(visitors):
            break
        await asyncio.sleep(1)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "drop":
            break
    cpu0 = cpu_self()
    for v in visitors:
        abort(v)
    emit({"dropped": time.monotonic()})
    stop = loop.run_in_executor(None, sys.stdin.readline)
    while not stop.done():
        back = sum(1 for v in visitors if v.welcomed is not None)
        emit({"back": back, "tries": sum(v.tries for v in visitors)})
        await asyncio.wait({stop}, timeout=1)
    cpu = cpu_self() - cpu0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    emit(
        {
            "result": [
                [v.index, v.dropped, v.welcomed, v.tries, v.error, v.seen] for v in visitors
            ],
            "cpu_s": round(cpu, 2),
        }
    )


# --------------------------------------------------------------------------- orchestrator


class Client:
    """A client process and what it last reported."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.last: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            report = json.loads(line)
            if "result" in report:
                self.result = report
            else:
                self.last |= report

    async def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    @classmethod
    async def start(cls, script: str, flag: str, cfg: dict[str, Any]) -> Client:
        """`script flag` as a client process, handed its configuration as one JSON line."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            flag,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**30,
        )
        client = cls(proc)
        await client.say(json.dumps(cfg))
        return client


class Replies:
    """Agent replies at `rate`/s, round robin over the conversations, open loop."""

    def __init__(self, port: int, token: str, conversations: list[str], conns: int) -> None:
        self.port, self.conversations = port, conversations
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        self.pool: asyncio.Queue[RawClient] = asyncio.Queue()
        for _ in range(conns):
            self.pool.put_nowait(RawClient("127.0.0.1", port))
        self.acked: dict[int, float] = {}  # seq -> ack time
        self.failed = 0
        self.unsent = 0  # still waiting for a connection when the replies stopped
        self.sent = 0
        self.stop = asyncio.Event()
        self.errors: list[str] = []

    async def one(self, seq: int) -> None:
        visitor = seq % len(self.conversations)
        body = json.dumps({"client_id": f"r{seq}", "text": f"storm {seq} {visitor}"}).encode()
        path = f"/api/conversations/{self.conversations[visitor]}/messages"
        client = await self.pool.get()
        try:
            status = await client.post(path, body, self.headers)
        except Exception as exc:  # a reset or a closed connection: reconnects on next use
            status = 0
            if len(self.errors) < 5:
                self.errors.append(f"reply {seq}: {exc!r}")
            await client.close()
        finally:
            self.pool.put_nowait(client)
        if status == 202:
            self.acked[seq] = time.monotonic()
        else:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(f"reply {seq}: HTTP {status}")

    async def run(self, rate: float) -> None:
        pending: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        while not self.stop.is_set():
            task = asyncio.create_task(self.one(self.sent))
            self.sent += 1
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(max(0.0, started + self.sent / rate - time.monotonic()))
        if pending:  # those under way may finish; those still waiting for a connection never go
            _, late = await asyncio.wait(pending, timeout=10)
            for task in late:
                task.cancel()
            self.unsent = len(late)
            await asyncio.gather(*late, return_exceptions=True)
        while not self.pool.empty():
            await self.pool.get_nowait().close()


def analyse(
    replies: Replies, visitors: dict[int, list[Any]], n: int, drop: float
) -> dict[str, Any]:
    by_visitor: dict[int, list[tuple[int, float]]] = {}
    for seq, at in replies.acked.items():
        by_visitor.setdefault(seq % n, []).append((seq, at))
    catch_up: list[float] = []
    back: list[float] = []
    lost = duplicates = not_back = too_old = 0
    examples: list[str] = []
    for index in range(n):
        _, _dropped, welcomed, _tries, error, seen = visitors[index]
        seen = {int(k): val for k, val in seen.items()}
        acked = by_visitor.get(index, [])
        missing = [s for s, _ in acked if s not in seen]
        lost += len(missing)
        duplicates += sum(c - 1 for c, _ in seen.values() if c > 1)
        if missing and len(examples) < 5:
            examples.append(f"visitor {index} never got replies {missing[:3]}")
        if error == "cursor_too_old":
            too_old += 1
        if welcomed is None:
            not_back += 1
            continue
        back.append(welcomed - drop)
        needed = [seen[s][1] if s in seen else None for s, at in acked if at < welcomed]
        if None in needed:
            continue  # never caught up
        catch_up.append(max([welcomed, *needed]) - drop)  # type: ignore[list-item]
    within = sum(1 for c in catch_up if c <= TARGET_S)
    return {
        "welcome_p50_s": pct(back, 0.5),
        "welcome_p99_s": pct(back, 0.99),
        "caught_up": len(catch_up),
        "within_10s": within,
        "p50_s": pct(catch_up, 0.5),
        "p99_s": pct(catch_up, 0.99),
        "max_s": round(max(catch_up), 2) if catch_up else None,
        "not_back": not_back,
        "cursor_too_old": too_old,
        "lost": lost,
        "duplicates": duplicates,
        "examples": examples,
    }


async def storm(
    a: argparse.Namespace, bench: Any, env: dict[str, str], port: int, pids: dict[str, int]
) -> dict[str, Any]:
    import httpx

    from hub.accounts.auth import Signer, VisitorClaims
    from hub.realtime.ingress import Ingress
    from hub.settings import Settings

    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer {env['HUB_BENCH_TOKEN']}"}
    async with httpx.AsyncClient(timeout=30, headers=auth) as http:
        site = f"{base}/api/channels/{env['HUB_BENCH_CHANNEL']}"
        patched = await http.patch(site, json={"allowed_origins": [ORIGIN]})
        assert patched.status_code == 200, patched.text

    t0 = time.monotonic()
    signer = Signer(Settings.from_env(env))
    workspace, channel = uuid.UUID(env["HUB_BENCH_WORKSPACE"]), uuid.UUID(env["HUB_BENCH_CHANNEL"])
    claims = [VisitorClaims(workspace, channel, secrets.token_hex(16)) for _ in range(a.visitors)]
    tokens = [signer.visitor_token(c) for c in claims]
    conversations = [str(Ingress.visitor_conversation(c).id) for c in claims]
    bench.log(f"signed {a.visitors} visitor tokens in {time.monotonic() - t0:.2f}s")

    clients: list[Client] = []
    for p in range(a.procs):
        share = [[i, tokens[i]] for i in range(p, a.visitors, a.procs)]
        cfg = {"url": f"ws://127.0.0.1:{port}/ws/visitor", "tokens": share, "concurrency": 50}
        clients.append(await Client.start(__file__, "--client", cfg))
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(2)
        up = sum(c.last.get("up", 0) for c in clients)
        failed = sum(c.last.get("failed", 0) for c in clients)
        bench.log(f"connecting: {up}/{a.visitors} visitors up and acked, {failed} failed")
        if up + failed >= a.visitors:
            break
        if any(c.proc.returncode is not None for c in clients):
            raise RuntimeError("a client process exited early")
    bench.log(f"{up} visitors connected in {time.monotonic() - t0:.1f}s")
    if failed:
        raise RuntimeError(f"{failed} visitors could not connect")

    replies = Replies(port, env["HUB_BENCH_TOKEN"], conversations, a.conns)
    sender = asyncio.create_task(replies.run(a.rate))
    end_warmup = time.monotonic() + a.warmup
    while (left := end_warmup - time.monotonic()) > 0:
        await asyncio.sleep(min(2.0, left))
        bench.log(
            f"warm-up: {len(replies.acked)} replies acked of {replies.sent} sent, "
            f"{replies.failed} failed"
        )
    cpu0 = {name: bench.cpu_seconds(pid) for name, pid in pids.items()}
    redis0 = redis_cpu_s(env["REDIS_URL"])
    drop = time.monotonic()
    await asyncio.gather(*(c.say("drop") for c in clients))
    bench.log(f"DROP: all {a.visitors} visitor sockets aborted; they resume")
    deadline = drop + a.timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        back = sum(c.last.get("back", 0) for c in clients)
        tries = sum(c.last.get("tries", 0) for c in clients)
        bench.log(
            f"+{time.monotonic() - drop:.0f}s: {back}/{a.visitors} resumed (welcomed), "
            f"{tries} failed attempts, {len(replies.acked)} replies acked of {replies.sent}"
        )
        if back >= a.visitors:
            break
    await asyncio.sleep(2)  # replies acked just before the last welcome: let them arrive
    replies.stop.set()
    await sender
    bench.log(f"replies stopped; waiting {a.drain:g}s for stragglers")
    await asyncio.sleep(a.drain)
    cpu = {name: bench.cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    cpu["redis"] = redis_cpu_s(env["REDIS_URL"]) - redis0
    await asyncio.gather(*(c.say("stop") for c in clients))
    for c in clients:
        await c.reader
        await c.proc.wait()
    visitors: dict[int, list[Any]] = {}
    for c in clients:
        if c.result is None:
            raise RuntimeError("a client process gave no result")
        for row in c.result["result"]:
            visitors[row[0]] = row
    row: dict[str, Any] = {
        "visitors": a.visitors,
        "procs": a.procs,
        "rate": a.rate,
        "replies_acked": len(replies.acked),
        "replies_failed": replies.failed,
        "replies_unsent": replies.unsent,
    }
    row |= analyse(replies, visitors, a.visitors, drop)
    row["failed_attempts"] = sum(v[3] for v in visitors.values())
    row |= {f"{name}_cpu_s": round(s, 2) for name, s in cpu.items()}
    row["clients_cpu_s"] = round(sum(c.result["cpu_s"] for c in clients if c.result), 2)
    row["load_avg"] = os.getloadavg()[0]
    row["errors"] = replies.errors[:3]
    return row


COLUMNS = {
    "visitors": "visitors", "procs": "client procs", "rate": "replies/s",
    "replies_acked": "replies acked", "welcome_p50_s": "welcome p50 s",
    "welcome_p99_s": "welcome p99 s", "p50_s": "catch-up p50 s", "p99_s": "p99 s",
    "max_s": "max s", "within_10s": "≤10 s", "not_back": "not back",
    "cursor_too_old": "cursor_too_old", "lost": "lost", "duplicates": "dups",
    "failed_attempts": "failed connects", "serve_cpu_s": "serve CPU s",
    "worker_cpu_s": "worker CPU s", "redis_cpu_s": "Redis CPU s",
    "clients_cpu_s": "clients CPU s", "load_avg": "load",
}  # fmt: skip


def markdown(rows: list[dict[str, Any]], columns: dict[str, str]) -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] == "--client":
        install_uvloop()
        asyncio.run(client_main(json.loads(sys.stdin.readline())))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visitors", type=int, default=5000)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--rate", type=float, default=200, help="agent replies per second")
    ap.add_argument("--conns", type=int, default=8, help="HTTP connections for the replies")
    ap.add_argument("--warmup", type=float, default=30, help="seconds of replies before the drop")
    ap.add_argument("--timeout", type=float, default=60, help="seconds after the drop at most")
    ap.add_argument("--drain", type=float, default=5)
    ap.add_argument(
        "--source",
        metavar="DIR",
        help="import the hub from DIR instead of the working tree (as webhooks.py), e.g. "
        "`git archive HEAD hub adapters | tar -x -C DIR`",
    )
    ap.add_argument("--logs", metavar="DIR", help="keep the hub's logs (serve.log, worker.log)")
    a = ap.parse_args()
    bench = _load_run()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.ensure_bench_venv()
    bench.bash("ensure_postgres")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hub-storm-") as tmp_name:
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        if a.source:
            hub.env["PYTHONPATH"] = str(Path(a.source).resolve())
            sys.path.insert(0, hub.env["PYTHONPATH"])
        cwd = os.getcwd()
        os.chdir(tmp)  # `python -c` puts the cwd first on sys.path: keep the repo's hub out
        try:
            hub.setup()
            hub_bin = str(bench.VENV / "bin" / "hub")
            port = bench.free_port()
            argv = [hub_bin, "serve", "--host", "127.0.0.1", "--port", str(port)]
            server = servers.start("serve", argv, env=hub.env, cwd=tmp)
            bench.wait_until(lambda: bench.healthy(port), "/healthz", server, servers, "serve")
            worker = servers.start("worker", [hub_bin, "worker"], env=hub.env, cwd=tmp)
            pids = {"serve": server.pid, "worker": worker.pid}
            install_uvloop()
            bench.log(
                f"storm: {a.visitors} visitors in {a.procs} client processes, {a.rate:g} "
                f"replies/s, drop after {a.warmup:g}s; one hub serve + hub worker"
            )
            row = asyncio.run(storm(a, bench, hub.env, port, pids))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            bench.log(f"failed: {exc}")
            return 1
        finally:
            servers.stop_all()
            if a.logs:
                Path(a.logs).mkdir(parents=True, exist_ok=True)
                for log in tmp.glob("*.log"):
                    shutil.copy(log, Path(a.logs) / log.name)
            hub.cleanup()
            os.chdir(cwd)
    row["total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(row), flush=True)
    for line in row["examples"] + row["errors"]:
        bench.log(line)
    print("\n" + markdown([row], COLUMNS))
    ok = not row["lost"] and not row["duplicates"] and row["within_10s"] == a.visitors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
