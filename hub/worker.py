"""The worker role: stream consumers that are not tied to a socket, one per consumer group.

- "persist" applies tenant events to the database (`hub.persist`).
- "send" performs agents' replies on the platforms (`hub.sender`).

Each worker is one consumer of each group; several workers share the work. A batch is
acked only after its handler finished. Entries another consumer left pending for
`claim_idle_ms` (it crashed) are claimed and handled here. If a handler fails (the
database is away, say), nothing is acked and the batch is retried with backoff; live
delivery is unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sqlalchemy import exc as sa_exc

from hub import erasure, persist
from hub.bus import Batch, Bus, Event
from hub.settings import Settings
from hub.store import Sessions

log = logging.getLogger("hub.worker")

PERSIST_GROUP = "persist"
SEND_GROUP = "send"
PROFILE_GROUP = "profile"
# Errors that retrying cannot fix (as opposed to the database being away).
UNAPPLIABLE = (ValueError, KeyError, TypeError, sa_exc.IntegrityError, sa_exc.DataError)
BATCH = 200

# (workspace id, events, claimed from a consumer that stopped) -> done
Handler = Callable[[str, list[Event], bool], Awaitable[None]]


class Consumer:
    def __init__(
        self, settings: Settings, bus: Bus, group: str, handle: Handler, *, block_ms: int = 1000
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.group = group
        self.handle = handle
        self.block_ms = block_ms
        self.name = f"{socket.gethostname()}-{os.getpid()}-{settings.node_id}"
        self._known: set[str] = set()
        self._retry: Batch = []  # read but not yet handled: retried before reading more
        self._task: asyncio.Task[None] | None = None
        self.handled = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"hub-{self.group}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        backoff = 0.2
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._refresh_workspaces()
                if loop.time() - last_claim > self.settings.claim_idle_ms / 2000:
                    last_claim = loop.time()
                    await self._claim_stale()
                if not self._known:
                    await asyncio.sleep(self.block_ms / 1000)
                    continue
                if not self._retry:
                    self._retry = await self.bus.read_group(
                        self.group,
                        self.name,
                        sorted(self._known),
                        count=BATCH,
                        block_ms=self.block_ms,
                    )
                while self._retry:
                    await self._handle(*self._retry[0], claimed=False)
                    self._retry.pop(0)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s failed; retrying in %.1fs", self.group, backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _refresh_workspaces(self) -> None:
        current = await self.bus.workspaces()
        new = current - self._known
        if new:
            await self.bus.ensure_group(self.group, new)
            self._known |= new

    async def _claim_stale(self) -> None:
        for workspace_id in sorted(self._known):
            while True:
                events = await self.bus.autoclaim(
                    self.group,
                    self.name,
                    workspace_id,
                    min_idle_ms=self.settings.claim_idle_ms,
                    count=BATCH,
                )
                if not events:
                    break
                await self._handle(workspace_id, events, claimed=True)

    async def _handle(self, workspace_id: str, events: list[Event], *, claimed: bool) -> None:
        await self.handle(workspace_id, events, claimed)
        await self.bus.ack(self.group, workspace_id, [e.id for e in events])
        self.handled += len(events)


class Persister:
    def __init__(self, sessions: Sessions, bus: Bus) -> None:
        self.sessions = sessions
        self.bus = bus

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        # An erased person's events that a consumer read before they were purged.
        events = await erasure.unerased(self.bus, workspace_id, events)
        try:
            await persist.apply(self.sessions, workspace_id, events)
        except UNAPPLIABLE:
            # A malformed event must not block the ones behind it: apply one by one and
            # skip (log, ack) only the ones that cannot be applied.
            for event in events:
                try:
                    await persist.apply(self.sessions, workspace_id, [event])
                except UNAPPLIABLE:
                    log.error(
                        "skipping event %s of workspace %s: cannot be applied",
                        event.id,
                        workspace_id,
                        exc_info=True,
                    )


class Task(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Worker:
    """One consumer in each group, sharing the process's bus, and periodic tasks."""

    def __init__(self, consumers: list[Consumer], tasks: Sequence[Task] = ()) -> None:
        self.consumers = consumers
        self.tasks = list(tasks)

    async def start(self) -> None:
        for part in [*self.consumers, *self.tasks]:
            await part.start()

    async def stop(self) -> None:
        for part in [*self.consumers, *self.tasks]:
            await part.stop()

    @property
    def name(self) -> str:
        return self.consumers[0].name
