"""Platform events in any order: an edit, a reaction, an unsend, a status or a read receipt
that reaches the persist group before its message waits for it, is applied when it comes and
announced to clients; one whose message never comes expires. Read receipts move our earlier
messages to `read`. On SQLite and on the real Postgres, from recorded or documented payloads."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.base import ChannelContext, MessageChange, NewMessage, Parsed, ReadUpTo
from adapters.meta import instagram, messenger, whatsapp
from adapters.meta import webhook as meta
from adapters.telegram import updates as telegram
from hub.bus import Event, make_bus
from hub.media import make_media_store
from hub.media.library import MediaLibrary
from hub.privacy.erasure import COUNTS, Erasure, Target
from hub.privacy.retention import Retention
from hub.realtime.ingress import Ingress, change_event, message_event
from hub.settings import Settings
from hub.storage.engine import make_engine, migrate, sessionmaker
from hub.storage.store import Store
from hub.workers import persist
from hub.workers.persist import MESSAGES
from schemas.events import ContactRead, ConversationUpdated, MessageUpdated
from schemas.message import (
    ChannelKind,
    DeliveryStatus,
    Direction,
    Message,
    Sender,
    SenderType,
    message_id_for,
    utc_now,
)
from tests.databases import own_database
from tests.payloads import load
from tests.test_schemas import fits

IG_ACCOUNT, PAGE, NUMBER, BOT = "<IGID>", "404217156637689", "1122334455667", "BOT"


@dataclass
class Hub:
    settings: Settings
    store: Store
    workspace_id: uuid.UUID
    ids: Iterator[int]

    async def channel(self, kind: ChannelKind, account_id: str) -> ChannelContext:
        row = await self.store.create_channel(self.workspace_id, kind.value, kind.value)
        return ChannelContext(self.workspace_id, row.id, kind, account_id)

    def event(self, ctx: ChannelContext, parsed: Parsed) -> Event:
        """What `Ingress.publish_parsed` puts on the stream for it."""
        entry = f"{next(self.ids)}-0"
        if isinstance(parsed, NewMessage):
            contact = {
                "id": None,
                "name": None,
                "platform_user_id": parsed.contact.platform_user_id,
            }
            data = message_event(parsed.message, contact, parsed.thread)
            return Event(entry, "message.created", data, str(parsed.message.conversation_id))
        if isinstance(parsed, MessageChange):
            return Event(entry, "message.updated", change_event(parsed).dump(), "")
        read = ConversationUpdated(
            conversation_id=parsed.conversation_id,
            contact_read=ContactRead(
                platform_message_id=parsed.platform_message_id,
                at=parsed.at,
                channel_id=ctx.channel_id,
            ),
        )
        return Event(entry, read.NAME, read.dump(), str(parsed.conversation_id))

    async def apply(self, *events: Event) -> list[MessageUpdated]:
        told: list[MessageUpdated] = []
        await persist.apply(self.store.sessions, str(self.workspace_id), events, told=told)
        return told

    async def message(self, ctx: ChannelContext, platform_message_id: str) -> dict[str, Any]:
        async with self.store.sessions() as orm:
            conn = await orm.connection()
            found = await conn.execute(
                sa.select(MESSAGES).where(
                    MESSAGES.c.channel_id == ctx.channel_id,
                    MESSAGES.c.platform_message_id == platform_message_id,
                )
            )
            return dict(found.mappings().one())

    async def waiting(self) -> int:
        async with self.store.sessions() as orm:
            conn = await orm.connection()
            return int(
                (await conn.execute(sa.text("SELECT count(*) FROM waiting_changes"))).scalar()
            )


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with own_database(request, tmp_path, request.param) as settings:
        migrate(settings)
        yield settings


@pytest.fixture
async def hub(db_settings: Settings) -> AsyncIterator[Hub]:
    engine = make_engine(db_settings)
    store = Store(sessionmaker(engine))
    workspace, _ = await store.create_workspace_with_admin("w", "a@x.example", "pw")
    try:
        yield Hub(db_settings, store, workspace.id, itertools.count(1000))
    finally:
        await engine.dispose()


def meta_parse(parse: Any, body: Any, ctx: ChannelContext) -> list[Parsed]:
    [piece] = meta.split(body).pieces
    return list(parse(piece.entry, ctx).events)


def element(parse: Any, account: str, value: dict[str, Any], ctx: ChannelContext) -> list[Parsed]:
    """One Messenger-Platform `messaging[]` element in an entry of our account."""
    return list(parse({"id": account, "time": 1, "messaging": [value]}, ctx).events)


def whatsapp_message(wamid: str) -> dict[str, Any]:
    """pywa's recorded text message (whatsapp/message_text.json) under another wamid: the
    message that a recorded edit, reaction or unsend names."""
    body = copy.deepcopy(load("whatsapp/message_text.json"))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = wamid
    return body


def whatsapp_revoke(original: str) -> dict[str, Any]:
    """A `revoke` (an unsent message) in the documented shape (docs/platforms.md, WhatsApp:
    `revoke{original_message_id}`) on pywa's recorded envelope."""
    body = copy.deepcopy(load("whatsapp/message_text.json"))
    element = body["entry"][0]["changes"][0]["value"]["messages"][0]
    element.update(id="wamid.revoke", type="revoke", revoke={"original_message_id": original})
    del element["text"]
    return body


