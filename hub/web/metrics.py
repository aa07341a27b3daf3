"""What a node counts about itself, and its Prometheus exposition (`/metrics`).

The hot path only adds to plain integers (a socket opened, frames handed to sockets, one
latency per event, one send's outcome): no locks, no tasks, no label lookups per frame.
Everything is turned into metric families when scraped, by `Collector`, in a registry of
this `Metrics` object's own (tests build many apps in one process, so never the global one).
Figures read from Redis and the database at scrape time arrive as a `Snapshot`.

Labels hold only bounded sets: socket kinds, channel kinds, send results and error codes,
consumer-group names, channel statuses. Never workspace ids, contact data or message text.
"""

from __future__ import annotations

import bisect
import gc
import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from hub.bus.base import BusStats
from schemas.message import ChannelKind

# Publish-to-socket seconds; stream ids have millisecond resolution.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RATE_WINDOW_S = 60.0
MAX_CODES = 64  # distinct send error codes kept as label values; the rest count as "other"
_CODE = re.compile(r"[A-Za-z0-9_./-]{1,40}")
_CHANNEL_KINDS = frozenset(k.value for k in ChannelKind)
SOCKET_KINDS = ("agent", "visitor")
# Why a connection was refused or closed by the limits per address (docs/operations.md)
REFUSALS = ("sockets_per_address", "pending_per_address", "header_timeout")


class Latency:
    """A fixed-bucket histogram: `observe` is a bisect and three additions."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        buckets, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return buckets

    def quantile(self, q: float) -> float | None:
        """Like PromQL's histogram_quantile: linear within the bucket that holds rank q;
        the highest finite bound when that bucket is +Inf; None with no observations."""
        if not self.count:
            return None
        rank, seen = q * self.count, 0
        for index, n in enumerate(self.counts):
            if n and seen + n >= rank:
                if index == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[index - 1] if index else 0.0
                return lower + (self.bounds[index] - lower) * (rank - seen) / n
            seen += n
        return self.bounds[-1]


class Delivery:
    """Frames handed to sockets by this node's fan-out, and how long after publish; the
    tail's rounds that read events, and the events they read."""

    __slots__ = ("events", "frames", "latency", "rounds")

    def __init__(self) -> None:
        self.frames = 0
        self.latency = Latency()
        self.rounds = 0
        self.events = 0

    def record(self, frames: int, event_id: str, now_s: float) -> None:
        """`frames` copies of one event handed to sockets at `now_s` (wall clock). The
        event id's millisecond part is its publish time (see `docs/operations.md`)."""
        self.frames += frames
        published_ms = int(event_id.partition("-")[0])
        self.latency.observe(max(0.0, now_s - published_ms / 1000))


@dataclass(frozen=True)
class Snapshot:
    """Figures read at scrape time; None where the source did not answer."""

    bus: BusStats | None = None
    channels: dict[str, int] | None = None  # channels by status
    refused: dict[str, int] = field(default_factory=dict)  # connections, by REFUSALS reason


@dataclass
class Metrics:
    delivery: Delivery = field(default_factory=Delivery)
    sockets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOCKET_KINDS, 0))
    sends: dict[tuple[str, str, str], int] = field(default_factory=dict)
    started_s: float = field(default_factory=time.monotonic)
    bus_losses: int = 0  # data losses of the bus this process noticed (`hub.web.epoch`)
    bus_loss: dict[str, str] | None = None  # the one not yet acknowledged, as last checked
    registry: CollectorRegistry = field(init=False)
    snapshot: Snapshot = field(default_factory=Snapshot)
    _codes: set[str] = field(default_factory=set)
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(self))

    def sent(self, channel_kind: str, result: str, code: str) -> None:
        """One outbound send's final outcome."""
        kind = channel_kind if channel_kind in _CHANNEL_KINDS else "other"
        key = (kind, result, self._code(code))
        self.sends[key] = self.sends.get(key, 0) + 1

    def _code(self, code: str) -> str:
        if not code:
            return "none"
        if code in self._codes:
            return code
        if len(self._codes) >= MAX_CODES or not _CODE.fullmatch(code):
            return "other"
        self._codes.add(code)
        return code

    def events_per_s(self) -> tuple[float, float]:
        """Frames per second handed to sockets over about the last minute, and the window
        in seconds (since start until a sample a minute old exists). Samples are taken when
        asked, at most one a second, so the deque stays small."""
        now, frames = time.monotonic(), self.delivery.frames
        samples = self._samples
        if not samples or now - samples[-1][0] >= 1.0:
            samples.append((now, frames))
        while len(samples) > 1 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        since, before = samples[0]
        if now - since < 1.0:
            since, before = self.started_s, 0
        window = max(now - since, 1e-6)
        return (frames - before) / window, window

    def exposition(self, snapshot: Snapshot) -> bytes:
        self.snapshot = snapshot  # no await between this and the rendering
        return generate_latest(self.registry)


