"""The worker role: stream consumers that are not tied to a socket, one per consumer group.

- "persist" applies tenant events to the database (`hub.workers.persist`).
- "send" performs agents' replies on the platforms (`hub.workers.sender`).
- "profile" fetches contacts' profiles from the platforms (`hub.workers.profiles`).
- "media" fetches inbound files from the platforms into the media library (`hub.workers.media`).
- "automation" answers contacts by itself: the away auto-reply (`hub.automation.worker`).

Each worker is one consumer of each group it runs; several workers share the work. A worker
runs every group unless told otherwise (`hub worker --groups media`, `--without media`;
`select_groups`), so fetching and re-encoding photos can get processes of its own and never
take the event loop from persistence. The periodic tasks (sweeps, retries, token refresh) run
in the workers that run "persist": every deployment has one, and none runs them twice over
for having been split. A batch is
acked only after its handler finished. Entries another consumer left pending for
`claim_idle_ms` (it crashed) are claimed and handled here. If a handler fails (the
database is away, say), nothing is acked and the batch is retried with backoff; live
delivery is unaffected.

Stopping (SIGTERM) lets the batch in hand finish and be acked, for at most
`shutdown_grace_s`, and reads nothing more; a consumer waiting for entries stops at once.
What was read and not handled stays pending and is claimed by another worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sqlalchemy import exc as sa_exc

from hub.bus import Batch, Bus, Event
from hub.media.library import MediaLibrary
from hub.privacy import erasure
from hub.routing.service import Router
from hub.settings import Settings, SettingsError
from hub.storage.store import Sessions
from hub.workers import persist
from schemas.events import ConversationUpdated, MessageUpdated

log = logging.getLogger("hub.worker")

PERSIST_GROUP = "persist"
SEND_GROUP = "send"
PROFILE_GROUP = "profile"
_BAD_INPUT = (ValueError, KeyError, TypeError, sa_exc.IntegrityError, sa_exc.DataError)
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
        self._busy = False  # a batch is being handled
        self._stopping = False
        self.handled = 0

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name=f"hub-{self.group}")

    async def stop(self) -> None:
        """Finish the batch in hand (then ack it), at most `shutdown_grace_s`; then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if not self._busy:
            task.cancel()
        _, pending = await asyncio.wait({task}, timeout=self.settings.shutdown_grace_s)
        if pending:
            log.warning("%s: the batch in hand did not finish in time; left pending", self.group)
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s stopped with an error", self.group)

    async def run(self) -> None:
        backoff = 0.2
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
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
                while self._retry and not self._stopping:
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
                if self._stopping:
                    return

    async def _handle(self, workspace_id: str, events: list[Event], *, claimed: bool) -> None:
        self._busy = True
        alive = asyncio.create_task(self._keep_alive(workspace_id, events))
        try:
            await self.handle(workspace_id, events, claimed)
            await self.bus.ack(self.group, workspace_id, [e.id for e in events])
        finally:
            alive.cancel()
            self._busy = False
        self.handled += len(events)

    async def _keep_alive(self, workspace_id: str, events: list[Event]) -> None:
        """While a batch is handled (a send retried with backoff can take half a minute), keep
        it and the batches read behind it from looking abandoned: otherwise another worker
        claims them after `claim_idle_ms` and handles them a second time, concurrently."""
        touch = getattr(self.bus, "touch", None)
        if touch is None:  # the in-process bus has one consumer per group
            return
        while True:
            await asyncio.sleep(self.settings.claim_idle_ms / 3000)
            held = [(workspace_id, events), *self._retry]
            try:
                for workspace, batch in held:
                    await touch(self.group, self.name, workspace, [e.id for e in batch])
            except Exception:
                log.warning(
                    "%s: could not keep the batch in hand claimed", self.group, exc_info=True
                )


class Persister:
    """The persist group's handler. With the library, an unsent message's files are deleted
    from the media store in the same batch (`hub.workers.persist`)."""

    def __init__(
        self,
        sessions: Sessions,
        bus: Bus,
        router: Router | None = None,
        library: MediaLibrary | None = None,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.router = router
        self.library = library

    async def handle(self, workspace_id: str, events: list[Event], claimed: bool) -> None:
        # An erased person's events that a consumer read before they were purged.
        events = await erasure.unerased(self.bus, workspace_id, events)
        routed: list[dict[str, object]] = []
        told: list[MessageUpdated] = []  # stored here, not yet seen by clients
        try:
            routed = await persist.apply(
                self.sessions, workspace_id, events, self.router, self.library, told
            )
        except Exception as exc:
            if not unappliable(exc):
                raise
            # A malformed event must not block the ones behind it: apply one by one and
            # skip (log, ack) only the ones that cannot be applied.
            told.clear()  # the batch's transaction was rolled back
            for event in events:
                mark = len(told)
                try:
                    routed += await persist.apply(
                        self.sessions, workspace_id, [event], self.router, self.library, told
                    )
                except Exception as one:
                    if not unappliable(one):
                        raise
                    del told[mark:]
                    log.error(
                        "skipping event %s of workspace %s: cannot be applied",
                        event.id,
                        workspace_id,
                        exc_info=True,
                    )
        # What routing did is stored; the inboxes learn it from these (agents only).
        for announced in routed:
            data = ConversationUpdated.model_validate(announced)
            await self.bus.publish(workspace_id, data.NAME, data.dump())
        # Changes that waited for their message, and statuses a read receipt moved. Lost if
        # this process stops right here: the database has them, a reload shows them.
        for change in told:
            await self.bus.publish(
                workspace_id,
                change.NAME,
                change.dump(),
                conversation_id=str(change.conversation_id),
            )


def unappliable(exc: BaseException) -> bool:
    """An error that retrying cannot fix, as opposed to the database being away: bad data
    (SQLSTATE class 22, e.g. a value too long or a NUL), a violated constraint, or a row
    refused by row-level security (42501)."""
    if isinstance(exc, _BAD_INPUT):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(state, str) and (state.startswith("22") or state == "42501")
    return False


def select_groups(
    known: Sequence[str], only: Sequence[str] | None = None, without: Sequence[str] = ()
) -> list[str]:
    """The groups a worker runs, in `known`'s order: `only` these (all when None), less
    `without`. A name that is not a group, or a choice that leaves none, is refused."""
    unknown = sorted({*(only or ()), *without} - set(known))
    if unknown:
        raise SettingsError(
            f"Unknown worker group {', '.join(map(repr, unknown))}; "
            f"the groups are {', '.join(known)}."
        )
    chosen = [g for g in known if (only is None or g in only) and g not in without]
    if not chosen:
        raise SettingsError(f"No worker group is left to run; the groups are {', '.join(known)}.")
    return chosen


def group_names(raw: str | None) -> list[str] | None:
    """`--groups persist,send` as a list of names; None for none given."""
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


class Task(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Worker:
    """One consumer in each group it runs, sharing the process's bus, and periodic tasks."""

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
