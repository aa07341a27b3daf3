"""What the database last said, for when it cannot answer.

A client that reconnects during a Postgres outage must not be refused for want of facts it was
already granted: an agent's membership (role, name, password mark), the member an API token
acts for, and a web-chat channel's workspace, public key, allowed origins and status. Each
successful read of one of those is kept on the bus (Redis), under the owner's workspace tag,
for `ttl_s`; when the database is unreachable (`hub.errors.outage`), the reader takes the kept
value instead of failing. The database's answer always wins while it answers: the fallback is
never consulted then.

Kept on the bus, not in this process, so that every node sees the same copy: a node started
during the outage, or one that never served that agent, can use what another node read; and a
revocation (a removed member, a revoked token, a disconnected channel) forgets the copy for
every node at once. The process only remembers what it last wrote, so that the bus is written
when a value is new or changed and again every `ttl_s / 2`, not on every read.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from hub.errors import outage

if TYPE_CHECKING:
    from hub.bus import Bus

log = logging.getLogger("hub.lastknown")

RETRY_WRITE_S = 30.0  # after a failed write (the bus away), try again no sooner
WARN_EVERY_S = 60.0  # one log line per kind of fallback this often, not one per reconnect


class LastKnown:
    def __init__(self, bus: Bus, *, ttl_s: int, max_entries: int = 50_000) -> None:
        self.bus = bus
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._written: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._warned: dict[str, float] = {}

    async def keep(self, tenant: str, key: str, value: str) -> None:
        """After a successful database read. Never fails: the bus being away only means there
        is no fallback for this value until a later write succeeds."""
        now = time.monotonic()
        mark = self._written.get((tenant, key))
        if mark is not None and mark[0] == value and mark[1] > now:
            return
        try:
            await self.bus.remember(tenant, "known:" + key, value, ttl_s=self.ttl_s)
        except Exception as exc:
            log.warning("could not keep a last known value: %s", type(exc).__name__)
            self._mark(tenant, key, value, now + RETRY_WRITE_S)
            return
        self._mark(tenant, key, value, now + self.ttl_s / 2)

    async def recall(self, tenant: str, key: str, what: str) -> str | None:
        """During an outage: the kept value, or None (also when the bus does not answer)."""
        try:
            value = await self.bus.recall(tenant, "known:" + key)
        except Exception as exc:
            if not outage(exc):
                raise
            return None
        if value is not None:
            self._warn(what)
        return value

    async def forget(self, tenant: str, key: str) -> None:
        """After a revocation: no node may fall back to the old value."""
        self._written.pop((tenant, key), None)
        await self.bus.forget(tenant, ["known:" + key])

    def drop(self, tenant: str, key: str) -> None:
        """The database says the value is gone: write it again if it comes back."""
        self._written.pop((tenant, key), None)

    def _mark(self, tenant: str, key: str, value: str, until: float) -> None:
        self._written[(tenant, key)] = (value, until)
        self._written.move_to_end((tenant, key))
        if len(self._written) > self.max_entries:
            self._written.popitem(last=False)

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if self._warned.get(what, 0.0) <= now:
            self._warned[what] = now + WARN_EVERY_S
            log.warning("database unavailable: %s answered from the last known copy", what)
