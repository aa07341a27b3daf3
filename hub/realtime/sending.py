"""The sending half of one websocket: how its outlet's frames reach the client.

A frame offered while nothing waits before it, and while the socket's transport takes more,
is written at once (`hub.realtime.wire`): no task and no ASGI send per frame, which is what a
fan-out event costs per socket most of the time. Otherwise it waits in the outlet's bounded
outbox, and a task sends the outbox through the ASGI `send`, which waits while the transport
is paused (flow control). Frames offered while that task runs queue behind it, so no frame
overtakes another; the outbox bound, and its overflow (close 1013), apply as before, and the
transport itself holds at most its high-water mark and one frame more before it pauses. The
error frame and the close always go through the task, after everything queued.
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket, WebSocketState

from hub.errors import HubError
from hub.realtime.fanout import Outlet
from hub.realtime.wire import Wire


class Sender:
    __slots__ = ("gone", "outlet", "task", "websocket", "wire")

    def __init__(self, outlet: Outlet, websocket: WebSocket, gone: HubError) -> None:
        self.outlet = outlet
        self.websocket = websocket
        self.wire = Wire.of(websocket)  # None: every frame through the ASGI send
        self.gone = gone  # the error of a socket whose peer left: close nothing
        self.task: asyncio.Task[None] | None = None  # sending the outbox, while it has frames
        outlet.sink = self

    def write(self, frame: str) -> bool:
        """Write `frame` at once if nothing is being sent and the transport takes it."""
        wire = self.wire
        if self.task is not None or wire is None or not wire.ready():
            return False
        wire.write(frame)
        return True

    def pump(self) -> None:
        """Start sending the outbox, unless that is under way (or the socket is not open yet)."""
        if self.task is None and self.websocket.client_state is WebSocketState.CONNECTED:
            self.task = asyncio.get_running_loop().create_task(self._send_all())

    async def finish(self, timeout_s: float) -> None:
        """Wait, at most `timeout_s`, for what is queued and the close to go out."""
        task = self.task
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=timeout_s)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()

    async def _send_all(self) -> None:
        outlet, websocket = self.outlet, self.websocket
        try:
            while outlet.outbox:
                await websocket.send_text(outlet.outbox.pop(0))
            error = outlet.error
            if outlet.closing and error is not None and error is not self.gone:
                await websocket.close(error.close_code, error.code)
        except Exception:
            outlet.closing = True  # the peer is gone: send nothing more; the receive side ends
        finally:
            self.task = None
