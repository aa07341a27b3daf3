"""Meta's signed requests: the data-deletion and deauthorize callbacks carry a
`signed_request` form field. Pure: the value and the app secrets in, the payload (or why it
is refused) out. `hub.privacy.routes` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _b64(segment: str) -> bytes:
    """base64url with or without padding; `ValueError` (binascii.Error is one) if not."""
    if not _BASE64URL.fullmatch(segment):
        raise ValueError("not base64url")
    bare = segment.rstrip("=")
    return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