async def edit_first(hub: Hub, kind: str) -> tuple[ChannelContext, list[Parsed], list[Parsed], str]:
    """(channel, the edit, the message it edits, the edited text) for a platform family."""
    if kind == "whatsapp":
        ctx = await hub.channel(ChannelKind.WHATSAPP, "106540352242922")
        edit = meta_parse(whatsapp.parse, load("whatsapp/message_edit.json"), ctx)
        original = edit[0].platform_message_id  # type: ignore[union-attr]
        body = whatsapp_message(original)
        body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "106540352242922"
        message = meta_parse(whatsapp.parse, body, ctx)
        return ctx, edit, message, "Updated image caption"
    if kind == "telegram":
        ctx = await hub.channel(ChannelKind.TELEGRAM, BOT)
        update = load("telegram/update_doc_edited_message.json")
        edit = list(telegram.parse(update, ctx).events)
        # The message before its edit: the same Update as a `message`, with no edit date.
        first = dict(update["edited_message"], text="Original text")
        del first["edit_date"]
        message = list(telegram.parse({"update_id": 9999, "message": first}, ctx).events)
        return ctx, edit, message, "Edited text"
    # Instagram and Messenger: the recorded message, and an edit of it in the documented
    # shape (`message_edit{mid, text, num_edit}`, docs/platforms.md).
    if kind == "instagram":
        ctx = await hub.channel(ChannelKind.INSTAGRAM, IG_ACCOUNT)
        message = meta_parse(instagram.parse, load("instagram/dm_text.json"), ctx)
        parse, account, user, mid = instagram.parse, IG_ACCOUNT, "<IGSID>", "<MESSAGE_ID>"
    else:
        ctx = await hub.channel(ChannelKind.MESSENGER, PAGE)
        message = element(messenger.parse, PAGE, load("messenger/event_text.json"), ctx)
        parse, account, user, mid = (
            messenger.parse,
            PAGE,
            "1423587017700273",
            "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl",
        )
    value = {
        "sender": {"id": user},
        "recipient": {"id": account},
        "timestamp": 1700000000000,
        "message_edit": {"mid": mid, "text": "Edited later", "num_edit": 1},
    }
    return ctx, element(parse, account, value, ctx), message, "Edited later"


