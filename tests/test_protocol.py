"""The protocol object alone: no sockets, no bus."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.realtime.protocol import (
    Authenticate,
    Close,
    MarkRead,
    Protocol,
    Reply,
    Send,
    SetPresence,
    SetTyping,
    State,
)
from schemas import frames
from schemas.codes import CloseCode

pytestmark = pytest.mark.unit

CONV = str(uuid.uuid4())


def opened(agent: bool = True) -> Protocol:
    proto = Protocol(agent=agent, max_frame_bytes=4096, max_message_chars=100)
    assert proto.receive(json.dumps({"type": "hello", "token": "t"})) == [Authenticate("t", None)]
    proto.accept("0-0", False)
    return proto


def closes_with(actions: list[object], code: CloseCode) -> dict[str, object]:
    assert isinstance(actions[-1], Close), actions
    assert actions[-1].code == code
    assert isinstance(actions[0], Reply)
    error = json.loads(actions[0].frame)
    assert error["type"] == "error"
    return error  # type: ignore[no-any-return]


def test_hello_then_welcome() -> None:
    proto = Protocol(agent=False, max_frame_bytes=4096, max_message_chars=100)
    actions = proto.receive('{"type":"hello","token":"abc","resume_from":"17-3"}')
    assert actions == [Authenticate("abc", "17-3")]
    assert proto.state is State.AUTHENTICATING
    welcome = json.loads(proto.accept("17-3", True))
    assert welcome == {"type": "welcome", "cursor": "17-3", "resumed": True}
    assert proto.state is State.OPEN


def test_first_frame_must_be_hello() -> None:
    proto = Protocol(agent=True, max_frame_bytes=4096, max_message_chars=100)
    error = closes_with(proto.receive('{"type":"ping"}'), CloseCode.BAD_FRAME)
    assert error["code"] == "bad_frame"
    assert proto.receive('{"type":"hello","token":"x"}') == []  # closed stays closed


def test_frames_before_welcome_are_refused() -> None:
    proto = Protocol(agent=True, max_frame_bytes=4096, max_message_chars=100)
    proto.receive('{"type":"hello","token":"x"}')
    closes_with(proto.receive('{"type":"ping"}'), CloseCode.BAD_FRAME)


def test_second_hello_is_refused() -> None:
    closes_with(opened().receive('{"type":"hello","token":"x"}'), CloseCode.BAD_FRAME)


def test_hello_timeout_only_before_hello() -> None:
    proto = Protocol(agent=True, max_frame_bytes=4096, max_message_chars=100)
    error = closes_with(proto.hello_timeout(), CloseCode.HELLO_TIMEOUT)
    assert error["code"] == "hello_timeout"
    assert opened().hello_timeout() == []


def test_ping_pong() -> None:
    pong = Reply('{"type":"pong"}')
    assert opened().receive('{"type":"ping"}') == [pong, SetPresence(None)]  # a heartbeat
    assert opened(agent=False).receive('{"type":"ping"}') == [pong]


def test_presence_is_for_agents() -> None:
    assert opened().receive('{"type":"presence","state":"away"}') == [SetPresence("away")]
    [refused] = opened(agent=False).receive('{"type":"presence","state":"away"}')
    assert isinstance(refused, Reply) and json.loads(refused.frame)["code"] == "forbidden"
    closes_with(opened().receive('{"type":"presence","state":"gone"}'), CloseCode.BAD_FRAME)


def test_malformed_json_unknown_type_and_binary() -> None:
    closes_with(opened().receive("{nope"), CloseCode.BAD_FRAME)
    closes_with(opened().receive('{"type":"launch.missiles"}'), CloseCode.BAD_FRAME)
    closes_with(opened().receive("[]"), CloseCode.BAD_FRAME)
    closes_with(opened().receive(b'{"type":"ping"}'), CloseCode.BAD_FRAME)
    closes_with(opened().receive('{"type":"ping","extra":1}'), CloseCode.BAD_FRAME)


def test_frame_over_limit_is_1009() -> None:
    proto = opened()
    error = closes_with(
        proto.receive('{"type":"ping","x":"' + "a" * 5000 + '"}'), CloseCode.TOO_BIG
    )
    assert error["code"] == "too_big"


def test_bad_resume_cursor_is_bad_frame() -> None:
    proto = Protocol(agent=True, max_frame_bytes=4096, max_message_chars=100)
    closes_with(
        proto.receive('{"type":"hello","token":"x","resume_from":"yesterday"}'), CloseCode.BAD_FRAME
    )


def test_send_for_agent_needs_conversation() -> None:
    closes_with(
        opened().receive('{"type":"message.send","client_id":"c","text":"hi"}'), CloseCode.BAD_FRAME
    )
    actions = opened().receive(
        json.dumps(
            {"type": "message.send", "client_id": "c", "text": " hi ", "conversation_id": CONV}
        )
    )
    assert actions == [Send("c", uuid.UUID(CONV), "hi", [])]


def test_visitor_send_without_conversation() -> None:
    actions = opened(agent=False).receive('{"type":"message.send","client_id":"c","text":"hi"}')
    assert actions == [Send("c", None, "hi", [])]


def test_empty_and_too_long_messages_are_answered_not_fatal() -> None:
    proto = opened(agent=False)
    [reply] = proto.receive('{"type":"message.send","client_id":"c1","text":"   "}')
    assert isinstance(reply, Reply)
    assert json.loads(reply.frame)["client_id"] == "c1"
    [reply] = proto.receive(
        json.dumps({"type": "message.send", "client_id": "c2", "text": "x" * 101})
    )
    assert json.loads(reply.frame)["code"] == "too_big"
    assert proto.state is State.OPEN


def test_typing_and_read() -> None:
    proto = opened()
    assert proto.receive(json.dumps({"type": "typing", "conversation_id": CONV, "on": True})) == [
        SetTyping(uuid.UUID(CONV), True)
    ]
    assert proto.receive(json.dumps({"type": "read", "conversation_id": CONV, "up_to": "5-0"})) == [
        MarkRead(uuid.UUID(CONV), "5-0")
    ]
    closes_with(opened().receive('{"type":"typing","on":true}'), CloseCode.BAD_FRAME)
    assert opened(agent=False).receive('{"type":"typing","on":false}') == [SetTyping(None, False)]


def test_ack_frame_is_a_valid_server_frame() -> None:
    frame = Protocol.ack("c", uuid.uuid4(), False)
    assert isinstance(frames.server_frame.validate_json(frame), frames.Ack)


DOCUMENTED = {c.value for c in CloseCode}
ERROR_CODES = {"bad_frame", "too_big", "hello_timeout", "not_found", "forbidden", "bad_request"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
frame_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["hello", "message.send", "typing", "read", "ping", "presence", "nope"]
        )
    },
    optional={
        "token": st.text(max_size=30),
        "client_id": st.text(max_size=120),
        "conversation_id": st.one_of(st.uuids().map(str), st.text(max_size=10)),
        "text": st.text(max_size=200),
        "on": json_values,
        "state": st.sampled_from(["online", "away", "asleep"]),
        "up_to": st.one_of(st.just("1-0"), st.text(max_size=10)),
        "resume_from": st.one_of(st.just("1-0"), st.text(max_size=10)),
        "extra": json_values,
    },
).map(json.dumps)
inputs = st.one_of(
    frame_like, st.text(max_size=300), st.binary(max_size=50), json_values.map(json.dumps)
)


@settings(max_examples=400, deadline=None)
@given(st.booleans(), st.booleans(), st.lists(inputs, min_size=1, max_size=6))
def test_arbitrary_frames_yield_only_documented_outcomes(
    agent: bool, hello_first: bool, data: list[object]
) -> None:
    proto = Protocol(agent=agent, max_frame_bytes=256, max_message_chars=50)
    if hello_first:
        proto.receive('{"type":"hello","token":"t"}')
        proto.accept("0-0", False)
    for item in data:
        assert isinstance(item, str | bytes)
        for action in proto.receive(item):
            if isinstance(action, Close):
                assert action.code in DOCUMENTED
            elif isinstance(action, Reply):
                parsed = frames.server_frame.validate_json(action.frame)
                if isinstance(parsed, frames.Error):
                    assert parsed.code in ERROR_CODES
            else:
                assert isinstance(action, Authenticate | Send | SetTyping | MarkRead | SetPresence)
        if proto.state is State.AUTHENTICATING:
            proto.accept("0-0", False)
