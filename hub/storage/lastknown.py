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

Deleting the copy is not enough: a node that read the value just before the revocation's commit
may write its copy just after the deletion. So a revocation first writes a marker beside the
copy, then deletes the copy; a write is refused while the marker lives (checked and written in
one step on the bus: `Bus.remember(unless=...)`), and a copy found with a marker is ignored (in
case the deletion failed after the marker was written). Access gone for good (a removed member,
a revoked API token: `revoke`) is marked for `ttl_s`, the life of any copy, so no late write
can outlive it. A change that leaves access in place (a role, a password, a web chat's
settings: `forget`) is marked for `change_hold_s`, far longer than a read takes to reach its
write, after which the new value is kept again; a node's late write inside that time is
refused, and after it a node only writes what it reads then.

The database is the truth while it answers: a revocation whose marker cannot be written (the
bus away) logs one warning and succeeds; the copy, if any, then expires by its TTL.
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
CHANGE_HOLD_S = 60  # after a change, no copy is written for this long (the docstring says why)
WARN_EVERY_S = 60.0  # one log line per kind of fallback this often, not one per reconnect


class LastKnown:
    def __init__(
        self,
        bus: Bus,
        *,
        ttl_s: int,
        change_hold_s: int = CHANGE_HOLD_S,
        max_entries: int = 50_000,
    ) -> None:
        self.bus = bus
        self.ttl_s = ttl_s
        self.change_hold_s = max(1, min(change_hold_s, ttl_s))
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
            kept = await self.bus.remember(
                tenant, "known:" + key, value, ttl_s=self.ttl_s, unless="revoked:" + key
            )
        except Exception as exc:
            log.warning("could not keep a last known value: %s", type(exc).__name__)
            kept = False
        # Refused (a revocation's marker): tried again once a change's marker has lapsed.
        retry_s = min(RETRY_WRITE_S, self.change_hold_s)
        self._mark(tenant, key, value, now + (self.ttl_s / 2 if kept else retry_s))

    async def recall(self, tenant: str, key: str, what: str) -> str | None:
        """During an outage: the kept value, or None (also when the bus does not answer)."""
        try:
            value = await self.bus.recall(tenant, "known:" + key, unless="revoked:" + key)
        except Exception as exc:
            if not outage(exc):
                raise
            return None
        if value is not None:
            self._warn(what)
        return value

    async def revoke(self, tenant: str, key: str) -> None:
        """After access was taken away for good: no node may fall back to the old value, nor
        write it again. Never fails (see the module's docstring)."""
        await self._veto(tenant, key, self.ttl_s)

    async def forget(self, tenant: str, key: str) -> None:
        """After a change: no node may fall back to the old value; the new one is kept again
        after `change_hold_s`. Never fails."""
        await self._veto(tenant, key, self.change_hold_s)

    async def _veto(self, tenant: str, key: str, hold_s: int) -> None:
        self._written.pop((tenant, key), None)
        try:
            await self.bus.remember(tenant, "revoked:" + key, "1", ttl_s=hold_s)
            await self.bus.forget(tenant, ["known:" + key])
        except Exception as exc:
            log.warning(
                "could not mark a last known value revoked (it expires with its TTL): %s",
                type(exc).__name__,
            )

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
