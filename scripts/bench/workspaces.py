#!/usr/bin/env python3
"""Many workspaces: 1,000 workspaces with 2 agents each against one busy workspace, same rate.

    .venv-bench/bin/python scripts/bench/workspaces.py                 # 1000 x 2, 1000 msg/s, 10 s
    .venv-bench/bin/python scripts/bench/workspaces.py --workspaces 100 --rate 300 --dur 5
    .venv-bench/bin/python scripts/bench/workspaces.py --redis-url redis://node:7000 --redis-cluster

Issue 8: "1,000 workspaces with 2 agents each and mixed traffic: the same latency as one busy
workspace (a web node must not poll thousands of streams one by one)."

Deployment (the helpers of `scripts/bench/run`): a temporary Postgres database, `hub migrate`,
then --workspaces workspaces seeded in bulk with `hub.storage.store.Store` (each: its admin, a
second member with the agent role, a web-chat channel, an API token per member; the admins' password
hash is computed once and reused, since nobody signs in; the seeding is timed), and ONE
`hub serve` on Redis with a prefix of its own (no worker: persistence is not measured here).
`--redis-url` points the hub at another Redis; `--redis-cluster` also passes
HUB_REDIS_CLUSTER=true (and the keys are then deleted on every primary of the cluster).

Sockets: every workspace's 2 members each open one agent socket on /ws/agent (hello with their
API token): 2 x --workspaces sockets, spread over --procs client processes (`websockets`
asyncio client, compression off, uvloop). They stay connected through both phases.

Traffic, from this process, through the hub's real ingress as `fanout_plugin.py` does: a
`Bus` from `hub.bus.make_bus` with the server's settings and `Ingress.visitor_message`
(5 visitors per workspace, one conversation each), --rate messages per second for --dur
seconds, plus "mixed" traffic: a typing event (`Ingress.typing`, on) after every 4th message.
Each message's text carries its publish time (wall clock).

- phase **many**: message n goes to workspace n mod W, so traffic is spread over all of them;
- phase **one**: the same rate into workspace 0 only (its 2 agents); the other sockets stay
  connected, so the node has the same rooms and sockets;
- phase **alone**: every socket but workspace 0's two is closed (the node drops those rooms),
  then the same rate into workspace 0: one busy workspace on a node that has nothing else.

Per phase: latency publish -> agent frame (p50/p99/max over every message.created frame),
loss (each message must reach both agents of its workspace; counted after --drain s),
duplicates, frames delivered, `hub serve` CPU µs per delivered frame (message and typing),
and Redis XREAD calls per second and µs per call (INFO commandstats, before and after; Redis is
shared, so anything else using it at that time is counted too).

Prints progress every 2 s, one JSON line per phase and a markdown table. Exits 1 on loss or
duplicates. Afterwards it stops the processes, drops the database and deletes its Redis keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import signal
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
from storm import Client, emit, markdown  # noqa: E402

SEED_MANY = """
import asyncio, json, secrets, sys, time, uuid
import hub.storage.store
from hub.accounts.auth import Principal, hash_password
from hub.storage.engine import make_engine, sessionmaker
from hub.settings import Settings
from hub.storage.store import Store

async def main(n):
    engine = make_engine(Settings.from_env())
    once = hash_password(secrets.token_urlsafe(16))
    hub.storage.store.hash_password = lambda _password: once  # nobody signs in: hash once
    store = Store(sessionmaker(engine))
    gate = asyncio.Semaphore(8)
    run = uuid.uuid4().hex[:8]

    async def one(i):
        async with gate:
            workspace, admin = await store.create_workspace_with_admin(
                f"Bench {i}", f"admin-{i}-{run}@example.com", "x", "Admin")
            agent = await store.add_member(
                workspace.id, f"agent-{i}-{run}@example.com", "x", "agent", "Agent")
            channel = await store.create_channel(workspace.id, "webchat", "Widget")
            tokens = []
            for user, role in ((admin, "admin"), (agent, "agent")):
                principal = Principal(user.id, workspace.id, role, "token", user.name)
                tokens.append((await store.create_api_token(principal, "bench"))[1])
            return [str(workspace.id), str(channel.id), tokens]

    try:
        rows = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await engine.dispose()
    print(json.dumps(rows))

