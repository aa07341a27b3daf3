"""schemas/*.json: current with the models, and in agreement with the frames the code sends."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from adapters.base import ChannelContext, NewMessage, Parsed
from adapters.meta import instagram, messenger, whatsapp
from adapters.meta import webhook as meta
from adapters.telegram import updates as telegram
from hub.accounts.auth import Principal, VisitorClaims
from hub.bus.base import Event
from hub.bus.memory import MemoryBus
from hub.errors import BadFrame, CursorTooOld, HelloTimeout, HubError, TooBig
from hub.realtime.fanout import Outlet
from hub.realtime.ingress import Ingress, message_event
from hub.realtime.protocol import Close, Protocol, Reply, SetPresence
from hub.routing.teams import announce
from schemas import events, frames
from schemas.export import generate, render
from schemas.message import (
    NAMESPACE,
    Attachment,
    AttachmentType,
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    derive_id,
    utc_now,
)
from tests.payloads import context, every, load

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
GENERATED = generate()


def validator(name: str) -> Draft202012Validator:
    schema = GENERATED[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


CLIENT = validator("client-frame.json")
SERVER = validator("server-frame.json")
MESSAGE = validator("message.json")


def assert_valid(check: Draft202012Validator, frame: str | dict[str, Any]) -> None:
    instance = json.loads(frame) if isinstance(frame, str) else frame
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(instance)]
    assert not errors, f"{instance} does not validate: {errors}"


# (a) the files are what the models generate


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_schema_file_is_current(name: str) -> None:
    path = SCHEMAS / name
    hint = "run scripts/export-schemas and commit schemas/"
    assert path.exists(), f"schemas/{name} is missing: {hint}"
    current = path.read_text(encoding="utf-8")
    assert current == render(GENERATED[name]), f"schemas/{name} is stale: {hint}"


def test_no_schema_file_is_left_over() -> None:
    files = {p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json")}
    hint = "schemas/ holds files the models no longer produce: run scripts/export-schemas"
    assert files == set(GENERATED), hint


# (b) examples of every frame type

CONVERSATION = "0b8a1c1e-5d0e-4a8b-9f51-3c1f4f3c2a10"
MESSAGE_ID = "5e0d6f0a-7c1b-4f6e-8d2a-1b9c0e3f4a55"

VALID_CLIENT = [
    {"type": "hello", "token": "hubt_abc"},
    {"type": "hello", "token": "signed.socket.token", "resume_from": "1718000000000-0"},
    {"type": "hello", "token": "t", "resume_from": None},
    {"type": "message.send", "client_id": "c-1", "text": "Hi"},
    {
        "type": "message.send",
        "client_id": "c-2",
        "conversation_id": CONVERSATION,
        "text": "Hello",
        "attachments": [{"type": "image", "url": "https://cdn.example/a.png", "size": 1024}],
    },
    {"type": "typing", "conversation_id": CONVERSATION, "on": True},
    {"type": "typing", "on": False},
    {"type": "read", "conversation_id": CONVERSATION, "up_to": "1718000000000-3"},
    {"type": "read", "up_to": "5-0"},
    {"type": "ping"},
]

INVALID_CLIENT = {
    "unknown type": {"type": "subscribe", "token": "x"},
    "no type": {"token": "x"},
    "missing token": {"type": "hello"},
    "empty token": {"type": "hello", "token": ""},
    "extra field": {"type": "hello", "token": "x", "room": "all"},
    "extra field on ping": {"type": "ping", "at": 1},
    "bad cursor": {"type": "hello", "token": "x", "resume_from": "latest"},
    "missing client_id": {"type": "message.send", "text": "Hi"},
    "bad conversation id": {"type": "typing", "conversation_id": "nope", "on": True},
    "unknown attachment type": {
        "type": "message.send",
        "client_id": "c",
        "attachments": [{"type": "gif"}],
    },
    "typing without on": {"type": "typing", "conversation_id": CONVERSATION},
    "not an object": ["hello"],
}

VALID_SERVER = [
    {"type": "welcome", "cursor": "1718000000000-0", "resumed": False},
    {
        "type": "event",
        "id": "1718000000001-0",
        "name": "typing",
        "data": {"conversation_id": CONVERSATION, "on": True, "by": {"type": "agent", "id": "u"}},
    },
    {"type": "ack", "client_id": "c-1", "message_id": MESSAGE_ID, "duplicate": True},
    {"type": "ack", "client_id": "c-1", "message_id": MESSAGE_ID},
    {"type": "error", "code": "bad_frame", "message": "The frame is malformed."},
    {"type": "error", "code": "too_big", "message": "Too long.", "client_id": "c-1"},
    {"type": "pong"},
]

INVALID_SERVER = {
    "unknown type": {"type": "hi"},
    "no type": {"cursor": "1-0", "resumed": False},
    "empty object": {},
    "unknown event name": {"type": "event", "id": "1-0", "name": "message.exploded", "data": {}},
    "data not an object": {"type": "event", "id": "1-0", "name": "typing", "data": []},
    "extra field": {"type": "pong", "at": 1},
    "ack without message_id": {"type": "ack", "client_id": "c"},
    "bad message id": {"type": "ack", "client_id": "c", "message_id": "not-a-uuid"},
}


@given(st.lists(st.one_of(st.text(), st.uuids(), st.integers()), min_size=1, max_size=4))
def test_derived_ids_are_the_uuid5_of_their_parts(parts: list[object]) -> None:
    # Every stored row's id was derived this way: a change would split a conversation in two.
    name = "\x1f".join(str(p) for p in parts)
    assert derive_id(*parts) == uuid.uuid5(NAMESPACE, name)
    assert str(derive_id("message", uuid.UUID(int=0), "m_1")) == FIXED_MESSAGE_ID


FIXED_MESSAGE_ID = "54b58c13-538f-51c8-8e9e-8016a7dedfe9"  # as every stored row has it


@pytest.mark.parametrize("frame", VALID_CLIENT, ids=lambda f: f["type"])
def test_valid_client_frames(frame: dict[str, Any]) -> None:
    assert_valid(CLIENT, frame)
    frames.client_frame.validate_python(frame)  # the schema and the model agree


@pytest.mark.parametrize("frame", INVALID_CLIENT.values(), ids=INVALID_CLIENT.keys())
def test_invalid_client_frames(frame: Any) -> None:
    assert not CLIENT.is_valid(frame)


@pytest.mark.parametrize("frame", VALID_SERVER, ids=lambda f: f["type"])
def test_valid_server_frames(frame: dict[str, Any]) -> None:
    assert_valid(SERVER, frame)
    frames.server_frame.validate_python(frame)


@pytest.mark.parametrize("frame", INVALID_SERVER.values(), ids=INVALID_SERVER.keys())
def test_invalid_server_frames(frame: Any) -> None:
    assert not SERVER.is_valid(frame)


def test_client_and_server_frames_are_not_interchangeable() -> None:
    for frame in VALID_CLIENT:
        assert not SERVER.is_valid(frame)
    for frame in VALID_SERVER:
        assert not CLIENT.is_valid(frame)


# (c) frames produced by the code


def a_message(**changes: Any) -> Message:
    values: dict[str, Any] = dict(
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        channel_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        contact_id=uuid.uuid4(),
        channel_kind=ChannelKind.INSTAGRAM,
        direction=Direction.IN,
        sender=Sender(type=SenderType.CONTACT, id="17841400000000000", name="Ayşe"),
        text="Merhaba",
        attachments=[Attachment(type=AttachmentType.IMAGE, media_id="m-1", mime_type="image/jpeg")],
        platform_message_id="mid.1",
        sent_at="2024-06-10T08:00:00Z",
        status=DeliveryStatus.RECEIVED,
        raw={"unsupported": {"kind": "poll"}},
    )
    values.update(changes)
    return Message(**values)


def test_message_created_event_frame_validates() -> None:
    message = a_message()
    contact = {"id": str(message.contact_id), "name": "Ayşe", "platform_user_id": "17"}
    data = message_event(message, contact)
    frame = Event("1718000000000-0", "message.created", data, str(message.conversation_id)).frame()
    assert_valid(SERVER, frame)
    assert_valid(MESSAGE, json.loads(frame)["data"]["message"])
    # Written in one step by pydantic: the same JSON as the model's own dump, with the extras.
    spliced = json.loads(message_event(message, contact, thread="t.me/ayşe"))
    assert spliced == {
        "message": message.model_dump(mode="json", exclude_none=True),
        "contact": contact,
        "thread": "t.me/ayşe",
    }


def test_failed_outbound_message_validates() -> None:
    message = a_message(
        direction=Direction.OUT,
        sender=Sender(type=SenderType.AGENT, id="u-1"),
        status=DeliveryStatus.FAILED,
        error={"code": "131047", "message": "Re-engagement needed"},
    )
    assert_valid(MESSAGE, message.model_dump(mode="json"))
    assert_valid(MESSAGE, json.loads(message_event(message))["message"])


def test_message_schema_refuses_what_the_model_refuses() -> None:
    good = a_message().model_dump(mode="json")
    assert not MESSAGE.is_valid({**good, "direction": "sideways"})
    assert not MESSAGE.is_valid({**good, "colour": "red"})
    assert not MESSAGE.is_valid({k: v for k, v in good.items() if k != "platform_message_id"})


def test_protocol_frames_validate() -> None:
    protocol = Protocol(agent=True, max_frame_bytes=65536, max_message_chars=10)
    protocol.receive('{"type":"hello","token":"t"}')
    assert_valid(SERVER, protocol.accept("1718000000000-0", True))
    assert_valid(SERVER, Protocol.ack("c-1", uuid.uuid4(), True))
    pong, heartbeat = protocol.receive('{"type":"ping"}')  # an agent's ping keeps its presence
    assert isinstance(pong, Reply) and heartbeat == SetPresence(None)
    assert_valid(SERVER, pong.frame)
    send = {
        "type": "message.send",
        "client_id": "c-9",
        "conversation_id": CONVERSATION,
        "text": "x" * 11,
    }
    [too_long] = protocol.receive(json.dumps(send))
    assert isinstance(too_long, Reply)
    assert_valid(SERVER, too_long.frame)
    assert json.loads(too_long.frame)["client_id"] == "c-9"
    assert_valid(SERVER, Protocol.fail_request(TooBig(), None))


@pytest.mark.parametrize("error", [BadFrame(), HelloTimeout(), CursorTooOld(), TooBig()])
def test_closing_error_frames_validate(error: HubError) -> None:
    protocol = Protocol(agent=False, max_frame_bytes=65536, max_message_chars=10)
    reply, close = protocol.fail(error)
    assert isinstance(reply, Reply) and isinstance(close, Close)
    assert_valid(SERVER, reply.frame)


def test_overflow_frame_validates() -> None:
    outlet = Outlet(limit=1)
    outlet.offer("{}")
    outlet.offer("{}")
    [frame] = outlet.outbox
    assert_valid(SERVER, frame)


async def test_ingress_event_frames_validate() -> None:
    bus = MemoryBus(stream_maxlen=100, dedupe_ttl_s=60)
    ingress = Ingress(bus, store=None)  # type: ignore[arg-type]  # no lookups on these paths
    claims = VisitorClaims(uuid.uuid4(), uuid.uuid4(), "visitor-1")
    ref = ingress.visitor_conversation(claims)
    agent = Principal(uuid.uuid4(), claims.workspace_id, "agent", "socket", "Ann")
    await ingress.visitor_message(claims, "c-1", "Hi", [{"type": "file", "url": "https://x/y.pdf"}])
    who: dict[str, str | None] = {"type": "contact", "id": str(ref.contact_id), "name": None}
    await ingress.typing(ref.workspace_id, ref.id, True, who)
    await ingress.visitor_read(ref, "1718000000000-0")
    await ingress.agent_read(agent, ref.id, "1718000000000-0")  # for agents, and the visitor's
    await ingress.presence(agent, "online", announce=True)
    await ingress.visitor_profile(claims, "Ayşe", "ayse@example.com")
    frames_out = [e.frame() for e in await bus.read(str(claims.workspace_id), "0-0", 100)]
    names = [json.loads(f)["name"] for f in frames_out]
    assert names == [
        "message.created",
        "typing",
        "conversation.updated",
        "conversation.updated",
        "conversation.updated",
        "presence",
        "contact.updated",
    ]
    for frame in frames_out:
        assert_valid(SERVER, frame)
    assert_valid(MESSAGE, json.loads(frames_out[0])["data"]["message"])


# (d) model -> JSON -> model is the identity, and the schema accepts what the model makes

cursors = st.from_regex(r"\A[0-9]{1,20}-[0-9]{1,20}\Z")
client_ids = st.text(min_size=1, max_size=100)
optional_text = st.none() | st.text(max_size=50)
attachments = st.builds(
    Attachment,
    type=st.sampled_from(AttachmentType),
    url=optional_text,
    media_id=optional_text,
    mime_type=optional_text,
    name=optional_text,
    size=st.none() | st.integers(min_value=0, max_value=2**53),
    caption=optional_text,
    latitude=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    longitude=st.none() | st.floats(allow_nan=False, allow_infinity=False),
)
conversation_ids = st.none() | st.uuids()
client_frames = st.one_of(
    st.builds(
        frames.Hello,
        type=st.just("hello"),
        token=st.text(min_size=1, max_size=4096),
        resume_from=st.none() | cursors,
    ),
    st.builds(
        frames.MessageSend,
        type=st.just("message.send"),
        client_id=client_ids,
        conversation_id=conversation_ids,
        text=st.none() | st.text(),
        attachments=st.lists(attachments, max_size=10),
    ),
    st.builds(
        frames.Typing, type=st.just("typing"), conversation_id=conversation_ids, on=st.booleans()
    ),
    st.builds(frames.Read, type=st.just("read"), conversation_id=conversation_ids, up_to=cursors),
    st.builds(frames.Ping, type=st.just("ping")),
)


@given(client_frames)
def test_client_frame_round_trips(frame: BaseModel) -> None:
    encoded = frame.model_dump_json()
    assert frames.client_frame.validate_json(encoded) == frame
    assert_valid(CLIENT, encoded)


# (e) every event name has a model, and every event the hub publishes fits its model


def test_every_event_name_has_a_model_and_a_frame() -> None:
    assert set(events.MODELS) == set(frames.EVENT_NAMES) == set(events.EVENT_NAMES)
    for name, model in events.MODELS.items():
        assert model.NAME == name
    mapping = GENERATED["server-frame.json"]["$defs"]["EventFrame"]["discriminator"]["mapping"]
    assert set(mapping) == set(events.EVENT_NAMES)
    # Each name's data is described by its own model: the data of another name does not fit.
    typing = {"conversation_id": CONVERSATION, "on": True, "by": {"type": "agent", "id": "u"}}
    assert not SERVER.is_valid({"type": "event", "id": "1-0", "name": "presence", "data": typing})
    assert SERVER.is_valid({"type": "event", "id": "1-0", "name": "typing", "data": typing})
    created = {"conversation_id": CONVERSATION}  # declared in v1, not published yet
    assert SERVER.is_valid(
        {"type": "event", "id": "1-0", "name": "conversation.created", "data": created}
    )


def test_schemas_events_loads_pydantic_alone() -> None:
    """The contract is importable by any client: no web framework, database or bus library,
    and nothing of the hub or the adapters."""
    root = Path(__file__).resolve().parent.parent
    script = (
        "import sys, schemas.events\n"
        "banned = ('starlette', 'redis', 'sqlalchemy', 'sqlmodel', 'asyncpg', 'hub', 'adapters')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]", found.stdout


def fits(event: Event) -> None:
    """The event validates against the exported schema and its model, and the model holds all
    of it: written again, it is the same JSON (every key, every null)."""
    assert_valid(SERVER, event.frame())
    data = event.typed()
    assert type(data) is events.MODELS[event.name]
    assert json.loads(data.dump()) == json.loads(event.data), event.name


PARSERS = {
    ChannelKind.WHATSAPP: whatsapp.parse,
    ChannelKind.MESSENGER: messenger.parse,
    ChannelKind.INSTAGRAM: instagram.parse,
}


def recorded() -> list[tuple[ChannelContext, Parsed]]:
    """What the adapters make of every recorded webhook delivery (a channel for each kind)."""
    found: list[tuple[ChannelContext, Parsed]] = []

    def channel(kind: ChannelKind, account_id: str) -> ChannelContext:
        ctx = context(kind, account_id)
        return dataclasses.replace(ctx, channel_id=uuid.uuid5(ctx.channel_id, kind.value))

    for folder in ("whatsapp", "messenger", "instagram"):
        for name in every(folder):
            for piece in meta.split(load(f"{folder}/{name}")).pieces:
                ctx = channel(piece.kind, piece.account_id)
                found += [(ctx, e) for e in PARSERS[piece.kind](piece.entry, ctx).events]
    ctx = channel(ChannelKind.TELEGRAM, "BOT")
    for name in every("telegram"):
        if name.startswith("update_"):
            found += [(ctx, e) for e in telegram.parse(load(f"telegram/{name}"), ctx).events]
    # A Messenger reaction names itself ("love") besides its emoji; an unsend.
    ctx = channel(ChannelKind.MESSENGER, "PAGE")
    react = {"mid": "m.1", "action": "react", "reaction": "love", "emoji": "❤"}
    unreact = {"mid": "m.1", "action": "unreact"}
    unsend = {"mid": "m.2", "is_deleted": True}
    person = {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 1}
    elements = [person | {"reaction": react}, person | {"reaction": unreact}]
    entry = {"id": "PAGE", "time": 1, "messaging": [*elements, person | {"message": unsend}]}
    found += [(ctx, e) for e in messenger.parse(entry, ctx).events]
    return found


async def test_every_event_the_ingress_publishes_fits_its_model() -> None:
    bus = MemoryBus(stream_maxlen=10_000, dedupe_ttl_s=60)
    ingress = Ingress(bus, store=None)  # type: ignore[arg-type]  # no lookups on these paths
    parsed = recorded()
    for ctx, one in parsed:
        await ingress.publish_parsed(ctx, one)
    [(ctx, first)] = [
        (c, p)
        for c, p in parsed
        if isinstance(p, NewMessage) and c.kind == ChannelKind.WHATSAPP and p.message.text
    ][:1]
    assert isinstance(first, NewMessage)
    workspace, conversation = ctx.workspace_id, first.message.conversation_id
    agent = Principal(uuid.uuid4(), workspace, "agent", "socket", "Ann")
    pmid = first.message.platform_message_id
    await ingress.agent_reaction(agent, conversation, "r-1", pmid, "👍")
    await ingress.agent_reaction(agent, conversation, "r-2", pmid, "")
    await ingress.agent_message(agent, conversation, "c-1", "Hello", [], reply_to=pmid)
    await ingress.agent_message(agent, conversation, "c-2", "For us", [], note=True)
    ref = await ingress.conversation(workspace, conversation)
    await ingress.system_message(ref, "away:1", "We are closed")
    until = (utc_now() + timedelta(hours=1)).isoformat()
    changes: list[dict[str, object]] = [
        {"status": "snoozed", "snoozed_until": until},
        {"assignee_id": str(agent.user_id), "team_id": None, "priority": "high"},
        {"assignee_id": None, "labels": ["vip", "refund"], "priority": None},
        {"status": "resolved"},
    ]
    for change in changes:
        await ingress.change_conversation(agent, conversation, change)
    await ingress.agent_read(agent, conversation, "1718000000000-0")
    await ingress.typing(workspace, conversation, True, {"type": "agent", "id": "u", "name": "Ann"})
    await ingress.presence(agent, "away", announce=True)
    await ingress.channel_updated(workspace, ctx.channel_id, "disconnected")
    await announce(bus, workspace, agent.user_id)
    claims = VisitorClaims(workspace, uuid.uuid4(), "visitor-1")
    await ingress.visitor_message(claims, "v-1", "Hi", [], name="Ayşe")
    await ingress.visitor_profile(claims, None, "ayse@example.com")
    await ingress.visitor_read(ingress.visitor_conversation(claims), "1718000000000-1")
    published = await bus.read(str(workspace), "0-0", 10_000)
    for event in published:
        fits(event)
    names = {e.name for e in published}
    # session.ended and member.removed come from hub.accounts.sessions (tests/test_sessions.py
    # checks their fit), mention.created from hub.notify.mentions (tests/test_notify.py).
    not_ingress = {
        "conversation.created",
        "contact.deleted",
        "session.ended",
        "member.removed",
        "mention.created",
    }
    assert names == set(events.EVENT_NAMES) - not_ingress
    updates = [e.typed() for e in published if e.name == "message.updated"]
    kinds = {
        key
        for u in updates
        if isinstance(u, events.MessageUpdated)
        for key in u.changes.model_dump(exclude_defaults=True)
    }
    assert kinds >= {"reaction", "text", "edited", "deleted", "status", "error"}


def test_data_that_does_not_fit_its_model_is_refused_clearly() -> None:
    wrong = Event("1-0", "presence", '{"user_id": "nobody", "state": "asleep"}')
    with pytest.raises(ValueError):
        wrong.typed()
    assert wrong.typed_or_none(logging.getLogger("test")) is None  # consumers skip it
    with pytest.raises(ValueError, match="not an event name"):
        Event("1-0", "message.exploded", "{}").typed()
