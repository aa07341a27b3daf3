"""Meta's platforms: Instagram, Messenger and WhatsApp, one adapter each (`adapter.py`)."""

from adapters.meta.adapter import INSTAGRAM, MESSENGER, WHATSAPP

__all__ = ["INSTAGRAM", "MESSENGER", "WHATSAPP"]
