"""Answers about the hub itself: liveness, readiness and the admins' status figures."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.rest.base import ErrorDetail, Out


class Health(Out):
    bus: bool
    database: bool
    node: str


Check = Literal["ok", "error", "timeout"]


class ReadyChecks(Out):
    redis: Check = Field(description="The bus answers PING (the in-process bus always does)")
    database: Check = Field(description="The database answers SELECT 1")
    media: Check = Field(description="The media store is writable, or its bucket answers")


class BusLoss(Out):
    detected_at: str = Field(description="When the first node noticed it (ISO 8601, UTC)")
    node: str = Field(description="The node (HUB_NODE_ID) that noticed it first")


class Readiness(Out):
    ready: bool
    checks: ReadyChecks = Field(description="Each check within 2 s: ok, error or timeout")
    error: ErrorDetail | None = Field(default=None, description="When not ready: `not_ready`")
    bus_loss: BusLoss | None = Field(
        default=None,
        description="Redis lost the hub's data and no operator acknowledged it yet "
        "(`hub bus acknowledge-loss`). Not a failed check: the node serves.",
    )


class SocketCounts(Out):
    agent: int = Field(ge=0)
    visitor: int = Field(ge=0)


class EventRate(Out):
    delivered: int = Field(ge=0, description="Event frames handed to sockets since start")
    per_s: float = Field(ge=0, description="Frames per second over `window_s`")
    window_s: float = Field(description="About the last minute; since start until then")


class LatencyFigures(Out):
    count: int = Field(ge=0, description="Events delivered live since start")
    p50: float | None = Field(description="Seconds from publish to the sockets; none yet: null")
    p99: float | None


class OutboundCount(Out):
    channel: str = Field(description="The channel kind")
    result: Literal["sent", "failed", "needs_reconnect", "retry"]
    code: str = Field(description="The error code (`none` when sent, `other` past the limit)")
    count: int = Field(ge=0)


class GroupFigures(Out):
    lag: int = Field(ge=0, description="Stream entries not yet handed to the group")
    pending: int = Field(ge=0, description="Handed to a worker, not yet acknowledged")


class StreamFigures(Out):
    entries: int = Field(ge=0, description="Entries the workspace's event stream keeps")
    groups: dict[str, GroupFigures] = Field(description="Per consumer group (persist, send...)")


class HubStatus(Out):
    node: str = Field(description="The node that answered")
    uptime_s: float
    sockets: SocketCounts = Field(description="Open websockets on this node, every workspace")
    events: EventRate = Field(description="This node's delivery to sockets")
    latency_s: LatencyFigures = Field(description="Percentiles from the latency histogram")
    outbound: list[OutboundCount] = Field(description="Sends by this node's worker role")
    stream: StreamFigures | None = Field(description="This workspace's; null: bus down")
    channels: dict[str, int] | None = Field(
        description="This workspace's channels by status; null: database down"
    )
    bus_loss: BusLoss | None = Field(
        default=None,
        description="Redis lost the hub's data (unacknowledged): events acknowledged before "
        "then and not yet stored are gone",
    )
