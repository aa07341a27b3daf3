"""The messaging window rules, alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.window import window

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_whatsapp_is_24_hours_then_closed() -> None:
    assert window("whatsapp", NOW - timedelta(hours=23), NOW).open
    late = window("whatsapp", NOW - timedelta(hours=25), NOW)
    assert not late.open and not late.human_agent
    assert late.closes_at == NOW - timedelta(hours=1)


def test_messenger_and_instagram_get_7_days_with_the_human_agent_tag() -> None:
    for kind in ("messenger", "instagram"):
        fresh = window(kind, NOW - timedelta(hours=2), NOW)
        assert fresh.open and not fresh.human_agent
        tagged = window(kind, NOW - timedelta(days=3), NOW)
        assert tagged.open and tagged.human_agent
        assert tagged.closes_at == NOW + timedelta(days=4)
        assert not window(kind, NOW - timedelta(days=8), NOW).open


def test_no_window_on_telegram_and_web_chat_and_unknown_start_is_now() -> None:
    for kind in ("telegram", "webchat", ""):
        assert window(kind, NOW - timedelta(days=400), NOW) == window(kind, None, NOW)
        assert window(kind, None, NOW).closes_at is None
    assert window("whatsapp", None, NOW).closes_at == NOW + timedelta(hours=24)


def test_a_comment_conversation_is_answered_in_public_so_it_shows_no_window() -> None:
    from adapters.window import PRIVATE_REPLY, conversation_window

    for kind in ("instagram", "messenger"):
        shown = conversation_window(kind, "comment", NOW - timedelta(days=30), NOW)
        assert shown.open and shown.closes_at is None and not shown.human_agent
        assert not conversation_window(kind, "dm", NOW - timedelta(days=30), NOW).open
    private = window(PRIVATE_REPLY, NOW - timedelta(days=6), NOW)
    assert private.open and private.closes_at == NOW + timedelta(days=1)
    assert not window(PRIVATE_REPLY, NOW - timedelta(days=7, seconds=1), NOW).open