@pytest.mark.parametrize("kind", ["instagram", "messenger", "whatsapp", "telegram"])
async def test_an_edit_before_its_message_is_applied_when_it_comes(hub: Hub, kind: str) -> None:
    ctx, edit, message, text = await edit_first(hub, kind)
    [change], [new] = edit, message
    assert isinstance(change, MessageChange) and isinstance(new, NewMessage)
    assert change.platform_message_id == new.message.platform_message_id

    assert await hub.apply(hub.event(ctx, change)) == []  # kept, nothing to say yet
    assert await hub.waiting() == 1
    [told] = await hub.apply(hub.event(ctx, new))
    row = await hub.message(ctx, new.message.platform_message_id)
    assert row["text"] == text and row["edited"]
    assert await hub.waiting() == 0
    # Clients are told, with the stored message's ids; the persist group skips it.
    assert told.stored and told.message_id == new.message.id
    assert told.conversation_id == new.message.conversation_id
    assert told.changes.text == text
    again = Event(f"{next(hub.ids)}-0", told.NAME, told.dump(), "")
    async with hub.store.sessions() as orm, orm.begin():
        conn = await orm.connection()
        await conn.execute(sa.text("UPDATE messages SET text = 'later still'"))
    assert await hub.apply(again) == []
    assert (await hub.message(ctx, new.message.platform_message_id))["text"] == "later still"


async def test_a_reaction_and_an_unsend_before_their_message(hub: Hub) -> None:
    """WhatsApp's recorded reaction and a documented revoke, each before the message."""
    ctx = await hub.channel(ChannelKind.WHATSAPP, NUMBER)
    [reaction] = meta_parse(whatsapp.parse, load("whatsapp/message_reaction.json"), ctx)
    assert isinstance(reaction, MessageChange)
    target = reaction.platform_message_id
    await hub.apply(hub.event(ctx, reaction))
    [message] = meta_parse(whatsapp.parse, whatsapp_message(target), ctx)
    [told] = await hub.apply(hub.event(ctx, message))
    row = await hub.message(ctx, target)
    assert [r["emoji"] for r in row["reactions"]] == ["😮"] and told.changes.reaction

    [revoke] = meta_parse(whatsapp.parse, whatsapp_revoke("wamid.gone"), ctx)
    await hub.apply(hub.event(ctx, revoke))
    [gone] = meta_parse(whatsapp.parse, whatsapp_message("wamid.gone"), ctx)
    [told] = await hub.apply(hub.event(ctx, gone))
    row = await hub.message(ctx, "wamid.gone")
    assert row["deleted"] and row["text"] is None and told.changes.deleted


async def test_an_unsent_message_drops_its_reactions(hub: Hub) -> None:
    ctx = await hub.channel(ChannelKind.WHATSAPP, NUMBER)
    [reaction] = meta_parse(whatsapp.parse, load("whatsapp/message_reaction.json"), ctx)
    assert isinstance(reaction, MessageChange)
    target = reaction.platform_message_id
    [message] = meta_parse(whatsapp.parse, whatsapp_message(target), ctx)
    await hub.apply(hub.event(ctx, message), hub.event(ctx, reaction))
    assert (await hub.message(ctx, target))["reactions"]
    [revoke] = meta_parse(whatsapp.parse, whatsapp_revoke(target), ctx)
    await hub.apply(hub.event(ctx, revoke))
    assert (await hub.message(ctx, target))["reactions"] == []
    # A reaction that comes after the unsend is not kept either.
    late = Event(f"{next(hub.ids)}-0", "message.updated", change_event(reaction).dump(), "")
    await hub.apply(late)
    assert (await hub.message(ctx, target))["reactions"] == []


def our_reply(ctx: ChannelContext, conversation: Any, n: int, at: Any) -> Message:
    """An agent's reply as the hub publishes it: pending under an id of our own."""
    pmid = f"a:agent:{n}"
    return Message(
        id=message_id_for(ctx.channel_id, pmid),
        workspace_id=ctx.workspace_id,
        channel_id=ctx.channel_id,
        conversation_id=conversation.conversation_id,
        contact_id=conversation.contact_id,
        channel_kind=ctx.kind,
        direction=Direction.OUT,
        sender=Sender(type=SenderType.AGENT, name="Ada"),
        text=f"reply {n}",
        platform_message_id=pmid,
        sent_at=at,
        status=DeliveryStatus.PENDING,
    )


