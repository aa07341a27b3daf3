"""Protocol v2's lean frames: negotiation in hello, the lean data of `message.created` and its
rebuild (`schemas.lean`), their size, and the fan-out handing each socket its version's frame,
live and on resume (docs/protocol.md, "Protocol versions")."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import NewMessage
from hub.accounts.auth import VisitorClaims
from hub.bus import Event
from hub.bus.memory import MemoryBus
from hub.realtime.fanout import Fanout, Outlet
from hub.realtime.ingress import Ingress, message_created
from hub.realtime.protocol import Authenticate, Close, Protocol, Reply
from schemas import lean
from schemas.codes import CloseCode
from schemas.events import Contact, MessageCreated
from schemas.message import (
    Attachment,
    AttachmentType,
    ChannelKind,
    DeliveryError,
    DeliveryStatus,
    Direction,
    Group,
    Message,
    MessageKind,
    Referral,
    Sender,
    SenderType,
    StoryKind,
)
from tests.test_schemas import assert_valid, recorded, validator

pytestmark = pytest.mark.unit

LEAN_SCHEMA = validator("message-created-v2.json")
TEXT_170 = ("Merhaba, siparişim hâlâ gelmedi; kargo takip numarası 1Z999AA10123456784. " * 3)[:170]


def round_trip(data: MessageCreated) -> None:
    """Rebuilt by the documented rules, the lean data is v1's data, every key and null."""
    text = lean.lean(data)
    assert_valid(LEAN_SCHEMA, text)
    rebuilt = lean.rebuild(json.loads(text), str(data.message.workspace_id))
    assert rebuilt == json.loads(data.dump())


# Negotiation


def test_hello_without_v_speaks_v1_and_v2_is_welcomed_as_v2() -> None:
    for hello, version in (('{"type":"hello","token":"t"}', 1), ('"v":2', 2), ('"v":1', 1)):
        if not hello.startswith("{"):
            hello = '{"type":"hello","token":"t",' + hello + "}"
        proto = Protocol(agent=True, max_frame_bytes=4096, max_message_chars=100)
        assert proto.receive(hello) == [Authenticate("t", None, version)]
        workspace = str(uuid.uuid4())
        v2 = {"v": 2, "workspace_id": workspace} if version == 2 else {}  # v1's is unchanged
        assert json.loads(proto.accept("1-0", False, workspace)) == v2 | {
            "type": "welcome",
            "cursor": "1-0",
            "resumed": False,
        }


@pytest.mark.parametrize("version", ["3", "0", "-1", "99"])
def test_an_unknown_version_is_refused_with_its_own_code_and_4400(version: str) -> None:
    proto = Protocol(agent=False, max_frame_bytes=4096, max_message_chars=100)
    reply, close = proto.receive('{"type":"hello","token":"t","v":' + version + "}")
    assert isinstance(reply, Reply) and isinstance(close, Close)
    error = json.loads(reply.frame)
    assert error["code"] == "unsupported_version" and "v1 and v2" in error["message"]
    assert close.code == CloseCode.BAD_FRAME


# Lean data and its rebuild


def visitor_claims(visitor_id: str = "bench-room-0") -> VisitorClaims:
    return VisitorClaims(uuid.uuid4(), uuid.uuid4(), visitor_id)


async def published(claims: VisitorClaims, text: str = TEXT_170) -> tuple[MemoryBus, Event]:
    bus = MemoryBus(stream_maxlen=1000, dedupe_ttl_s=60)
    ingress = Ingress(bus, None)  # type: ignore[arg-type]  # a visitor's send needs no store
    await ingress.visitor_message(claims, "k3f9-2c1a-17", text, [])
    [event] = await bus.read(str(claims.workspace_id), "0-0", 10)
    return bus, event


@pytest.mark.parametrize("visitor_id", ["bench-room-0", "7" * 32])
async def test_a_web_chat_visitors_170_character_message_is_at_most_650_bytes_in_v2(
    visitor_id: str,
) -> None:
    """The fan-out benchmark's message (its visitor id, and a real visitor's 32 characters):
    v1's frame is what it always was, v2's at most 650 bytes and rebuilt it is v1's data."""
    assert len(TEXT_170) == 170
    claims = visitor_claims(visitor_id)
    _, event = await published(claims)
    v1, v2 = event.frames()
    today = '{"type":"event","id":"' + event.id + '","name":"message.created","data":'
    assert v1 == today + event.data + "}" and event.frame() == v1
    assert len(v1.encode()) > 950
    assert len(v2.encode()) <= 650, v2
    assert json.loads(v2)["data"] == json.loads(event.lean)
    rebuilt = lean.rebuild(json.loads(event.lean), str(claims.workspace_id))
    assert rebuilt == json.loads(event.data)


