"""The repo's entry points: scripts are present, executable and parse; the Procfile names the
processes; the benchmark plugin publishes through the real ingress and reads its own frames;
the fan-out harness measures the floor peer."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

import pytest
import redis
from cryptography.fernet import Fernet

from hub.bus.redis import RedisBus
from schemas.message import conversation_id_for
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # as tests/conftest.py
BASH_SCRIPTS = [
    ".ci/run",
    "scripts/test",
    "scripts/demo",
    "scripts/screenshots",
    "scripts/lib/venv.sh",
    "scripts/lib/services.sh",
    "scripts/lib/a11y.sh",
]


@pytest.mark.parametrize("path", BASH_SCRIPTS)
def test_bash_scripts_parse(path: str) -> None:
    script = ROOT / path
    assert script.is_file(), f"{path} is missing"
    if not path.endswith(".sh"):
        assert os.access(script, os.X_OK), f"{path} is not executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bench_runner_answers_help() -> None:
    runner = ROOT / "scripts/bench/run"
    assert os.access(runner, os.X_OK)
    result = subprocess.run(
        [sys.executable, str(runner), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "--systems" in result.stdout


def _bench_runner() -> ModuleType:
    path = str(ROOT / "scripts/bench/run")  # a script without a .py suffix
    loader = importlib.machinery.SourceFileLoader("bench_run", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_bench_runner_sums_up_repeated_runs_in_the_targets_figures() -> None:
    run = _bench_runner()

    def row(system: str, rate: float, p99: float, published: float, loss: int = 0) -> dict:
        return {"system": system, "rate": rate, "subs": 10, "p99_ms": p99, "loss": loss,
                "published_per_s": published}  # fmt: skip

    rows = [
        row("hub", 1000, 3.0, 1000), row("hub", 1000, 90.0, 1000), row("hub", 1000, 2.0, 999),
        row("raw", 1000, 2.0, 1000), row("raw", 1000, 2.0, 1000), row("raw", 1000, 1.0, 1000),
        row("hub", 3000, 40.0, 2400), row("hub", 3000, 50.0, 2500), row("hub", 3000, 500, 2000),
        row("raw", 3000, 20.0, 3000), row("raw", 3000, 30.0, 3000, loss=5),
        row("raw", 3000, 25.0, 3000),
        row("socketio", 1000, 3.0, 1000), row("socketio", 3000, 900.0, 2990),
    ]  # fmt: skip
    merged = {(r["system"], r["rate"]): r for r in run.medians(rows)}
    assert merged["hub", 1000]["p99_ms"] == 3.0 and merged["hub", 1000]["runs"] == 3
    assert merged["hub", 3000]["published_per_s"] == 2400
    assert merged["raw", 3000]["loss"] == 5  # a loss in any run shows
    summary = run.targets(list(merged.values()))
    # The floor's 3,000 lost a message in one run: its largest is 1,000; the hub's is 2,400.
    assert "hub: 2,400 msg/s (offered 3000)" in summary
    assert "raw: 1,000 msg/s (offered 1000)" in summary
    assert "hub / the floor: 2.40x" in summary
    assert "hub / python-socketio: 2.40x" in summary
    assert "p99 at 1000 msg/s, hub / the floor: 1.50x" in summary
    assert "runs" in run.table(list(merged.values())).splitlines()[0]
    assert "runs" not in run.table(rows).splitlines()[0]


def test_soak_answers_help() -> None:
    soak = ROOT / "scripts/bench/soak.py"
    assert os.access(soak, os.X_OK)
    result = subprocess.run(
        [sys.executable, str(soak), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "--reconnect-every" in result.stdout and "--minutes" in result.stdout


@pytest.mark.redis
def test_bench_harness_measures_the_floor(redis_prefix: str, tmp_path: Path) -> None:
    """The fan-out harness against the floor peer: the peer starts and answers, the harness's
    subscribers join, every message published through Redis arrives, and the JSON line holds
    the figures `scripts/bench/run` reads. (The other peers need .venv-bench's libraries.)"""
    bench, port, room = ROOT / "scripts/bench", free_port(), redis_prefix
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["REDIS_URL"] = REDIS_URL
    with (tmp_path / "raw.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "peers.raw", str(port)], cwd=bench, env=env, stderr=log
        )
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the floor did not start:\n{(tmp_path / 'raw.log').read_text()}")
            time.sleep(0.05)
        load = "--subs 2 --rate 50 --dur 1 --drain 3 --room".split()
        result = subprocess.run(
            [sys.executable, "fanout.py", "raw", f"ws://127.0.0.1:{port}/ws", *load, room],
            cwd=bench,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.terminate()
        server.wait(10)
        redis.Redis.from_url(REDIS_URL).delete(f"bench:{room}")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout.splitlines()[-1])
    assert row["system"] == "raw" and row["subs"] == 2 and row["sent"] >= 45
    assert row["expected"] == row["delivered"] == 2 * row["sent"] and row["loss"] == 0
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] and row["deliveries_per_s"] > 0


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_procfile_names_the_processes() -> None:
    processes = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert processes["web"].split()[:2] == ["hub", "serve"]
    assert "0.0.0.0" in processes["web"] and "$PORT" in processes["web"].replace("{", "").replace(
        "}", ""
    )
    assert processes["worker"].strip() == "hub worker"
    assert processes["release"].strip() == "hub migrate"


def _load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fanout_plugin_" + uuid.uuid4().hex[:6], ROOT / "scripts/bench/fanout_plugin.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.redis
async def test_bench_plugin_publishes_through_the_ingress(
    redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, channel = uuid.uuid4(), uuid.uuid4()
    for name in [k for k in os.environ if k.startswith("HUB_") or k == "DATABASE_URL"]:
        monkeypatch.delenv(name)
    env = {
        "REDIS_URL": REDIS_URL,
        "HUB_REDIS_PREFIX": redis_prefix,
        "HUB_SECRET_KEY": "bench-test-" + uuid.uuid4().hex,
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_BENCH_WORKSPACE": str(workspace),
        "HUB_BENCH_CHANNEL": str(channel),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plugin = _load_plugin()
    payloads = [json.dumps({"t": 1.5, "i": i, "pad": "x" * 120}) for i in range(3)]
    try:
        for payload in payloads:
            await plugin.publish("r0", payload)
    finally:
        await plugin.close()

    bus = RedisBus(REDIS_URL, prefix=redis_prefix, stream_maxlen=1000, dedupe_ttl_s=60)
    await bus.start()
    try:
        events = await bus.read(str(workspace), "0-0", 100)
    finally:
        await bus.close()
    assert [e.name for e in events] == ["message.created"] * 3
    assert {e.conversation_id for e in events} == {
        str(conversation_id_for(workspace, channel, "bench-r0"))
    }
    assert [await plugin.extract(e.frame()) for e in events] == payloads

    assert await plugin.extract('{"type":"welcome","cursor":"0-0","resumed":false}') is None
    presence = '{"type":"event","id":"1-0","name":"presence","data":{"state":"online"}}'
    assert await plugin.extract(presence) is None
