"""Which adapter serves which channel kind. The hub asks here, and never branches on a
kind itself: a kind with no adapter (the web chat, the hub's own channel) is no platform's.

Adding a platform: its package under `adapters/`, exporting an object that satisfies
`adapters.protocol.Adapter`, and one line in `ADAPTERS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from adapters.meta import INSTAGRAM, MESSENGER, WHATSAPP
from adapters.protocol import Adapter
from adapters.telegram import TELEGRAM
from schemas.message import ChannelKind

ADAPTERS: Mapping[str, Adapter] = {
    adapter.kind: adapter for adapter in (INSTAGRAM, MESSENGER, WHATSAPP, TELEGRAM)
}


class UnknownKind(LookupError):
    """No adapter serves this channel kind."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"no platform adapter for channel kind {kind!r}")
        self.kind = kind


def get(kind: object) -> Adapter | None:
    """The adapter for `kind` (a ChannelKind or its value), or None when no platform has it."""
    return ADAPTERS.get(kind) if isinstance(kind, str) else None


def adapter_for(kind: object) -> Adapter:
    """The adapter for `kind`; raises `UnknownKind` when no platform has it."""
    adapter = get(kind)
    if adapter is None:
        raise UnknownKind(kind)
    return adapter


def adapters() -> Iterator[Adapter]:
    return iter(ADAPTERS.values())


def kinds() -> tuple[ChannelKind, ...]:
    return tuple(adapter.kind for adapter in ADAPTERS.values())


def family(name: str) -> tuple[Adapter, ...]:
    """The adapters whose webhooks arrive on `/webhooks/{name}/...`."""
    return tuple(adapter for adapter in ADAPTERS.values() if adapter.family == name)
