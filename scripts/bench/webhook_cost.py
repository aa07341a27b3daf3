#!/usr/bin/env python3
"""A webhook against its floor: the CPU `hub serve` spends per signed Messenger webhook, next to
a bare Starlette endpoint that only checks the HMAC and XADDs the body (peers/webhook_floor.py),
same load, same run.

    .venv-bench/bin/python scripts/bench/webhook_cost.py                  # 500,1000,2000/s, 3 runs
    .venv-bench/bin/python scripts/bench/webhook_cost.py --rate 1000 --runs 1 --dur 5
    .venv-bench/bin/python scripts/bench/webhook_cost.py --rate 1000 --profile /tmp/serve.txt
                                                  # and the floor's in /tmp/serve.floor.txt
    .venv-bench/bin/python scripts/bench/webhook_cost.py --rate 2000 --runs 9 --against ../old
                                 # this hub against another checkout's, in the floor's place

The hub is deployed as webhooks.py deploys it (a temporary Postgres database, a workspace and
its Messenger channel connected with POST /api/channels, `hub serve` on uvloop and httptools)
but without `hub worker` and without agent sockets (`--subs` adds some): the floor neither
persists nor delivers, so only the web process's own work on a webhook is compared. The floor
runs under uvicorn with the same loop and HTTP parser and no access log.

Each run: webhooks.py's poster (its lean `raw` client, C keep-alive connections, open loop)
sends R signed webhooks a second for D seconds to one system, then the same to the other
(after --warmup seconds of load on each, not measured, which fills the hub's caches); the
systems take turns at every rate, and every rate is run --runs times. The CPU of each server
process (user + system, from /proc) over the poster's run, divided by the webhooks it accepted,
is its µs per webhook. Prints the date and the machine, a JSON line per run, then the medians:
hub and floor µs/webhook, their ratio (the issue 25 target: at most 2), HTTP p50/p99 of each.

`--against CHECKOUT` runs `hub serve` from another checkout of the hub (its directory first on
PYTHONPATH, on the same database and Redis) where the floor would be: a paired comparison of
two versions, taking turns run by run, which tells a change of a few percent from the noise
between runs; the "floor" columns are then the other checkout's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import _load_run, install_uvloop, run_id, table
from webhooks import agent_loop, open_agent

HERE = Path(__file__).resolve().parent
POSTER = HERE / "webhooks.py"


def machine() -> str:
    """Where and when: the figures mean nothing without the machine and how busy it was."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.machine(),
    )  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {platform.node()}: {os.cpu_count()} CPUs "
        f"({model}), Python {platform.python_version()}, load average {load} at start"
    )


async def post(bench: Any, cfg: dict[str, Any], pid: int) -> dict[str, Any]:
    """One poster run against one server; its CPU over the run."""
    before = bench.cpu_seconds(pid)
    poster = await asyncio.create_subprocess_exec(
        bench.PY, str(POSTER), "--poster", json.dumps(cfg),
        stdout=asyncio.subprocess.PIPE, env=bench.base_env(),
    )  # fmt: skip
    out, _ = await asyncio.wait_for(poster.communicate(), cfg["dur"] + 120)
    await asyncio.sleep(0.2)  # what the server still does for the last requests
    cpu_s = bench.cpu_seconds(pid) - before
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if poster.returncode != 0 or not lines:
        raise RuntimeError(f"the poster failed (exit {poster.returncode})")
    row: dict[str, Any] = json.loads(lines[-1])
    accepted = row["accepted"]
    return {
        "sent": row["sent"],
        "accepted": accepted,
        "cpu_us": round(cpu_s * 1e6 / accepted, 1) if accepted else None,
        "http_p50_ms": row["http_p50_ms"],
        "http_p99_ms": row["http_p99_ms"],
        "statuses": row["statuses"],
    }


async def connect_channel(port: int, token: str, page_id: str) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/api/channels",
            headers={"authorization": f"Bearer {token}"},
            json={"kind": "messenger", "name": "Bench Page", "account_id": page_id,
                  "access_token": "bench-" + secrets.token_hex(16)},
        )  # fmt: skip
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/channels: {response.status_code} {response.text}")


