"""The fan-out benchmark's summary (scripts/bench/run): the table, the medians of repeated
runs, and the figures issue 8's targets are stated in."""

from __future__ import annotations

import statistics

COLUMNS = {  # harness field: table heading
    "system": "system", "subs": "subs", "rate": "rate", "runs": "runs", "sent": "sent",
    "delivered": "delivered",
    "loss": "loss", "p50_ms": "p50 ms", "p99_ms": "p99 ms", "max_ms": "max ms",
    "deliveries_per_s": "deliv/s", "cpu_us_per_delivery": "server CPU us/deliv",
    "publisher_cpu_s": "publisher CPU s", "subscribers_cpu_s": "subscribers CPU s",
}  # fmt: skip


def table(rows: list[dict]) -> str:
    columns = {k: v for k, v in COLUMNS.items() if any(r.get(k) is not None for r in rows)}
    cells = [list(columns.values())] + [[_fmt(r.get(k)) for k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    align = [str.ljust] + [str.rjust] * (len(columns) - 1)
    lines = ["  ".join(f(c, w) for f, c, w in zip(align, r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def medians(rows: list[dict]) -> list[dict]:
    """One row per (system, rate): the median of each figure over its runs; loss is the
    largest of them, so a loss in any run shows."""
    runs: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        runs.setdefault((row["system"], row["rate"]), []).append(row)
    merged = []
    for (system, rate), group in runs.items():
        row: dict = {
            "system": system,
            "rate": rate,
            "subs": group[0].get("subs"),
            "runs": len(group),
        }
        for key in {k for r in group for k, v in r.items() if isinstance(v, int | float)}:
            values = [r[key] for r in group if isinstance(r.get(key), int | float)]
            if key not in row and values:
                row[key] = max(values) if key == "loss" else statistics.median(values)
        merged.append(row)
    return merged


def largest(rows: list[dict], system: str) -> dict | None:
    """The system's row with the largest published rate that lost nothing and kept p99 under
    100 ms (issue 8's measure of the rate a system carries)."""
    held = [
        r
        for r in rows
        if r["system"] == system and r.get("loss") == 0 and (r.get("p99_ms") or 1e9) < 100
    ]
    return max(held, key=lambda r: r.get("published_per_s", r["rate"]), default=None)


def targets(rows: list[dict]) -> str:
    """The figures issue 8's fan-out targets are stated in, from (median) rows."""
    lines = ["largest published rate with no loss and p99 < 100 ms:"]
    best = {}
    for system in dict.fromkeys(r["system"] for r in rows):
        row = largest(rows, system)
        best[system] = row.get("published_per_s", row["rate"]) if row else None
        shown = "none" if row is None else f"{best[system]:,.0f} msg/s (offered {row['rate']:g})"
        lines.append(f"  {system}: {shown}")
    hub = best.get("hub")
    for peer, name in (("raw", "the floor"), ("socketio", "python-socketio")):
        if hub and best.get(peer):
            lines.append(f"  hub / {name}: {hub / best[peer]:.2f}x")
    floor = {r["rate"]: r for r in rows if r["system"] == "raw"}
    for r in rows:
        if r["system"] == "hub" and r["rate"] in floor and floor[r["rate"]].get("p99_ms"):
            ratio = r["p99_ms"] / floor[r["rate"]]["p99_ms"]
            lines.append(f"  p99 at {r['rate']:g} msg/s, hub / the floor: {ratio:.2f}x")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return (
            str(int(value))
            if value == int(value)
            else f"{value:.2f}"
            if value < 10
            else f"{value:.1f}"
        )
    return "-" if value is None else str(value)
