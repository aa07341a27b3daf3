"""The name the inbox shows a contact who has none: "Visitor 1a2b3c" ("Ziyaretçi 1a2b3c" in
Turkish), the word and the first six hex digits of the contact's id (hub/static/inbox-state.js
`title`). Search matches that shown name too, so an anonymous web-chat visitor is found by what
the agent reads on the screen; nothing is stored for it."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlmodel import col

from hub.storage.models import Contact

WORDS = ("visitor", "ziyaretçi")  # the inbox's word in each of its languages
SHOWN_DIGITS = 6
_HEX = re.compile(r"[0-9a-f]{1,6}")


def shown_name_holds(text: str) -> sa.ColumnElement[bool] | None:
    """A condition matching the nameless contacts whose shown name holds `text`, or None when
    `text` cannot be part of one (then only the stored fields are searched)."""
    words = text.replace("İ", "i").strip().casefold().split()  # Turkish capital dotted I
    digits = ""
    if words and any(w.startswith(words[0]) for w in WORDS) and len(words[0]) >= 3:
        if len(words) > 2:
            return None
        if len(words) == 2:
            if words[0] not in WORDS:
                return None
            digits = words[1]
    elif len(words) == 1 and len(words[0]) >= 3:
        digits = words[0]
    else:
        return None
    if digits and not _HEX.fullmatch(digits):
        return None
    nameless = sa.and_(col(Contact.name).is_(None), col(Contact.username).is_(None))
    if not digits:
        return nameless
    # The shown digits are the id's first six: its text form (hex, a hyphen only after 8).
    shown = sa.func.substr(sa.cast(col(Contact.id), sa.String), 1, SHOWN_DIGITS)
    return sa.and_(nameless, shown.contains(digits, autoescape=True))