def sent(hub: Hub, reply: Message, platform_message_id: str) -> Event:
    """The send group's word that the platform took the reply, under the platform's id."""
    data = MessageUpdated(
        channel_id=reply.channel_id,
        conversation_id=reply.conversation_id,
        platform_message_id=reply.platform_message_id,
        message_id=reply.id,
        changes={"status": "sent", "platform_message_id": platform_message_id},  # type: ignore[arg-type]
    )
    return Event(f"{next(hub.ids)}-0", data.NAME, data.dump(), str(reply.conversation_id))


async def test_a_status_before_the_send_is_recorded_waits_for_it(hub: Hub) -> None:
    """WhatsApp's recorded `read` status of a reply reaches us before the send group has
    stored the reply's wamid: it waits, and the reply ends up read, not sent."""
    ctx = await hub.channel(ChannelKind.WHATSAPP, NUMBER)
    [status] = meta_parse(whatsapp.parse, load("whatsapp/status_read.json"), ctx)
    [inbound] = meta_parse(whatsapp.parse, whatsapp_message("wamid.question"), ctx)
    assert isinstance(status, MessageChange) and isinstance(inbound, NewMessage)
    reply = our_reply(ctx, inbound.message, 1, utc_now())
    created = Event(f"{next(hub.ids)}-0", "message.created", message_event(reply), "")
    await hub.apply(hub.event(ctx, inbound), created, hub.event(ctx, status))
    assert await hub.waiting() == 1
    [told] = await hub.apply(sent(hub, reply, status.platform_message_id))
    assert (await hub.message(ctx, status.platform_message_id))["status"] == "read"
    assert told.message_id == reply.id and told.changes.status == "read"


async def test_a_group_status_applies_to_its_own_message_only(hub: Hub) -> None:
    """A WhatsApp group's status names the group as `recipient_id` and one participant
    (documented shape on pywa's recorded status): it moves its own message, no other."""
    ctx = await hub.channel(ChannelKind.WHATSAPP, NUMBER)
    body = load("whatsapp/status_read.json")
    element = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    element.update(
        recipient_id="120363025343298765", recipient_type="group", recipient_participant_id="1555"
    )
    [status] = meta_parse(whatsapp.parse, body, ctx)
    [inbound] = meta_parse(whatsapp.parse, whatsapp_message("wamid.question"), ctx)
    assert isinstance(status, MessageChange) and isinstance(inbound, NewMessage)
    start = utc_now()
    first, second = (
        our_reply(ctx, inbound.message, n, start + timedelta(seconds=n)) for n in (1, 2)
    )
    events = [
        Event(f"{next(hub.ids)}-0", "message.created", message_event(m), "")
        for m in (first, second)
    ]
    await hub.apply(hub.event(ctx, inbound), *events, sent(hub, first, "wamid.earlier"))
    await hub.apply(sent(hub, second, status.platform_message_id), hub.event(ctx, status))
    assert (await hub.message(ctx, status.platform_message_id))["status"] == "read"
    assert (await hub.message(ctx, "wamid.earlier"))["status"] == "sent"


async def test_a_messenger_read_watermark_reads_every_earlier_reply(hub: Hub) -> None:
    ctx = await hub.channel(ChannelKind.MESSENGER, "<PAGE_ID>")
    [read] = element(
        messenger.parse, "<PAGE_ID>", load("messenger/event_read_doc_example.json"), ctx
    )
    assert isinstance(read, ReadUpTo)
    question = element(
        messenger.parse,
        "<PAGE_ID>",
        {
            "sender": {"id": "<PSID>"},
            "recipient": {"id": "<PAGE_ID>"},
            "timestamp": int(read.at.timestamp() * 1000) - 60_000,
            "message": {"mid": "m.in", "text": "?"},
        },
        ctx,
    )[0]
    assert isinstance(question, NewMessage)
    before, after = read.at - timedelta(seconds=5), read.at + timedelta(seconds=5)
    early, late = (
        our_reply(ctx, question.message, 1, before),
        our_reply(ctx, question.message, 2, after),
    )
    created = [
        Event(f"{next(hub.ids)}-0", "message.created", message_event(m), "") for m in (early, late)
    ]
    await hub.apply(
        hub.event(ctx, question), *created, sent(hub, early, "m.1"), sent(hub, late, "m.2")
    )
    told = await hub.apply(hub.event(ctx, read))
    assert (await hub.message(ctx, "m.1"))["status"] == "read"
    assert (await hub.message(ctx, "m.2"))["status"] == "sent"  # sent after the watermark
    assert [(t.message_id, t.changes.status, t.stored) for t in told] == [(early.id, "read", True)]
    assert await hub.apply(hub.event(ctx, read)) == []  # nothing left to move