async def drive(
    bench: Any, a: argparse.Namespace, secret: str, ports: dict[str, int], pids: dict[str, int]
) -> list[dict[str, Any]]:
    await connect_channel(ports["hub"], a.token, a.page_id)
    sockets = [await open_agent(f"ws://127.0.0.1:{ports['hub']}/ws/agent", a.token)
               for _ in range(a.subs)]  # fmt: skip
    readers: list[asyncio.Task[None]] = []
    if sockets:
        from webhooks import Collect

        state = Collect(seen=[set() for _ in sockets])
        readers = [asyncio.create_task(agent_loop(ws, i, state)) for i, ws in enumerate(sockets)]

    def config(system: str, rate: float, dur: float) -> dict[str, Any]:
        return {
            "url": f"http://127.0.0.1:{ports[system]}/webhooks/meta",
            "secret": secret, "rate": rate, "dur": dur, "conns": a.conns,
            "run": run_id(), "page": a.page_id, "senders": a.senders,
            "client": "raw", "media": "", "image_every": 0,
        }  # fmt: skip

    runs: list[dict[str, Any]] = []
    try:
        # Not measured: the first webhooks fill the caches (the channel, each sender's
        # conversation) and warm the interpreter, once per deployment, not per webhook.
        for system in ports:
            bench.log(f"webhook cost: warming {system} up ({a.warmup:g}s)")
            await post(bench, config(system, a.rates[0], a.warmup), pids[system])
        for rate in a.rates:
            for n in range(a.runs):
                order = ("hub", "floor") if n % 2 == 0 else ("floor", "hub")
                for system in order:
                    bench.log(f"webhook cost: {system}, {rate:g}/s for {a.dur:g}s, run {n + 1}")
                    row = {"system": system, "rate": rate, "run": n + 1}
                    row |= await post(bench, config(system, rate, a.dur), pids[system])
                    print(json.dumps(row), flush=True)
                    runs.append(row)
                    await asyncio.sleep(a.pause)
    finally:
        for reader in readers:
            reader.cancel()
        for ws in sockets:
            await ws.close()
    return runs


def profile_paths(path: str) -> dict[str, Path]:
    """Where --profile PATH puts each server's profile: the hub's in PATH, the floor's beside
    it (serve.txt and serve.floor.txt), so the two can be read side by side."""
    hub = Path(path).resolve()
    return {"hub": hub, "floor": hub.with_name(f"{hub.stem}.floor{hub.suffix}")}


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def median(system: str, rate: float, key: str) -> float | None:
        values = [r[key] for r in runs if r["system"] == system and r["rate"] == rate and r[key]]
        return round(statistics.median(values), 2) if values else None

    rows = []
    for rate in dict.fromkeys(r["rate"] for r in runs):
        hub, floor = median("hub", rate, "cpu_us"), median("floor", rate, "cpu_us")
        rejected = sum(r["sent"] - r["accepted"] for r in runs if r["rate"] == rate)
        rows.append({
            "rate": rate, "runs": sum(1 for r in runs if r["rate"] == rate) // 2,
            "hub": hub, "floor": floor,
            "ratio": round(hub / floor, 2) if hub and floor else None,
            "hub_p50": median("hub", rate, "http_p50_ms"),
            "hub_p99": median("hub", rate, "http_p99_ms"),
            "floor_p50": median("floor", rate, "http_p50_ms"),
            "floor_p99": median("floor", rate, "http_p99_ms"),
            "rejected": rejected,
        })  # fmt: skip
    return rows


