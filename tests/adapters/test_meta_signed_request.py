"""Meta's signed_request (data-deletion and deauthorize callbacks), from the recorded vectors
and the recorded parsed payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import pytest

from adapters.meta.signed import Refusal, SignedRequest, read_signed_request
from tests.payloads import load

pytestmark = pytest.mark.unit


def signed_request(value: object, secrets: list[str]) -> dict[str, Any] | None:
    """The payload when the request verifies, else None."""
    read = read_signed_request(value, secrets)
    return read.payload if isinstance(read, SignedRequest) else None


VECTORS = load("meta/signature_test_vectors.json")["signed_request"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["app_secret"] for v in VECTORS])
def test_recorded_vectors_verify_and_decode(vector: dict[str, Any]) -> None:
    assert (
        signed_request(vector["signed_request"], [vector["app_secret"]])
        == vector["expected_payload"]
    )
    assert signed_request(vector["signed_request"], ["wrong", vector["app_secret"]]) is not None
    assert signed_request(vector["signed_request"], ["wrong"]) is None


def test_the_padding_is_part_of_what_is_signed() -> None:
    padded = next(v for v in VECTORS if v["signed_request"].endswith("=="))
    stripped = padded["signed_request"].rstrip("=")
    assert signed_request(stripped, [padded["app_secret"]]) is None


def sign(payload: dict[str, Any], secret: str) -> str:
    segment = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    signature = hmac.new(secret.encode(), segment.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature).decode().rstrip("=") + "." + segment


@pytest.mark.parametrize(
    "fixture",
    [
        "meta/data_deletion_parsed_payload_doc_example.json",
        "meta/deauthorize_parsed_payload_bkrs_test.json",
    ],
)
def test_recorded_callback_payloads_round_trip(fixture: str) -> None:
    payload = load(fixture)
    secret = secrets.token_hex(16)
    assert signed_request(sign(payload, secret), [secret]) == payload
    tampered = sign(payload | {"user_id": "someone-else"}, secret).split(".")[1]
    assert signed_request(sign(payload, secret).split(".")[0] + "." + tampered, [secret]) is None
    assert signed_request(sign(payload | {"algorithm": "HMAC-SHA1"}, secret), [secret]) is None


@pytest.mark.parametrize("garbage", ["", "no-dot", "a.b.c", "!!!.???", "abc.e30", 123])
def test_garbage_is_refused(garbage: Any) -> None:
    assert signed_request(garbage, ["key"]) is None


def test_refusals_say_why_and_the_signer_is_named() -> None:
    payload = load("meta/deauthorize_parsed_payload_bkrs_test.json")
    good = sign(payload, "second")
    read = read_signed_request(good, ["first", "second"])
    assert isinstance(read, SignedRequest) and read.secret == "second" and read.payload == payload
    assert read_signed_request(good, ["first"]) is Refusal.BAD_SIGNATURE
    assert read_signed_request(good, []) is Refusal.BAD_SIGNATURE
    other = sign(payload | {"algorithm": "HMAC-SHA1"}, "first")
    assert read_signed_request(other, ["first"]) is Refusal.BAD_ALGORITHM
    lower = sign(payload | {"algorithm": "hmac-sha256"}, "first")  # Meta compares any case
    assert isinstance(read_signed_request(lower, ["first"]), SignedRequest)
    for garbage in ("", "no-dot", "!!!.e30", ".e30", 42, None):
        assert read_signed_request(garbage, ["first"]) is Refusal.MALFORMED


def test_the_request_is_split_on_the_first_dot_and_verified_before_it_is_decoded() -> None:
    signature, _ = sign({"algorithm": "HMAC-SHA256"}, "k").split(".")
    dotted = "eyJhIjoxfQ.eyJiIjoyfQ"  # a payload segment with a dot in it
    digest = hmac.new(b"k", dotted.encode(), hashlib.sha256).digest()
    value = base64.urlsafe_b64encode(digest).decode() + "." + dotted
    assert read_signed_request(value, ["k"]) is Refusal.MALFORMED  # signed, but not base64url
    assert read_signed_request(signature + "." + dotted, ["k"]) is Refusal.BAD_SIGNATURE
    padded = base64.urlsafe_b64encode(b'{"algorithm":"HMAC-SHA256","user_id":1}').decode()
    digest = hmac.new(b"k", padded.encode(), hashlib.sha256).digest()
    unpadded_signature = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    read = read_signed_request(unpadded_signature + "." + padded, ["k"])
    assert isinstance(read, SignedRequest) and read.payload["user_id"] == 1
