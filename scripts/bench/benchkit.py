"""What the benchmarks share: the runner's deployment helpers (scripts/bench/run, loaded as a
module), percentiles, a results table, uvloop where it is installed, and the strict durable
ack's options (a Redis of the run's own, with AOF)."""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.util
import secrets
import shutil
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load_run() -> Any:
    """scripts/bench/run (no .py suffix) as a module, for its setup and cleanup helpers."""
    loader = importlib.machinery.SourceFileLoader("bench_run", str(HERE / "run"))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def table(rows: list[dict[str, Any]], columns: dict[str, str]) -> str:
    """Rows as a plain text table: `columns` maps each row key to its heading."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:g}" if isinstance(v, float) else str(v)

    cells = [list(columns.values())] + [[fmt(r.get(k)) for k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def durable_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--durable-ack",
        choices=("off", "aof", "replica"),
        default="off",
        help="the hub's HUB_BUS_DURABLE_ACK: acks wait for Redis' AOF fsync or for a replica "
        "(then the hub runs on a Redis of its own: --redis-aof, always by default)",
    )
    ap.add_argument(
        "--redis-aof",
        choices=("always", "everysec"),
        help="run the hub on a Redis of its own with AOF and this appendfsync (with "
        "--durable-ack replica, plus one replica); the shared Redis is never reconfigured",
    )


def _redis_cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=False
    )
    return done.stdout


def _start_redis(tmp: Path, name: str, options: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    folder = tmp / name
    folder.mkdir()
    argv = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind"]
    argv += ["127.0.0.1", "--dir", str(folder), "--save", "", *options]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def _until(check: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def durable_redis(a: argparse.Namespace) -> Iterator[dict[str, str]]:
    """The hub's environment for `durable_args`: with a strict ack or --redis-aof, REDIS_URL
    names a redis-server of this run (a free loopback port, a temporary directory, AOF), and a
    replica of it for `replica`; both are stopped on the way out."""
    env = {"HUB_BUS_DURABLE_ACK": a.durable_ack}
    fsync = a.redis_aof or ("always" if a.durable_ack != "off" else None)
    if fsync is None:
        yield env
        return
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-redis-") as tmp:
        try:
            aof = ["--appendonly", "yes", "--appendfsync", fsync]
            primary, port = _start_redis(Path(tmp), "primary", aof)
            procs.append(primary)
            _until(lambda: "PONG" in _redis_cli(port, "ping"), "the bench's Redis")
            if a.durable_ack == "replica":
                replica, replica_port = _start_redis(
                    Path(tmp), "replica", ["--replicaof", "127.0.0.1", str(port)]
                )
                procs.append(replica)
                _until(
                    lambda: (
                        "master_link_status:up" in _redis_cli(replica_port, "info", "replication")
                    ),
                    "the bench's Redis replica in sync",
                )
            yield env | {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(20)


def run_id() -> str:
    """A run's tag, in its messages' ids and texts: letters only. A hex tag such as "3e45" looks
    like a number with an exponent, which sends every body of that run through the hub's walk
    over each value (`hub.web.webhooks._json`): one run in twenty would cost more by chance."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
