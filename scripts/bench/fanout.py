#!/usr/bin/env python3
"""Fan-out harness: K websocket subscribers in one room, a publisher process at a fixed rate.

    python fanout.py SYSTEM URL --subs K --rate R --dur D [--drain S] [--room r0]

SYSTEM is `hub` (the module named by HUB_PLUGIN, importable from the current directory, e.g.
fanout_plugin.py) or a peer of peers/ (`raw`, `socketio`, `channels`). Each is a `System`: how
its own publishers push a message, how a client joins a room, what a frame carries. The
publisher is a separate process, so every message crosses the system's own cross-process path
(Redis), as it does between a deployment's processes. Payloads carry their wall-clock publish
time; each subscriber records publish → receive.

After the load, late deliveries are awaited for --drain seconds; what has not arrived by then
is loss. Prints one JSON line: system, subs, rate, sent, expected (sent * subs), delivered,
loss, p50_ms, p99_ms, max_ms and deliveries_per_s (over the time from the publisher's start
to the end of the drain).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any, Protocol

from peers import run
from websockets.asyncio.client import ClientConnection

PEERS = {"raw": "peers.raw", "socketio": "peers.socketio_peer", "channels": "peers.channels_peer"}
PAD = "x" * 120  # a payload of about 160 bytes, the size of a short chat message
JOIN_TIMEOUT_S = 60
# The publisher is forked: it starts with the harness's imports done (the hub's included), so
# importing does not eat into its first second of load, on every Python version.
FORK = mp.get_context("fork")


class System(Protocol):
    async def publish(self, room: str, payload: str) -> None: ...
    async def open_subscriber(self, url: str, room: str) -> ClientConnection: ...
    async def extract(self, frame: str) -> str | None: ...


def load(name: str) -> System:
    if os.getcwd() not in sys.path:  # where HUB_PLUGIN lives
        sys.path.insert(0, os.getcwd())
    module = PEERS.get(name) or os.environ.get("HUB_PLUGIN")
    if module is None:
        sys.exit(f"unknown system {name!r}: one of {', '.join(PEERS)}, or hub with HUB_PLUGIN set")
    system: System = importlib.import_module(module)
    return system


def publisher(
    name: str, room: str, rate: float, dur: float, go: Event, sent: Synchronized[int]
) -> None:
    """Publishes `rate` messages a second for `dur` seconds once `go` is set, one await at a
    time: a message is due every 1/rate s, and late ones are caught up at once."""
    system = load(name)

    async def main() -> None:
        go.wait()
        n, start = 0, time.monotonic()
        while (now := time.monotonic()) - start < dur:
            due = int((now - start) * rate)
            while n < due:
                await system.publish(room, json.dumps({"t": time.time(), "i": n, "pad": PAD}))
                n += 1
            await asyncio.sleep(0.002)
        sent.value = n

    run(main())


def quantile(ms: list[float], q: float) -> float | None:
    return round(ms[min(len(ms) - 1, int(q * len(ms)))], 2) if ms else None


async def measure(a: argparse.Namespace) -> dict[str, Any]:
    system = load(a.system)
    latencies: list[float] = []
    joining = [asyncio.create_task(system.open_subscriber(a.url, a.room)) for _ in range(a.subs)]
    done, pending = await asyncio.wait(joining, timeout=JOIN_TIMEOUT_S)
    if pending or any(t.exception() for t in done):
        sys.exit(f"only {sum(not t.exception() for t in done)}/{a.subs} subscribers joined")
    subs = [asyncio.create_task(listen(system, t.result(), latencies)) for t in joining]
    await asyncio.sleep(0.5)  # let the server settle after the joins

    go, sent = FORK.Event(), FORK.Value("i", 0)
    proc = FORK.Process(target=publisher, args=(a.system, a.room, a.rate, a.dur, go, sent))
    proc.start()
    await asyncio.sleep(1.0)  # the publisher connects before the clock starts
    go.set()
    start = time.monotonic()
    await asyncio.to_thread(proc.join)
    expected = sent.value * a.subs
    deadline = time.monotonic() + a.drain
    while len(latencies) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # a count, not an event: 50 ms is fine grain for a drain
    elapsed = time.monotonic() - start
    for task in subs:
        task.cancel()

    ms = sorted(x * 1000 for x in latencies)
    return {
        "system": a.system, "subs": a.subs, "rate": a.rate, "sent": sent.value,
        "expected": expected, "delivered": len(ms), "loss": expected - len(ms),
        "p50_ms": quantile(ms, 0.5), "p99_ms": quantile(ms, 0.99), "max_ms": quantile(ms, 1.0),
        "deliveries_per_s": round(len(ms) / elapsed, 1),
    }  # fmt: skip


async def listen(system: System, ws: ClientConnection, latencies: list[float]) -> None:
    answer = getattr(system, "answer", None)  # a reply some protocols need, e.g. Engine.IO's pong
    async for frame in ws:
        payload = await system.extract(frame if isinstance(frame, str) else frame.decode())
        if payload is not None:
            latencies.append(time.time() - json.loads(payload)["t"])
        elif answer is not None and (reply := answer(frame)) is not None:
            await ws.send(reply)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("system")
    ap.add_argument("url")
    ap.add_argument("--subs", type=int, default=10)
    ap.add_argument("--rate", type=float, default=200, help="messages per second")
    ap.add_argument("--dur", type=float, default=5, help="seconds of load")
    ap.add_argument("--drain", type=float, default=5, help="seconds to wait for late deliveries")
    ap.add_argument("--room", default="r0")
    a = ap.parse_args()

    async def report() -> None:
        print(json.dumps(await measure(a)), flush=True)

    run(report())


if __name__ == "__main__":
    main()
