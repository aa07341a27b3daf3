#!/usr/bin/env python3
"""Idle connections: how much memory and CPU N idle visitor sockets cost one web process.

    .venv-bench/bin/python scripts/bench/sockets.py       # 10,000 sockets, hub and raw
    .venv-bench/bin/python scripts/bench/sockets.py --sockets 2000 --idle 10 --systems hub

For each system, in the same run:

- **hub**: a temporary Postgres database and the seed of `scripts/bench/run` (a workspace and
  its web-chat channel, which allows the bench's origin); one `hub serve` process (uvloop, as
  deployed). Every socket is a web-chat visitor of its own (its own visitor token, signed here
  with the hub's signer, so its own conversation) on `/ws/visitor`, which says `hello` and
  waits for `welcome`: an authenticated socket that has joined its room.
- **raw**: the fan-out benchmark's floor (`peers/raw.py`, a bare `websockets` server), each
  socket subscribed to a room of its own.

Steps: start the server; warm it up (200 sockets opened, welcomed and closed, so code paths
and allocator pools exist); read its resident set (RSS, /proc/PID/status VmRSS) as the base;
open --sockets sockets from --clients client processes (each socket's hello and welcome
included; like a browser's, the client sockets send no pings of their own and answer the
server's); wait 2 s and read RSS again: **KiB per socket** = (RSS - base) / sockets. Then
leave them idle for --idle seconds: **idle CPU %** = the server's CPU time over that span
(keep-alive pings included: uvicorn pings each socket every HUB_PING_INTERVAL_S, 20 s) as a
percentage of one core. The client processes answer pings and read nothing else.

Prints progress, one JSON line per system, then a table. Exits 1 if a socket failed to open or
the hub missed the issue's targets (20 KiB per socket, idle CPU under 5% of one core).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchkit import _load_run, install_uvloop  # noqa: E402
from storm import markdown  # noqa: E402

ORIGIN = "https://sockets.example"
WARM_UP = 200
MAX_KIB_PER_SOCKET = 20
MAX_IDLE_CPU_PCT = 5.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


COLUMNS = {  # field: heading
    "system": "system", "sockets": "sockets", "open_s": "open s", "base_rss_mib": "base MiB",
    "rss_mib": "loaded MiB", "kib_per_socket": "KiB/socket", "idle_cpu_pct": "idle CPU %",
    "rss_after_idle_mib": "MiB after idle",
}  # fmt: skip


# --------------------------------------------------------------------------- client process


# Like a browser: no compression, no pings of its own (it answers the server's).
OPTIONS: dict[str, Any] = {"compression": None, "ping_interval": None, "open_timeout": 60}


async def open_sockets(system: str, url: str, first: int, n: int) -> list[Any]:
    from websockets.asyncio.client import connect

    tokens: list[str] = []
    if system == "hub":
        from hub.accounts.auth import Signer, VisitorClaims
        from hub.settings import Settings

        signer = Signer(Settings.from_env())
        workspace = uuid.UUID(os.environ["HUB_BENCH_WORKSPACE"])
        channel = uuid.UUID(os.environ["HUB_BENCH_CHANNEL"])
        tokens = [
            signer.visitor_token(VisitorClaims(workspace, channel, f"idle-{first + i}"))
            for i in range(n)
        ]
    gate = asyncio.Semaphore(200)  # connects in flight, so the server's backlog never overflows

    async def one(i: int) -> Any:
        async with gate:
            if system == "hub":
                ws = await connect(url, origin=ORIGIN, **OPTIONS)  # type: ignore[arg-type]
                await ws.send(json.dumps({"type": "hello", "token": tokens[i]}))
                while json.loads(await asyncio.wait_for(ws.recv(), 60)).get("type") != "welcome":
                    pass
                return ws
            return await connect(f"{url}?room=idle{first + i}", **OPTIONS)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def client_main(system: str, url: str, first: int, n: int) -> None:
    sockets = await open_sockets(system, url, first, n)
    print(f"ready {len(sockets)}", flush=True)
    # Hold them open until the parent closes our stdin; websockets answers pings by itself.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --------------------------------------------------------------------------- orchestration


def start_clients(bench: Any, system: str, url: str, first: int, total: int, parts: int) -> list:
    per = -(-total // parts)
    procs = []
    for k in range(parts):
        n = min(per, total - k * per)
        if n <= 0:
            break
        procs.append(
            subprocess.Popen(
                [bench.PY, __file__, "--client", system, url, str(first + k * per), str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=os.environ.copy(),
            )
        )
    for proc in procs:
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"a client process failed: {line!r}")
    return procs


def stop_clients(procs: list) -> None:
    for proc in procs:
        proc.stdin.close()
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(bench: Any, a: argparse.Namespace, system: str, pid: int, url: str) -> dict:
    bench.log(f"{system}: warming up with {WARM_UP} sockets")
    stop_clients(start_clients(bench, system, url, 10**7, WARM_UP, 1))
    time.sleep(2)
    base = rss_kib(pid)
    bench.log(f"{system}: base RSS {base / 1024:.1f} MiB; opening {a.sockets} sockets")
    started = time.monotonic()
    clients = start_clients(bench, system, url, 0, a.sockets, a.clients)
    opened_s = time.monotonic() - started
    try:
        time.sleep(2)
        loaded = rss_kib(pid)
        bench.log(
            f"{system}: {a.sockets} open in {opened_s:.1f} s, RSS {loaded / 1024:.1f} MiB; "
            f"idle for {a.idle:g} s"
        )
        cpu0, t0 = bench.cpu_seconds(pid), time.monotonic()
        end = t0 + a.idle
        while time.monotonic() < end:
            time.sleep(min(10.0, end - time.monotonic()))
            spent = bench.cpu_seconds(pid) - cpu0
            bench.log(f"{system}: idle {time.monotonic() - t0:.0f} s, CPU {spent:.2f} s so far")
        idle_cpu = bench.cpu_seconds(pid) - cpu0
        idle_s = time.monotonic() - t0
        after = rss_kib(pid)
    finally:
        stop_clients(clients)
    return {
        "system": system,
        "sockets": a.sockets,
        "open_s": round(opened_s, 1),
        "base_rss_mib": round(base / 1024, 1),
        "rss_mib": round(loaded / 1024, 1),
        "kib_per_socket": round((loaded - base) / a.sockets, 1),
        "rss_after_idle_mib": round(after / 1024, 1),
        "idle_cpu_pct": round(100 * idle_cpu / idle_s, 2),
    }


def run_hub(bench: Any, a: argparse.Namespace, servers: Any, tmp: Path) -> dict:
    import httpx

    a.db, a.with_worker, a.hub_venv, a.profile = "postgres", False, str(bench.VENV), None
    hub = bench.Hub(a, servers, tmp)
    try:
        hub.setup()
        hub.env |= dict(pair.split("=", 1) for pair in a.hub_env)
        port = bench.free_port()
        server = servers.start(
            "hub",
            [f"{a.hub_venv}/bin/hub", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=hub.env,
            cwd=tmp,
        )
        bench.wait_until(lambda: bench.healthy(port), "/healthz", server, servers, "hub")
        channel = f"http://127.0.0.1:{port}/api/channels/{hub.env['HUB_BENCH_CHANNEL']}"
        auth = {"authorization": f"Bearer {hub.env['HUB_BENCH_TOKEN']}"}
        answer = httpx.patch(channel, json={"allowed_origins": [ORIGIN]}, headers=auth)
        answer.raise_for_status()
        os.environ.update(hub.env)  # the client processes sign visitor tokens with it
        try:
            return measure(bench, a, "hub", server.pid, f"ws://127.0.0.1:{port}/ws/visitor")
        finally:
            servers.stop(server)
    finally:
        hub.cleanup()


def run_raw(bench: Any, a: argparse.Namespace, servers: Any, tmp: Path) -> dict:
    port = bench.free_port()
    server = servers.start(
        "raw",
        [bench.PY, "-m", "peers.raw", str(port)],
        env=bench.base_env() | {"REDIS_URL": bench.REDIS_URL},
        cwd=bench.HERE,
    )
    bench.wait_until(lambda: bench.answers(port), "listening", server, servers, "raw")
    try:
        return measure(bench, a, "raw", server.pid, f"ws://127.0.0.1:{port}/")
    finally:
        servers.stop(server)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        install_uvloop()
        system, url, first, n = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        asyncio.run(client_main(system, url, first, n))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sockets", type=int, default=10_000)
    ap.add_argument("--idle", type=float, default=60, help="seconds of idleness to measure CPU")
    ap.add_argument("--clients", type=int, default=4, help="client processes")
    ap.add_argument("--systems", default="hub,raw")
    ap.add_argument(
        "--hub-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the hub"
    )
    a = ap.parse_args()
    bench = _load_run()
    bench.bash(
        'ensure_redis; ensure_postgres; ensure_venv "$1" "" "$2"',
        str(bench.VENV),
        str(bench.REQUIREMENTS),
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        servers = bench.Servers(Path(tmp))
        try:
            for system in [s.strip() for s in a.systems.split(",") if s.strip()]:
                run = {"hub": run_hub, "raw": run_raw}[system]
                row = run(bench, a, servers, Path(tmp))
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            servers.stop_all()
    print("\n" + markdown(rows, COLUMNS))
    hub = next((r for r in rows if r["system"] == "hub"), None)
    if hub and (
        hub["kib_per_socket"] > MAX_KIB_PER_SOCKET or hub["idle_cpu_pct"] >= MAX_IDLE_CPU_PCT
    ):
        bench.log(
            f"hub misses a target: {hub['kib_per_socket']} KiB per socket (at most "
            f"{MAX_KIB_PER_SOCKET}), idle CPU {hub['idle_cpu_pct']}% (under {MAX_IDLE_CPU_PCT})"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
