"""A private Redis Cluster for tests: three primaries (no replicas) on loopback, on free ports, in
a temporary directory, joined with `redis-cli --cluster create`. Only the `redis-server` and
`redis-cli` binaries are needed.

    with private_cluster() as cluster:   # cluster.url (any node), cluster.ports
        ...

or, in a test module, the session fixture `redis_cluster` (import `redis_cluster_fixture`).

Every server is stopped, and the directory deleted, on the way out.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import tiers
from tests.conftest import IN_CI
from tests.privateservices import REDIS_SERVER, free_port

REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
SHARDS = 3


@dataclass
class PrivateCluster:
    root: Path
    ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(SHARDS)])
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            folder = self.root / str(port)
            folder.mkdir()
            self.procs.append(
                subprocess.Popen(
                    [
                        REDIS_SERVER,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        str(folder),
                        "--cluster-enabled",
                        "yes",
                        # The bus port would be port + 10000 by default: past 65535 for
                        # many free ports.
                        "--cluster-port",
                        str(free_port()),
                        "--cluster-config-file",
                        str(folder / "nodes.conf"),
                        "--appendonly",
                        "no",
                        "--save",
                        "",
                    ],
                    stdout=(folder / "redis.log").open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        for port in self.ports:
            self._wait(lambda p=port: self.cli(p, "ping") == "PONG", "a cluster node to answer")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            self._wait(lambda p=port: "cluster_state:ok" in self.cli(p, "cluster", "info"), "ok")

    def cli(self, port: int, *command: str) -> str:
        result = subprocess.run(
            [REDIS_CLI, "-p", str(port), *command], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def node_id(self, port: int) -> str:
        return self.cli(port, "cluster", "myid")

    def owner(self, slot: int) -> int:
        """The port of the node that serves `slot`."""
        for port in self.ports:
            for line in self.cli(port, "cluster", "nodes").splitlines():
                fields = line.split()
                if "myself" not in fields[2]:
                    continue
                for span in fields[8:]:
                    first, _, last = span.partition("-")
                    if not span.startswith("[") and int(first) <= slot <= int(last or first):
                        return port
        raise LookupError(f"no node serves slot {slot}")

    def move_slot(self, slot: int, to_port: int) -> None:
        """Move one slot and its keys to another node, as a reshard does, one slot at a time."""
        from_port = self.owner(slot)
        source, target = self.node_id(from_port), self.node_id(to_port)
        self.cli(to_port, "cluster", "setslot", str(slot), "importing", source)
        self.cli(from_port, "cluster", "setslot", str(slot), "migrating", target)
        while keys := self.cli(from_port, "cluster", "getkeysinslot", str(slot), "100").split():
            self.cli(
                from_port, "migrate", "127.0.0.1", str(to_port), "", "0", "5000", "keys", *keys
            )
        for port in self.ports:
            self.cli(port, "cluster", "setslot", str(slot), "node", target)

    def _wait(self, ready: object, what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                raise RuntimeError("a cluster node exited:\n" + self.logs())
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}:\n" + self.logs())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-2000:] for path in self.root.glob("*/redis.log")
        )


def available() -> str | None:
    """Why a private cluster cannot run here, or None."""
    for binary in (REDIS_SERVER, REDIS_CLI):
        if shutil.which(binary) is None and not Path(binary).exists():
            return f"no {binary}"
    return None


def need_binaries() -> None:
    """Skip the test when redis-server or redis-cli is missing; under CI=true, fail it."""
    missing = available()
    if missing is not None:
        message = f"cannot start a private Redis Cluster: {missing}"
        if IN_CI:
            pytest.fail(message + " (CI=true: tests that need it fail instead of skipping)")
        pytest.skip(message)


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    tiers.require("redis", "a private Redis Cluster")
    root = Path(tempfile.mkdtemp(prefix="hub-cluster-"))
    cluster = PrivateCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", name="redis_cluster")
def redis_cluster_fixture() -> Iterator[PrivateCluster]:
    """One private three-shard cluster for the whole session; tests keep apart by key prefix."""
    need_binaries()
    with private_cluster() as cluster:
        yield cluster
