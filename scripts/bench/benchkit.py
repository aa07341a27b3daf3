"""What the benchmarks share: the runner's deployment helpers (scripts/bench/run, loaded as a
module), percentiles, and uvloop where it is installed."""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
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


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