asyncio.run(main(int(sys.argv[1])))
"""

REDIS_STATS = """
import json, sys, redis
from redis.cluster import RedisCluster
url, cluster, what = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
if cluster:
    rc = RedisCluster.from_url(url)
    clients = [rc.get_redis_connection(node) for node in rc.get_primaries()]
else:
    clients = [redis.Redis.from_url(url)]
if what == "stats":
    total = {}
    for client in clients:
        for name, stats in client.info("commandstats").items():
            calls, usec = total.get(name, (0, 0))
            total[name] = (calls + stats["calls"], usec + stats["usec"])
    print(json.dumps(total))
else:  # delete the keys matching the pattern sys.argv[3] on every node
    deleted = 0
    for client in clients:
        keys = list(client.scan_iter(match=what, count=1000))
        for i in range(0, len(keys), 500):
            for key in keys[i:i + 500]:  # one by one: a cluster refuses cross-slot DELs
                deleted += client.delete(key)
    print(deleted)
"""


def redis_tool(a: argparse.Namespace, python: str, what: str) -> str:
    argv = [python, "-c", REDIS_STATS, a.redis_url, "1" if a.redis_cluster else "0", what]
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout


def xread_stats(a: argparse.Namespace, python: str) -> tuple[int, int]:
    stats = json.loads(redis_tool(a, python, "stats"))
    calls, usec = stats.get("cmdstat_xread", (0, 0))
    return int(calls), int(usec)


# --------------------------------------------------------------------------- agents process


async def agent(
    url: str,
    token: str,
    stats: dict[str, Any],
    gate: asyncio.Semaphore,
    up: list[int],
    ws_out: list[Any],
    source: str | None = None,
) -> None:
    from websockets.asyncio.client import connect

    # A source address of its own per client process: one address reaches one server port from
    # at most ~28,000 ephemeral ports, and growth.py opens up to 50,000 sockets.
    local = {"local_addr": (source, 0)} if source else {}
    async with gate:
        ws = await connect(url, compression=None, ping_interval=None, open_timeout=120, **local)
        ws_out.append(ws)
        await ws.send(json.dumps({"type": "hello", "token": token}))
        while json.loads(await ws.recv()).get("type") != "welcome":
            pass
    up[0] += 1
    seen: set[str] = set()
    async for raw in ws:
        now = time.time()
        if '"message.created"' not in raw:
            if '"typing"' in raw:
                stats["typing"] += 1
            continue
        text = json.loads(raw)["data"]["message"].get("text") or ""
        if not text.startswith("wsb "):
            continue
        _, phase, n, sent = text.split(" ")
        per = stats["phases"].setdefault(phase, {"lat": [], "unique": 0, "dups": 0})
        key = f"{phase} {n}"
        if key in seen:
            per["dups"] += 1
            continue
        seen.add(key)
        per["unique"] += 1
        per["lat"].append((now - float(sent)) * 1000)


async def agents_main(cfg: dict[str, Any]) -> None:
    gate = asyncio.Semaphore(50)
    stats: dict[str, Any] = {"typing": 0, "phases": {}}
    up = [0]
    sockets: list[list[Any]] = [[] for _ in cfg["tokens"]]
    tasks = [
        asyncio.create_task(agent(cfg["url"], t, stats, gate, up, sockets[i], cfg.get("source")))
        for i, t in enumerate(cfg["tokens"])
    ]
    while up[0] < len(tasks):
        failed = [t for t in tasks if t.done()]
        emit({"up": up[0], "failed": len(failed)})
        if failed and up[0] + len(failed) >= len(tasks):
            break
        await asyncio.sleep(1)
    emit({"up": up[0], "failed": sum(1 for t in tasks if t.done())})
    loop = asyncio.get_running_loop()
    while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) != "stop":
        if line == "solo":  # close every socket but workspace 0's
            doomed = [ws for i, ws in enumerate(sockets) if i not in cfg["keep"]]
            await asyncio.gather(*(w[0].close() for w in doomed if w), return_exceptions=True)
            emit({"solo": len(cfg["keep"])})
        if line == "count":
            typing = stats["typing"]
            emit({p: v["unique"] for p, v in stats["phases"].items()} | {"typing": typing})
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit({"result": stats, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)})
    for task in tasks:
        task.cancel()


# --------------------------------------------------------------------------- orchestrator


async def publish_phase(
    ingress: Any, targets: list[tuple[Any, list[Any]]], phase: str, rate: float, dur: float
) -> int:
    """Publishes `rate` messages/s for `dur` s, message n into targets[n % len(targets)], and
    a typing event after every 4th message. Answers how many messages were published."""
    n, t0 = 0, time.monotonic()
    while (now := time.monotonic()) - t0 < dur:
        due = int((now - t0) * rate)
        while n < due:
            workspace, visitors = targets[n % len(targets)]
            claims = visitors[(n // len(targets)) % len(visitors)]
            text = f"wsb {phase} {n} {time.time():.6f}"
            await ingress.visitor_message(claims, f"{phase}-{n}", text, [])
            if n % 4 == 3:
                ref = ingress.visitor_conversation(claims)
                who = {"type": "contact", "id": str(ref.contact_id), "name": None}
                await ingress.typing(workspace, ref.id, True, who)
            n += 1
        await asyncio.sleep(0.002)
    return n


async def open_ingress(env: dict[str, str]) -> tuple[Any, Any]:
    """The hub's real ingress on a bus built from the server's settings, started: the harness
    publishes what a web-chat visitor's `message.send` would."""
    from hub.bus import make_bus
    from hub.realtime.ingress import Ingress
    from hub.settings import Settings
    from hub.storage.engine import make_engine, sessionmaker
    from hub.storage.store import Store

    settings = Settings.from_env(env)
    bus = make_bus(settings)
    await bus.start()
    store = Store(sessionmaker(make_engine(settings)))  # not used by visitor_message/typing
    return bus, Ingress(bus, store, cache_ttl_s=settings.cache_ttl_s)


