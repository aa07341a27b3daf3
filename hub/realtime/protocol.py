"""The realtime protocol v1 as a pure object: frames in, actions and frames out, no I/O.

`hub.realtime.sockets` pumps a socket through it. The life of a connection:

    AWAIT_HELLO --hello--> AUTHENTICATING --accept()--> OPEN --close--> CLOSED

- The first client frame must be `hello`; anything else, or nothing within the hello
  timeout (the pump calls `hello_timeout()`), closes the connection.
- While AUTHENTICATING the pump checks the token; any frame the client sends before
  the welcome is a protocol violation.
- In OPEN, `message.send`, `typing`, `read` become actions for the pump; `ping` is
  answered here. A second `hello` is a violation.
- Every failure becomes `Close(code)`, preceded by an `error` frame that says why.
  Frame errors are fatal (the client is broken); errors of one request inside a valid
  frame (`fail_request`) are answered with an `error` frame and the connection stays.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import Enum, auto

from pydantic import ValidationError

from hub.errors import BadFrame, Forbidden, HelloTimeout, HubError, TooBig, UnsupportedVersion
from schemas import frames
from schemas.codes import CloseCode
from schemas.events import PresenceState


class State(Enum):
    AWAIT_HELLO = auto()
    AUTHENTICATING = auto()
    OPEN = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class Reply:
    frame: str


@dataclass(frozen=True, slots=True)
class Close:
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    token: str
    resume_from: str | None
    version: int = 1  # of the frames the socket gets (`hello.v`)


@dataclass(frozen=True, slots=True)
class Send:
    client_id: str
    conversation_id: uuid.UUID | None
    text: str | None
    attachments: list[dict[str, object]]
    private_reply: bool = False
    reply_to: str | None = None
    note: bool = False
    mentions: tuple[uuid.UUID, ...] = ()  # a note's @mentions (`hub.notify.mentions`)


@dataclass(frozen=True, slots=True)
class SetTyping:
    conversation_id: uuid.UUID | None
    on: bool


@dataclass(frozen=True, slots=True)
class MarkRead:
    conversation_id: uuid.UUID | None
    up_to: str


@dataclass(frozen=True, slots=True)
class SetPresence:
    """An agent chose online or away; `None` is a heartbeat (a ping) that keeps it alive."""

    state: PresenceState | None


Action = Reply | Close | Authenticate | Send | SetTyping | MarkRead | SetPresence

PONG = '{"type":"pong"}'


def error_frame(error: HubError, client_id: str | None = None) -> str:
    return frames.Error(
        code=error.code, message=error.message, client_id=client_id
    ).model_dump_json(exclude_none=True)


class Protocol:
    def __init__(self, *, agent: bool, max_frame_bytes: int, max_message_chars: int) -> None:
        self.agent = agent
        self.max_frame_bytes = max_frame_bytes
        self.max_message_chars = max_message_chars
        self.state = State.AWAIT_HELLO
        self.version = 1  # as hello asks

    # Input

    def receive(self, data: str | bytes) -> list[Action]:
        if self.state is State.CLOSED:
            return []
        if isinstance(data, bytes):
            return self.fail(BadFrame("Frames are JSON text; binary frames are not accepted."))
        if len(data) > self.max_frame_bytes or len(data.encode()) > self.max_frame_bytes:
            return self.fail(TooBig(f"Frames are limited to {self.max_frame_bytes} bytes."))
        try:
            frame = frames.client_frame.validate_json(frames.without_nul(data))
        except ValidationError as exc:
            return self.fail(BadFrame(_describe(exc)))
        if self.state is State.AWAIT_HELLO:
            if not isinstance(frame, frames.Hello):
                return self.fail(BadFrame("The first frame must be hello."))
            version = 1 if frame.v is None else frame.v
            if version not in frames.VERSIONS:
                return self.fail(
                    UnsupportedVersion(
                        f"Protocol v{version} is unknown here; this hub speaks v1 and v2."
                    )
                )
            self.state = State.AUTHENTICATING
            self.version = version
            return [Authenticate(frame.token, frame.resume_from, version)]
        if self.state is State.AUTHENTICATING:
            return self.fail(BadFrame("Wait for welcome before sending frames."))
        if isinstance(frame, frames.Hello):
            return self.fail(BadFrame("hello was already sent."))
        if isinstance(frame, frames.Ping):
            return [Reply(PONG), SetPresence(None)] if self.agent else [Reply(PONG)]
        if isinstance(frame, frames.Presence):
            if not self.agent:
                return [Reply(error_frame(Forbidden("Only agents have a presence.")))]
            return [SetPresence(frame.state)]
        if isinstance(frame, frames.MessageSend):
            return self._send(frame)
        if self.agent and frame.conversation_id is None:
            return self.fail(BadFrame("Agents name the conversation_id."))
        if isinstance(frame, frames.Typing):
            return [SetTyping(frame.conversation_id, frame.on)]
        return [MarkRead(frame.conversation_id, frame.up_to)]

    def _send(self, frame: frames.MessageSend) -> list[Action]:
        if self.agent and frame.conversation_id is None:
            return self.fail(BadFrame("Agents name the conversation_id of message.send."))
        text = frame.text.strip() if frame.text else None
        if not text and not frame.attachments:
            return [
                Reply(
                    error_frame(BadFrame("A message needs text or attachments."), frame.client_id)
                )
            ]
        if text and len(text) > self.max_message_chars:
            error = TooBig(f"Messages are limited to {self.max_message_chars} characters.")
            return [Reply(error_frame(error, frame.client_id))]
        if any(a.file is not None or a.state is not None for a in frame.attachments):
            refused = BadFrame(
                "Files are sent as multipart to the messages endpoint; a frame cannot name one."
            )
            return [Reply(error_frame(refused, frame.client_id))]
        attachments = [a.model_dump(exclude_none=True) for a in frame.attachments]
        return [
            Send(
                frame.client_id,
                frame.conversation_id,
                text,
                attachments,
                frame.private_reply,
                frame.reply_to,
                frame.note and self.agent,  # a visitor's "note" would be sent as a message
                tuple(frame.mentions) if frame.note and self.agent else (),
            )
        ]

    def hello_timeout(self) -> list[Action]:
        if self.state is not State.AWAIT_HELLO:
            return []
        return self.fail(HelloTimeout())

    # Decisions of the pump

    def accept(self, cursor: str, resumed: bool, workspace_id: str = "") -> str:
        """The welcome; in v2 it names the socket's workspace, which v2's frames leave out."""
        assert self.state is State.AUTHENTICATING
        self.state = State.OPEN
        if self.version == 1:  # exactly v1's welcome
            return frames.Welcome(cursor=cursor, resumed=resumed).model_dump_json()
        welcome = frames.Welcome(
            cursor=cursor, resumed=resumed, v=self.version, workspace_id=uuid.UUID(workspace_id)
        )
        return welcome.model_dump_json()

    def fail(self, error: HubError) -> list[Action]:
        """The one place that turns an error into the end of the connection."""
        if self.state is State.CLOSED:
            return []
        self.state = State.CLOSED
        return [Reply(error_frame(error)), Close(error.close_code, error.code)]

    def closed(self) -> None:
        self.state = State.CLOSED

    @staticmethod
    def ack(client_id: str, message_id: uuid.UUID, duplicate: bool) -> str:
        return json.dumps(
            {
                "type": "ack",
                "client_id": client_id,
                "message_id": str(message_id),
                "duplicate": duplicate,
            }
        )

    @staticmethod
    def fail_request(error: HubError, client_id: str | None) -> str:
        return error_frame(error, client_id)


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "frame"
    return f"Invalid frame at {where}: {first['msg']}"[:300]