async def test_an_instagram_read_before_the_message_it_names(hub: Hub) -> None:
    """The recorded `messaging_seen` names `<LAST_MESSAGE_ID_READ>`: our echo of it comes
    later. The read waits for it, then reads it and everything we sent before it."""
    ctx = await hub.channel(ChannelKind.INSTAGRAM, IG_ACCOUNT)
    [read] = meta_parse(instagram.parse, load("instagram/messaging_seen_read.json"), ctx)
    assert isinstance(read, ReadUpTo) and read.platform_message_id == "<LAST_MESSAGE_ID_READ>"
    echo = {
        "sender": {"id": IG_ACCOUNT},
        "recipient": {"id": "<IGSID>"},
        "timestamp": int(read.at.timestamp() * 1000) + 1000,  # its clock is behind the read's
        "message": {"mid": "<LAST_MESSAGE_ID_READ>", "text": "our echo", "is_echo": True},
    }
    await hub.apply(hub.event(ctx, read))
    assert await hub.waiting() == 1
    [new] = element(instagram.parse, IG_ACCOUNT, echo, ctx)
    told = await hub.apply(hub.event(ctx, new))
    assert (await hub.message(ctx, "<LAST_MESSAGE_ID_READ>"))["status"] == "read"
    assert [t.platform_message_id for t in told] == ["<LAST_MESSAGE_ID_READ>"]
    assert await hub.waiting() == 0


async def test_a_change_whose_message_never_comes_expires(hub: Hub) -> None:
    ctx = await hub.channel(ChannelKind.WHATSAPP, NUMBER)
    [reaction] = meta_parse(whatsapp.parse, load("whatsapp/message_reaction.json"), ctx)
    await hub.apply(hub.event(ctx, reaction))
    bus = make_bus(hub.settings)
    library = MediaLibrary(make_media_store(hub.settings))
    sweep = Retention(
        hub.store, bus, Ingress(bus, hub.store), library, every_s=60, waiting_ttl_s=3600
    )
    assert await sweep.expire_waiting(utc_now() + timedelta(seconds=3500)) == 0
    assert await hub.waiting() == 1
    assert await sweep.expire_waiting(utc_now() + timedelta(seconds=3700)) == 1
    assert await hub.waiting() == 0


async def test_an_erasure_takes_the_changes_waiting_in_the_persons_conversation(hub: Hub) -> None:
    """The person's stored message gives their conversation; a reaction of theirs to a
    message that never came waits there, and goes with them."""
    ctx = await hub.channel(ChannelKind.WHATSAPP, NUMBER)
    [message] = meta_parse(whatsapp.parse, whatsapp_message("wamid.question"), ctx)
    [reaction] = meta_parse(whatsapp.parse, load("whatsapp/message_reaction.json"), ctx)
    assert isinstance(message, NewMessage) and isinstance(reaction, MessageChange)
    assert reaction.conversation_id == message.message.conversation_id
    other = await hub.channel(ChannelKind.TELEGRAM, BOT)  # another person's, kept
    [edit] = telegram.parse(load("telegram/update_doc_edited_message.json"), other).events
    await hub.apply(hub.event(ctx, message), hub.event(ctx, reaction), hub.event(other, edit))
    assert await hub.waiting() == 2
    bus = make_bus(hub.settings)
    library = MediaLibrary(make_media_store(hub.settings))
    erasure = Erasure(hub.store.sessions, bus, Ingress(bus, hub.store), library)
    target = Target(str(hub.workspace_id), str(message.message.contact_id))
    counts = dict.fromkeys(COUNTS, 0)
    while not target.done:
        await erasure.step(target, counts)
    assert counts["messages"] == 1
    assert await hub.waiting() == 1  # the other person's edit still waits


