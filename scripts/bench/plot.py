#!/usr/bin/env python3
"""Plot a fan-out series: p50 and p99 latency (ms, log scale) against rate, per system.

    .venv-bench/bin/python scripts/bench/plot.py /tmp/fanout.jsonl -o /tmp/fanout.png
    scripts/bench/run --systems hub,raw,socketio --rate 500,1000,2000 --plot /tmp/fanout.png

Reads JSON lines as `scripts/bench/run` prints them (the harness's line per run plus
run's columns: system, subs, rate, p50_ms, p99_ms, sent...). Where a (system, rate) was run more
than once, the median of its runs is drawn. p99 is a solid line, p50 a dashed one of the same
colour; a grey line marks 100 ms. A point stands at the rate the publisher managed (sent over
the run's duration) where the line says it, else at the offered rate: a publisher that falls
behind the offered rate would otherwise be plotted at a load it never made. Needs matplotlib
(`run` installs it into .venv-bench).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def plot(rows: list[dict[str, Any]], out: Path, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get("p99_ms") is not None:
            series[row["system"]][float(row["rate"])].append(row)
    if not series:
        raise SystemExit("no rows with latencies to plot")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for i, (system, by_rate) in enumerate(series.items()):
        rates = list(by_rate)
        colour = f"C{i}"
        runs = sorted(
            (statistics.median(r.get("published_per_s", rate) for r in by_rate[rate]), rate)
            for rate in rates
        )
        xs = [x for x, _ in runs]
        for field, style, label in (("p99_ms", "-", "p99"), ("p50_ms", "--", "p50")):
            values = [statistics.median(r[field] for r in by_rate[rate]) for _, rate in runs]
            ax.plot(xs, values, style, marker="o", color=colour, label=f"{system} {label}")
    ax.axhline(100, color="grey", linewidth=1, linestyle=":")
    ax.annotate("100 ms", xy=(0.01, 100), xycoords=("axes fraction", "data"), va="bottom")
    ax.set_yscale("log")
    ax.set_xlabel("published rate (msg/s)")
    ax.set_ylabel("latency publish → receive (ms)")
    subs = sorted({r.get("subs") for r in rows if r.get("subs") is not None})
    ax.set_title(title or f"fan-out, {'/'.join(map(str, subs))} subscribers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", type=Path, help="JSON lines of `scripts/bench/run`")
    ap.add_argument("-o", "--out", type=Path, help="PNG to write (default: beside the input)")
    ap.add_argument("--title")
    a = ap.parse_args()
    out = a.out or a.jsonl.with_suffix(".png")
    plot(load(a.jsonl), out, a.title)
    print(f"[bench] plot written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
