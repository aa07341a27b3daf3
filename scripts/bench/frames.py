#!/usr/bin/env python3
"""What protocol v2's lean frames save: bytes per `message.created` frame and CPU on each side.

    .venv/bin/python scripts/bench/frames.py [--repeat 20000]

For one sample message of each channel (a web-chat visitor's as `Ingress.visitor_message`
makes it, and an inbound Messenger, Instagram, WhatsApp and Telegram message as the adapters
make them through `adapters.base.new_message`, with ids of the platforms' real lengths; each a
170-character text), it prints:

- the bytes of an agent's `event` frame in v1 and v2;
- server: the CPU to make the event's data at publish (v1's dump; v2 adds the lean dump, once
  per event) and to build each version's frame from the stream entry (once per event and
  version in the fan-out, whatever the number of sockets);
- client: the CPU to parse a frame and, in v2, rebuild the whole message (`schemas.lean`).
  Python's json stands in for a browser's JSON.parse: the ratio between versions is the
  point, not the absolute figure.

Each CPU figure is the median of 5 timings of `--repeat` calls, in µs per call, on one core of
whatever this machine is doing (it prints the date and the machine; run it under the bench
lock on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.base import ChannelContext, new_message
from adapters.base import Contact as PlatformContact
from hub.accounts.auth import VisitorClaims
from hub.bus import Event
from hub.bus.memory import MemoryBus
from hub.realtime.ingress import Ingress, message_created
from schemas import lean
from schemas.events import Contact, MessageCreated
from schemas.message import ChannelKind, Direction

TEXT = ("Merhaba, siparişim 3 gündür kargoda görünüyor; takip no 1Z999AAAA10123456784. " * 3)[:170]
# (channel, the contact's platform id, the message's platform id, the contact's name)
PLATFORM_SAMPLES = [
    (ChannelKind.MESSENGER, "6944358812345678", "m_" + "Ab3dE" * 18, "Ayşe Demir"),
    (ChannelKind.INSTAGRAM, "17841400000000000", "aWdfZAG" + "QxMjM0NTY3ODkw" * 6, "ayse.demir"),
    (ChannelKind.WHATSAPP, "905321234567", "wamid.HBgMOTA1MzIxMjM0NTY3FQIAEhggQ0JBM0Y4", "Ayşe"),
    (ChannelKind.TELEGRAM, "123456789", "123456789:4521", "Ayşe Demir"),
]


def web_chat_sample() -> tuple[MessageCreated, Event]:
    async def publish() -> Event:
        bus = MemoryBus(stream_maxlen=10, dedupe_ttl_s=60)
        claims = VisitorClaims(uuid.uuid4(), uuid.uuid4(), os.urandom(16).hex())  # as issued
        await Ingress(bus, None).visitor_message(claims, "k3f9a2c1-17", TEXT, [])  # type: ignore[arg-type]
        [event] = await bus.read(str(claims.workspace_id), "0-0", 10)
        return event

    event = asyncio.run(publish())
    return MessageCreated.model_validate_json(event.data), event


def platform_sample(
    kind: ChannelKind, user: str, mid: str, name: str
) -> tuple[MessageCreated, Event]:
    ctx = ChannelContext(uuid.uuid4(), uuid.uuid4(), kind, "ACCOUNT")
    parsed = new_message(
        ctx,
        thread=user,
        contact=PlatformContact(user, name),
        platform_message_id=mid,
        sent_at=datetime.now(UTC),
        direction=Direction.IN,
        text=TEXT,
    )
    contact = Contact(id=parsed.message.contact_id, name=name, platform_user_id=user)
    data = message_created(parsed.message, contact, parsed.thread)
    return data, Event("1764918000000-0", data.NAME, data.dump(), "", lean.lean(data))


def per_call_us(call: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            call()
        timings.append((time.process_time() - start) / repeat * 1e6)
    return statistics.median(timings)


def measure(channel: str, data: MessageCreated, event: Event, repeat: int) -> dict[str, object]:
    v1, v2 = event.frame(1), event.frame(2)
    workspace = str(data.message.workspace_id)
    assert lean.rebuild(json.loads(v2)["data"], workspace) == json.loads(v1)["data"]

    def client_v2() -> object:
        frame = json.loads(v2)
        return lean.rebuild(frame["data"], workspace)

    return {
        "channel": channel,
        "v1 B": len(v1.encode()),
        "v2 B": len(v2.encode()),
        "saved": f"{1 - len(v2.encode()) / len(v1.encode()):.0%}",
        "publish v1 µs": per_call_us(data.dump, repeat),
        "+lean µs": per_call_us(lambda: lean.lean(data), repeat),
        "frame v1 µs": per_call_us(lambda: event.frame(1), repeat * 10),
        "frame v2 µs": per_call_us(lambda: event.frame(2), repeat * 10),
        "client v1 µs": per_call_us(lambda: json.loads(v1), repeat),
        "client v2 µs": per_call_us(client_v2, repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20_000)
    a = parser.parse_args()
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({model}), "
        f"Python {platform.python_version()}; client side: Python json as a stand-in"
    )
    rows = [measure("web chat", *web_chat_sample(), a.repeat)]
    rows += [
        measure(kind.value, *platform_sample(kind, *rest), a.repeat)
        for kind, *rest in PLATFORM_SAMPLES
    ]
    columns = list(rows[0])
    widths = [max(len(c), *(len(fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(fmt(row[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))


def fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
