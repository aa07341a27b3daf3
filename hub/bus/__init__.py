"""The event bus: `make_bus` picks Redis Streams when REDIS_URL is set, else the in-process bus."""

from __future__ import annotations

from hub.bus.base import ZERO_ID, Batch, Bus, Event, Published, parse_id
from hub.settings import Settings

__all__ = ["ZERO_ID", "Batch", "Bus", "Event", "Published", "make_bus", "parse_id"]


def make_bus(settings: Settings) -> Bus:
    if settings.redis_url is None:
        from hub.bus.memory import MemoryBus

        return MemoryBus(stream_maxlen=settings.stream_maxlen, dedupe_ttl_s=settings.dedupe_ttl_s)
    from hub.bus.redis import RedisBus

    return RedisBus(
        settings.redis_url,
        prefix=settings.redis_prefix,
        stream_maxlen=settings.stream_maxlen,
        dedupe_ttl_s=settings.dedupe_ttl_s,
        cluster=settings.redis_cluster,
        durable_ack=settings.bus_durable_ack,
        durable_replicas=settings.bus_durable_replicas,
        durable_timeout_ms=settings.bus_durable_timeout_ms,
    )