def test_every_recorded_platform_message_rebuilds_to_its_v1_data() -> None:
    messages = [(ctx, p) for ctx, p in recorded() if isinstance(p, NewMessage)]
    assert {ctx.kind for ctx, _ in messages} >= {"whatsapp", "messenger", "instagram", "telegram"}
    for _, parsed in messages:
        contact = Contact(
            id=parsed.message.contact_id,
            name=parsed.contact.name or parsed.contact.username,
            platform_user_id=parsed.contact.platform_user_id,
        )
        round_trip(message_created(parsed.message, contact, parsed.thread))


def test_an_event_without_lean_data_has_one_frame_for_both_versions() -> None:
    event = Event("1-0", "presence", '{"user_id":"u","state":"online"}')
    v1, v2 = event.frames()
    assert v1 is v2 and event.frame(2) == v1


optional_text = st.none() | st.text(max_size=12)
senders = st.builds(
    Sender, type=st.sampled_from(list(SenderType)), id=optional_text, name=optional_text
)
attachments = st.builds(
    Attachment,
    type=st.sampled_from(list(AttachmentType)),
    url=optional_text,
    caption=optional_text,
    size=st.none() | st.integers(0, 10**9),
    latitude=st.none() | st.floats(-90, 90),
    thumbnail=st.none() | st.booleans(),
)
groups = st.builds(Group, title=optional_text, topic_id=optional_text, renamed=st.booleans())


@st.composite
def messages_created(draw: Any) -> MessageCreated:
    """Messages of every kind, with the hub's derivations holding or not: the sender being
    the contact, the contact's id, the thread and the platform id being the derived ones."""
    contact_id, workspace_id = draw(st.uuids()), draw(st.uuids())
    contact = draw(
        st.none()
        | st.builds(
            Contact,
            id=st.sampled_from([contact_id, None, uuid.UUID(int=1)]),
            name=optional_text,
            platform_user_id=optional_text,
        )
    )
    sender = draw(
        senders
        | st.builds(
            Sender,
            type=st.just(SenderType.CONTACT),
            id=st.just(str(contact_id)),
            name=st.sampled_from([None, contact.name if contact else None, "Ayşe"]),
        )
    )
    client_id = draw(optional_text)
    derived = [
        f"v:{contact.platform_user_id if contact else ''}:{client_id}",
        f"a:{sender.id}:{client_id}",
    ]
    platform_message_id = draw(st.sampled_from(derived) | st.text(max_size=20))
    message = Message(
        id=draw(st.uuids()),
        workspace_id=workspace_id,
        channel_id=draw(st.uuids()),
        conversation_id=draw(st.uuids()),
        contact_id=contact_id,
        channel_kind=draw(st.sampled_from(list(ChannelKind))),
        kind=draw(st.sampled_from(list(MessageKind))),
        direction=draw(st.sampled_from(list(Direction))),
        sender=sender,
        text=draw(optional_text),
        attachments=draw(st.lists(attachments, max_size=2)),
        reply_to=draw(optional_text),
        reactions=draw(st.lists(st.dictionaries(st.text(max_size=3), optional_text), max_size=2)),
        edited=draw(st.booleans()),
        deleted=draw(st.booleans()),
        platform_message_id=platform_message_id,
        client_id=client_id,
        private_reply=draw(st.booleans()),
        note=draw(st.booleans()),
        group=draw(st.none() | groups),
        standby=draw(st.booleans()),
        story=draw(st.none() | st.sampled_from(list(StoryKind))),
        referral=draw(st.none() | st.builds(Referral, source=optional_text, ad_id=optional_text)),
        hidden=draw(st.booleans()),
        sent_at=draw(st.datetimes(timezones=st.just(UTC))),
        status=draw(st.sampled_from(list(DeliveryStatus))),
        error=draw(st.none() | st.builds(DeliveryError, code=st.text(), message=st.text())),
        raw=draw(st.none() | st.dictionaries(st.text(max_size=3), optional_text, max_size=2)),
    )
    thread = draw(
        st.sampled_from([None, contact.platform_user_id if contact else None]) | optional_text
    )
    return MessageCreated(message=message, contact=contact, thread=thread or None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages_created())
