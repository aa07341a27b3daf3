"""Real hub processes on loopback for tests: `hub demo`, `hub serve` and `hub worker`; and a
real S3-API server (moto's) for the media store on S3.

Each runs as a subprocess of the current interpreter with its own environment; stop()
terminates it and returns what it printed, for assertions and for failure messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubProcess:
    args: list[str]
    env: dict[str, str]
    port: int | None = None
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, *, wait_s: float = 30.0) -> HubProcess:
        assert self.log_path is not None
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if self.port is not None:
            self._wait_healthy(wait_s)
        return self

    def _wait_healthy(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub {self.args[0]} exited early:\n{self.output()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hub {self.args[0]} did not become healthy:\n{self.output()}")

    def output(self) -> str:
        return (
            self.log_path.read_text(errors="replace")
            if self.log_path and self.log_path.exists()
            else ""
        )

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.output()


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HUB_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(extra)
    return env


def demo(tmp_path: Path, port: int | None = None) -> HubProcess:
    port = port or free_port()
    data_dir = tmp_path / "demo-data"
    process = HubProcess(
        ["demo", "--port", str(port), "--data-dir", str(data_dir)],
        base_env(),
        port=port,
        log_path=tmp_path / f"demo-{port}.log",
    )
    return process


def demo_seed(tmp_path: Path) -> dict[str, str]:
    seed: dict[str, str] = json.loads((tmp_path / "demo-data" / "demo.json").read_text())
    return seed


@contextlib.contextmanager
def s3_server(wait_s: float = 30.0) -> Iterator[str]:
    """A real S3-API server (moto's) on loopback; yields its endpoint URL. Buckets are made
    with `new_bucket`; any access key is accepted."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                httpx.get(endpoint + "/", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the S3-API server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """One S3-API server for the module whose tests request it (a plugin of conftest.py)."""
    with s3_server() as endpoint:
        yield endpoint


def new_bucket(endpoint: str) -> str:
    bucket = "media-" + uuid.uuid4().hex[:12]
    httpx.put(f"{endpoint}/{bucket}", timeout=10).raise_for_status()
    return bucket


def s3_environ(endpoint: str, bucket: str, prefix: str = "hub") -> dict[str, str]:
    """The environment that points HUB_MEDIA_URL at `bucket` on the server (generated
    credentials, which the server takes as they are)."""
    return {
        "HUB_MEDIA_URL": f"s3://{bucket}/{prefix}",
        "HUB_S3_ENDPOINT_URL": endpoint,
        "HUB_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-" + uuid.uuid4().hex[:12],
        "AWS_SECRET_ACCESS_KEY": "test-" + uuid.uuid4().hex,
    }