COLUMNS = {
    "rate": "rate/s", "runs": "runs", "hub": "hub CPU us/wh", "floor": "floor CPU us/wh",
    "ratio": "hub/floor", "hub_p50": "hub http p50", "hub_p99": "hub http p99",
    "floor_p50": "floor http p50", "floor_p99": "floor http p99", "rejected": "non-2xx",
}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", default="500,1000,2000", help="webhooks/s, comma-separated")
    ap.add_argument("--dur", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2, help="seconds of load, not measured")
    ap.add_argument("--runs", type=int, default=3, help="runs per rate and system (medians)")
    ap.add_argument("--conns", type=int, default=8, help="HTTP/1.1 keep-alive connections")
    ap.add_argument("--senders", type=int, default=100, help="distinct Messenger senders")
    ap.add_argument("--subs", type=int, default=0, help="agent sockets on the hub")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between runs")
    ap.add_argument("--page-id", default="1895382890692545")
    ap.add_argument("--against", metavar="CHECKOUT", help="another hub in the floor's place")
    ap.add_argument(
        "--profile", metavar="PATH", help="py-spy record `hub serve` into PATH, the floor beside it"
    )
    a = ap.parse_args()
    a.rates = [float(r) for r in a.rate.split(",") if r.strip()]
    bench = _load_run()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench.bash('ensure_redis; ensure_venv "$1" "" "$2"', str(bench.VENV), str(bench.REQUIREMENTS))
    bench.bash("ensure_postgres")
    if a.profile and not (bench.VENV / "bin" / "py-spy").exists():
        subprocess.run([bench.PY, "-m", "pip", "install", "-q", "py-spy"], check=True)
    print(machine(), flush=True)
    secret = secrets.token_hex(32)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-whcost-") as tmp_name:
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        hub.env["HUB_META_APP_SECRET"] = secret
        hub.env["HUB_META_VERIFY_TOKEN"] = secrets.token_urlsafe(16)
        profilers: list[subprocess.Popen[bytes]] = []
        cwd = os.getcwd()
        os.chdir(tmp)  # `python -c` puts the cwd first on sys.path: keep the repo's hub out
        try:
            hub.setup()
            a.token = hub.env["HUB_BENCH_TOKEN"]
            ports = {"hub": bench.free_port(), "floor": bench.free_port()}
            hub_bin = str(bench.VENV / "bin" / "hub")
            hub_argv = [hub_bin, "serve", "--host", "127.0.0.1", "--port", str(ports["hub"])]
            floor_argv = [
                str(bench.VENV / "bin" / "uvicorn"), "peers.webhook_floor:app",
                "--host", "127.0.0.1", "--port", str(ports["floor"]), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
            floor_env = bench.base_env() | {"REDIS_URL": bench.REDIS_URL,
                                            "HUB_META_APP_SECRET": secret}  # fmt: skip
            floor_cwd = HERE
            if a.against:
                floor_argv = [*hub_argv[:-1], str(ports["floor"])]
                floor_env = hub.env | {"PYTHONPATH": str(Path(a.against).resolve())}
                floor_cwd = tmp
            procs = {
                "hub": servers.start("hub", hub_argv, env=hub.env, cwd=tmp),
                "floor": servers.start("floor", floor_argv, env=floor_env, cwd=floor_cwd),
            }
            for name, proc in procs.items():
                bench.wait_until(lambda n=name: bench.healthy(ports[n]), "/healthz answering",
                                 proc, servers, name)  # fmt: skip
            if a.profile:
                profilers = [bench.start_profiler(str(path), procs[name].pid)
                             for name, path in profile_paths(a.profile).items()]  # fmt: skip
            install_uvloop()
            pids = {name: proc.pid for name, proc in procs.items()}
            runs = asyncio.run(drive(bench, a, secret, ports, pids))
        except (RuntimeError, subprocess.SubprocessError, TimeoutError) as exc:
            bench.log(f"failed: {exc}")
            return 1
        finally:
            for profiler in profilers:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(60)
            if profilers:
                paths = " and ".join(map(str, profile_paths(a.profile).values()))
                bench.log(f"py-spy profiles of hub serve and the floor written to {paths}")
            servers.stop_all()
            hub.cleanup()
            bench.delete_redis_keys("bench:webhooks")
            os.chdir(cwd)
    print("\n" + machine().split(", load")[0] + f", {a.dur:g} s per run, {a.conns} connections")
    print(table(medians(runs), COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