def test_lean_data_rebuilt_is_the_v1_data_for_messages_of_every_kind(data: MessageCreated) -> None:
    round_trip(data)


def test_the_common_inbound_message_leaves_out_every_default() -> None:
    contact_id = uuid.uuid4()
    message = Message(
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        channel_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        contact_id=contact_id,
        channel_kind=ChannelKind.MESSENGER,
        direction=Direction.IN,
        sender=Sender(type=SenderType.CONTACT, id=str(contact_id), name="Ayşe"),
        text="hi",
        platform_message_id="m_1",
        sent_at=datetime(2026, 12, 5, tzinfo=UTC),
        status=DeliveryStatus.RECEIVED,
    )
    contact = Contact(id=contact_id, name="Ayşe", platform_user_id="PSID")
    data = MessageCreated(message=message, contact=contact, thread="PSID")
    found = json.loads(lean.lean(data))
    assert set(found) == {"message", "contact"}
    assert found["contact"] == {"name": "Ayşe", "platform_user_id": "PSID"}
    assert set(found["message"]) == {
        "id",
        "channel_id",
        "conversation_id",
        "contact_id",
        "channel_kind",
        "text",
        "platform_message_id",
        "sent_at",
    }
    round_trip(data)


# The fan-out: each socket its version's frame


def frames_of(outlet: Outlet) -> list[dict[str, Any]]:
    return [json.loads(f) for f in outlet.outbox if json.loads(f)["type"] == "event"]


async def wait_frames(outlet: Outlet, count: int) -> list[dict[str, Any]]:
    for _ in range(300):
        if len(frames_of(outlet)) >= count:
            break
        await asyncio.sleep(0.01)
    return frames_of(outlet)


async def test_mixed_v1_and_v2_sockets_each_get_their_version_live_and_on_resume() -> None:
    """In one room, agents and a visitor of each version: live, resumed from the room's
    recent events, and resumed from the stream (a room that did not exist yet)."""
    claims = visitor_claims()
    workspace = str(claims.workspace_id)
    bus = MemoryBus(stream_maxlen=1000, dedupe_ttl_s=60)
    ingress = Ingress(bus, None)  # type: ignore[arg-type]
    conversation = str(ingress.visitor_conversation(claims).id)

    async def send(n: int) -> list[Event]:
        for i in range(n):
            await ingress.visitor_message(claims, f"c{i}-{uuid.uuid4().hex[:6]}", TEXT_170, [])
        return (await bus.read(workspace, "0-0", 1000))[-n:]

    def outlets() -> list[Outlet]:
        made = []
        for version in (1, 2):
            for conversation_id in (None, conversation):
                outlet = Outlet(1000, workspace, conversation_id)
                outlet.version = version
                made.append(outlet)
        return made

    def check(outlet: Outlet, got: list[dict[str, Any]], events: list[Event]) -> None:
        assert [f["id"] for f in got] == [e.id for e in events]
        for frame, event in zip(got, events, strict=True):
            assert frame["data"] == json.loads(event.lean if outlet.version == 2 else event.data)
            sent = next(f for f in outlet.outbox if f'"id":"{event.id}"' in f)
            assert sent == event.frame(outlet.version)

    early = await send(3)  # before the room exists: a resume from 0-0 reads the stream
    fan = Fanout(bus, resume_max_events=5000, block_ms=100)
    await fan.start()
    try:
        live = outlets()
        for outlet in live:
            await fan.join(outlet, None, lambda c, r: None)
        from_stream = outlets()
        for outlet in from_stream:
            await fan.join(outlet, "0-0", lambda c, r: None)
        later = await send(4)
        for outlet in live:
            check(outlet, await wait_frames(outlet, 4), later)
        for outlet in from_stream:
            check(outlet, await wait_frames(outlet, 7), early + later)
        from_memory = outlets()
        for outlet in from_memory:
            await fan.join(outlet, early[-1].id, lambda c, r: None)
            check(outlet, frames_of(outlet), later)  # queued at join: no stream read
    finally:
        await fan.stop()