async def test_what_clients_are_told_fits_the_published_schemas(hub: Hub) -> None:
    """A read receipt's `conversation.updated`, and the `message.updated` events the persist
    group publishes (a change that waited, a status a receipt moved), against the exported
    JSON Schemas and their models."""
    ctx = await hub.channel(ChannelKind.INSTAGRAM, IG_ACCOUNT)
    [read] = meta_parse(instagram.parse, load("instagram/messaging_seen_read.json"), ctx)
    receipt = hub.event(ctx, read)
    fits(receipt)
    echo = {
        "sender": {"id": IG_ACCOUNT},
        "recipient": {"id": "<IGSID>"},
        "timestamp": 1569262485000,
        "message": {"mid": "<LAST_MESSAGE_ID_READ>", "text": "our echo", "is_echo": True},
    }
    [new] = element(instagram.parse, IG_ACCOUNT, echo, ctx)
    edit = {
        "sender": {"id": IG_ACCOUNT},
        "recipient": {"id": "<IGSID>"},
        "timestamp": 1569262486000,
        "message_edit": {"mid": "<LAST_MESSAGE_ID_READ>", "text": "Edited", "num_edit": 1},
    }
    [change] = element(instagram.parse, IG_ACCOUNT, edit, ctx)
    await hub.apply(receipt, hub.event(ctx, change))
    told = await hub.apply(hub.event(ctx, new))
    assert {t.changes.status for t in told} == {"read", None}
    assert {t.changes.text for t in told} == {"Edited", None}
    for data in told:
        fits(Event(f"{next(hub.ids)}-0", data.NAME, data.dump(), str(data.conversation_id)))


@pytest.mark.parametrize("kind", ["instagram", "messenger", "telegram"])
async def test_a_reaction_before_its_message_on_every_family(hub: Hub, kind: str) -> None:
    """The recorded message of each family, and a reaction to it in the documented shape
    (Meta: `reaction{mid, action, reaction, emoji}`; Telegram: `message_reaction`)."""
    ctx, _, [new], _ = await edit_first(hub, kind)
    assert isinstance(new, NewMessage)
    pmid = new.message.platform_message_id
    if kind == "telegram":
        chat, message_id = pmid.split(":")
        update = {
            "update_id": 10001,
            "message_reaction": {
                "chat": {"id": int(chat), "type": "private"},
                "message_id": int(message_id),
                "user": {"id": int(chat), "is_bot": False, "first_name": "Test"},
                "date": 1441646700,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            },
        }
        [reaction] = telegram.parse(update, ctx).events
    else:
        parse = instagram.parse if kind == "instagram" else messenger.parse
        value = {
            "sender": {"id": new.contact.platform_user_id},
            "recipient": {"id": ctx.account_id},
            "timestamp": 1700000000000,
            "reaction": {"mid": pmid, "action": "react", "reaction": "love", "emoji": "👍"},
        }
        [reaction] = element(parse, ctx.account_id, value, ctx)
    await hub.apply(hub.event(ctx, reaction))
    [told] = await hub.apply(hub.event(ctx, new))
    assert [r["emoji"] for r in (await hub.message(ctx, pmid))["reactions"]] == ["👍"]
    assert told.changes.reaction is not None and told.message_id == new.message.id


async def test_an_instagram_unsend_before_its_message(hub: Hub) -> None:
    """The recorded message, and its unsend in the documented shape (`message.is_deleted`)."""
    ctx, _, [new], _ = await edit_first(hub, "instagram")
    assert isinstance(new, NewMessage)
    unsend = {
        "sender": {"id": "<IGSID>"},
        "recipient": {"id": IG_ACCOUNT},
        "timestamp": 1700000000000,
        "message": {"mid": "<MESSAGE_ID>", "is_deleted": True},
    }
    await hub.apply(hub.event(ctx, element(instagram.parse, IG_ACCOUNT, unsend, ctx)[0]))
    [told] = await hub.apply(hub.event(ctx, new))
    row = await hub.message(ctx, "<MESSAGE_ID>")
    assert row["deleted"] and row["text"] is None and told.changes.deleted
