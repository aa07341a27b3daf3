"""A worker task that does one round of work every `every_s` seconds until stopped.

A round that fails is logged and the next one comes on time: periodic work (sweeps, token
refreshes) must outlive a database or Redis blip."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("hub.periodic")


class Periodic:
    name = "periodic"

    def __init__(self, *, every_s: float) -> None:
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"hub-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "%s round failed; the next one comes in %s s",
                    self.name,
                    self.every_s,
                    exc_info=True,
                )
            await asyncio.sleep(self.every_s)
