"""The Meta webhook checks: `X-Hub-Signature-256` against the published test vectors in
tests/fixtures/meta/signature_test_vectors.json, and the GET subscription handshake."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from adapters.meta.webhook import handshake, signature_ok
from tests.payloads import load

pytestmark = pytest.mark.unit


def vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = load("meta/signature_test_vectors.json")
    return loaded


def sha256_vectors() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = vectors()["x_hub_signature_256"]
    assert len(found) == 2
    return found


def header(vector: dict[str, Any]) -> str:
    value = vector.get("header_value") or "sha256=" + vector["expected_hex"]
    assert value == "sha256=" + vector["expected_hex"]
    return str(value)


def flipped(hex_digits: str, at: int) -> str:
    digit = hex_digits[at]
    other = "0" if digit != "0" else "1"
    return hex_digits[:at] + other + hex_digits[at + 1 :]


def test_valid_signatures_pass() -> None:
    for vector in sha256_vectors():
        body = vector["raw_body"].encode()
        assert signature_ok(body, header(vector), [vector["app_secret"]])
        # the right secret among others (the IG app secret and the Meta app secret)
        assert signature_ok(body, header(vector), ["other", "", vector["app_secret"]])


@pytest.mark.parametrize("at", [0, 31, 63])
def test_one_flipped_hex_digit_fails(at: int) -> None:
    for vector in sha256_vectors():
        bad = "sha256=" + flipped(vector["expected_hex"], at)
        assert not signature_ok(vector["raw_body"].encode(), bad, [vector["app_secret"]])


def test_wrong_secret_wrong_body_and_no_secret_fail() -> None:
    for vector in sha256_vectors():
        body = vector["raw_body"].encode()
        assert not signature_ok(body, header(vector), [vector["app_secret"] + "x"])
        assert not signature_ok(body + b" ", header(vector), [vector["app_secret"]])
        assert not signature_ok(body, header(vector), [])
        assert not signature_ok(body, header(vector), [""])


def test_missing_or_malformed_header_fails() -> None:
    for vector in sha256_vectors():
        body, secrets = vector["raw_body"].encode(), [vector["app_secret"]]
        assert not signature_ok(body, None, secrets)
        assert not signature_ok(body, "", secrets)
        assert not signature_ok(body, "sha256=", secrets)
        assert not signature_ok(body, vector["expected_hex"], secrets)  # no sha256= prefix
        assert not signature_ok(body, header(vector)[:-1], secrets)  # truncated


def test_legacy_sha1_header_fails() -> None:
    [vector] = vectors()["x_hub_signature_sha1_legacy"]
    assert vector["header_value"] == "sha1=" + vector["expected_hex"]
    assert not signature_ok(
        vector["raw_body"].encode(), vector["header_value"], [vector["app_secret"]]
    )
    sha256 = sha256_vectors()[1]  # same body and secret ("value", "key")
    assert (sha256["raw_body"], sha256["app_secret"]) == (vector["raw_body"], vector["app_secret"])
    as_sha1 = "sha1=" + sha256["expected_hex"]  # the right digest under the wrong prefix
    assert not signature_ok(vector["raw_body"].encode(), as_sha1, [vector["app_secret"]])


def doc_params() -> dict[str, str]:
    url = vectors()["verification_request_doc_example"].removeprefix("GET ")
    return dict(parse_qsl(urlsplit(url).query))


def test_handshake_echoes_the_doc_example() -> None:
    params = doc_params()
    assert params["hub.verify_token"] == "meatyhamhock"
    assert handshake(params, ["meatyhamhock"]) == "1158201444"
    assert handshake(params, ["another", "meatyhamhock"]) == "1158201444"


def test_handshake_echoes_a_non_numeric_challenge_verbatim() -> None:
    params = {**doc_params(), "hub.challenge": "CHALLENGE_ACCEPTED"}
    assert handshake(params, ["meatyhamhock"]) == "CHALLENGE_ACCEPTED"
    params["hub.challenge"] = " 00 x/+=é "
    assert handshake(params, ["meatyhamhock"]) == " 00 x/+=é "


def test_handshake_refuses_a_wrong_token_or_mode() -> None:
    params = doc_params()
    assert handshake(params, ["meatyhamhocks"]) is None
    assert handshake(params, []) is None
    assert handshake(params, [""]) is None
    assert handshake({**params, "hub.verify_token": ""}, ["meatyhamhock"]) is None
    assert handshake({**params, "hub.mode": "unsubscribe"}, ["meatyhamhock"]) is None
    without_mode = {k: v for k, v in params.items() if k != "hub.mode"}
    assert handshake(without_mode, ["meatyhamhock"]) is None
    without_token = {k: v for k, v in params.items() if k != "hub.verify_token"}
    assert handshake(without_token, ["meatyhamhock"]) is None
