"""Noticing that the bus lost its data, as Centrifugo does with its stream epochs.

Redis is the log until the persist group has stored an event, so a Redis that comes back
without its data (no persistence, a failover to an empty replica, a FLUSHALL) loses whatever
was acknowledged and not yet persisted, and every resume cursor with it. Each process writes a
random epoch where the bus has none (`Bus.epochs`, SET NX) and remembers what it found; every
`CHECK_S` (and so at once after Redis returns) it looks again. An epoch gone or changed is a
loss. The process then:

- logs one line (error level, `hub.bus`), once per loss;
- counts it (`hub_bus_data_losses_total` in /metrics);
- records it in the bus (`Bus.record_loss`: the first detection's time and node win), which
  /readyz, /metrics (`hub_bus_data_loss_unacknowledged`) and the status page report, on every
  node, until an operator runs `hub bus acknowledge-loss` (docs/operations.md);
- calls `on_loss`: a web node closes its sockets with 4409 and forgets its rooms' memory, so
  every client reloads over REST instead of trusting events that may exist nowhere any more.

What a check compares to is what this process saw at its previous check, never what it found
at start: the first check only learns the epochs (writing its token where there is none). So
at start nothing counts as a loss, not even some epochs missing and some present, which on a
cluster (one epoch per bucket, `BUCKETS` keys on several shards, no atomic write across them)
is also what several processes starting together see: their SET NX of each bucket interleave,
so each finds some buckets written by another and writes the rest itself. A process that
never saw the old epochs cannot know they were lost; one that did notices at its next check,
since the keys then hold another token (the newcomer's) or nothing. So a shard that lost its
data is reported by every process that was running before it (and by a later one only if it
checks again after a further loss); a loss while no process was running cannot be told from
a first start and is not reported, and resumes still get 4409, because the streams refuse
cursors from before they were re-created.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from hub.bus.base import Bus
from hub.web.metrics import Metrics

log = logging.getLogger("hub.bus")

CHECK_S = 2.0  # how soon after Redis returns a loss is noticed


class EpochWatch:
    def __init__(
        self,
        bus: Bus,
        metrics: Metrics,
        *,
        node: str,
        every_s: float = CHECK_S,
        on_loss: Callable[[], None] | None = None,
    ) -> None:
        self.bus = bus
        self.metrics = metrics
        self.node = node
        self.every_s = every_s
        self.on_loss = on_loss
        self._seen: list[str | None] | None = None  # the epochs as last checked
        self._unrecorded: dict[str, str] | None = None  # noticed, not yet written to the bus
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with contextlib.suppress(Exception):  # the bus away at start: the loop tries again
            await self.check()
        self._task = asyncio.create_task(self._run(), name="hub-epoch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> bool:
        """One look at the epoch (and at the recorded loss); True if a loss was noticed now."""
        token = uuid.uuid4().hex
        before = await self.bus.epochs(token)
        seen, self._seen = self._seen, [b or token for b in before]
        # At start there is nothing to compare to (the module's docstring says why).
        lost = seen is not None and before != seen
        if lost:
            self._noticed()
        if self._unrecorded is not None:
            await self.bus.record_loss(self._unrecorded)
            self._unrecorded = None
        self.metrics.bus_loss = await self.bus.loss()
        return lost

    def _noticed(self) -> None:
        self.metrics.bus_losses += 1
        self._unrecorded = {
            "detected_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "node": self.node,
        }
        log.error(
            "Redis lost the hub's data (its epoch key is gone or new): events acknowledged "
            "and not yet persisted are lost, and clients reload over REST (4409). Persistence "
            "goes on with new events. Check the Redis persistence settings, then run "
            "`hub bus acknowledge-loss`."
        )
        if self.on_loss is not None:
            self.on_loss()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus is away: the fan-out and workers say so
                log.debug("epoch check failed: %r", exc)
