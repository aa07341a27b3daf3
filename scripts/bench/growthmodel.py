"""The growth benchmark's model: what a web node's memory and CPU are made of, fitted to the
grid's cells (growth.py), and the table and summary it prints. Pure Python with no
dependencies, so the tests run it without the bench's virtualenv.

The model, in the terms a deployment is planned in:

- **memory**: RSS = base + per socket x sockets + per room x rooms (a room is a workspace with
  at least one socket on the node);
- **CPU per event**: every event the node reads costs it once (the tail's read, decoding,
  encoding the frame once), once per socket of the room it is delivered to, and a little per
  room the node holds (the tail's rounds walk them):
  µs/event = per event + per delivery x room size + per room x rooms;
- **idle CPU**: % of a core = base + per socket x sockets (keep-alive pings, mostly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


def least_squares(xs: list[list[float]], ys: list[float]) -> list[float]:
    """The coefficients c minimizing sum((x · c - y)²) over the rows: the normal equations,
    solved by Gaussian elimination with partial pivoting (a handful of unknowns)."""
    n = len(xs[0])
    if len(xs) < n:
        raise ValueError(f"{len(xs)} rows cannot fit {n} unknowns")
    a = [[sum(r[i] * r[j] for r in xs) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * y for r, y in zip(xs, ys, strict=True)) for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda k: abs(a[k][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise ValueError("the rows do not determine the coefficients")
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        for k in range(col + 1, n):
            f = a[k][col] / a[col][col]
            a[k] = [v - f * p for v, p in zip(a[k], a[col], strict=True)]
            b[k] -= f * b[col]
    c = [0.0] * n
    for i in reversed(range(n)):
        c[i] = (b[i] - sum(a[i][j] * c[j] for j in range(i + 1, n))) / a[i][i]
    return c


@dataclass(frozen=True)
class Model:
    base_mib: float
    kib_per_socket: float
    kib_per_room: float
    event_us: float
    delivery_us: float
    room_us: float
    idle_pct: float
    idle_pct_per_1k_sockets: float

    def rss_mib(self, sockets: float, rooms: float) -> float:
        return self.base_mib + (self.kib_per_socket * sockets + self.kib_per_room * rooms) / 1024

    def us_per_event(self, room_size: float, rooms: float) -> float:
        return self.event_us + self.delivery_us * room_size + self.room_us * rooms

    def us_per_delivery(self, room_size: float, rooms: float) -> float:
        return self.us_per_event(room_size, rooms) / room_size

    def idle_pct_of_core(self, sockets: float) -> float:
        return self.idle_pct + self.idle_pct_per_1k_sockets * sockets / 1000

    def describe(self) -> str:
        return "\n".join(
            [
                f"memory: RSS = {self.base_mib:.0f} MiB + {self.kib_per_socket:.1f} KiB x sockets"
                f" + {self.kib_per_room:.1f} KiB x rooms",
                f"CPU: us per event = {self.event_us:.0f} + {self.delivery_us:.1f} x room size"
                f" + {self.room_us:.3f} x rooms (room size: sockets of the event's workspace"
                " on the node)",
                f"idle: % of a core = {self.idle_pct:.2f} + "
                f"{self.idle_pct_per_1k_sockets:.3f} x thousands of sockets",
            ]
        )

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


def fit(cells: list[dict[str, Any]]) -> Model:
    """Fits the model to the measured cells (keys: sockets, workspaces, agents, rss_idle_mib,
    us_per_event, idle_cpu_pct); a cell without a figure is left out of that figure's fit."""
    mem = [c for c in cells if c.get("rss_idle_mib") is not None]
    base, per_socket, per_room = least_squares(
        [[1.0, c["sockets"] / 1024, c["workspaces"] / 1024] for c in mem],
        [c["rss_idle_mib"] for c in mem],
    )
    cpu = [c for c in cells if c.get("us_per_event") is not None]
    event, delivery, room = least_squares(
        [[1.0, float(c["agents"]), float(c["workspaces"])] for c in cpu],
        [c["us_per_event"] for c in cpu],
    )
    idle = [c for c in cells if c.get("idle_cpu_pct") is not None]
    idle0, idle_per_1k = least_squares(
        [[1.0, c["sockets"] / 1000] for c in idle], [c["idle_cpu_pct"] for c in idle]
    )
    return Model(base, per_socket, per_room, event, delivery, room, idle0, idle_per_1k)


