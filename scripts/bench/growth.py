#!/usr/bin/env python3
"""Growth: how one web node's memory and CPU grow with workspaces, agents per workspace, sockets.

    .venv-bench/bin/python scripts/bench/growth.py --plot docs/img/growth.png   # the full grid
    .venv-bench/bin/python scripts/bench/growth.py --workspaces 1,10 --agents 2,10 --dur 3
    .venv-bench/bin/python scripts/bench/growth.py --replot /tmp/growth.jsonl --plot /tmp/g.png

Issue 25 item 5. A grid of cells, W workspaces x A agent sockets per workspace (--workspaces
1,10,100,1000, --agents 2,10,50: 2 to 50,000 sockets). Deployment as `workspaces.py`, whose
helpers this imports: a temporary Postgres database, `hub migrate`, max(W) workspaces seeded
in bulk once (two members and two API tokens each); one client process per 2,500 sockets (at
most --procs), each from a loopback source address of its own (127.0.0.2, .3, ...: one
address reaches one port from ~28,000 ephemeral ports at most). Every cell, under the shared
bench lock (/tmp/hub-bench.lock, taken here with flock, so other benchmarks interleave
between cells), does:

1. starts a fresh `hub serve` (no worker) and reads its RSS (/proc VmRSS) 1 s after /healthz:
   **RSS base**;
2. opens A agent sockets into each of the first W workspaces (hello with one of the
   workspace's two API tokens, alternately: an agent may have several tabs), waits 2 s and
   reads the RSS: **RSS idle**; **KiB/socket** = (RSS idle - RSS base) / sockets, fixed costs
   included (the model below separates them);
3. leaves them idle --idle s: **idle CPU %** of one core (keep-alive pings, the tail);
4. publishes --rate messages/s for --dur s through the hub's real ingress (`Ingress.
   visitor_message`, 2 visitors per workspace), message n into workspace n mod W, plus a
   typing event after every 4th message, as `workspaces.py` does: the same total rate in
   every cell, spread over the workspaces. Then --drain s for late frames;
5. **events/s** (messages and typing events published), **loss** (every message must reach
   each of its workspace's A sockets), **p50/p99** publish -> frame; `hub serve`'s CPU over
   the traffic window, less the idle rate of step 3 over the same time, per delivered frame
   (**CPU µs/delivery**, messages and typing) and per published event (**CPU µs/event**);
   **CPU % busy** = the whole window's CPU in % of a core; Redis XREAD calls/s and µs per call
   (INFO commandstats; Redis is shared, others' XREADs in the window count too);
6. stops the clients and the server.

A cell with more sockets than this process may open files (RLIMIT_NOFILE, raised as far as the
hard limit allows, less 1,000 for the server's own) is measured with as many whole workspaces
as fit, and says so (`capped_from`). Then the model (`growthmodel.py`: memory = base + per
socket + per room; µs per event = per event + per delivery x room size + per room x rooms;
idle CPU = base + per socket) is fitted to the cells and printed with its predictions for
every cell of the grid, measured or not.

Prints the date, the machine and the commit, progress, one JSON line per cell (also written to
--jsonl), the measured table (markdown), the model and its table; --plot writes the plot
(RSS and CPU µs/delivery against sockets, one line per agents per workspace; the model
dashed). Exits 1 on loss. Cleans up its database and Redis keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import growthmodel  # noqa: E402
from benchkit import _load_run, install_uvloop  # noqa: E402
from sockets import rss_kib  # noqa: E402
from storm import Client, markdown  # noqa: E402
from workspaces import (  # noqa: E402
    open_ingress,
    phase_figures,
    publish_phase,
    seed_workspaces,
    visitor_targets,
    xread_stats,
)

LOCK = "/tmp/hub-bench.lock"
SOCKETS_PER_PROC = 2500
SERVER_FDS = 1000  # kept for the server's own files, Redis and Postgres connections


class BenchLock:
    """The machine's shared benchmark lock (what `flock /tmp/hub-bench.lock` takes). Taken for
    a step, and given up after it once held for `hold_s` (0: after every step), so that other
    engineers' benchmarks run between this one's cells."""

    def __init__(self, bench: Any, hold_s: float) -> None:
        self.bench, self.hold_s = bench, hold_s
        self.file: Any = None
        self.since = self.released = 0.0

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        if self.file is None:
            # Others blocked on the lock are woken when it is released, but this process would
            # take it again first: give them the turn.
            time.sleep(max(0.0, self.released + 2 - time.monotonic()))
            self.file = open(LOCK, "a")  # held across steps, closed by release()
            t0 = time.monotonic()
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.bench.log(f"{what}: waiting for the bench lock ({LOCK})")
                fcntl.flock(self.file, fcntl.LOCK_EX)
                self.bench.log(f"waited {time.monotonic() - t0:.0f}s for the bench lock")
            self.since = time.monotonic()
        self.bench.log(f"{what} (lock held; load average {os.getloadavg()[0]:.2f})")
        try:
            yield
        finally:
            if time.monotonic() - self.since >= self.hold_s:
                self.release()

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None
            self.released = time.monotonic()


def open_files_limit() -> int:
    """Raises RLIMIT_NOFILE (inherited by the server and clients) as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (200_000, hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            return want
    return soft


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu}), "
        f"{mem_gib:.0f} GiB, Python {platform.python_version()}, hub at {commit}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )


