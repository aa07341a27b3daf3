"""Blocking stream reads (XREAD, XREADGROUP) over many streams: one command per slot group.

Redis runs a command over several keys only when they share a slot, and on a cluster a slot
lives on one shard. So `RedisBus` sorts the streams of a read into slot groups (one group
holding every stream on a standalone server, one per bucket on a cluster) and `Reads.read`
issues one command per group. The commands block concurrently, each on a connection of its
own to the server that holds its slot, and `read` answers as soon as any has data.

- `linger=True` (the fan-out's tail): the commands that have not answered stay in flight and
  are picked up by a later `read`, which issues new commands only for the groups without one.
  A round costs at most one command per group, however many streams a group holds. A lingering
  read may carry older positions, or miss a stream added since it was issued: the fan-out skips
  events at or before a room's position, and calls `wake()` when it adds a room.
- `linger=False` (consumer groups): once one command answers, the others are unblocked and
  collected, so every entry handed to the consumer is in the batch `read` returns (nothing sits
  pending, unseen, in a finished command while the consumer works).
- `wake()` unblocks every command in flight with CLIENT UNBLOCK (on the server holding its
  connection, retried until the command has reached it: before that the server answers 0);
  a wake while none is in flight makes the next `read` non-blocking. Cancelling a blocked
  command instead would leave its connection unusable, so that happens only on `close`.
- A read answers by its own block time: one that has not `ANSWER_SLACK_S` past it takes its
  server for gone (hung, or unreachable) and fails, and its line is dropped. That is one timer
  per read, here, rather than a socket timeout on the connection, which costs redis-py a task
  and two timers per command: at a few events a round, a measurable part of the round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

# (connection, how long to block: None not at all) -> the command's reply
Command = Callable[[Redis, int | None], Awaitable[Any]]

ANSWER_SLACK_S = 5  # past a read's block time, how long its answer may take


async def _timed(command: Command, client: Redis, block: int | None) -> Any:
    """`command`, failing with TimeoutError if the server has not answered in time."""
    async with asyncio.timeout((block or 0) / 1000 + ANSWER_SLACK_S):
        return await command(client, block)


@dataclass(eq=False)
class _Line:
    """One connection that blocks in a read, and the read in flight on it."""

    server: Hashable  # where the connection goes: None (standalone) or a cluster node
    client: Redis
    client_id: int | None = None
    read: asyncio.Future[Any] | None = None  # a task, or `_alone`'s stand-in
    unblock: bool = False  # wake() wants the read in flight to return now

    async def reconnected(self, connection: AbstractConnection) -> None:
        # A reconnected line is a new server client, with a new id for CLIENT UNBLOCK.
        await connection.send_command("CLIENT", "ID")
        self.client_id = int(await connection.read_response())


class Reads:
    def __init__(
        self,
        connect: Callable[[Hashable], Redis],
        unblock: Callable[[Hashable, int], Awaitable[bool]],
        *,
        linger: bool,
    ) -> None:
        self._connect = connect  # a single-connection client to a server
        self._unblock_on = unblock  # CLIENT UNBLOCK id, sent to that server
        self.linger = linger
        self._lines: dict[int, _Line] = {}  # per slot group
        self._lock = asyncio.Lock()
        self._woken = asyncio.Event()
        self._unblocker: asyncio.Task[None] | None = None

    async def read(
        self, commands: Mapping[int, tuple[Hashable, Command]], block_ms: int
    ) -> list[Any]:
        """Issue `commands` (slot group -> (server, command)) and answer the replies of those
        that have answered, once one has data (or `block_ms` passed, or `wake()` was called)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(block_ms, 0) / 1000
        async with self._lock:
            try:
                while True:
                    replies = await self._round(commands, round((deadline - loop.time()) * 1000))
                    if any(replies) or self._woken.is_set() or loop.time() >= deadline:
                        return replies
            finally:
                self._woken.clear()

    async def _round(
        self, commands: Mapping[int, tuple[Hashable, Command]], block_ms: int
    ) -> list[Any]:
        for group, (server, _) in commands.items():
            line = self._lines.get(group)
            if line is not None and line.server != server:  # the slot moved to another node
                await self._drop(group)
                line = None
            if line is None:
                self._lines[group] = await self._open(server)
        # No await from here until the reads are issued: a wake() either came before (the
        # new reads do not block) or finds them in flight and unblocks them.
        block = None if self._woken.is_set() or block_ms <= 0 else block_ms
        if self.linger and len(self._lines) == 1 and len(commands) == 1:
            [(group, (_, command))] = commands.items()
            line = self._lines[group]
            if line.read is None:
                return await self._alone(group, line, command, block)
        issued = False
        for group, (_, command) in commands.items():
            line = self._lines[group]
            if line.read is None:
                line.read = asyncio.ensure_future(_timed(command, line.client, block))
                issued = True
        reads = {line.read for line in self._lines.values() if line.read is not None}
        if not reads:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(block_ms, 0) / 1000):
                    await self._woken.wait()
            return []
        # A read issued now returns by its own block time; only reads left in flight by earlier
        # calls may block longer than this call may wait.
        timeout = None if issued else max(block_ms, 0) / 1000
        await asyncio.wait(reads, timeout=timeout, return_when="FIRST_COMPLETED")
        if not self.linger:
            self._unblock_all()
            await asyncio.wait(reads)
        return await self._collect()

    async def _alone(
        self, group: int, line: _Line, command: Command, block: int | None
    ) -> list[Any]:
        """The tail on a standalone server: one line, nothing in flight. Its read is awaited in
        the caller's task, without a task and an `asyncio.wait` of its own: at a few events a
        round those were most of what a round cost beyond the read itself. Nothing can linger
        here (the caller waits for the answer, which comes by the read's own block time), and
        `line.read` holds a future meanwhile, for `wake()` to find the read and unblock it."""
        line.read = flying = asyncio.get_running_loop().create_future()
        try:
            reply = await _timed(command, line.client, block)
        except BaseException as error:
            line.read, line.unblock = None, False
            flying.cancel()
            if not isinstance(error, asyncio.CancelledError):
                await self._drop(group)  # the connection may be in any state
            raise
        line.read, line.unblock = None, False
        flying.set_result(None)
        return [reply]

    async def _collect(self) -> list[Any]:
        replies: list[Any] = []
        error: BaseException | None = None
        for group, line in list(self._lines.items()):
            if line.read is None or not line.read.done():
                continue
            read, line.read, line.unblock = line.read, None, False
            if read.cancelled():
                continue
            failure = read.exception()
            if failure is None:
                replies.append(read.result())
            else:
                # The connection may be in any state (or on a node that lost the slot).
                await self._drop(group)
                error = error or failure
        if error is not None:
            raise error
        return replies

    async def _open(self, server: Hashable) -> _Line:
        line = _Line(server, self._connect(server))
        try:
            async with asyncio.timeout(ANSWER_SLACK_S):
                await line.client.initialize()
                assert line.client.connection is not None
                connection = line.client.connection
                connection.register_connect_callback(line.reconnected)  # type: ignore[no-untyped-call]
                line.client_id = int(await line.client.client_id())
        except BaseException:
            await line.client.aclose(close_connection_pool=True)
            raise
        return line

    async def _drop(self, group: int) -> None:
        line = self._lines.pop(group)
        if line.read is not None and not line.read.done():
            line.read.cancel()
            with contextlib.suppress(BaseException):
                await line.read
        await line.client.aclose(close_connection_pool=True)

    def wake(self) -> None:
        self._woken.set()
        self._unblock_all()

    def _unblock_all(self) -> None:
        flying = [line for line in self._lines.values() if line.read and not line.read.done()]
        for line in flying:
            line.unblock = True
        if flying and self._unblocker is None:
            self._unblocker = asyncio.get_running_loop().create_task(self._unblock())

    async def _unblock(self) -> None:
        try:
            while True:
                waiting = [
                    line
                    for line in self._lines.values()
                    if line.unblock and line.read is not None and not line.read.done()
                ]
                if not waiting:
                    return
                for line in waiting:
                    if line.client_id is not None and await self._unblock_on(
                        line.server, line.client_id
                    ):
                        line.unblock = False
                await asyncio.sleep(0.002)  # some reads had not reached their server yet
        except RedisError:
            pass  # a read that cannot be unblocked fails or times out by itself
        finally:
            self._unblocker = None

    async def close(self) -> None:
        self.wake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1), self._lock:
                pass  # a blocked read returns to its caller before its connection goes away
        if self._unblocker is not None:
            self._unblocker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._unblocker
        for group in list(self._lines):
            await self._drop(group)
