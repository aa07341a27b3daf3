"""The webhook body's parse: what Postgres cannot store is caught whether or not the body
takes the walk over every value (`hub.web.webhooks._json` skips it for bodies that cannot
hold such a value)."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hub.errors import BadRequest
from hub.web.webhooks import _json

TEXT = b'{"object":"page","entry":[{"id":"1","time":1764000000000,"messaging":[]}]}'


def test_a_plain_delivery_parses_as_is() -> None:
    assert _json(TEXT) == {
        "object": "page",
        "entry": [{"id": "1", "time": 1764000000000, "messaging": []}],
    }


def test_an_escaped_nul_becomes_the_replacement_character() -> None:
    assert _json(b'{"text":"a\\u0000b","k\\u0000":1}') == {"text": "a\ufffdb", "k\ufffd": 1}


@pytest.mark.parametrize(
    "number",
    [b"1e999", b"-1E400", b"1e+0400", b"1" + b"0" * 250 + b"e60", b"9" * 400 + b".5"],
)
def test_a_number_beyond_a_double_is_refused(number: bytes) -> None:
    with pytest.raises(BadRequest):
        _json(b'{"a":[' + number + b"]}")


@pytest.mark.parametrize("number", [b"1e9", b"1.5e-9", b"9" * 299, b"12345678901234567890"])
def test_numbers_a_double_holds_are_kept(number: bytes) -> None:
    expected = int(number) if number.isdigit() else float(number)
    assert _json(b"[" + number + b"]") == [expected]


_DIGITS = st.text("0123456789", min_size=1, max_size=400)


@given(
    whole=_DIGITS,
    fraction=st.one_of(st.just(""), _DIGITS.map(lambda d: "." + d)),
    exponent=st.one_of(
        st.just(""),
        st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), _DIGITS).map("".join),
    ),
    sign=st.sampled_from(["", "-"]),
)
@example(sign="", whole="9" * 400, fraction="", exponent="")  # an int: kept
@example(sign="-", whole="9" * 310, fraction=".5", exponent="")
@example(sign="", whole="1", fraction="", exponent="e+309")
def test_every_number_beyond_a_double_is_refused(
    sign: str, whole: str, fraction: str, exponent: str
) -> None:
    """Whatever its shape, a number that parses as infinity is caught: the body's quick check
    sends every such body to the walk."""
    whole = whole.lstrip("0") or "0"  # JSON has no leading zeros
    text = sign + whole + fraction + exponent
    body = b'{"n":[' + text.encode() + b"]}"
    integer = not fraction and not exponent  # parsed as an int, however long: stored as is
    if not integer and not math.isfinite(float(text)):
        with pytest.raises(BadRequest):
            _json(body)
    else:
        [kept] = _json(body)["n"]
        assert type(kept) is (int if integer else float)