def predicted(model: Model, workspaces: int, agents: int, events_per_s: float) -> dict[str, Any]:
    """A cell as the model sees it: W workspaces of A agent sockets, events_per_s spread over
    them (so every event goes to A sockets)."""
    sockets = workspaces * agents
    busy = events_per_s * model.us_per_event(agents, workspaces) / 1e6
    return {
        "workspaces": workspaces,
        "agents": agents,
        "sockets": sockets,
        "rss_idle_mib": round(model.rss_mib(sockets, workspaces), 1),
        "kib_per_socket": round(
            (model.rss_mib(sockets, workspaces) - model.base_mib) * 1024 / sockets, 1
        ),
        "idle_cpu_pct": round(model.idle_pct_of_core(sockets), 2),
        "us_per_event": round(model.us_per_event(agents, workspaces), 1),
        "us_per_delivery": round(model.us_per_delivery(agents, workspaces), 1),
        "busy_pct": round(100 * busy + model.idle_pct_of_core(sockets), 1),
    }


def largest_misses(model: Model, cells: list[dict[str, Any]]) -> dict[str, float]:
    """How far the model is from the measured cells, the worst of each figure: RSS and CPU per
    event in % of the measured value, idle CPU in points of a core's %."""
    worst = {"rss_idle_mib": 0.0, "us_per_event": 0.0, "idle_cpu_pct": 0.0}
    for c in cells:
        misses = {
            "rss_idle_mib": (model.rss_mib(c["sockets"], c["workspaces"]), c.get("rss_idle_mib")),
            "us_per_event": (
                model.us_per_event(c["agents"], c["workspaces"]),
                c.get("us_per_event"),
            ),
        }
        for key, (guess, real) in misses.items():
            if real:
                miss = 100 * (guess - real) / real
                worst[key] = max(worst[key], miss, key=abs)
        if c.get("idle_cpu_pct") is not None:
            miss = model.idle_pct_of_core(c["sockets"]) - c["idle_cpu_pct"]
            worst["idle_cpu_pct"] = max(worst["idle_cpu_pct"], miss, key=abs)
    return worst


COLUMNS = {  # field: heading, for the measured cells
    "workspaces": "workspaces", "agents": "agents/ws", "sockets": "sockets",
    "connect_s": "connect s", "rss_base_mib": "RSS base MiB", "rss_idle_mib": "RSS idle MiB",
    "kib_per_socket": "KiB/socket", "idle_cpu_pct": "idle CPU %", "events_per_s": "events/s",
    "sent": "msgs", "delivered": "delivered", "loss": "loss", "p50_ms": "p50 ms",
    "p99_ms": "p99 ms", "us_per_delivery": "CPU µs/delivery", "us_per_event": "CPU µs/event",
    "busy_pct": "CPU % busy", "xread_per_s": "XREAD/s", "xread_us_per_call": "µs/XREAD",
}  # fmt: skip

MODEL_COLUMNS = {  # field: heading, for the model's cells
    "workspaces": "workspaces", "agents": "agents/ws", "sockets": "sockets",
    "rss_idle_mib": "RSS idle MiB", "kib_per_socket": "KiB/socket", "idle_cpu_pct": "idle CPU %",
    "us_per_event": "CPU µs/event", "us_per_delivery": "CPU µs/delivery",
    "busy_pct": "CPU % busy",
}  # fmt: skip
