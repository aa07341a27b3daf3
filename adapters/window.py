"""The messaging window: how long after a person's last message a business may answer.

- WhatsApp: 24 hours; after that only templates, which the inbox does not send.
- Messenger and Instagram: 24 hours as a standard response; up to 7 days with the
  `HUMAN_AGENT` tag, which is for replies written by a person (what an inbox sends).
- Public comment replies, Telegram and web chat: no window. A comment conversation's window
  is the public reply's (none); a private reply to a comment has its own 7 days, counted
  from that comment (`PRIVATE_REPLY`, and `hub.comments.replies` for the one-per-comment rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.message import ChannelKind

STANDARD = timedelta(hours=24)
HUMAN_AGENT = timedelta(days=7)
WINDOWED = (ChannelKind.WHATSAPP, ChannelKind.MESSENGER, ChannelKind.INSTAGRAM)
TAGGED = (ChannelKind.MESSENGER, ChannelKind.INSTAGRAM)


@dataclass(frozen=True, slots=True)
class Window:
    open: bool
    closes_at: datetime | None  # None: no window on this channel
    human_agent: bool = False  # past the standard window: send with the HUMAN_AGENT tag

    def as_json(self) -> dict[str, object]:
        return {
            "open": self.open,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "human_agent": self.human_agent,
        }


PRIVATE_REPLY = "comment-private"  # a private message answering a comment: 7 days, untagged


def window(kind: str, last_inbound_at: datetime | None, now: datetime) -> Window:
    """The window of a conversation whose person last wrote at `last_inbound_at` (None:
    not known yet, which on the send path means the message that opened it just came)."""
    if kind == PRIVATE_REPLY:
        start = last_inbound_at or now
        return Window(now < start + HUMAN_AGENT, start + HUMAN_AGENT)
    if kind not in WINDOWED:
        return Window(True, None)
    if last_inbound_at is None:
        last_inbound_at = now
    standard_end = last_inbound_at + STANDARD
    if now < standard_end:
        return Window(True, standard_end)
    if kind in TAGGED:
        tagged_end = last_inbound_at + HUMAN_AGENT
        return Window(now < tagged_end, tagged_end, human_agent=now < tagged_end)
    return Window(False, standard_end)


def conversation_window(
    kind: str, conversation_kind: str, last_inbound_at: datetime | None, now: datetime
) -> Window:
    """The window an inbox shows for a conversation: a comment thread is answered in public,
    which has none, whatever the channel's DMs have."""
    if conversation_kind == "comment":
        return Window(True, None)
    return window(kind, last_inbound_at, now)