async def connect_agents(
    a: argparse.Namespace, bench: Any, port: int, tokens: list[str]
) -> tuple[list[Client], float]:
    procs = max(1, min(a.procs, math.ceil(len(tokens) / SOCKETS_PER_PROC)))
    clients = []
    for p in range(procs):
        cfg = {
            "url": f"ws://127.0.0.1:{port}/ws/agent",
            "tokens": tokens[p::procs],
            "keep": [],
            "source": f"127.0.0.{2 + p}",
        }
        clients.append(await Client.start(str(HERE / "workspaces.py"), "--agents", cfg))
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(1)
        up = sum(c.last.get("up", 0) for c in clients)
        failed = sum(c.last.get("failed", 0) for c in clients)
        if failed:
            raise RuntimeError(f"{failed} agent sockets failed to connect")
        if up >= len(tokens):
            return clients, round(time.monotonic() - t0, 1)
        if int(time.monotonic() - t0) % 5 == 0:
            bench.log(f"  connecting: {up}/{len(tokens)} agent sockets welcomed")


async def stop_agents(clients: list[Client]) -> list[dict[str, Any]]:
    await asyncio.gather(*(c.say("stop") for c in clients))
    for c in clients:
        await c.reader
        await c.proc.wait()
    results = [c.result for c in clients if c.result]
    if len(results) != len(clients):
        raise RuntimeError("an agents process gave no result")
    return results