def visitor_targets(seeded: list[Any], visitors: int) -> list[tuple[Any, list[Any]]]:
    """Per seeded workspace: its id and `visitors` anonymous web-chat visitors of its channel."""
    from hub.accounts.auth import VisitorClaims

    return [
        (
            uuid.UUID(w),
            [
                VisitorClaims(uuid.UUID(w), uuid.UUID(c), secrets.token_hex(16))
                for _ in range(visitors)
            ],
        )
        for w, c, _ in seeded
    ]


def phase_figures(results: list[dict[str, Any]], phase: str, expected: int) -> dict[str, Any]:
    """A phase's delivery figures from the agents processes' results: `expected` frames (each
    message times the sockets of its workspace) against the unique ones received."""
    per = [r["result"]["phases"].get(phase, {"lat": [], "unique": 0, "dups": 0}) for r in results]
    lat = [x for p in per for x in p["lat"]]
    delivered = sum(p["unique"] for p in per)
    return {
        "delivered": delivered,
        "loss": expected - delivered,
        "duplicates": sum(p["dups"] for p in per),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "max_ms": round(max(lat), 1) if lat else None,
    }


async def bench_phases(
    a: argparse.Namespace, bench: Any, env: dict[str, str], port: int, seeded: list[Any]
) -> list[dict[str, Any]]:
    bus, ingress = await open_ingress(env)
    targets = visitor_targets(seeded, 5)
    tokens = [t for _, _, pair in seeded for t in pair]
    clients: list[Client] = []
    for p in range(a.procs):
        cfg = {
            "url": f"ws://127.0.0.1:{port}/ws/agent",
            "tokens": tokens[p :: a.procs],
            "keep": [(g - p) // a.procs for g in (0, 1) if (g - p) % a.procs == 0],
        }
        clients.append(await Client.start(__file__, "--agents", cfg))
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(2)
        up = sum(c.last.get("up", 0) for c in clients)
        failed = sum(c.last.get("failed", 0) for c in clients)
        bench.log(f"connecting: {up}/{len(tokens)} agent sockets welcomed, {failed} failed")
        if failed:
            raise RuntimeError(f"{failed} agent sockets failed to connect")
        if up >= len(tokens):
            break
    bench.log(f"{len(tokens)} agent sockets up in {time.monotonic() - t0:.1f}s")
    pid = int(env["_SERVE_PID"])
    rows = []
    typing_so_far = 0
    phases = [("many", targets), ("one", targets[:1]), ("alone", targets[:1])]
    try:
        for phase, chosen in phases:
            sockets = len(tokens)
            if phase == "alone":
                bench.log("closing every agent socket but workspace 0's two")
                await asyncio.gather(*(c.say("solo") for c in clients))
                for _ in range(100):  # each process answers once its sockets are closed
                    if sum(c.last.get("solo", 0) for c in clients) >= 2:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2)  # the node drops the empty rooms
                sockets = 2
            bench.log(
                f"phase {phase}: {a.rate:g} msg/s (+ typing) for {a.dur:g}s into "
                f"{len(chosen)} workspace(s)"
            )
            cpu0, xread0 = bench.cpu_seconds(pid), xread_stats(a, bench.PY)
            started = time.monotonic()
            job = asyncio.create_task(publish_phase(ingress, chosen, phase, a.rate, a.dur))
            while not job.done():
                await asyncio.wait({job}, timeout=2)
                await asyncio.gather(*(c.say("count") for c in clients))
                await asyncio.sleep(0.05)
                got = sum(c.last.get(phase, 0) for c in clients)
                bench.log(f"  {phase} +{time.monotonic() - started:.0f}s: {got} frames delivered")
            sent = job.result()
            elapsed = time.monotonic() - started
            await asyncio.sleep(a.drain)
            cpu = bench.cpu_seconds(pid) - cpu0
            xread1 = xread_stats(a, bench.PY)
            await asyncio.gather(*(c.say("count") for c in clients))
            await asyncio.sleep(0.5)
            typing = sum(c.last.get("typing", 0) for c in clients)
            typing, typing_so_far = typing - typing_so_far, typing
            rows.append(
                {
                    "phase": phase,
                    "workspaces": len(chosen),
                    "sockets": sockets,
                    "rate": a.rate,
                    "sent": sent,
                    "elapsed_s": round(elapsed, 2),
                    "typing_frames": typing,
                    "server_cpu_s": round(cpu, 2),
                    "xread_calls": xread1[0] - xread0[0],
                    "xread_per_s": round((xread1[0] - xread0[0]) / (elapsed + a.drain), 1),
                    "xread_us_per_call": round(
                        (xread1[1] - xread0[1]) / max(1, xread1[0] - xread0[0]), 1
                    ),
                }
            )
    finally:
        await asyncio.gather(*(c.say("stop") for c in clients))
        for c in clients:
            await c.reader
            await c.proc.wait()
        await bus.close()
    results = [c.result for c in clients if c.result]
    if len(results) != len(clients):
        raise RuntimeError("an agents process gave no result")
    for row in rows:
        row |= phase_figures(results, row["phase"], 2 * row["sent"])
        frames = row["delivered"] + row["typing_frames"]
        row["cpu_us_per_delivery"] = (
            round(row["server_cpu_s"] * 1e6 / frames, 1) if frames else None
        )
        row["load_avg"] = round(os.getloadavg()[0], 2)
    bench.log(f"agent processes' CPU: {', '.join(str(r['cpu_s']) for r in results)} s")
    return rows