class Collector:
    """Turns a `Metrics` into metric families when the registry is scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        sockets = GaugeMetricFamily(
            "hub_sockets", "Open websockets on this node, by kind.", labels=["kind"]
        )
        for kind, n in m.sockets.items():
            sockets.add_metric([kind], n)
        yield sockets
        yield CounterMetricFamily(
            "hub_socket_frames",
            "Event frames this node handed to sockets (one per socket per event).",
            value=m.delivery.frames,
        )
        yield CounterMetricFamily(
            "hub_fanout_rounds",
            "Rounds of this node's fan-out tail that read events (under load a round gathers "
            "several: hub_fanout_events / hub_fanout_rounds).",
            value=m.delivery.rounds,
        )
        yield CounterMetricFamily(
            "hub_fanout_events",
            "Events this node's fan-out tail read, each once whatever its sockets.",
            value=m.delivery.events,
        )
        latency = m.delivery.latency
        yield HistogramMetricFamily(
            "hub_delivery_latency_seconds",
            "Seconds from an event's publish on the stream (its id's time; for a webhook, "
            "within the request) to its frame being handed to this node's sockets.",
            buckets=latency.cumulative(),
            sum_value=latency.sum,
        )
        sends = CounterMetricFamily(
            "hub_outbound_sends",
            "Outbound sends by channel kind, result and error code.",
            labels=["channel", "result", "code"],
        )
        for (kind, result, code), n in sorted(m.sends.items()):
            sends.add_metric([kind, result, code], n)
        yield sends
        yield CounterMetricFamily(
            "hub_bus_data_losses",
            "Times this process noticed that Redis lost the hub's data (its epoch key).",
            value=m.bus_losses,
        )
        yield GaugeMetricFamily(
            "hub_bus_data_loss_unacknowledged",
            "1 while a loss of the bus's data is recorded and no operator acknowledged it "
            "(`hub bus acknowledge-loss`).",
            value=int(m.bus_loss is not None),
        )
        yield from _collector()
        yield from _scraped(m.snapshot)


def _collector() -> Iterator[Metric]:
    """Python's garbage collector in this process: a full collection pauses every socket."""
    collections = CounterMetricFamily(
        "hub_gc_collections", "Garbage collections by generation.", labels=["generation"]
    )
    thresholds = GaugeMetricFamily(
        "hub_gc_threshold", "The collector's threshold by generation.", labels=["generation"]
    )
    for generation, (stats, threshold) in enumerate(
        zip(gc.get_stats(), gc.get_threshold(), strict=True)
    ):
        collections.add_metric([str(generation)], stats["collections"])
        thresholds.add_metric([str(generation)], threshold)
    yield collections
    yield thresholds
    yield GaugeMetricFamily(
        "hub_gc_frozen_objects",
        "Objects made at start-up, left out of every collection.",
        value=gc.get_freeze_count(),
    )


def _scraped(snapshot: Snapshot) -> Iterator[Metric]:
    refused = CounterMetricFamily(
        "hub_connections_refused",
        "Connections this node refused or closed under the limits per client address.",
        labels=["reason"],
    )
    for reason in REFUSALS:
        refused.add_metric([reason], snapshot.refused.get(reason, 0))
    yield refused
    bus = snapshot.bus
    yield GaugeMetricFamily(
        "hub_bus_up", "Whether the bus answered this scrape.", value=int(bus is not None)
    )
    if bus is not None:
        yield GaugeMetricFamily(
            "hub_streams", "Workspace streams counted in the stream figures.", value=bus.streams
        )
        yield GaugeMetricFamily(
            "hub_streams_capped",
            "1 when there were more workspace streams than were counted.",
            value=int(bus.capped),
        )
        yield GaugeMetricFamily(
            "hub_stream_entries", "Entries kept in the workspace streams.", value=bus.entries
        )
        lag = GaugeMetricFamily(
            "hub_group_lag",
            "Stream entries not yet handed to the consumer group.",
            labels=["group"],
        )
        pending = GaugeMetricFamily(
            "hub_group_pending",
            "Entries handed to a consumer of the group and not yet acknowledged.",
            labels=["group"],
        )
        for name, stats in sorted(bus.groups.items()):
            lag.add_metric([name], stats.lag)
            pending.add_metric([name], stats.pending)
        yield lag
        yield pending
    channels = snapshot.channels
    yield GaugeMetricFamily(
        "hub_database_up",
        "Whether the database answered this scrape.",
        value=int(channels is not None),
    )
    if channels is not None:
        family = GaugeMetricFamily(
            "hub_channels", "Channels of every workspace, by status.", labels=["status"]
        )
        for status, n in sorted(channels.items()):
            family.add_metric([status], n)
        yield family
