"""What Instagram, Messenger and WhatsApp share as Meta Graph webhooks: the GET handshake,
the `X-Hub-Signature-256` check and splitting one delivery into per-account pieces.

All pure: request parts in, decisions out. `hub.web.webhooks` does the I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import as_list
from schemas.message import ChannelKind

SIGNATURE_HEADER = "x-hub-signature-256"
OBJECT_KINDS = {
    "instagram": ChannelKind.INSTAGRAM,
    "page": ChannelKind.MESSENGER,
    "whatsapp_business_account": ChannelKind.WHATSAPP,
}
TEST_ENTRY_ID = "0"  # the App Dashboard's "Test" button sends entry id 0


def handshake(params: Mapping[str, str], verify_tokens: Iterable[str]) -> str | None:
    """The challenge to echo back verbatim, or None when the request is not a subscription
    with one of our verify tokens."""
    if params.get("hub.mode") != "subscribe":
        return None
    given = params.get("hub.verify_token", "").encode()
    if not any(token and hmac.compare_digest(given, token.encode()) for token in verify_tokens):
        return None
    return params.get("hub.challenge", "")


def signature_ok(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """`sha256=<hex HMAC-SHA256(raw body, app secret)>`, compared in constant time over the
    raw bytes exactly as received (Meta signs an escaped-unicode rendering; re-encoding
    parsed JSON would never match). No header: refused."""
    if not header or not header.startswith("sha256="):
        return False
    given = header[len("sha256=") :].strip().lower().encode()
    ok = False
    for secret in secrets:
        if secret:
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
            ok |= hmac.compare_digest(expected, given)  # every secret is tried: no early exit
    return ok


@dataclass(frozen=True, slots=True)
class Piece:
    """The part of a delivery that belongs to one of our accounts."""

    kind: ChannelKind
    account_id: str
    entry: dict[str, Any]  # an entry (Instagram, Page) or an entry with one change (WhatsApp)


@dataclass(frozen=True, slots=True)
class Split:
    pieces: list[Piece]
    ignored: int  # dashboard test entries and shapes with no account


def split(body: Any) -> Split:
    """Every entry of a delivery (Meta batches up to 1000), routed by the account id in it:
    the Instagram account or Page id of the entry, or for WhatsApp the phone number id of
    each change (one WhatsApp Business Account may hold several numbers)."""
    obj = body.get("object") if isinstance(body, dict) else None
    kind = OBJECT_KINDS.get(obj) if isinstance(obj, str) else None
    if kind is None:
        return Split([], 1)
    pieces: list[Piece] = []
    ignored = 0
    for entry in as_list(body.get("entry")):
        if not isinstance(entry, dict):
            ignored += 1
            continue
        entry_id = str(entry.get("id", ""))
        if entry_id == TEST_ENTRY_ID or not entry_id:
            ignored += 1
            continue
        if kind is not ChannelKind.WHATSAPP:
            pieces.append(Piece(kind, entry_id, entry))
            continue
        for change in as_list(entry.get("changes")):
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            piece_entry = {**entry, "changes": [change]}
            pieces.append(Piece(kind, str(number or entry_id), piece_entry))
    return Split(pieces, ignored)