COLUMNS = {
    "phase": "phase", "workspaces": "workspaces", "sockets": "sockets", "rate": "msg/s",
    "sent": "sent", "delivered": "delivered", "loss": "loss", "duplicates": "dups",
    "p50_ms": "p50 ms", "p99_ms": "p99 ms", "max_ms": "max ms",
    "cpu_us_per_delivery": "server CPU µs/delivery", "xread_per_s": "XREAD/s",
    "xread_us_per_call": "µs/XREAD", "load_avg": "load",
}  # fmt: skip


def seed_workspaces(bench: Any, env: dict[str, str], n: int) -> tuple[list[Any], float]:
    """Seeds n workspaces in bulk (SEED_MANY, run from the cwd, which must not be the repo);
    answers [workspace id, channel id, [admin token, agent token]] per workspace and the time."""
    t0 = time.monotonic()
    done = subprocess.run(
        [bench.PY, "-c", SEED_MANY, str(n)], env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    seeded = json.loads(done.stdout.strip().splitlines()[-1])
    seed_s = time.monotonic() - t0
    bench.log(f"seeded {n} workspaces (2 members, channel, 2 tokens each) in {seed_s:.1f}s")
    return seeded, seed_s


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] == "--agents":
        install_uvloop()
        asyncio.run(agents_main(json.loads(sys.stdin.readline())))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=1000, help="messages/s (plus typing events)")
    ap.add_argument("--dur", type=float, default=10)
    ap.add_argument("--drain", type=float, default=3)
    ap.add_argument("--procs", type=int, default=2, help="agent client processes")
    ap.add_argument("--redis-url", default=None, help="Redis for the hub (default: run's)")
    ap.add_argument(
        "--redis-cluster", action="store_true", help="pass HUB_REDIS_CLUSTER=true to the hub"
    )
    ap.add_argument(
        "--source",
        metavar="DIR",
        help="import the hub from DIR instead of the working tree (as webhooks.py)",
    )
    a = ap.parse_args()
    bench = _load_run()
    a.redis_url = a.redis_url or bench.REDIS_URL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.ensure_bench_venv()
    bench.bash("ensure_postgres")
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-workspaces-") as tmp_name:
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        hub.env["REDIS_URL"] = a.redis_url
        if a.redis_cluster:
            hub.env["HUB_REDIS_CLUSTER"] = "true"
        if a.source:
            hub.env["PYTHONPATH"] = str(Path(a.source).resolve())
            sys.path.insert(0, hub.env["PYTHONPATH"])
        cwd = os.getcwd()
        os.chdir(tmp)  # `python -c` puts the cwd first on sys.path: keep the repo's hub out
        try:
            hub.setup()
            seeded, seed_s = seed_workspaces(bench, hub.env, a.workspaces)
            port = bench.free_port()
            argv = [str(bench.VENV / "bin" / "hub"), "serve", "--host", "127.0.0.1", "--port"]
            server = servers.start("serve", [*argv, str(port)], env=hub.env, cwd=tmp)
            bench.wait_until(lambda: bench.healthy(port), "/healthz", server, servers, "serve")
            install_uvloop()
            env = hub.env | {"_SERVE_PID": str(server.pid)}
            rows = asyncio.run(bench_phases(a, bench, env, port, seeded))
            for row in rows:
                row["seed_s"] = round(seed_s, 1)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            bench.log(f"failed: {exc}")
            return 1
        finally:
            servers.stop_all()
            hub.cleanup()
            if a.redis_url != bench.REDIS_URL or a.redis_cluster:  # run's cleanup knows one
                deleted = redis_tool(a, bench.PY, f"{hub.prefix}:*").strip()
                bench.log(f"deleted {deleted} keys of {hub.prefix} on {a.redis_url}")
            os.chdir(cwd)
    for row in rows:
        row["total_s"] = round(time.monotonic() - started, 1)
        print(json.dumps(row), flush=True)
    print("\n" + markdown(rows, COLUMNS))
    return 1 if any(r["loss"] or r["duplicates"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
