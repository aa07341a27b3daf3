#!/usr/bin/env python3
"""Soak: mixed traffic through a two-node hub for a set time; loss, duplicates, latency, memory.

    .venv-bench/bin/python scripts/bench/soak.py                 # 10 minutes
    .venv-bench/bin/python scripts/bench/soak.py --minutes 1 --webhooks 30 --visitors 10

The deployment is the production shape on loopback (the helpers of `scripts/bench/run`): a
temporary Postgres database, two `hub serve` nodes and one `hub worker` on Redis with a prefix
of their own. The workspace has a Messenger channel and a web-chat channel.

Traffic, all at once for --minutes:
- signed Messenger webhooks at --webhooks per second, to the two nodes in turn;
- --visitors web-chat visitors on sockets spread over the nodes, each sending a message every
  --visitor-every seconds and waiting for its ack (resending with the same client id if the
  socket drops first);
- --agents agent sockets spread over the nodes, each recording every message it is shown;
- every --reconnect-every seconds one socket, agent or visitor, is dropped and reopened on the
  other node, resuming from its last event id.

Every message carries its send time; an agent frame's latency is its arrival minus that time.
At the end (after --drain seconds for stragglers) each agent socket must have seen every
accepted message exactly once, and Postgres must hold each exactly once. Memory is the
resident set size of each hub process, sampled every 10 s: its growth from the end of the
first minute (warm-up) to the end, and the slope of a least-squares line through the samples.

Prints progress every 30 s, then one JSON line and a table. Exits 1 if anything was lost or
duplicated. Afterwards it stops the processes, drops the database and deletes its Redis keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchkit import _load_run, install_uvloop, pct  # noqa: E402
from webhooks import messenger_body  # noqa: E402

ORIGIN = "https://soak.example"
PAGE_ID = "1895382890692546"


@dataclass
class Tally:
    sent_at: dict[str, float] = field(default_factory=dict)  # text -> send time, once accepted
    latencies: list[float] = field(default_factory=list)
    rejected: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(problem[:300])


@dataclass
class Agent:
    index: int
    seen: dict[str, int] = field(default_factory=dict)  # text -> times shown
    cursor: str | None = None


def now_ms() -> float:
    return time.time() * 1000


def soak_text(kind: str, n: int) -> str:
    return f"soak {kind} {n} {now_ms():.3f}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope(points: list[tuple[float, float]]) -> float:
    """MB per minute of a least-squares line through (seconds, MB)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points) or 1.0
    return sum((x - mx) * (y - my) for x, y in points) / var * 60


async def agent_socket(
    url: str, token: str, agent: Agent, tally: Tally, stop: asyncio.Event
) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, max_size=None, open_timeout=30) as ws:
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if agent.cursor:
            hello["resume_from"] = agent.cursor
        await ws.send(json.dumps(hello))
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "error":
                tally.note(f"agent {agent.index}: {raw}")
                continue
            if frame.get("type") != "event":
                continue
            agent.cursor = frame["id"]
            if frame.get("name") != "message.created":
                continue
            text = (frame["data"].get("message") or {}).get("text") or ""
            if not text.startswith("soak "):
                continue
            agent.seen[text] = agent.seen.get(text, 0) + 1
            if agent.seen[text] == 1 and agent.index == 0:
                tally.latencies.append(now_ms() - float(text.rsplit(" ", 1)[1]))


async def run_agent(
    urls: list[str],
    token: str,
    agent: Agent,
    tally: Tally,
    stop: asyncio.Event,
    drop: asyncio.Event,
) -> None:
    node = agent.index % len(urls)
    while not stop.is_set():
        task = asyncio.create_task(
            agent_socket(
                urls[node].replace("http", "ws", 1) + "/ws/agent", token, agent, tally, stop
            )
        )
        dropped = asyncio.create_task(drop.wait())
        done, _ = await asyncio.wait({task, dropped}, return_when=asyncio.FIRST_COMPLETED)
        if dropped in done:
            drop.clear()
            task.cancel()
            tally.reconnects += 1
            node = (node + 1) % len(urls)
        else:
            dropped.cancel()
            if task.exception() is not None:
                tally.note(f"agent {agent.index}: {task.exception()!r}")
            if not stop.is_set():
                await asyncio.sleep(0.5)
        with contextlib.suppress(BaseException):
            await task


