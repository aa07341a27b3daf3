"""What the benchmarks share: the runner's deployment helpers (scripts/bench/run, loaded as a
module), percentiles, a results table, and uvloop where it is installed."""

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
