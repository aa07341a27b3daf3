"""Splitting a Meta delivery into per-account pieces: every entry, every WhatsApp number."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.meta.webhook import split
from schemas.message import ChannelKind
from tests.payloads import load

pytestmark = pytest.mark.unit


def test_a_batch_of_two_pages_makes_two_pieces() -> None:
    body = load("messenger/page_feed_comment_batched_two_entries.json")
    result = split(body)
    assert [(p.kind, p.account_id) for p in result.pieces] == [
        (ChannelKind.MESSENGER, "<PAGE_ID>"),
        (ChannelKind.MESSENGER, "<OTHER_PAGE_ID>"),
    ]


def test_whatsapp_is_routed_by_phone_number_id_per_change() -> None:
    body = load("whatsapp/message_text.json")
    other = json.loads(json.dumps(body["entry"][0]["changes"][0]))
    other["value"]["metadata"]["phone_number_id"] = "999"
    body["entry"][0]["changes"].append(other)
    result = split(body)
    assert [p.account_id for p in result.pieces] == ["1122334455667", "999"]
    assert all(len(p.entry["changes"]) == 1 for p in result.pieces)


def test_dashboard_tests_and_unknown_objects_are_ignored() -> None:
    assert split(load("instagram/story_insights_dashboard_test.json")).pieces == []
    assert split({"object": "user", "entry": [{"id": "1"}]}).ignored == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
deliveries = st.fixed_dictionaries(
    {"object": st.sampled_from(["page", "instagram", "whatsapp_business_account"]) | json_values},
    optional={
        "entry": st.lists(
            json_values
            | st.fixed_dictionaries(
                {"id": json_values}, optional={"changes": json_values, "messaging": json_values}
            ),
            max_size=4,
        )
        | json_values
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(deliveries, json_values))
def test_split_never_raises(body: Any) -> None:
    result = split(body)
    assert result.ignored >= 0
    for piece in result.pieces:
        assert isinstance(piece.account_id, str) and piece.account_id
