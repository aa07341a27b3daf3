"""Telegram's Bot API: one adapter (`adapter.py`)."""

from adapters.telegram.adapter import TELEGRAM

__all__ = ["TELEGRAM"]
