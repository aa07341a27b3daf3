"""What Instagram, Messenger and WhatsApp share as Meta Graph webhooks: the GET handshake,
the `X-Hub-Signature-256` check and splitting one delivery into per-account pieces.

All pure: request parts in, decisions out. `hub.web.webhooks` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
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


# Signed requests (data-deletion and deauthorize callbacks)

ALGORITHM = "HMAC-SHA256"


class Refusal(StrEnum):
    """Why a signed request is refused; the value is the machine-readable error code."""

    MALFORMED = "malformed_signed_request"
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "bad_algorithm"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    payload: dict[str, Any]
    secret: str  # the app secret that signed it: which app the callback is for


def read_signed_request(value: object, secrets: Iterable[str]) -> SignedRequest | Refusal:
    """A Meta `signed_request` ("<signature>.<payload>", both base64url, padding optional),
    split on the first '.'. The signature must be HMAC-SHA256 over the payload segment
    *exactly as received* (its `=` padding included: re-padding or stripping it breaks the
    official SDK's vector) under one of the app secrets, compared in constant time with every
    secret tried; only then is the payload decoded, and it must be a JSON object whose
    `algorithm` is HMAC-SHA256 (any case, as Meta's docs compare it)."""
    if not isinstance(value, str) or "." not in value:
        return Refusal.MALFORMED
    encoded_sig, payload = value.split(".", 1)
    try:
        given = _b64(encoded_sig)
    except ValueError:
        return Refusal.MALFORMED
    signer: str | None = None
    for secret in secrets:
        if secret:
            expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
            if hmac.compare_digest(expected, given) and signer is None:
                signer = secret
    if signer is None:
        return Refusal.BAD_SIGNATURE
    try:
        data = json.loads(_b64(payload))
    except ValueError:
        return Refusal.MALFORMED
    if not isinstance(data, dict):
        return Refusal.MALFORMED
    algorithm = data.get("algorithm")
    if not isinstance(algorithm, str) or algorithm.upper() != ALGORITHM:
        return Refusal.BAD_ALGORITHM
    return SignedRequest(data, signer)


def signed_request(value: object, secrets: Iterable[str]) -> dict[str, Any] | None:
    """The payload of a signed request that verifies (`read_signed_request`); None otherwise."""
    read = read_signed_request(value, secrets)
    return read.payload if isinstance(read, SignedRequest) else None


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _b64(segment: str) -> bytes:
    """base64url with or without padding; `ValueError` (binascii.Error is one) if not."""
    if not _BASE64URL.fullmatch(segment):
        raise ValueError("not base64url")
    bare = segment.rstrip("=")
    return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
