"""The websocket endpoints `/ws/agent` and `/ws/visitor`: they only pump frames through
`hub.realtime.protocol.Protocol` and carry out its actions. Errors become close codes in one
place (`Session.run`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from hub.accounts.auth import API_TOKEN_PREFIX, Principal, VisitorClaims
from hub.errors import (
    Forbidden,
    HubError,
    NotFound,
    RateLimited,
    SessionEnded,
    TooBig,
    Unauthenticated,
    Unavailable,
    outage,
)
from hub.realtime import protocol as p
from hub.realtime.fanout import Outlet
from hub.realtime.ingress import ConversationRef
from hub.realtime.sending import Sender
from hub.services import Services
from hub.storage import tenancy
from schemas.codes import CloseCode
from schemas.events import Party, PresenceState
from schemas.message import ChannelKind

log = logging.getLogger("hub.ws")


class Session:
    __slots__ = (
        "agent",
        "conversation",
        "outlet",
        "presence_state",
        "principal",
        "protocol",
        "sender",
        "services",
        "visitor",
        "websocket",
    )

    def __init__(self, services: Services, websocket: WebSocket, *, agent: bool) -> None:
        settings = services.settings
        self.services = services
        self.websocket = websocket
        self.agent = agent
        self.protocol = p.Protocol(
            agent=agent,
            max_frame_bytes=settings.max_frame_bytes,
            max_message_chars=settings.max_message_chars,
        )
        self.outlet = Outlet(settings.outbox_max_frames)
        self.sender = Sender(self.outlet, websocket, _GONE)
        self.principal: Principal | None = None
        self.presence_state: PresenceState = "online"
        self.visitor: VisitorClaims | None = None
        self.conversation: ConversationRef | None = None

    async def run(self) -> None:
        await self.websocket.accept()
        sockets = self.services.metrics.sockets  # open sockets by kind, for /metrics
        kind = "agent" if self.agent else "visitor"
        sockets[kind] += 1
        self.services.connected.add(self.outlet)
        self.sender.pump()  # frames offered before the accept
        try:
            await self._receive_loop()
        except WebSocketDisconnect:
            pass
        except HubError as error:
            self._do(self.protocol.fail(error))
        except Exception as exc:
            if outage(exc):  # the client reconnects and resumes once the service is back
                log.warning("websocket session ended: %s", type(exc).__name__)
                self._do(self.protocol.fail(Unavailable()))
            else:
                log.exception("websocket session failed")
                self._do(self.protocol.fail(HubError()))
        finally:
            sockets[kind] -= 1
            self.services.connected.discard(self.outlet)
            self.services.fanout.leave(self.outlet)
            self.outlet.shut(_GONE)  # no-op if a close is already under way
            await self.sender.finish(5)  # what is queued, and the close, go out first
            if self.principal is not None:
                await self._quietly(
                    self.services.ingress.presence(self.principal, "offline", announce=True)
                )

    async def _receive_loop(self) -> None:
        settings = self.services.settings
        try:
            message = await asyncio.wait_for(self.websocket.receive(), settings.hello_timeout_s)
        except TimeoutError:
            self._do(self.protocol.hello_timeout())
            return
        while not self.outlet.closing:
            if message["type"] == "websocket.disconnect":
                return
            actions = self.protocol.receive(_data(message))
            if self.protocol.state is p.State.AUTHENTICATING:
                following = await self._authenticating(actions)
                if following is not None:  # a frame came while joining, or the socket is done
                    message = following
                    continue
            else:
                await self._handle(actions)
            if self.outlet.closing:
                return
            message = await self.websocket.receive()

    async def _authenticating(self, actions: list[p.Action]) -> Message | None:
        """Check the hello's token while still reading: a frame that arrives before the
        welcome is refused by the protocol (4400) and the check is abandoned. A frame after
        the welcome waits for the rest of the join (the missed events). Returns that frame,
        `_ENDED` when the connection is done, or None when nothing came yet.

        Most sockets send nothing for a while after the welcome, and the read of its own
        would be held for as long (a task and its frames, about 1 KiB per idle socket): it is
        given up then, and the socket reads on in its own task. Nothing is lost: a message
        that read was woken for stays queued for the next one."""
        check = asyncio.ensure_future(self._handle(actions))
        early = asyncio.ensure_future(self.websocket.receive())
        try:
            await asyncio.wait((check, early), return_when=asyncio.FIRST_COMPLETED)
            if not check.done() and self.protocol.state is p.State.AUTHENTICATING:
                check.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await check  # abandoned: only the early frame counts
                message = early.result()
                if message["type"] != "websocket.disconnect":
                    self._do(self.protocol.receive(_data(message)))
                return _ENDED
            await check  # its error goes on, for `run` to turn into a close code
        except BaseException:
            early.cancel()
            raise
        if self.outlet.closing:
            early.cancel()
            return _ENDED
        if not early.done():
            early.cancel()
            await asyncio.wait((early,))
        return None if early.cancelled() else early.result()

    async def _handle(self, actions: list[p.Action]) -> None:
        for action in actions:
            if isinstance(action, p.Authenticate):
                await self._authenticate(action)
            elif isinstance(action, p.Send):
                await self._request(action.client_id, self._send(action))
            elif isinstance(action, p.SetTyping):
                await self._request(None, self._typing(action))
            elif isinstance(action, p.MarkRead):
                await self._request(None, self._read(action))
            elif isinstance(action, p.SetPresence):
                await self._presence(action.state)
            else:
                self._do([action])

    def _do(self, actions: list[p.Action]) -> None:
        for action in actions:
            if isinstance(action, p.Reply):
                self.outlet.offer(action.frame)
            elif isinstance(action, p.Close):
                self.outlet.shut(_Closing(action.code, action.reason))

    async def _request(self, client_id: str | None, work: Any) -> None:
        """One request inside a good frame: its own failure is answered, the socket stays."""
        try:
            await work
        except (NotFound, Forbidden, TooBig, RateLimited) as error:
            self.outlet.offer(self.protocol.fail_request(error, client_id))

    async def _authenticate(self, hello: p.Authenticate) -> None:
        services = self.services
        self.outlet.version = hello.version
        if self.agent:
            self.principal = await self._agent_principal(hello.token)
            self.outlet.workspace_id = str(self.principal.workspace_id)
            self.outlet.user_id = str(self.principal.user_id)
        else:
            origin = self.websocket.headers.get("origin")
            self.visitor = await services.webchat.authenticate(hello.token, origin)
            self.conversation = services.ingress.visitor_conversation(self.visitor)
            self.outlet.workspace_id = str(self.visitor.workspace_id)
            self.outlet.conversation_id = str(self.conversation.id)

        def welcome(cursor: str, resumed: bool) -> None:
            self.outlet.offer(self.protocol.accept(cursor, resumed, self.outlet.workspace_id))

        await services.fanout.join(self.outlet, hello.resume_from, welcome)
        if self.principal is not None:
            await self._still_signed_in(self.principal)
            await self._presence("online")

    async def _agent_principal(self, token: str) -> Principal:
        services = self.services
        if token.startswith(API_TOKEN_PREFIX):
            principal = await services.store.principal_for_api_token(token)
        else:
            claims = services.signer.read_socket_token(token)
            # Single-use: the first hello with the token claims its id, on every node at once.
            used = await services.bus.remember(
                str(claims.workspace_id),
                "socket-token:" + claims.token_id,
                "1",
                ttl_s=services.settings.socket_token_max_age_s + 5,
                only_new=True,
            )
            if not used:
                raise Unauthenticated("The token was used already; get a new one.")
            principal = None
            if claims.session_id is None or await services.user_sessions.alive(
                claims.workspace_id, claims.user_id, claims.session_id
            ):
                principal = await services.store.principal(
                    claims.user_id, claims.workspace_id, "socket"
                )
            if principal is not None:
                principal = dataclasses.replace(principal, session_id=claims.session_id)
                if claims.session_id is not None:
                    self.outlet.session_id = str(claims.session_id)
        if principal is None:
            raise Unauthenticated("The token is not valid.")
        tenancy.act_for(principal.workspace_id)
        return principal

    async def _still_signed_in(self, principal: Principal) -> None:
        """After joining: a session that ended, or a membership that ended, between the
        token's check and the join had its `session.ended` or `member.removed` dispatched
        before this socket was in the room, so look again. (An API token's principal may
        come from another node's short cache: the membership is read afresh.)"""
        services = self.services
        if principal.session_id is not None:
            alive = await services.user_sessions.alive(
                principal.workspace_id, principal.user_id, principal.session_id
            )
        else:
            member = await services.store.principal(
                principal.user_id, principal.workspace_id, principal.via
            )
            alive = member is not None
        if not alive:
            self.outlet.fail(SessionEnded())

    async def _own_conversation(self, conversation_id: uuid.UUID | None) -> ConversationRef:
        if self.principal is not None:
            assert conversation_id is not None  # the protocol requires it of agents
            return await self.services.ingress.conversation(
                self.principal.workspace_id, conversation_id
            )
        assert self.conversation is not None
        if conversation_id is not None and conversation_id != self.conversation.id:
            raise Forbidden("A visitor can only write to its own conversation.")
        return self.conversation

    async def _send(self, send: p.Send) -> None:
        ingress = self.services.ingress
        if self.principal is not None:
            assert send.conversation_id is not None
            message_id, published = await ingress.agent_message(
                self.principal,
                send.conversation_id,
                send.client_id,
                send.text,
                send.attachments,
                send.private_reply,
                send.reply_to,
                send.note,
            )
            if send.mentions and not published.duplicate:
                await self.services.mentions.record(
                    self.principal.workspace_id,
                    self.principal.user_id,
                    send.conversation_id,
                    message_id,
                    send.mentions,
                    send.text,
                )
        else:
            assert self.visitor is not None
            await self._own_conversation(send.conversation_id)
            await ingress.limit_visitor(
                self.visitor, self.services.settings.visitor_messages_per_minute
            )
            message_id, published = await ingress.visitor_message(
                self.visitor, send.client_id, send.text, send.attachments
            )
        await ingress.settle(self.outlet.workspace_id)  # no ack before it is durable (if asked)
        self.outlet.offer(self.protocol.ack(send.client_id, message_id, published.duplicate))

    async def _typing(self, typing: p.SetTyping) -> None:
        ref = await self._own_conversation(typing.conversation_id)
        if self.principal is not None:
            who = Party(type="agent", id=str(self.principal.user_id), name=self.principal.name)
        else:
            who = Party(type="contact", id=str(ref.contact_id), name=None)
        await self.services.ingress.typing(ref.workspace_id, ref.id, typing.on, who)

    async def _read(self, read: p.MarkRead) -> None:
        ref = await self._own_conversation(read.conversation_id)
        if self.principal is not None:
            await self.services.ingress.agent_read(
                self.principal,
                ref.id,
                read.up_to,
                tell_contact=ref.channel_kind == ChannelKind.WEBCHAT,  # the only live contacts
            )
        else:
            await self.services.ingress.visitor_read(ref, read.up_to)

    async def _presence(self, chosen: PresenceState | None) -> None:
        """The agent's chosen state, announced when chosen and kept alive by pings. A ping
        announces it again only if the shared state differs, e.g. after another tab of the
        same agent closed and said offline."""
        assert self.principal is not None
        if chosen is not None:
            self.presence_state = chosen
        await self._quietly(
            self.services.ingress.presence(
                self.principal, self.presence_state, announce=chosen is not None
            )
        )

    @staticmethod
    async def _quietly(work: Any) -> None:
        try:
            await work
        except Exception as exc:
            log.warning("could not publish presence", exc_info=not outage(exc))


def _data(message: Message) -> str | bytes:
    text: str | None = message.get("text")
    if text is not None:
        return text
    data: bytes = message.get("bytes") or b""
    return data


class _Closing(HubError):
    """A close decided by the protocol (its error frame was already queued)."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.close_code = code
        self.code = reason


_ENDED: Message = {"type": "websocket.disconnect", "code": CloseCode.NORMAL}  # read no more
_GONE = _Closing(CloseCode.NORMAL, "gone")  # the peer left: stop sending, close nothing


# The endpoints hand back the session's coroutine rather than await it in one of their own,
# which an idle socket would hold for its whole life.
def agent_socket(websocket: WebSocket) -> Coroutine[Any, Any, None]:
    return Session(websocket.app.state.services, websocket, agent=True).run()


def visitor_socket(websocket: WebSocket) -> Coroutine[Any, Any, None]:
    return Session(websocket.app.state.services, websocket, agent=False).run()


ENDPOINTS = {"/ws/agent": agent_socket, "/ws/visitor": visitor_socket}


async def drain(services: Services, within_s: float) -> int:
    """Tell every socket on this node to reconnect elsewhere (`error unavailable`, close 1012)
    and wait, at most `within_s`, for them to go. Returns how many were told."""
    restarting = Unavailable("This node is restarting; reconnect and resume.")
    told = list(services.connected)
    for outlet in told:
        outlet.fail(restarting)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    # Polled: this runs once, at shutdown, for a few seconds at most.
    while services.connected and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return len(told)
