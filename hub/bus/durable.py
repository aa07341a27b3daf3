"""What an ack waits for on Redis (`HUB_BUS_DURABLE_ACK`, docs/operations.md "Durability of an
ack"), and what `hub serve` says at start about the server's persistence.

Redis answers a write once it is in memory. `off` acks then: what Redis loses in a crash
(depending on its persistence settings) is lost. The strict modes ack a batch of publishes
only once it is durable, with one extra round trip per batch:

- `aof`: fsynced to the server's append-only file. On Redis 7.2 and newer, `WAITAOF 1 0 T`.
  Older servers have no WAITAOF; there, with `appendonly yes` and `appendfsync always`, every
  reply already follows the fsync (the AOF is flushed before replies are written), so the
  wait checks those two settings (`CONFIG GET`) instead, and refuses when they differ.
- `replica`: received by `replicas` replicas (`WAIT N T`): it survives the primary's crash
  when a replica takes over (Sentinel, a managed failover), not a crash of them all.

WAIT and WAITAOF wait for the writes of the connection they are sent on, and a pool hands each
command any connection. So a wait is preceded, on the same connection (a pipeline), by a small
write of its own (the barrier): its replication offset is past every write the server answered
before it, whichever connection made them, a redelivery's original publish included.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from hub.errors import NotDurable

log = logging.getLogger("hub.bus")

DURABLE_MODES = ("off", "aof", "replica")
WAITAOF_SINCE = (7, 2)
BARRIER_TTL_MS = 60_000
FAILURE_LOG_EVERY_S = 60.0  # one warning a minute while waits fail, not one per send


def version(info: dict[str, Any]) -> tuple[int, int]:
    raw = str(info.get("redis_version", "0.0"))
    major, _, rest = raw.partition(".")
    minor = rest.partition(".")[0]
    return (int(major) if major.isdigit() else 0, int(minor) if minor.isdigit() else 0)


def _config(reply: Any) -> dict[str, str]:
    """CONFIG GET's answer as a dict, whether redis-py paired it or not."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    items = list(reply or [])
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}


class Settler:
    """Waits, once per publish batch, until what the server acknowledged is durable as `mode`
    asks (`DURABLE_MODES`); raises `NotDurable` (the retryable `unavailable`) when it is not
    within `timeout_ms`."""

    def __init__(self, mode: str, *, replicas: int, timeout_ms: int) -> None:
        if mode not in DURABLE_MODES:
            raise ValueError(f"durable mode must be one of {DURABLE_MODES}")
        self.mode = mode
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self._version: tuple[int, int] | None = None  # learnt on the first wait
        self._logged_at = -FAILURE_LOG_EVERY_S

    async def settle(self, redis: Redis, barrier: str) -> None:
        if self.mode == "off":
            return
        try:
            if self.mode == "replica":
                done = await self._wait(redis, barrier, "WAIT", self.replicas, self.timeout_ms)
                ok, why = int(done) >= self.replicas, f"{done} of {self.replicas} replicas"
            elif await self._has_waitaof(redis):
                done = await self._wait(redis, barrier, "WAITAOF", 1, 0, self.timeout_ms)
                ok, why = int(done[0]) >= 1, "not fsynced to the AOF in time"
            else:
                config = _config(await redis.config_get("append*"))
                ok = config.get("appendonly") == "yes" and config.get("appendfsync") == "always"
                why = f"Redis < 7.2 without appendonly yes and appendfsync always ({config})"
        except ResponseError as exc:
            if "unknown command" in str(exc).lower():
                self._version = None  # the server changed under us: learn it again
            ok, why = False, str(exc)
        if not ok:
            self._failed(why)
            raise NotDurable()

    async def _has_waitaof(self, redis: Redis) -> bool:
        if self._version is None:
            self._version = version(await redis.info("server"))
        return self._version >= WAITAOF_SINCE

    async def _wait(self, redis: Redis, barrier: str, *command: str | int) -> Any:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(barrier, "1", px=BARRIER_TTL_MS)
            pipe.execute_command(*command)
            _, answer = await pipe.execute()
        return answer

    def _failed(self, why: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= FAILURE_LOG_EVERY_S:
            self._logged_at = now
            log.warning("durable ack (%s) refused: %s; clients are told to retry", self.mode, why)


async def persistence_warning(redis: Redis, *, mode: str) -> str | None:
    """One line for the log when the server does not persist its writes (or cannot be asked),
    else None. CONFIG is often disabled on managed Redis: then INFO persistence answers."""
    try:
        config = _config(await redis.config_get("append*"))
        aof, fsync = config.get("appendonly"), config.get("appendfsync")
    except ResponseError:
        try:
            info = await redis.info("persistence")
        except RedisError:
            return "could not tell whether Redis persists its data (CONFIG and INFO refused)"
        aof, fsync = ("yes" if str(info.get("aof_enabled")) == "1" else "no"), None
    if aof != "yes":
        lost = "every event not yet stored in Postgres"
        if mode == "aof":
            lost += "; HUB_BUS_DURABLE_ACK=aof will refuse every send until AOF is on"
        return (
            "Redis persistence is off (appendonly no): a Redis crash or restart loses "
            f"{lost}. Run Redis with --appendonly yes --appendfsync everysec "
            "(docs/operations.md, Durability of an ack)"
        )
    if fsync == "no":
        return (
            "Redis appendfsync is 'no': a crash of its machine loses the last ~30 s of "
            "acknowledged events; use appendfsync everysec or always"
        )
    return None