async def run_cell(
    a: argparse.Namespace,
    bench: Any,
    ctx: dict[str, Any],
    workspaces: int,
    agents: int,
) -> dict[str, Any]:
    servers, env, tmp, ingress = ctx["servers"], ctx["env"], ctx["tmp"], ctx["ingress"]
    row: dict[str, Any] = {"workspaces": workspaces, "agents": agents}
    fits = max(1, ctx["max_sockets"] // agents)
    if workspaces > fits:
        row["capped_from"] = workspaces
        row["workspaces"] = workspaces = fits
    row["sockets"] = sockets = workspaces * agents
    port = bench.free_port()
    argv = [str(bench.VENV / "bin" / "hub"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    name = f"serve-{workspaces}x{agents}"
    server = servers.start(name, argv, env=env, cwd=tmp)
    clients: list[Client] = []
    try:
        bench.wait_until(lambda: bench.healthy(port), "/healthz", server, servers, name)
        await asyncio.sleep(1)
        base = rss_kib(server.pid)
        tokens = [ctx["seeded"][w][2][k % 2] for w in range(workspaces) for k in range(agents)]
        clients, row["connect_s"] = await connect_agents(a, bench, port, tokens)
        await asyncio.sleep(2)
        loaded = rss_kib(server.pid)
        cpu0 = bench.cpu_seconds(server.pid)
        await asyncio.sleep(a.idle)
        idle_rate = (bench.cpu_seconds(server.pid) - cpu0) / a.idle  # cores
        phase = f"g{workspaces}x{agents}"
        cpu1, xread0 = bench.cpu_seconds(server.pid), xread_stats(ctx["redis"], bench.PY)
        started = time.monotonic()
        targets = ctx["targets"][:workspaces]
        sent = await publish_phase(ingress, targets, phase, a.rate, a.dur)
        elapsed = time.monotonic() - started
        await asyncio.sleep(a.drain)
        window = time.monotonic() - started
        cpu = bench.cpu_seconds(server.pid) - cpu1
        xread1 = xread_stats(ctx["redis"], bench.PY)
        await asyncio.gather(*(c.say("count") for c in clients))
        await asyncio.sleep(0.5)
        typing_frames = sum(c.last.get("typing", 0) for c in clients)
        rss_after = rss_kib(server.pid)
        results = await stop_agents(clients)
        clients = []
    finally:
        for c in clients:
            c.proc.kill()
        servers.stop(server)
    row |= phase_figures(results, phase, sent * agents)
    events = sent + sent // 4  # a typing event after every 4th message
    busy = max(0.0, cpu - idle_rate * window)
    frames = row["delivered"] + typing_frames
    xcalls = xread1[0] - xread0[0]
    return row | {
        "rss_base_mib": round(base / 1024, 1),
        "rss_idle_mib": round(loaded / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "kib_per_socket": round((loaded - base) / sockets, 1),
        "idle_cpu_pct": round(100 * idle_rate, 2),
        "sent": sent,
        "events_per_s": round(events / elapsed, 1),
        "typing_frames": typing_frames,
        "server_cpu_s": round(cpu, 3),
        "us_per_delivery": round(busy * 1e6 / frames, 1) if frames else None,
        "us_per_event": round(busy * 1e6 / events, 1) if events else None,
        "busy_pct": round(100 * cpu / window, 1),
        "xread_per_s": round(xcalls / window, 1),
        "xread_us_per_call": round((xread1[1] - xread0[1]) / max(1, xcalls), 1),
        "load_avg": round(os.getloadavg()[0], 2),
    }


async def run_grid(a: argparse.Namespace, bench: Any, ctx: dict[str, Any]) -> list[dict]:
    bus, ctx["ingress"] = await open_ingress(ctx["env"])
    ctx["targets"] = visitor_targets(ctx["seeded"], 2)
    rows = []
    cells = [(w, n) for w in a.workspaces for n in a.agents]
    try:
        for i, (w, n) in enumerate(cells, 1):
            with ctx["lock"].step(f"[{i}/{len(cells)}] {w} workspaces x {n} agents"):
                row = await run_cell(a, bench, ctx, w, n)
            bench.log(
                f"  {row['sockets']} sockets, RSS {row['rss_base_mib']} -> {row['rss_idle_mib']}"
                f" MiB, idle {row['idle_cpu_pct']}%, {row['us_per_delivery']} µs/delivery, "
                f"p50/p99 {row['p50_ms']}/{row['p99_ms']} ms, loss {row['loss']}"
            )
            print(json.dumps(row), flush=True)
            if a.jsonl:
                with a.jsonl.open("a") as out:
                    out.write(json.dumps(row) + "\n")
            rows.append(row)
    finally:
        await bus.close()
    return rows


def report(a: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print("\n" + markdown(rows, growthmodel.COLUMNS))
    capped = [r for r in rows if r.get("capped_from")]
    for r in capped:
        print(
            f"\n{r['capped_from']} x {r['agents']} did not fit one process's open files: "
            f"measured {r['workspaces']} x {r['agents']}."
        )
    try:
        model = growthmodel.fit(rows)
    except ValueError as exc:  # e.g. a grid of one agents value: sockets and rooms collinear
        print(f"\nno model: {exc}")
        return
    print("\nmodel, least squares over the cells above:\n" + model.describe())
    off = growthmodel.largest_misses(model, rows)
    print(
        f"largest miss on a measured cell: RSS {off['rss_idle_mib']:+.0f}%, "
        f"CPU per event {off['us_per_event']:+.0f}%, idle CPU {off['idle_cpu_pct']:+.2f} points"
    )
    rate = max(r["events_per_s"] for r in rows)
    predicted = [
        growthmodel.predicted(model, w, n, rate) for w in a.all_workspaces for n in a.agents
    ]
    print(f"\nthe model at {rate:g} events/s, every cell of the grid:")
    print(markdown(predicted, growthmodel.MODEL_COLUMNS))
    print("\nmodel: " + json.dumps(model.as_dict()))
    if a.plot:
        plot(rows, model, a.plot)


def plot(rows: list[dict[str, Any]], model: growthmodel.Model, out: Path) -> None:
    """RSS and CPU µs/delivery against sockets (log x), one colour per agents per workspace;
    the model dashed. The house style of plot.py."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, cpu) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    for i, agents in enumerate(sorted({r["agents"] for r in rows})):
        cells = sorted((r for r in rows if r["agents"] == agents), key=lambda r: r["sockets"])
        xs = [r["sockets"] for r in cells]
        colour = f"C{i}"
        label = f"{agents} agents/workspace"
        mem.plot(xs, [r["rss_idle_mib"] for r in cells], "-", marker="o", color=colour, label=label)
        cpu.plot(
            xs, [r["us_per_delivery"] for r in cells], "-", marker="o", color=colour, label=label
        )
        model_xs = [agents * w for w in (1, 10, 100, 1000)]
        mem.plot(model_xs, [model.rss_mib(x, x / agents) for x in model_xs], "--", color=colour)
        cpu.plot(
            model_xs,
            [model.us_per_delivery(agents, x / agents) for x in model_xs],
            "--",
            color=colour,
        )
    mem.set_ylabel("RSS of hub serve, idle after connecting (MiB)")
    mem.set_title("memory per node (dashed: the model)")
    cpu.set_ylabel("server CPU per delivered frame (µs)")
    cpu.set_title("CPU per delivery (dashed: the model)")
    for ax in (mem, cpu):
        ax.set_xscale("log")
        ax.set_xlabel("agent sockets on the node")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    mem.set_yscale("log")
    mem.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    print(f"[bench] plot written to {out}", file=sys.stderr)


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspaces", type=numbers, default=[1, 10, 100, 1000])
    ap.add_argument("--agents", type=numbers, default=[2, 10, 50], help="sockets per workspace")
    ap.add_argument("--rate", type=float, default=200, help="messages/s in every cell (+ typing)")
    ap.add_argument("--dur", type=float, default=10, help="s of traffic per cell")
    ap.add_argument("--idle", type=float, default=5, help="s idle per cell, for idle CPU")
    ap.add_argument("--drain", type=float, default=2)
    ap.add_argument("--procs", type=int, default=4, help="agent client processes at most")
    ap.add_argument("--max-sockets", type=int, help="per cell (default: the open-files limit)")
    ap.add_argument(
        "--lock-hold",
        type=float,
        default=0,
        help="s: keep the bench lock for the next cell until held this long (0: every cell)",
    )
    ap.add_argument("--jsonl", type=Path, help="write each cell's JSON line here")
    ap.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    ap.add_argument("--replot", type=Path, help="no run: the tables and plot from these lines")
    a = ap.parse_args()
    a.all_workspaces = a.workspaces
    a.jsonl, a.plot = [p.resolve() if p else None for p in (a.jsonl, a.plot)]  # before chdir
    if a.replot:
        rows = [json.loads(x) for x in a.replot.read_text().splitlines() if x.startswith("{")]
        report(a, rows)
        return 0
    if a.jsonl:
        a.jsonl.write_text("")  # anew: one run's cells
    bench = _load_run()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    limit = open_files_limit()
    max_sockets = a.max_sockets or limit - SERVER_FDS
    print(f"{machine()}; {max_sockets} sockets per cell at most (open files {limit})", flush=True)
    bench.ensure_bench_venv()
    bench.bash("ensure_postgres")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-growth-") as tmp_name:
        tmp = Path(tmp_name)
        servers = bench.Servers(tmp)
        hub = bench.Hub(argparse.Namespace(db="postgres"), servers, tmp)
        lock = BenchLock(bench, a.lock_hold)
        cwd = os.getcwd()
        os.chdir(tmp)  # `python -c` puts the cwd first on sys.path: keep the repo's hub out
        try:
            with lock.step(f"seeding {max(a.workspaces)} workspaces"):
                hub.setup()
                seeded, _ = seed_workspaces(bench, hub.env, max(a.workspaces))
            install_uvloop()
            redis = argparse.Namespace(redis_url=hub.env["REDIS_URL"], redis_cluster=False)
            ctx = {"servers": servers, "env": hub.env, "tmp": tmp, "seeded": seeded}
            ctx |= {"redis": redis, "max_sockets": max_sockets, "lock": lock}
            rows = asyncio.run(run_grid(a, bench, ctx))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            bench.log(f"failed: {exc}")
            return 1
        finally:
            servers.stop_all()
            hub.cleanup()
            lock.release()
            os.chdir(cwd)
    print(f"\n{machine()}")
    report(a, rows)
    return 1 if any(r["loss"] or r["duplicates"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