async def run_visitor(
    index: int,
    base: list[str],
    public_key: str,
    every_s: float,
    tally: Tally,
    stop: asyncio.Event,
    drop: asyncio.Event,
) -> None:
    import httpx
    from websockets.asyncio.client import connect

    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            base[index % 2] + "/api/widget/token",
            json={"channel": public_key},
            headers={"origin": ORIGIN},
        )
        token = answer.json()["token"]
    node, n, cursor = index % len(base), 0, None
    unacked: tuple[str, str] | None = None  # (client id, text) sent and not yet acked
    await asyncio.sleep(random.random() * every_s)
    while not stop.is_set():
        url = base[node].replace("http", "ws", 1) + "/ws/visitor"
        try:
            async with connect(url, origin=ORIGIN, compression=None, open_timeout=30) as ws:  # type: ignore[arg-type]
                hello: dict[str, Any] = {"type": "hello", "token": token}
                if cursor:
                    hello["resume_from"] = cursor
                await ws.send(json.dumps(hello))
                while not stop.is_set():
                    if unacked is None:
                        n += 1
                        unacked = (f"v{index}-{n}", soak_text(f"v{index}", n))
                    client_id, text = unacked
                    await ws.send(
                        json.dumps({"type": "message.send", "client_id": client_id, "text": text})
                    )
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if frame.get("type") == "event":
                            cursor = frame["id"]
                        if frame.get("type") == "ack" and frame["client_id"] == client_id:
                            tally.sent_at[text] = float(text.rsplit(" ", 1)[1])
                            unacked = None
                            break
                        if frame.get("type") == "error":
                            tally.note(f"visitor {index}: {frame}")
                            if frame.get("code") == "rate_limited":
                                break
                    try:
                        await asyncio.wait_for(drop.wait(), every_s)
                        drop.clear()
                        tally.reconnects += 1
                        node = (node + 1) % len(base)
                        break
                    except TimeoutError:
                        pass
        except Exception as exc:  # a dropped node or socket: reconnect and resume
            tally.note(f"visitor {index}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.5)


async def post_webhooks(
    base: list[str], rate: float, secret: str, tally: Tally, stop: asyncio.Event
) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=8)) as client:
        n, started = 0, time.monotonic()
        pending: set[asyncio.Task[None]] = set()

        async def one(seq: int) -> None:
            text = soak_text("wh", seq)
            body = messenger_body(PAGE_ID, f"psid-{seq % 50}", f"m_soak_{seq}", text, int(now_ms()))
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "content-type": "application/json",
                "x-hub-signature-256": f"sha256={signature}",
            }
            for _ in range(5):  # a node's error is retried, as Meta does
                try:
                    answer = await client.post(
                        base[seq % 2] + "/webhooks/meta", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    tally.note(f"webhook {seq}: {exc}")
                    await asyncio.sleep(0.2)
                    continue
                if answer.status_code == 200:
                    tally.sent_at[text] = float(text.rsplit(" ", 1)[1])
                    return
                tally.note(f"webhook {seq}: {answer.status_code} {answer.text[:100]}")
                await asyncio.sleep(0.2)
            tally.rejected += 1

        while not stop.is_set():
            n += 1
            task = asyncio.create_task(one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        if pending:
            await asyncio.wait(pending)


async def soak(
    a: argparse.Namespace, bench: Any, env: dict[str, str], ports: list[int], pids: dict[str, int]
) -> dict[str, Any]:
    import asyncpg
    import httpx

    base = [f"http://127.0.0.1:{p}" for p in ports]
    token = env["HUB_BENCH_TOKEN"]
    auth = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30, headers=auth) as client:
        page = {
            "kind": "messenger",
            "name": "Soak Page",
            "account_id": PAGE_ID,
            "access_token": "soak-" + secrets.token_hex(16),
        }
        assert (await client.post(base[0] + "/api/channels", json=page)).status_code == 201
        site = f"{base[0]}/api/channels/{env['HUB_BENCH_CHANNEL']}"
        patched = await client.patch(site, json={"allowed_origins": [ORIGIN]})
        assert patched.status_code == 200, patched.text
        public_key = patched.json()["public_key"]

    tally, stop = Tally(), asyncio.Event()
    agents = [Agent(i) for i in range(a.agents)]
    drops = [asyncio.Event() for _ in range(a.agents + a.visitors)]
    tasks = [
        asyncio.create_task(run_agent(base, token, ag, tally, stop, drops[ag.index]))
        for ag in agents
    ]
    await asyncio.sleep(1)
    tasks += [
        asyncio.create_task(
            run_visitor(i, base, public_key, a.visitor_every, tally, stop, drops[a.agents + i])
        )
        for i in range(a.visitors)
    ]
    poster = asyncio.create_task(
        post_webhooks(base, a.webhooks, env["HUB_META_APP_SECRET"], tally, stop)
    )
    memory: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
    started = time.monotonic()
    end = started + a.minutes * 60
    next_drop, next_report = started + a.reconnect_every, started + 30
    while time.monotonic() < end:
        await asyncio.sleep(min(10.0, max(0.0, end - time.monotonic())))
        t = time.monotonic() - started
        for name, pid in pids.items():
            memory[name].append((t, rss_mb(pid)))
        if time.monotonic() >= next_drop:
            random.choice(drops).set()
            next_drop += a.reconnect_every
        if time.monotonic() >= next_report:
            next_report += 30
            rss = ", ".join(f"{n} {m[-1][1]:.0f} MB" for n, m in memory.items())
            bench.log(
                f"soak {t / 60:.1f}/{a.minutes:g} min: {len(tally.sent_at)} accepted, "
                f"{tally.reconnects} reconnects, p99 {pct(tally.latencies, 0.99)} ms; {rss}"
            )
    stop.set()
    await poster  # the webhooks under way are answered (or time out) first
    bench.log(f"traffic stopped; waiting {a.drain:g} s for stragglers")
    await asyncio.sleep(a.drain)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    expected = set(tally.sent_at)
    missing = [sorted(expected - set(ag.seen)) for ag in agents]
    lost = max(len(m) for m in missing)
    never_seen = {ag.index: m[:3] for ag, m in zip(agents, missing, strict=True) if m}
    duplicates = sum(c - 1 for ag in agents for c in ag.seen.values() if c > 1)
    pg = await asyncpg.connect(env["DATABASE_URL"].replace("+asyncpg", ""))
    try:
        rows = await pg.fetch(
            "SELECT text, count(*) AS n FROM messages WHERE text LIKE 'soak %' GROUP BY text"
        )
    finally:
        await pg.close()
    stored = {r["text"]: r["n"] for r in rows}
    warm = [
        (name, [(t, m) for t, m in points if t >= min(60.0, a.minutes * 60 / 2)])
        for name, points in memory.items()
    ]
    result: dict[str, Any] = {
        "minutes": a.minutes,
        "accepted": len(expected),
        "rejected": tally.rejected,
        "reconnects": tally.reconnects,
        "lost": lost,
        "duplicates": duplicates,
        "not_stored": len(expected - set(stored)),
        "stored_twice": sum(1 for n in stored.values() if n > 1),
        "p50_ms": pct(tally.latencies, 0.5),
        "p99_ms": pct(tally.latencies, 0.99),
        "max_ms": round(max(tally.latencies), 1) if tally.latencies else None,
    }
    for name, points in warm:
        if points:
            result[f"{name}_rss_mb"] = f"{points[0][1]:.1f} -> {points[-1][1]:.1f}"
            result[f"{name}_mb_per_min"] = round(slope(points), 3)
    result["never_seen"] = never_seen  # a few of what each agent socket missed
    result["errors"] = tally.errors[:5]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--webhooks", type=float, default=50, help="Messenger webhooks per second")
    ap.add_argument("--visitors", type=int, default=20)
    ap.add_argument(
        "--visitor-every", type=float, default=2.0, help="seconds between a visitor's messages"
    )
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--reconnect-every", type=float, default=20.0)
    ap.add_argument("--drain", type=float, default=10.0)
    a = ap.parse_args()
    bench = _load_run()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.bash(
        'ensure_redis; ensure_venv "$1" "" "$2"',
        str(bench.VENV),
        str(bench.REQUIREMENTS),
    )
    bench.bash("ensure_postgres")
    with tempfile.TemporaryDirectory(prefix="hub-soak-") as tmp_name:
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        hub.env["HUB_META_APP_SECRET"] = secrets.token_hex(32)
        hub.env["HUB_VISITOR_MESSAGES_PER_MINUTE"] = str(int(120 / a.visitor_every) + 10)
        cwd = os.getcwd()
        os.chdir(tmp)  # `python -c` puts the cwd first on sys.path: keep the repo's hub out
        try:
            hub.setup()
            hub_bin = str(bench.VENV / "bin" / "hub")
            ports, pids = [], {}
            for name in ("serve-a", "serve-b"):
                port = bench.free_port()
                proc = servers.start(
                    name,
                    [hub_bin, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=hub.env,
                    cwd=tmp,
                )
                bench.wait_until(lambda p=port: bench.healthy(p), "/healthz", proc, servers, name)
                ports.append(port)
                pids[name] = proc.pid
            pids["worker"] = servers.start("worker", [hub_bin, "worker"], env=hub.env, cwd=tmp).pid
            install_uvloop()
            bench.log(
                f"soak: {a.minutes:g} min, {a.webhooks:g} webhooks/s, {a.visitors} visitors "
                f"every {a.visitor_every:g}s, {a.agents} agents, a reconnect every "
                f"{a.reconnect_every:g}s; two web nodes and a worker"
            )
            result = asyncio.run(soak(a, bench, hub.env, ports, pids))
        finally:
            servers.stop_all()
            hub.cleanup()
            os.chdir(cwd)
    print(json.dumps(result), flush=True)
    width = max(len(k) for k in result)
    shown = {k: v for k, v in result.items() if k not in ("errors", "never_seen")}
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in shown.items()))
    bad = result["lost"] or result["duplicates"] or result["not_stored"] or result["stored_twice"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
